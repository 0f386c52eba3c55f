"""A real MCP server from whichever generation of the official ``mcp`` SDK is installed, run by uvicorn on loopback.

* mcp 2.x: ``mcp.server.mcpserver.MCPServer`` (its client transports use ``httpx2``);
* mcp 1.x: ``mcp.server.fastmcp.FastMCP`` (its client transports use ``httpx``).

The generation is found by feature detection (2.x removed ``mcp.server.fastmcp``), not by version strings. Both
generations build the same apps with the same defaults, which is all this module relies on:
``streamable_http_app()`` serves ``/mcp`` and ``sse_app()`` serves ``GET /sse`` with its messages at
``POST /messages/``. With ``auth=AuthSettings(...)`` and a token verifier, the SDK's own middleware answers requests
without a valid bearer token with 401 and ``WWW-Authenticate: Bearer ..., resource_metadata="..."``, and serves the
protected resource metadata (RFC 9728) naming the authorization server.

Tokens are checked by RFC 7662 introspection at an authorization server (the fake one of
``mcp_oauth_auth.testing``), through plain ``httpx``, which every installation of this package has.

The resource identifier differs per transport, as a real deployment's would: the streamable HTTP server is the
resource ``http://127.0.0.1:<port>/mcp``; the SSE server's messages are not below its ``/sse`` endpoint, so its
resource is the origin ``http://127.0.0.1:<port>/`` (metadata at ``/.well-known/oauth-protected-resource``).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings

from mcp_oauth_auth.testing import reserve_loopback_port, serve_asgi

try:  # mcp 2.x
    from mcp.server.mcpserver import MCPServer as SDKServer

    SDK_GENERATION = 2
except ImportError:  # mcp 1.x (in 2.x, importing mcp.server.fastmcp raises ModuleNotFoundError, an ImportError)
    from mcp.server.fastmcp import FastMCP as SDKServer  # type: ignore[no-redef]

    SDK_GENERATION = 1

__all__ = ["SDK_GENERATION", "Exchange", "IntrospectingVerifier", "RunningSDKServer", "Transport", "serve_sdk_server"]

Transport = Literal["streamable_http", "sse"]

#: The endpoint a client connects to, per transport (the SDK's defaults in both generations).
ENDPOINT_PATHS: dict[Transport, str] = {"streamable_http": "/mcp", "sse": "/sse"}
#: The protected resource, per transport (a path on the server's origin).
RESOURCE_PATHS: dict[Transport, str] = {"streamable_http": "/mcp", "sse": "/"}
REQUIRED_SCOPES = ["mcp:read"]
#: Built once: a new client's default TLS context costs tens of milliseconds, and the verifier makes a client per
#: token check.
_TLS = ssl.create_default_context()


@dataclass
class IntrospectingVerifier:
    """The SDK's ``TokenVerifier`` protocol: a token is valid when the authorization server's introspection says it is
    active and issued for ``resource`` (its ``aud``)."""

    introspection_endpoint: str
    resource: str
    #: One verdict per token checked, in order.
    verdicts: list[bool] = field(default_factory=list)

    async def verify_token(self, token: str) -> AccessToken | None:
        async with httpx.AsyncClient(timeout=10, verify=_TLS) as client:
            response = await client.post(self.introspection_endpoint, data={"token": token})
        response.raise_for_status()
        claims = response.json()
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        matching = [value for value in audiences if isinstance(value, str) and _same_resource(value, self.resource)]
        active = claims.get("active") is True and bool(matching)
        self.verdicts.append(active)
        if not active:
            return None
        return AccessToken(
            token=token,
            client_id=str(claims["client_id"]),
            scopes=str(claims.get("scope", "")).split(),
            expires_at=claims.get("exp"),
            resource=matching[0],
            subject=claims.get("sub"),
            claims={"iss": claims.get("iss")},
        )


def _same_resource(left: str, right: str) -> bool:
    return left.rstrip("/") == right.rstrip("/")


@dataclass
class Exchange:
    """One HTTP request the SDK server answered."""

    method: str
    path: str
    authorization: str | None
    status: int | None = None
    www_authenticate: str | None = None


def build_server(issuer: str, resource: str, verifier: IntrospectingVerifier) -> Any:
    """The SDK server with one tool, ``add``, behind bearer authentication."""
    settings: dict[str, Any] = {
        "issuer_url": issuer,
        "resource_server_url": resource,
        "required_scopes": REQUIRED_SCOPES,
    }
    if "validate_token_resource" in AuthSettings.model_fields:  # newer SDKs check the token's resource themselves
        settings["validate_token_resource"] = True
    server = SDKServer("sdk-generations", token_verifier=verifier, auth=AuthSettings(**settings))

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    return server


ASGIApp = Any


def _recording(app: ASGIApp, exchanges: list[Exchange]) -> ASGIApp:
    """Wrap an ASGI app to record each HTTP request with the status and challenge of its response."""

    async def recorder(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        exchange = Exchange(scope["method"], scope["path"], headers.get("authorization"))
        exchanges.append(exchange)

        async def recording_send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                for key, value in message.get("headers", []):
                    if key.decode("latin-1").lower() == "www-authenticate":
                        exchange.www_authenticate = value.decode("latin-1")
            await send(message)

        await app(scope, receive, recording_send)

    return recorder


@dataclass
class RunningSDKServer:
    transport: Transport
    #: Where the client connects: ``/mcp`` (streamable HTTP) or ``/sse``.
    url: str
    #: The protected resource the server's metadata names (and the tokens' audience).
    resource: str
    #: The protected resource metadata URL the 401 challenge names.
    resource_metadata_url: str
    verifier: IntrospectingVerifier
    exchanges: list[Exchange]


@contextmanager
def serve_sdk_server(transport: Transport, issuer: str, introspection_endpoint: str) -> Iterator[RunningSDKServer]:
    """Serve the SDK's app for ``transport`` on a free loopback port for the duration of the ``with`` block."""
    sock = reserve_loopback_port()
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    resource_path = RESOURCE_PATHS[transport]
    resource = f"{origin}{resource_path}"
    verifier = IntrospectingVerifier(introspection_endpoint, resource)
    server = build_server(issuer, resource, verifier)
    app = server.streamable_http_app() if transport == "streamable_http" else server.sse_app()
    exchanges: list[Exchange] = []
    with serve_asgi(
        _recording(app, exchanges),
        sock=sock,
        lifespan="on",
        name=f"the MCP SDK {SDK_GENERATION}.x server",
        startup_timeout=15,
        shutdown_timeout=2,
    ):
        yield RunningSDKServer(
            transport=transport,
            url=f"{origin}{ENDPOINT_PATHS[transport]}",
            resource=resource,
            resource_metadata_url=f"{origin}/.well-known/oauth-protected-resource{resource_path.rstrip('/')}",
            verifier=verifier,
            exchanges=exchanges,
        )
