"""Strict decoding of client frames on its own: µs per frame, by frame kind.

    python -m imserver.bench.decode                 # every frame kind
    python -m imserver.bench.decode --number 50000 --repeat 9

Times :func:`imserver.gateway.protocol.decode` on the text of a few typical
frames (the ``send`` the bench's load generator sends, an ``auth`` with a
bearer token, a ``sync``, a short and a long Chinese ``send``, one refused frame),
``--number`` calls per timing, ``--repeat`` timings, each timed by this
process's CPU clock (``time.process_time``), not the wall clock: time the
process spends waiting for a core on a shared machine is not counted. It
prints the fastest timing per frame (other processes can still only add time,
through caches) and the median, whose distance from the fastest says how noisy
the run was. No server, no socket: this isolates the decoder.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import timeit

import orjson

from ..gateway import protocol
from .peer import send_frame, stamped

# Frames as they arrive on the socket: UTF-8 text, as the gateway hands them to decode.
FRAMES: dict[str, str] = {
    "send": send_frame("user", 4242, *stamped(17, 1_733_000_000_000_000_000, 100)).decode(),
    "auth": orjson.dumps({"type": "auth", "token": "x" * 43, "protocol": 1, "id": "auth-1"}).decode(),
    "sync": orjson.dumps({"type": "sync", "inbox_after": 123_456, "posts_after": 77, "limit": 500, "id": "s-1"}).decode(),
    "send, 30 CJK chars": orjson.dumps(
        {"type": "send", "client_msg_id": "c-1", "to": {"group": 9}, "body": "今天晚上一起吃饭吗" * 3 + "我六点到", "id": "g"}
    ).decode(),
    "send, 2000 CJK chars": orjson.dumps(
        {"type": "send", "client_msg_id": "c-1", "to": {"group": 9}, "body": "消息" * 1000, "id": "g"}
    ).decode(),
    "refused (unknown field)": orjson.dumps(
        {"type": "send", "client_msg_id": "c-1", "to": {"user": 1}, "body": "hi", "priority": 1, "id": "r"}
    ).decode(),
}


def measure(text: str, number: int, repeat: int) -> list[float]:
    """µs per decode, one figure per timing.

    Each call decodes a new ``str`` made from the frame's bytes, as the WebSocket
    layer hands the gateway one per frame (a ``str`` caches its UTF-8 form, which
    a decoder reading UTF-8 would otherwise get for free from the second call
    on); the time of making that ``str``, timed alone, is subtracted.
    """
    raw = text.encode()

    def once() -> None:
        try:
            protocol.decode(raw.decode())
        except protocol.ProtocolError:
            pass

    def text_only() -> None:
        raw.decode()

    total = timeit.repeat(once, timer=time.process_time, number=number, repeat=repeat)
    base = min(timeit.repeat(text_only, timer=time.process_time, number=number, repeat=repeat))
    return [(t - base) / number * 1e6 for t in total]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imserver.bench.decode", description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="decodes per timing (20000)")
    parser.add_argument("--repeat", type=int, default=7, help="timings per frame (7)")
    args = parser.parse_args(argv)
    print(f"{'frame':<26} {'bytes':>6} {'fastest':>9} {'median':>9}  (µs per decode, {args.repeat} x {args.number:,})")
    for name, text in FRAMES.items():
        times = measure(text, args.number, args.repeat)
        print(f"{name:<26} {len(text.encode()):>6} {min(times):>9.2f} {statistics.median(times):>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
