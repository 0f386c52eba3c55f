"""The driver's part of the address policy's DNS checks (:mod:`mcp_oauth_auth.flow.resolved`): resolving host names
(the ``ResolveHost`` effect) and telling the address each OAuth response came from.

:data:`resolver` is what resolves: ``getaddrinfo`` by default, the resolution the HTTP client itself does. Replace it
(``mcp_oauth_auth.driving.resolution.resolver = ...``) to map names to addresses without DNS in tests, or where the
program resolves through something else. Async clients call it in a worker thread.

The peer address is what httpcore (httpx's transport) and httpcore2 (httpx2's) report as the connection's
``server_addr``: the response's ``network_stream`` extension. Other transports (mock, ASGI, WSGI) report none, and
nothing is checked for them.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from mcp_oauth_auth.flow.effects import PeerCheck

__all__ = ["PEER_EXTENSION", "peer_address", "peer_refusal", "resolver", "system_resolver"]

#: Where a request carries the flow's :data:`~mcp_oauth_auth.flow.effects.PeerCheck` (transports ignore it).
PEER_EXTENSION = "mcp_oauth_auth.peer_check"

Resolver = Callable[[str, int], tuple[str, ...]]


def system_resolver(host: str, port: int) -> tuple[str, ...]:
    """The addresses ``getaddrinfo`` gives for ``host`` (TCP to ``port``), in its order; empty when it gives none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        return ()
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


#: The resolver the drivers use (see the module's documentation).
resolver: Resolver = system_resolver


def resolve(host: str, port: int) -> tuple[str, ...]:
    """``host`` resolved by the current :data:`resolver`."""
    return tuple(resolver(host, port))


def peer_address(response: Any) -> str | None:
    """The IP address ``response`` came from, where its transport tells it; None otherwise."""
    stream = response.extensions.get("network_stream")
    get_extra_info = getattr(stream, "get_extra_info", None)
    if get_extra_info is None:
        return None
    try:
        address = get_extra_info("server_addr")
    except Exception:  # a transport's stream of its own: it does not tell
        return None
    return str(address[0]) if isinstance(address, tuple) and address else None


def peer_refusal(response: Any) -> Exception | None:
    """The refusal of ``response`` by the peer check its request carries (none when it carries none, or when the
    transport does not tell the peer's address)."""
    check: PeerCheck | None = response.request.extensions.get(PEER_EXTENSION)
    if check is None:
        return None
    peer = peer_address(response)
    return None if peer is None else check(str(response.request.url), peer)
