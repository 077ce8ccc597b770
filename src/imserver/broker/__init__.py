"""Moving frames and cache invalidations between nodes (see docs/broker.md).

``make_broker(settings.broker_url)`` picks the implementation:

* ``memory://`` — :class:`MemoryBroker`, one process (the default);
* ``redis://host:port/db``, ``rediss://...``, ``unix:///path`` —
  :class:`RedisBroker`, many nodes sharing one Redis.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from imserver.broker.base import Broker, BrokerStats, Handler, ReconnectHook
from imserver.broker.memory import MemoryBroker
from imserver.broker.redis import RedisBroker

__all__ = ["Broker", "BrokerStats", "Handler", "MemoryBroker", "ReconnectHook", "RedisBroker", "make_broker"]

_REDIS_SCHEMES = {"redis", "rediss", "unix"}


def make_broker(url: str, *, channel_prefix: str = "") -> Broker:
    """The broker named by ``url`` (``Settings.broker_url``), not yet started.

    ``channel_prefix`` (Redis only) keeps deployments sharing one Redis apart.
    """
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryBroker()
    if scheme in _REDIS_SCHEMES:
        return RedisBroker(url, channel_prefix=channel_prefix) if channel_prefix else RedisBroker(url)
    raise ValueError(f"unsupported broker URL scheme {scheme!r}: use memory:// or redis://host:port/db")
