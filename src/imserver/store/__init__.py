"""Persistence: the only package with SQL; services never import sqlalchemy."""
