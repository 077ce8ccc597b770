"""A one-line progress bar on stderr, no dependency.

Drawn only when stderr is a terminal (or when forced), so ``--json`` output and
CI logs stay clean. Redrawn at most every :data:`REDRAW_SECONDS`.
"""

from __future__ import annotations

import sys
import time

REDRAW_SECONDS = 0.25  # smooth enough to watch, cheap enough to ignore
WIDTH = 30  # characters of bar


class Progress:
    def __init__(self, label: str, total: float, *, unit: str = "s", enabled: bool | None = None) -> None:
        self.label = label
        self.total = max(total, 1e-9)
        self.unit = unit
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._last = 0.0
        self._drawn = False

    def update(self, done: float, note: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < REDRAW_SECONDS and done < self.total:
            return
        self._last = now
        frac = min(1.0, max(0.0, done / self.total))
        bar = "#" * int(frac * WIDTH) + "." * (WIDTH - int(frac * WIDTH))
        sys.stderr.write(f"\r  {self.label:<18} [{bar}] {done:7.1f}/{self.total:g}{self.unit} {note:<32}")
        sys.stderr.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()
            self._drawn = False


def note(text: str) -> None:
    """A status line on stderr (always: it is how a long setup shows it is alive)."""
    sys.stderr.write(f"bench: {text}\n")
    sys.stderr.flush()
