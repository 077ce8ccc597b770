"""Which address is the client's: the peer, or what trusted proxies say in X-Forwarded-For.

``X-Forwarded-For`` is a list each proxy appends its peer to, so only its
right end can be trusted, and only as far as the proxies we run. The rule
(the one nginx's ``real_ip_recursive`` and most frameworks use): if the peer
is not a trusted proxy, the header is ignored and the peer is the client;
otherwise walk the list from the right, skipping trusted proxies, and the first
address that is not one is the client. A client can put anything on the left
of the list, never to the right of what our proxy appended.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def parse_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """Addresses or CIDR blocks; ValueError names a bad entry."""
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not an address or CIDR block: {entry!r}") from exc
    return tuple(out)


def _address(value: str):
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(address, networks: Sequence[Network]) -> bool:
    return address is not None and any(address in net for net in networks)


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str | None:
    """The client's address given the TCP peer, every X-Forwarded-For header value, and the trusted proxies."""
    peer_address = _address(peer) if peer else None
    if not _trusted(peer_address, trusted):
        return peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer  # garbage where a proxy of ours would have written an address: trust nothing left of it
        if not _trusted(address, trusted):
            return str(address)
    # Every hop is one of ours (or there are none): the leftmost is the client.
    return str(_address(hops[0])) if hops else peer


def of_connection(connection, trusted_proxies: list[str]) -> str | None:
    """:func:`client_address` of an HTTP request or WebSocket (anything with ``client`` and ``headers``)."""
    peer = connection.client.host if connection.client else None
    return client_address(peer, connection.headers.getlist("x-forwarded-for"), parse_networks(tuple(trusted_proxies)))
