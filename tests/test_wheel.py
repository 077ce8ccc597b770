"""A non-editable install migrates and serves from any directory (no IMSERVER_MIGRATIONS_DIR).

Builds and installs this checkout with ``pip install <repo>`` into a new
virtualenv, then runs the installed ``imserver`` from an empty directory
elsewhere: ``migrate`` must reach the head revision and ``serve`` must answer
``/readyz``. Slow (pip resolves and installs every dependency: ~1 min).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from imserver.store import migrate

from . import conftest
from .conftest import free_port

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

INSTALL_TIMEOUT_S = 600  # a cold pip cache on a loaded machine
START_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("wheel") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(REPO)],
        check=True, timeout=INSTALL_TIMEOUT_S, stdin=subprocess.DEVNULL,
    )
    return venv


def env_for(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMSERVER_")}
    keys = conftest.test_keys()
    env.update(
        IMSERVER_DATA_DIR=str(data_dir), IMSERVER_MASTER_KEYS=keys["master_keys"], IMSERVER_HMAC_KEY=keys["hmac_key"],
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def test_installed_package_is_not_the_checkout(installed):
    out = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import imserver; print(imserver.__file__)"],
        check=True, capture_output=True, text=True, cwd="/",
    ).stdout
    assert out.startswith(str(installed)), out


def test_installed_wheel_migrates_and_serves_elsewhere(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = env_for(tmp_path / "data")
    imserver = str(installed / "bin" / "imserver")
    done = subprocess.run([imserver, "migrate"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    (head,) = migrate.heads()
    assert f"database at revision {head}" in done.stdout
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [imserver, "serve", "--port", str(port)], cwd=elsewhere, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        assert r.json()["migrations"] == "head"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
