"""A connection's position in its user's inbox stream: each seq once, in order.

Live entries arrive from fan-out after their commit, replayed entries from the
store. This state machine merges the two so that what the client sees after a
``sync`` is the seqs ``after+1, after+2, ...`` with no gap and no duplicate, even
while messages keep arriving during the replay:

* while replaying, live entries are buffered (they are newer than the replay's
  start, or duplicates of what the replay will return);
* after a page that reached the end of the stream, buffered entries that follow
  on without a gap are emitted, and a gap means "query again";
* while live, an entry that skips ahead (a gap: another node's commit delivered
  out of order, a lost broker message) is buffered and triggers a replay from
  the last emitted seq; an entry at or below it is a duplicate and is dropped.

Pure: no I/O, no awaits. The session (session.py) feeds it and acts on what it returns.
"""

from __future__ import annotations

# Buffered live entries beyond this are dropped and re-read from the store
# instead: bounds memory per connection when a replay is slow.
PENDING_MAX = 2000


class InboxStream:
    __slots__ = ("delivered", "replaying", "_pending", "_overflowed")

    def __init__(self, delivered: int) -> None:
        self.delivered = delivered  # highest seq handed to the client
        self.replaying = False
        self._pending: dict[int, bytes] = {}
        self._overflowed = False

    def reset(self, after: int) -> None:
        """The client asks to (re)start from `after`; a replay must follow."""
        self.delivered = after
        self.replaying = True
        self._pending = {k: v for k, v in self._pending.items() if k > after}

    def begin_replay(self) -> None:
        """Replay from `delivered` (after a gap)."""
        self.replaying = True

    def live(self, seq: int, frame: bytes) -> tuple[list[bytes], bool]:
        """A live entry: (frames to send now, whether a replay must start)."""
        if seq <= self.delivered:
            return [], False
        if self.replaying or seq != self.delivered + 1:
            self._buffer(seq, frame)
            return [], not self.replaying
        self.delivered = seq
        return [frame, *self._drain()], False

    def buffered(self, seq: int) -> bytes | None:
        """The live frame buffered for `seq`, if any (the replay sends it rather than re-encoding)."""
        return self._pending.get(seq)

    def replayed(self, seq: int) -> bool:
        """A replayed entry: True if it is the next one and should be sent."""
        if seq != self.delivered + 1:
            return False
        self.delivered = seq
        self._pending.pop(seq, None)
        return True

    def page_done(self, reached_end: bool) -> tuple[list[bytes], bool]:
        """After a replay page: (frames to send, whether another page is needed)."""
        if not reached_end:
            return [], True
        out = self._drain()
        if self._pending or self._overflowed:
            self._overflowed = False
            return out, True
        self.replaying = False
        return out, False

    def _buffer(self, seq: int, frame: bytes) -> None:
        if len(self._pending) >= PENDING_MAX:
            self._pending.clear()
            self._overflowed = True
            return
        self._pending[seq] = frame

    def _drain(self) -> list[bytes]:
        out = []
        while (frame := self._pending.pop(self.delivered + 1, None)) is not None:
            self.delivered += 1
            out.append(frame)
        # Anything at or below `delivered` is a duplicate now.
        if self._pending:
            self._pending = {k: v for k, v in self._pending.items() if k > self.delivered}
        return out
