"""The `imserver` command as people meet it: help naming the settings, one-line errors, no terminal needed.

Each command runs as a real subprocess against the parametrized database
(SQLite file or a PostgreSQL schema), with no terminal on standard input.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import make_url, select

from imserver.cli import main
from imserver.store.tables import operators

from . import conftest
from .conftest import free_port

TIMEOUT_S = 60  # one command, generous on a loaded machine


@pytest.fixture
def env(database_url, tmp_path) -> dict[str, str]:
    url, search_path = database_url
    if search_path:
        url = make_url(url).update_query_dict({"search_path": search_path}).render_as_string(hide_password=False)
    keys = conftest.test_keys()
    out = {k: v for k, v in os.environ.items() if not k.startswith("IMSERVER_")}
    out.update(
        IMSERVER_DATABASE_URL=url, IMSERVER_DATA_DIR=str(tmp_path / "data"), IMSERVER_MASTER_KEYS=keys["master_keys"],
        IMSERVER_HMAC_KEY=keys["hmac_key"], IMSERVER_ARGON2_MEMORY_KIB="1024", IMSERVER_ARGON2_TIME_COST="1",
    )
    return out


def imserver(env: dict, *argv: str, stdin: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imserver.cli", *argv], env=env, input=stdin, capture_output=True, text=True,
        timeout=TIMEOUT_S, cwd=cwd, stdin=None if stdin is not None else subprocess.DEVNULL,
    )


async def test_operator_create_reads_the_password_from_stdin(env, db, tmp_path):
    secret = tmp_path / "password"
    secret.write_text("a long enough password\n")
    with secret.open() as f:
        done = subprocess.run(
            [sys.executable, "-m", "imserver.cli", "operator", "create", "--handle", "root", "--role", "admin",
             "--password-stdin"], env=env, stdin=f, capture_output=True, text=True, timeout=TIMEOUT_S,
        )
    assert done.returncode == 0, done.stderr
    assert "operator 1 (admin) created" in done.stdout
    async with db.read() as conn:
        assert (await conn.execute(select(operators.c.handle, operators.c.role))).all() == [("root", "admin")]


@pytest.mark.parametrize(
    "argv, stdin, code",
    [
        (["--password-stdin"], "short\n", "weak_password"),
        (["--password-stdin"], "\n", "password_required"),
        ([], None, "password_required"),  # no terminal to prompt on, no variable
    ],
)
def test_errors_are_one_line_with_a_code(env, argv, stdin, code):
    done = imserver(env, "operator", "create", "--handle", "root", "--role", "admin", *argv, stdin=stdin)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"imserver: error [{code}]: ") and "--debug" in line
    assert "Traceback" not in done.stderr


def test_debug_shows_the_traceback(env):
    done = imserver(env, "operator", "create", "--handle", "root", "--role", "admin", "--password-stdin", "--debug",
                    stdin="short\n")
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("imserver: error [weak_password]: ")


def test_a_bad_setting_names_its_variable(env):
    done = imserver({**env, "IMSERVER_PORT": "eighty"}, "migrate")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("imserver: error [bad_setting]: IMSERVER_PORT: ")


@pytest.mark.parametrize(
    "argv, names",
    [
        (["serve"], ["IMSERVER_HOST", "IMSERVER_PORT", "IMSERVER_MIGRATE_ON_START", "IMSERVER_LOG_LEVEL",
                     "IMSERVER_SHUTDOWN_GRACE_SECONDS", "keys.json"]),
        (["operator", "create"], ["IMSERVER_OPERATOR_PASSWORD", "--password-stdin"]),
    ],
)
def test_help_names_the_settings(capsys, argv, names):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for name in names:
        assert name in text, name


def test_serve_says_where_and_warns_about_a_new_key_file(env, tmp_path):
    """Without configured keys, the first start writes a key file and says so; the next start does not."""
    env = {k: v for k, v in env.items() if k not in ("IMSERVER_MASTER_KEYS", "IMSERVER_HMAC_KEY")}
    first = _serve_lines(env, tmp_path)
    listening = [e for e in first if e["message"].startswith("listening on http://127.0.0.1:")]
    assert len(listening) == 1 and "database: " in listening[0]["message"]
    assert "password" not in listening[0]["message"] or "***" in listening[0]["message"]
    key_file = tmp_path / "data" / "keys.json"
    created = [e for e in first if e["message"].startswith("created the key file")]
    assert len(created) == 1 and created[0]["level"] == "warning"
    assert str(key_file) in created[0]["message"] and "Back it up" in created[0]["message"]
    assert key_file.is_file()
    second = _serve_lines(env, tmp_path)
    assert not [e for e in second if e["message"].startswith("created the key file")]
    assert [e for e in second if e["message"].startswith(f"identity data keys: {key_file}")]


def _serve_lines(env: dict, tmp_path) -> list[dict]:
    """Start `imserver serve`, wait for the startup line, stop it; its log lines (JSON: not a terminal)."""
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "imserver.cli", "serve", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while "Application startup complete" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(TIMEOUT_S)
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_several_workers_are_refused_where_they_cannot_be_correct(env, backend):
    """SQLite takes one writer; the in-memory broker joins no processes: each is refused with its code."""
    done = imserver({**env, "IMSERVER_BROKER_URL": "memory://"}, "serve", "--workers", "2", "--port", "0")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    expected = "workers_need_postgresql" if backend == "sqlite" else "workers_need_broker"
    assert line.startswith(f"imserver: error [{expected}]: "), line
    done = imserver(env, "serve", "--workers", "0")
    assert done.returncode == 1 and "[bad_workers]" in done.stderr
