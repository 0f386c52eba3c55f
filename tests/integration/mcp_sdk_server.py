"""A real MCP server built with the official ``mcp`` SDK, protected by bearer tokens that it validates by RFC 7662
introspection at an authorization server. Run by uvicorn on 127.0.0.1 in a background thread.

The SDK publishes the protected resource metadata (RFC 9728), answers 401 with ``resource_metadata``, and accepts
only tokens whose audience is this server (RFC 8707, ``validate_token_resource``). Optionally one tool needs an
extra scope: calling it with a token that lacks the scope is answered 403 ``insufficient_scope`` naming the scopes
needed (the MCP specification's step-up challenge), before the request reaches the tool.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import httpx2
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, RequireAuthMiddleware
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_oauth_auth.testing import reserve_loopback_port, serve_asgi

#: The scope every request needs (published as the resource's ``scopes_supported``).
READ_SCOPE = "mcp:read"
#: The name of the tool that needs ``admin_scope`` when one is given to :func:`serve_mcp_server`.
ADMIN_TOOL = "admin_stats"


@dataclass
class IntrospectingVerifier:
    """Accepts a token only when the authorization server says it is active and issued for ``resource``.

    ``client_auth`` (client ID, secret) authenticates the introspection requests with HTTP Basic, as authorization
    servers require of resource servers (RFC 7662 §2.1).
    """

    introspection_endpoint: str
    resource: str
    client_auth: tuple[str, str] | None = None
    checked: list[bool] = field(default_factory=list)

    async def verify_token(self, token: str) -> AccessToken | None:
        auth = httpx2.BasicAuth(*self.client_auth) if self.client_auth else None
        async with httpx2.AsyncClient() as client:
            response = await client.post(self.introspection_endpoint, data={"token": token}, auth=auth)
        info = response.json() if response.status_code == 200 else {}
        audiences = info.get("aud")
        audiences = audiences if isinstance(audiences, list) else [audiences]
        active = bool(info.get("active")) and self.resource in audiences
        self.checked.append(active)
        if not active:
            return None
        subject = info.get("sub")
        return AccessToken(
            token=token,
            client_id=str(info.get("client_id")),
            scopes=str(info.get("scope", "")).split(),
            expires_at=info.get("exp"),
            resource=self.resource,
            subject=subject if isinstance(subject, str) else None,
        )


class ToolScopeGate:
    """Answers 403 ``insufficient_scope`` to a ``tools/call`` of a tool whose scope the token lacks.

    Sits behind the SDK's bearer authentication (the request's ``user`` is the authenticated token), reads the
    JSON-RPC body and hands it on unchanged when the call is allowed.
    """

    def __init__(self, app: ASGIApp, tool_scopes: dict[str, str], resource_metadata_url: str) -> None:
        self.app = app
        self.tool_scopes = tool_scopes
        self.resource_metadata_url = resource_metadata_url
        #: The tools refused, in order (for the tests).
        self.refused: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        user = scope.get("user")
        granted = set(user.scopes) if isinstance(user, AuthenticatedUser) else set()
        for tool in _called_tools(body):
            needed = self.tool_scopes.get(tool)
            if needed is not None and needed not in granted:
                self.refused.append(tool)
                await self._insufficient_scope(send, tool, [READ_SCOPE, needed])
                return

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    async def _insufficient_scope(self, send: Send, tool: str, scopes: list[str]) -> None:
        description = f"the tool {tool} needs the scope {scopes[-1]}"
        challenge = (
            f'Bearer error="insufficient_scope", scope="{" ".join(scopes)}", '
            f'resource_metadata="{self.resource_metadata_url}", error_description="{description}"'
        )
        payload = json.dumps({"error": "insufficient_scope", "error_description": description}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"www-authenticate", challenge.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _called_tools(body: bytes) -> list[str]:
    """The names of the tools a JSON-RPC message (or batch) calls."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        return []
    messages = document if isinstance(document, list) else [document]
    names = []
    for message in messages:
        if isinstance(message, dict) and message.get("method") == "tools/call":
            params = message.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            if isinstance(name, str):
                names.append(name)
    return names


def build_server(
    issuer: str, resource: str, verifier: IntrospectingVerifier, *, admin_scope: str | None = None
) -> MCPServer:
    # Strings on purpose: pydantic keeps a string as written, whereas an AnyHttpUrl object of an issuer without a
    # path gains a trailing slash ("http://127.0.0.1:9000/"), which the protected resource metadata would then name
    # instead of the real issuer (and clients compare issuers exactly, RFC 8414 §3.3).
    server = MCPServer(
        "protected-demo",
        token_verifier=verifier,
        auth=AuthSettings(
            issuer_url=cast(AnyHttpUrl, issuer),
            resource_server_url=cast(AnyHttpUrl, resource),
            required_scopes=[READ_SCOPE],
            validate_token_resource=True,
        ),
    )

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    if admin_scope is not None:

        @server.tool(name=ADMIN_TOOL)
        def admin_stats() -> str:
            """Server statistics; needs the administration scope."""
            return f"{len(verifier.checked)} tokens checked"

    return server


def _gate_tools(app: Starlette, path: str, tool_scopes: dict[str, str], resource: str) -> ToolScopeGate:
    """Put a :class:`ToolScopeGate` behind the SDK's ``RequireAuthMiddleware`` of the MCP endpoint."""
    for route in app.routes:
        if isinstance(route, Route) and route.path == path and isinstance(route.app, RequireAuthMiddleware):
            metadata_url = str(build_resource_metadata_url(AnyHttpUrl(resource)))
            gate = ToolScopeGate(route.app.app, tool_scopes, metadata_url)
            route.app.app = gate
            return gate
    raise RuntimeError(f"the SDK app has no authenticated route {path}")


@dataclass
class RunningMCPServer:
    url: str
    verifier: IntrospectingVerifier
    gate: ToolScopeGate | None = None


@contextmanager
def serve_mcp_server(
    issuer: str,
    introspection_endpoint: str,
    *,
    sock: socket.socket | None = None,
    introspection_client: tuple[str, str] | None = None,
    admin_scope: str | None = None,
) -> Iterator[RunningMCPServer]:
    """Run the SDK server on a free loopback port; its MCP endpoint is ``http://127.0.0.1:<port>/mcp``.

    ``sock``: a socket from :func:`~mcp_oauth_auth.testing.reserve_loopback_port` to serve on (closed on exit);
    ``introspection_client``: the server's credentials for introspection; ``admin_scope``: adds the tool
    ``admin_stats``, which needs it.
    """
    sock = sock or reserve_loopback_port()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    verifier = IntrospectingVerifier(introspection_endpoint, url, client_auth=introspection_client)
    app = build_server(issuer, url, verifier, admin_scope=admin_scope).streamable_http_app(host="127.0.0.1")
    gate = _gate_tools(app, "/mcp", {ADMIN_TOOL: admin_scope}, url) if admin_scope is not None else None
    with serve_asgi(app, sock=sock, lifespan="on", name="the MCP SDK server", startup_timeout=15):
        yield RunningMCPServer(url=url, verifier=verifier, gate=gate)
