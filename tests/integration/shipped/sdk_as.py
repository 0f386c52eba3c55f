"""The official MCP Python SDK's built-in authorization server (``mcp.server.auth``), in both layouts its examples
show: on the MCP server's own origin (``MCPServer(auth_server_provider=...)``), and as a separate authorization
server (``create_auth_routes`` in an app of its own) in front of a resource server that checks tokens by
introspection.

The SDK ships the endpoints (metadata, ``/authorize``, ``/token``, ``/register``, ``/revoke``) and leaves the
storage of clients, codes and tokens to a provider the server's author writes; :class:`InMemoryProvider` is ours,
written the way the SDK's examples write theirs: the person approves at once (``authorize`` redirects straight
back with a code), codes and tokens are bound to the client and the RFC 8707 resource, refresh tokens rotate, and
revoking a token revokes its pair.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import cast

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl, AnyUrl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_oauth_auth.testing import reserve_loopback_port, serve_asgi

from ..mcp_sdk_server import serve_mcp_server
from .base import ADD_TOOL, MCP_SCOPE, ServerState, ShippedServer

CODE_LIFETIME = 300


@dataclass
class _Grant:
    """An access token and the refresh token issued with it: revoking either revokes both."""

    access: AccessToken
    refresh: RefreshToken


class InMemoryProvider:
    """An ``OAuthAuthorizationServerProvider`` keeping clients, codes and tokens in memory."""

    def __init__(self, access_token_ttl: float) -> None:
        self.access_token_ttl = access_token_ttl
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.grants: list[_Grant] = []
        self.counts = ServerState()
        self._lock = threading.Lock()

    # -- clients

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info
        self.counts.registrations += 1

    # -- the authorization code grant

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        code = secrets.token_urlsafe(32)
        assert client.client_id is not None
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [MCP_SCOPE],
            expires_at=time.time() + CODE_LIFETIME,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
            subject="alice",
        )
        self.counts.authorizations += 1
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        code = self.codes.get(authorization_code)
        return code if code is not None and code.client_id == client.client_id else None

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        del self.codes[authorization_code.code]
        return self._issue(
            authorization_code.client_id,
            authorization_code.scopes,
            authorization_code.resource,
            authorization_code.subject,
            "authorization_code",
        )

    # -- refresh

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        grant = self._grant(refresh=refresh_token)
        return grant.refresh if grant is not None and grant.refresh.client_id == client.client_id else None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        grant = self._grant(refresh=refresh_token.token)
        if grant is not None:
            self.grants.remove(grant)  # rotation: the old refresh token and its access token end here
        return self._issue(
            refresh_token.client_id, scopes, refresh_token.resource, refresh_token.subject, "refresh_token"
        )

    # -- access tokens and revocation

    async def load_access_token(self, token: str) -> AccessToken | None:
        grant = self._grant(access=token)
        if grant is None or (grant.access.expires_at is not None and grant.access.expires_at < time.time()):
            return None
        return grant.access

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        grant = self._grant(access=token.token) or self._grant(refresh=token.token)
        if grant is not None:
            self.grants.remove(grant)
            self.counts.revoked.append("access_token" if isinstance(token, AccessToken) else "refresh_token")

    def pre_register(self, client_id: str, secret: str, method: str, redirect_uri: str) -> None:
        self.clients[client_id] = pre_registered_client(client_id, secret, method, redirect_uri)

    def revoke_grants(self) -> None:
        """Revoke every token issued so far, as an administrator would."""
        with self._lock:
            self.grants.clear()

    def introspect(self, token: str) -> dict[str, object]:
        """RFC 7662 for the separate layout's resource server."""
        grant = self._grant(access=token)
        access = grant.access if grant is not None else None
        if access is None or (access.expires_at is not None and access.expires_at < time.time()):
            return {"active": False}
        return {
            "active": True,
            "client_id": access.client_id,
            "scope": " ".join(access.scopes),
            "exp": access.expires_at,
            "aud": access.resource,
            "sub": access.subject,
        }

    # -- helpers

    def _grant(self, *, access: str | None = None, refresh: str | None = None) -> _Grant | None:
        with self._lock:
            for grant in self.grants:
                if grant.access.token == access or grant.refresh.token == refresh:
                    return grant
        return None

    def _issue(
        self, client_id: str, scopes: list[str], resource: str | None, subject: str | None, grant_type: str
    ) -> OAuthToken:
        expires_at = int(time.time() + self.access_token_ttl)
        access = AccessToken(
            token=secrets.token_urlsafe(32),
            client_id=client_id,
            scopes=scopes,
            expires_at=expires_at,
            resource=resource,
            subject=subject,
        )
        refresh = RefreshToken(
            token=secrets.token_urlsafe(32), client_id=client_id, scopes=scopes, resource=resource, subject=subject
        )
        with self._lock:
            self.grants.append(_Grant(access, refresh))
        self.counts.token_grants.append(grant_type)
        return OAuthToken(
            access_token=access.token,
            token_type="Bearer",
            expires_in=int(self.access_token_ttl),
            scope=" ".join(scopes),
            refresh_token=refresh.token,
        )


def pre_registered_client(client_id: str, secret: str, method: str, redirect_uri: str) -> OAuthClientInformationFull:
    """A confidential client of the authorization code grant, as the server's administrator would set it up."""
    return OAuthClientInformationFull(
        client_id=client_id,
        client_secret=secret,
        token_endpoint_auth_method=method,  # type: ignore[arg-type]
        redirect_uris=[cast(AnyUrl, redirect_uri)],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        scope=MCP_SCOPE,
    )


def _auth_options() -> dict[str, object]:
    return {
        "client_registration_options": ClientRegistrationOptions(
            enabled=True, valid_scopes=[MCP_SCOPE], default_scopes=[MCP_SCOPE]
        ),
        "revocation_options": RevocationOptions(enabled=True),
    }


def _shipped(name: str, url: str, issuer: str, ttl: float, provider: InMemoryProvider) -> ShippedServer:
    return ShippedServer(
        name=name,
        url=url,
        issuer=issuer,
        access_token_ttl=ttl,
        supports_revocation=True,
        state=provider.counts.snapshot,
        revoke_grants=provider.revoke_grants,
        pre_register=provider.pre_register,
    )


@contextmanager
def run_sdk_same_origin(access_token_ttl: float = 300) -> Iterator[ShippedServer]:
    """``MCPServer`` with ``auth_server_provider``: the authorization server on the MCP server's origin."""
    sock = reserve_loopback_port()
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    provider = InMemoryProvider(access_token_ttl)
    # Strings on purpose, as in mcp_sdk_server.build_server: an AnyHttpUrl object of a path-less issuer would
    # gain a trailing slash.
    server = MCPServer(
        "shipped-sdk",
        auth_server_provider=provider,
        auth=AuthSettings(
            issuer_url=cast(AnyHttpUrl, origin),
            resource_server_url=cast(AnyHttpUrl, f"{origin}/mcp"),
            required_scopes=[MCP_SCOPE],
            validate_token_resource=True,
            **_auth_options(),  # type: ignore[arg-type]
        ),
    )
    _add_tool(server)
    app = server.streamable_http_app(host="127.0.0.1")
    with serve_asgi(app, sock=sock, lifespan="on", name="the MCP SDK server with its AS", startup_timeout=15):
        yield _shipped("sdk-same-origin", f"{origin}/mcp", origin, access_token_ttl, provider)


@contextmanager
def run_sdk_separate_as(access_token_ttl: float = 300) -> Iterator[ShippedServer]:
    """``create_auth_routes`` in an authorization server of its own, and an MCP server (the SDK's resource server)
    on another origin, validating tokens by introspection at it."""
    with ExitStack() as stack:
        sock = reserve_loopback_port()
        issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
        provider = InMemoryProvider(access_token_ttl)

        async def introspect(request: Request) -> JSONResponse:
            form = await request.form()
            return JSONResponse(provider.introspect(str(form.get("token", ""))))

        # AuthSettings parses the issuer keeping its empty path (a bare AnyHttpUrl would add a trailing slash).
        settings = AuthSettings(issuer_url=cast(AnyHttpUrl, issuer), resource_server_url=None, **_auth_options())  # type: ignore[arg-type]
        routes = create_auth_routes(
            provider, settings.issuer_url, None, settings.client_registration_options, settings.revocation_options
        )
        app = Starlette(routes=[*routes, Route("/introspect", introspect, methods=["POST"])])
        stack.enter_context(serve_asgi(app, sock=sock, name="the MCP SDK authorization server", startup_timeout=15))
        mcp = stack.enter_context(serve_mcp_server(issuer, f"{issuer}/introspect"))
        yield _shipped("sdk-separate-as", mcp.url, issuer, access_token_ttl, provider)


def _add_tool(server: MCPServer) -> None:
    @server.tool(name=ADD_TOOL)
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b
