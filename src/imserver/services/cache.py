"""A bounded cache for per-node facts on the hot path."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Bounded(dict[K, V]):
    """A dict that is cleared when it reaches `limit` entries.

    A coarse bound with no cost per hit (reads are plain dict reads, in C): a
    cleared cache refills on demand from the database, which is the truth.
    Least-recently-used eviction would cost a bookkeeping step on every read
    of the send path to save a few reloads after a rare clear.
    """

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: K, value: V) -> None:
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
