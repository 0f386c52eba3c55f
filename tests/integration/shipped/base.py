"""What the shipped-server tests need to know of a running server, whatever it is built with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

#: The tool every shipped MCP server offers: ``add(a, b)``, answering the sum as text.
ADD_TOOL = "add"
#: The scope the MCP servers ask for (and their authorization servers grant).
MCP_SCOPE = "mcp:read"


@dataclass
class ServerState:
    """What the authorization server has done so far, as it counted it itself."""

    #: Clients registered at ``/register``.
    registrations: int = 0
    #: Authorization requests approved at ``/authorize`` (a code issued).
    authorizations: int = 0
    #: The ``grant_type`` of every token request answered with tokens, in order.
    token_grants: list[str] = field(default_factory=list)
    #: For every token that ``/revoke`` revoked, what it was: ``"access_token"`` or ``"refresh_token"``.
    revoked: list[str] = field(default_factory=list)

    def snapshot(self) -> ServerState:
        """A copy that later counting does not change."""
        return ServerState(self.registrations, self.authorizations, list(self.token_grants), list(self.revoked))


@dataclass
class ShippedServer:
    """A running MCP server with the authorization server it ships with."""

    #: Which server this is (the test IDs use it).
    name: str
    #: The MCP endpoint (also the RFC 8707 resource).
    url: str
    #: The authorization server's issuer.
    issuer: str
    #: Seconds an access token lives.
    access_token_ttl: float
    #: Whether the authorization server has a revocation endpoint (RFC 7009).
    supports_revocation: bool
    #: What the authorization server has done so far.
    state: Callable[[], ServerState]
    #: The authorization server revokes every access and refresh token it issued, as an administrator would.
    revoke_grants: Callable[[], None]
    #: Where the test can: registers a confidential client as its administrator would (client ID, secret, token
    #: endpoint authentication method, redirect URI).
    pre_register: Callable[[str, str, str, str], None] | None = None
