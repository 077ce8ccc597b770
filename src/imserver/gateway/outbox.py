"""A connection's outbound queue, bounded in bytes.

Broadcast never waits for a slow reader: frames are encoded
once and queued; when a connection's queue would pass its byte bound, droppable
frames (typing) are dropped first, and if that is not enough the connection is
declared a slow consumer and closed (4008). It loses nothing: everything durable
is in its inbox stream, and it resumes by cursor.
"""

from __future__ import annotations

from collections import deque


class Outbox:
    __slots__ = ("limit", "size", "_frames")

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self.size = 0
        # None while empty: an idle connection holds no deque (about 600 bytes each).
        self._frames: deque[tuple[bytes, bool]] | None = None

    def __len__(self) -> int:
        return len(self._frames) if self._frames else 0

    def push(self, data: bytes, *, droppable: bool = False) -> bool:
        """Queue a frame. False means it did not fit: the consumer is too slow."""
        if self.size + len(data) > self.limit:
            if droppable:
                return True  # a typing frame nobody will miss
            self._drop_droppable()
            if self.size + len(data) > self.limit:
                return False
        if self._frames is None:
            self._frames = deque()
        self._frames.append((data, droppable))
        self.size += len(data)
        return True

    def pop_many(self, max_bytes: int) -> list[bytes]:
        """Frames from the head, in order, up to about max_bytes (at least one if any)."""
        out: list[bytes] = []
        taken = 0
        frames = self._frames
        if frames is None:
            return out
        while frames and (not out or taken + len(frames[0][0]) <= max_bytes):
            data, _ = frames.popleft()
            taken += len(data)
            out.append(data)
        if not frames:
            self._frames = None
        self.size -= taken
        return out

    def has_room(self, fraction: float = 0.5) -> bool:
        """True while under `fraction` of the bound (replay waits for this)."""
        return self.size <= self.limit * fraction

    def _drop_droppable(self) -> None:
        if self._frames is None:
            return
        kept = deque(f for f in self._frames if not f[1])
        self.size = sum(len(f[0]) for f in kept)
        self._frames = kept
