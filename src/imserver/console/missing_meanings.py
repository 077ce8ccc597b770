"""List the error codes that have no meaning in the console yet.

``python -m imserver.console.missing_meanings`` prints one ``Code.NAME  value``
line per code of ``domain/errors.py`` missing from ``console/meanings.py`` and
exits 1 if there is any (0 when every code is explained), so a merge that
brings new codes shows at once what to add (then translate them: see
docs/console.md).
"""

from __future__ import annotations

import sys

from ..domain.errors import Code
from .meanings import MEANINGS


def missing() -> list[Code]:
    """Codes without a meaning, in the enum's order."""
    return [code for code in Code if code not in MEANINGS]


def main() -> int:
    codes = missing()
    for code in codes:
        print(f"Code.{code.name}  {code.value}")
    return 1 if codes else 0


if __name__ == "__main__":
    sys.exit(main())
