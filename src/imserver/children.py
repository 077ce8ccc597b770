"""Child processes that do not outlive their parent (Linux).

:func:`death_signal` returns the function a :class:`subprocess.Popen` runs in
the child before exec (``preexec_fn``): the kernel sends the child ``sig`` when
the parent dies (``PR_SET_PDEATHSIG``), so a killed supervisor or bench leaves
no server running. libc is loaded by :func:`death_signal`, in the parent: the child, forked from
a process that may have threads, makes one foreign call between fork and exec:
no import, no dlopen, no lock. Elsewhere than glibc Linux it is None (no-op).
"""

from __future__ import annotations

import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _prctl():
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (ImportError, OSError):
        return None


def death_signal(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child receive ``sig`` when its parent dies; None where unsupported.

    Call it in the parent, as the Popen argument: that is where libc is loaded.
    """
    prctl = _prctl()
    if prctl is None:
        return None

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, sig)

    return in_child
