"""FastMCP's in-memory OAuth provider (``fastmcp.server.auth.providers.in_memory.InMemoryOAuthProvider``): the
authorization server FastMCP ships for development, on the FastMCP server's own origin, built on the MCP Python
SDK's ``mcp.server.auth`` endpoints.

The provider is FastMCP's own code, unchanged; :class:`CountingProvider` only counts what it does, for the tests.
Its access token lifetime is a module constant, which :func:`run_fastmcp` sets for the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastmcp import FastMCP
from fastmcp.server.auth.providers import in_memory
from mcp.server.auth.provider import AccessToken, AuthorizationCode, AuthorizationParams, RefreshToken
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from mcp_oauth_auth.testing import reserve_loopback_port, serve_asgi

from .base import ADD_TOOL, MCP_SCOPE, ServerState, ShippedServer
from .sdk_as import pre_registered_client


class CountingProvider(in_memory.InMemoryOAuthProvider):
    """FastMCP's provider, counting registrations, approvals, token grants and revocations."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.counts = ServerState()

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        await super().register_client(client_info)
        self.counts.registrations += 1

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        redirect = await super().authorize(client, params)
        self.counts.authorizations += 1
        return redirect

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        tokens = await super().exchange_authorization_code(client, authorization_code)
        self.counts.token_grants.append("authorization_code")
        return tokens

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        tokens = await super().exchange_refresh_token(client, refresh_token, scopes)
        self.counts.token_grants.append("refresh_token")
        return tokens

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        known = token.token in self.access_tokens or token.token in self.refresh_tokens
        await super().revoke_token(token)
        if known:
            self.counts.revoked.append("access_token" if isinstance(token, AccessToken) else "refresh_token")

    def pre_register(self, client_id: str, secret: str, method: str, redirect_uri: str) -> None:
        self.clients[client_id] = pre_registered_client(client_id, secret, method, redirect_uri)

    def revoke_grants(self) -> None:
        """Revoke every token issued so far, as an administrator would."""
        for token in list(self.refresh_tokens):
            self._revoke_internal(refresh_token_str=token)
        for token in list(self.access_tokens):
            self._revoke_internal(access_token_str=token)


@contextmanager
def run_fastmcp(monkeypatch: pytest.MonkeyPatch, access_token_ttl: float = 300) -> Iterator[ShippedServer]:
    """A FastMCP server with the ``add`` tool at ``/mcp``, protected by FastMCP's in-memory OAuth provider."""
    monkeypatch.setattr(in_memory, "DEFAULT_ACCESS_TOKEN_EXPIRY_SECONDS", int(access_token_ttl))
    sock = reserve_loopback_port()
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    provider = CountingProvider(
        base_url=origin,
        client_registration_options=ClientRegistrationOptions(
            enabled=True, valid_scopes=[MCP_SCOPE], default_scopes=[MCP_SCOPE]
        ),
        revocation_options=RevocationOptions(enabled=True),
        required_scopes=[MCP_SCOPE],
    )
    server = FastMCP("shipped-fastmcp", auth=provider)

    @server.tool(name=ADD_TOOL)
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    app = server.http_app(path="/mcp")
    with serve_asgi(app, sock=sock, lifespan="on", name="the FastMCP server", startup_timeout=15):
        yield ShippedServer(
            name="fastmcp",
            url=f"{origin}/mcp",
            issuer=origin,
            access_token_ttl=access_token_ttl,
            supports_revocation=True,
            state=provider.counts.snapshot,
            revoke_grants=provider.revoke_grants,
            pre_register=provider.pre_register,
        )
