"""Draining a node's WebSockets when it shuts down (docs/protocol.md, close code 1001).

Every live connection, authenticated or not, is sent a ``notice`` of kind
``shutdown`` and then closed with 1001 ("going away") once what was already
queued for it has been written. A client reconnects (to another node, through
the load balancer) and resumes from its cursor; a send whose ack did not leave
before the close is retried with the same ``client_msg_id`` and stored once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from . import protocol

if TYPE_CHECKING:
    from .connection import Connection

SHUTDOWN_NOTICE = protocol.Notice(
    "shutdown", "This server is restarting: reconnect and resume from your cursor.", {"reconnect": True}
)
CLOSE_REASON = "server shutting down"
# How often drain() looks whether every connection has closed.
POLL_SECONDS = 0.02


async def drain(live: set[Connection], *, deadline: float) -> int:
    """Notice and close every connection in ``live``; wait until they are gone or the loop time
    reaches ``deadline``. Returns how many were still open then."""
    frame = protocol.encode(SHUTDOWN_NOTICE)
    for conn in list(live):
        conn.push(frame)
        conn.close_soon(protocol.CLOSE_GOING_AWAY, CLOSE_REASON, flush=True)
    loop = asyncio.get_running_loop()
    while live and loop.time() < deadline:
        await asyncio.sleep(POLL_SECONDS)
    return len(live)
