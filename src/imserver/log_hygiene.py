"""Keep message bodies, tokens and personal data out of logs, whatever the log level.

Some libraries log the data they carry at DEBUG: aiosqlite logs every
statement with its parameters (message bodies, identity ciphertexts, token
hashes), the websockets library every frame (the start of a bearer token, a
message body). Running with ``--log-level debug`` or a root logger at DEBUG
must not turn those into a leak, so their level is held at INFO. (The
WebSocket protocol also switches frame logging off per connection:
gateway/ws_limits.py.)
"""

from __future__ import annotations

import logging

# Loggers that write request or message data at DEBUG.
DATA_LOGGERS = ("aiosqlite", "websockets", "websockets.server", "websockets.client")


def keep_data_out_of_logs() -> None:
    for name in DATA_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO or logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
