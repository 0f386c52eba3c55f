"""Where the flow may send requests on a server's say-so: the address policy against server-side request forgery.

The MCP server names the protected resource metadata URL (its 401 challenge), the metadata names the authorization
servers, and their metadata names the registration, token, revocation and device endpoints: every one of these URLs
comes from a server the user may not trust. On a machine inside a network (an agent in the cloud, a CI runner), a
request to one of them could reach what the internet cannot: a cloud metadata service (``169.254.169.254``), a
private network (RFC 1918, IPv6 ULA), a local service on loopback (``http://127.0.0.1:2375``, a Docker API). The
MCP security best practices ("Server-Side Request Forgery", citing RFC 9728 §7.7) say clients should refuse them.

:class:`AddressPolicy` refuses such addresses, as IP literals or as the numeric forms a resolver reads as one
(``127.1``, ``2130706433``), and the names ``localhost`` and ``*.localhost`` (RFC 6761), unless:

* the MCP server itself is on such an address (local development: its authorization server is local too), or
* the user opts in (``allow_private_networks=True``, CLI ``--allow-private-networks``), or
* the user named the host (the server URL, ``issuer=``, ``resource_metadata_url=``).

Plain-http loopback URLs are accepted only where the MCP server is on loopback itself. A DNS name is not resolved
here (the flow does no I/O): what a name resolves to, and the address a response came from, are checked with the
same rules by :mod:`mcp_oauth_auth.flow.resolved`, with the driver's help.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

from mcp_oauth_auth.exceptions import ConfigurationError, UnsafeURLError
from mcp_oauth_auth.flow.urls import safe_url, split_url

__all__ = ["MAX_AUTHORIZATION_SERVERS", "MAX_URLS_PER_FLOW", "AddressPolicy", "address_rule"]

#: How many of the authorization servers a PRM lists are tried, in its order (each costs up to three requests).
MAX_AUTHORIZATION_SERVERS = 4
#: How many different URLs one credential flow may send requests to (retries and device polls repeat a URL).
MAX_URLS_PER_FLOW = 32

_OPT_IN = "pass allow_private_networks=True (CLI --allow-private-networks) if this is intended"


def _ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``host`` denotes without DNS: an IP literal, or a numeric IPv4 form a resolver accepts."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host) and host[0].isdigit():
        try:
            # inet_aton reads what getaddrinfo reads: 127.1, 0x7f.1, 2130706433, 017700000001.
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def address_rule(host: str) -> str | None:
    """Why ``host`` (lower-case, without brackets) is not a public address, or None when it may be one."""
    host = host.rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return "a loopback name (localhost)"
    ip = _ip_of(host)
    if ip is None:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        compatible = ip.packed[:12] == bytes(12) and int(ip) > 1  # ::a.b.c.d (RFC 4291 §2.5.5.1), not :: or ::1
        if ip.ipv4_mapped is not None or compatible:
            return "an IPv4-mapped or IPv4-compatible IPv6 address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata services live there)"
    if isinstance(ip, ipaddress.IPv6Address) and ip in _ULA:
        return "a unique local IPv6 address (fc00::/7)"
    if ip.is_private:
        return "a private-network address"
    if not ip.is_global or ip.is_multicast:
        return "a reserved, shared or multicast address"
    return None


_ULA = ipaddress.IPv6Network("fc00::/7")


@dataclass(frozen=True)
class AddressPolicy:
    """Which URLs a credential flow may send requests to (see the module's documentation)."""

    server_url: str
    allow_private_networks: bool = False
    #: Hosts the user named (the MCP server's, ``issuer=``'s, ``resource_metadata_url=``'s): never refused.
    named_hosts: frozenset[str] = frozenset()
    server_is_local: bool = field(init=False)
    server_is_loopback: bool = field(init=False)

    def __post_init__(self) -> None:
        _, host, _, _, _ = split_url(self.server_url)
        rule = address_rule(host.strip("[]"))
        object.__setattr__(self, "server_is_local", rule is not None)
        object.__setattr__(self, "server_is_loopback", rule is not None and "loopback" in rule)
        object.__setattr__(self, "named_hosts", frozenset({host.strip("[]"), *self.named_hosts}))

    @classmethod
    def for_urls(cls, server_url: str, named: tuple[str | None, ...], allow_private_networks: bool) -> AddressPolicy:
        hosts = set()
        for url in filter(None, named):
            try:
                hosts.add(split_url(url)[1].strip("[]"))
            except ConfigurationError:
                continue
        return cls(server_url, allow_private_networks, frozenset(hosts))

    def check(self, url: str, what: str = "a URL the server named") -> None:
        """Raise :class:`UnsafeURLError` (naming the URL and the rule) when the flow must not send to ``url``."""
        try:
            scheme, host, _, _, _ = split_url(url)
        except ConfigurationError as exc:
            raise UnsafeURLError(f"{what} is not a usable URL: {exc.message}", url=safe_url(url)) from None
        host = host.strip("[]")
        if host in self.named_hosts:
            return
        rule = address_rule(host)
        if rule is not None:
            refusal = self.refusal(url, scheme, rule, f"its host is {rule}", local=self.server_is_local, what=what)
            if refusal is not None:
                raise refusal

    def refusal(self, url: str, scheme: str, rule: str, where: str, *, local: bool, what: str) -> UnsafeURLError | None:
        """The refusal of ``url``, whose host (literal, resolved or connected to: ``where`` says which) is ``rule``;
        None where an exemption applies: the MCP server is ``local`` itself, or the user opted in."""
        if scheme == "http" and "loopback" in rule and not self.server_is_loopback:
            return UnsafeURLError(
                f"refusing {what} {safe_url(url)}: {where}; plain http to {rule} is accepted only when the MCP server "
                f"itself is on loopback, and {safe_url(self.server_url)} is not",
                url=safe_url(url),
            )
        if local or self.allow_private_networks:
            return None
        return UnsafeURLError(
            f"refusing {what} {safe_url(url)}: {where}, and the MCP server {safe_url(self.server_url)} "
            f"is not on such an address (server-side request forgery protection); {_OPT_IN}",
            url=safe_url(url),
        )
