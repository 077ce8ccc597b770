"""uvicorn's options for this app, one place for ``imserver serve`` and the test server.

The protocol classes carry the limits below the application: WebSocket frame
metering (gateway/ws_limits.py) and the request-header deadline
(api/http_limits.py). No ``Server`` header is sent: it only tells a scanner
what to try.
"""

from __future__ import annotations

from typing import Any

from .api.http_limits import header_timeout_protocol
from .config import Settings
from .gateway.ws_limits import protocol_for


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
