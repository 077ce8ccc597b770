"""The layer rules hold on the real import graph.

The contracts live in pyproject.toml under ``[tool.importlinter]``
(docs/architecture.md says what each layer owns and may import): domain <-
policy <- services <- api | admin | gateway, domain imports nothing of ours,
policy does no I/O, store is imported by services and not by the edges, and
SQL libraries are imported only in store. ``lint-imports`` builds the graph
from the source, so an import added anywhere that breaks a rule fails here,
naming the file, the line and the chain.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Building the import graph of ~200 modules takes a few seconds on a busy
# machine; a minute means something is stuck, not slow.
LINT_TIMEOUT_SECONDS = 60


def _lint_imports() -> str:
    """The lint-imports script of this interpreter's environment (a test extra)."""
    beside = Path(sys.executable).parent / "lint-imports"
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert found, "lint-imports is missing: install the test extras (pip install -e '.[test]')"
    return found


def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        # --no-cache: nothing written into the checkout.
        [_lint_imports(), str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LINT_TIMEOUT_SECONDS,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"import contracts broken:\n{report}"
    # Every contract in pyproject.toml ran and was kept, none skipped.
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert f"Contracts: {len(contracts)} kept, 0 broken." in report, report
