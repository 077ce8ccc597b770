"""How imserver runs under uvicorn: its options, and the shutdown docs/protocol.md promises.

:func:`uvicorn_options` is one place for ``imserver serve`` and the test server.
The protocol classes carry the limits below the application: WebSocket frame
metering (gateway/ws_limits.py) and the request-header deadline
(api/http_limits.py). No ``Server`` header is sent: it only tells a scanner
what to try.

On SIGTERM (or SIGINT) uvicorn stops accepting and would close every
WebSocket with 1012 at once. :class:`GracefulServer` first stops accepting,
marks the node not ready (``/readyz`` answers 503), sends every WebSocket a
``shutdown`` notice and closes it with 1001 once its queued frames are written
(:mod:`imserver.gateway.shutdown`), then lets uvicorn finish HTTP requests and
run the application's shutdown, which commits every send already queued. All of
it within ``IMSERVER_SHUTDOWN_GRACE_SECONDS``; what is still open then is cut.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import uvicorn

from .api.http_limits import header_timeout_protocol
from .config import Settings
from .gateway.shutdown import drain
from .gateway.ws_limits import protocol_for

log = logging.getLogger("imserver.shutdown")

# Part of the grace period kept for uvicorn's own steps after the WebSocket drain
# (HTTP requests in flight, the application's shutdown) when the drain runs long.
TAIL_SECONDS = 1.0


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app, *, grace: float) -> None:
        super().__init__(config)
        self.app = app
        self.grace = grace

    async def shutdown(self, sockets=None) -> None:
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        for server in self.servers:  # stop accepting before anything else
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.app.state
        state.shutting_down = True
        live = state.live_sockets
        log.info("shutting down: closing %d WebSocket connections with a notice and 1001", len(live))
        left = await drain(live, deadline=loop.time() + max(0.0, self.grace - TAIL_SECONDS))
        if left:
            log.warning("shutdown grace ran out with %d WebSocket connections still open; cutting them", left)
        self.config.timeout_graceful_shutdown = max(0.1, self.grace - (time.monotonic() - started))
        await super().shutdown()
        log.info("shut down in %.2f s", time.monotonic() - started)




def uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "http": header_timeout_protocol(settings.http_header_timeout_seconds),
        # uvicorn's sans-I/O WebSocket protocol (gateway.endpoint writes frames
        # straight into it), with frame metering and quiet logs.
        "ws": protocol_for(settings),
        "ws_per_message_deflate": False,  # off: CPU, and CRIME-style leaks
        "ws_max_size": settings.max_frame_bytes,  # a larger frame closes the socket with 1009
        # Idle sockets are pinged; one that does not answer in time is dropped.
        "ws_ping_interval": settings.ping_interval_seconds,
        "ws_ping_timeout": settings.ping_timeout_seconds,
        "server_header": False,
    }
