"""Persistence: the only package with SQL (STYLE.md habit 5)."""
