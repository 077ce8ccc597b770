"""Ping flood against a running server, sampling its memory: the WebSocket read limits, measured.

Each of ``--connections`` clients opens /ws, never authenticates, never reads,
and sends full-size (125-byte) ping frames as fast as its socket takes them;
when the server closes it, it reconnects and starts again, as an attacker
would. Every ``--every`` seconds the server's RSS (``/proc/<pid>``) is printed.

    python -m imserver.bench.ping_flood --url ws://127.0.0.1:8000/ws --server-pid PID --seconds 60

Before frame metering (gateway/ws_limits.py) one such client grew a server
from 136 to 310 MB in a minute; now each is closed (1008) after its burst.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import struct
import time
from urllib.parse import urlparse

from .procstat import sample

PING = b"x" * 125  # the largest control-frame payload


def _ping_frame() -> bytes:
    mask = os.urandom(4)
    return struct.pack("!BB", 0x89, 0x80 | len(PING)) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(PING))


async def _client(host: str, port: int, stop: float, tally: dict) -> None:
    frames = _ping_frame() * 64
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            await reader.readuntil(b"\r\n\r\n")
            tally["connections"] += 1
            while time.monotonic() < stop:
                writer.write(frames)
                tally["pings"] += 64
                async with asyncio.timeout(max(0.01, stop - time.monotonic())):
                    await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            tally["closed"] += 1
            await asyncio.sleep(0.05)
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - never opened, or gone
                pass


async def run(url: str, pid: int | None, seconds: float, connections: int, every: float) -> None:
    target = urlparse(url)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    tally = {"connections": 0, "pings": 0, "closed": 0}
    start = time.monotonic()
    stop = start + seconds
    first = sample(pid) if pid else None
    print(f"t=0s rss={first.rss_kib // 1024 if first else '?'} MiB")
    clients = [asyncio.create_task(_client(host, port, stop, tally)) for _ in range(connections)]
    while time.monotonic() < stop:
        await asyncio.sleep(every)
        now = sample(pid) if pid else None
        print(
            f"t={time.monotonic() - start:.0f}s rss={now.rss_kib // 1024 if now else '?'} MiB "
            f"pings_sent={tally['pings']} connections={tally['connections']} closed_by_server={tally['closed']}"
        )
    await asyncio.gather(*clients, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ws")
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--every", type=float, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.url, args.server_pid, args.seconds, args.connections, args.every))


if __name__ == "__main__":
    main()
