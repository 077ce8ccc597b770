"""Where imserver finds its migration scripts (store/migrate.py)."""

from __future__ import annotations

import pytest

from imserver.store import migrate


def test_found_without_settings(monkeypatch):
    monkeypatch.delenv("IMSERVER_MIGRATIONS_DIR", raising=False)
    found = migrate.migrations_dir()
    assert (found / "env.py").is_file() and any((found / "versions").glob("0001_*.py"))
    assert found.parent.name == "imserver"  # inside the package, as a wheel ships it
    assert migrate.heads()  # the scripts parse and end somewhere


def test_the_setting_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("IMSERVER_MIGRATIONS_DIR", str(tmp_path))
    assert migrate.migrations_dir() == tmp_path


def test_a_missing_directory_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.delenv("IMSERVER_MIGRATIONS_DIR", raising=False)
    monkeypatch.setattr(migrate.resources, "files", lambda _: tmp_path)
    with pytest.raises(migrate.MigrationsNotFound, match="IMSERVER_MIGRATIONS_DIR"):
        migrate.migrations_dir()
