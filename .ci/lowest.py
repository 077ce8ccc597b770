"""Print pip constraints that pin every direct dependency to its lowest allowed version.

The lowest-versions CI job installs with them (pip's equivalent of a
"lowest-direct" resolution): a lower bound in pyproject.toml that the code
has outgrown fails there instead of at a user's. Only ``>=`` bounds are pinned;
what they pull in resolves as usual.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

EXTRAS = ()  # the runtime bounds only: the test tools install at their newest (their own lowest sets conflict)


def main() -> int:
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in EXTRAS:
        specs += project["optional-dependencies"][extra]
    for spec in specs:
        m = re.match(r"^\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*>=\s*([^,;\s]+)", spec)
        if m:
            print(f"{m.group(1)}=={m.group(2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
