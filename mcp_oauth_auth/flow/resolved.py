"""The address policy applied to DNS: what a host name resolves to, and the address a response came from.

:class:`~mcp_oauth_auth.flow.addresses.AddressPolicy` judges the host as written in a URL. A public-looking name can
still resolve to ``169.254.169.254`` or ``10.0.0.5``, so for one credential flow :class:`ResolvedAddresses`:

* before a request to a DNS name leaves, has the driver resolve it (the :class:`~mcp_oauth_auth.flow.effects.
  ResolveHost` effect: ``getaddrinfo``, in a worker thread for async clients) and refuses it when *any* address is
  one the policy forbids;
* after the response arrives, where the client tells the connection's peer address (httpx's and httpx2's own
  transports do), refuses a response that came from a forbidden address (a name re-bound between the two looks,
  or resolved differently by the client's transport); the driver then closes it unread.

The exemptions are the literal rule's: a local MCP server (its name resolving to such an address: a deployment on
an internal network), ``allow_private_networks``, and the hosts the user named. A response from an address the MCP
server's own responses came from is not refused either: that is a proxy (on a private address, every response
comes from it) or a front shared with the server, and reaches nothing the server's own URL does not. The server's
responses do not make it local: a server that controls its DNS could otherwise re-bind its own name to switch the
checks off in the middle of a flow. A name that does not resolve here is not refused: the client then fails to
connect, or reaches it through a proxy, whose peer address is what is checked.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from mcp_oauth_auth.exceptions import ConfigurationError, UnsafeURLError
from mcp_oauth_auth.flow.addresses import AddressPolicy, address_rule
from mcp_oauth_auth.flow.effects import Effect, resolve_host
from mcp_oauth_auth.flow.urls import split_url

__all__ = ["ResolvedAddresses"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _parts(url: str) -> tuple[str, str, int] | None:
    """Scheme, host (without brackets) and port of ``url``, or None for a URL the literal check refuses anyway."""
    try:
        scheme, host, port, _, _ = split_url(url)
    except ConfigurationError:
        return None
    return scheme, host.strip("[]"), port or _DEFAULT_PORTS[scheme]


class ResolvedAddresses:
    """The resolved-address checks of one credential flow (see the module's documentation)."""

    def __init__(self, policy: AddressPolicy, *, server_peers: frozenset[str] = frozenset()) -> None:
        self.policy = policy
        #: Whether the MCP server is on a non-public address (literally, or as its name resolves).
        self.local = policy.server_is_local
        #: The addresses the MCP server's responses came from.
        self.server_peers = set(server_peers)
        self._server = _parts(policy.server_url)
        self._server_resolved = False
        self._resolved: dict[tuple[str, int], tuple[str, ...]] = {}

    @property
    def active(self) -> bool:
        """Whether anything is checked at all (not for a local MCP server, nor with ``allow_private_networks``)."""
        return not (self.local or self.policy.allow_private_networks)

    def check(self, url: str) -> Generator[Effect, Any, UnsafeURLError | None]:
        """The refusal of a request to ``url`` for what its host resolves to, or None to send it."""
        parts = _parts(url)
        if parts is None or not self.active:
            return None
        scheme, host, port = parts
        if host in self.policy.named_hosts or address_rule(host) is not None:
            return None  # named by the user, or an IP literal (the literal check has judged it)
        if not self._server_resolved:
            self._server_resolved = True
            if self._server is not None and address_rule(self._server[1]) is None:
                server_addresses = yield from self._resolve(self._server[1], self._server[2])
                self.local = self.local or any(address_rule(ip) is not None for ip in server_addresses)
                if not self.active:
                    return None
        for ip in (yield from self._resolve(host, port)):
            refusal = self._refusal(url, scheme, ip, f"its host {host} resolves to {ip}")
            if refusal is not None:
                return refusal
        return None

    def peer_refusal(self, url: str, peer: str) -> UnsafeURLError | None:
        """The refusal of a response to a request for ``url`` that came from the IP address ``peer``, or None."""
        parts = _parts(url)
        if parts is None:
            return None
        scheme, host, _ = parts
        if self._server is not None and host == self._server[1]:
            self.server_peers.add(peer)
            return None
        if not self.active or host in self.policy.named_hosts or peer in self.server_peers:
            return None
        return self._refusal(url, scheme, peer, f"the connection to {host} went to {peer}")

    def _refusal(self, url: str, scheme: str, ip: str, where: str) -> UnsafeURLError | None:
        rule = address_rule(ip.lower())
        if rule is None:
            return None
        return self.policy.refusal(
            url, scheme, rule, f"{where}, {rule}", local=self.local, what="a URL the server named"
        )

    def _resolve(self, host: str, port: int) -> Generator[Effect, Any, tuple[str, ...]]:
        key = (host, port)
        if key not in self._resolved:
            self._resolved[key] = yield from resolve_host(host, port)
        return self._resolved[key]
