"""A real MCP server built with the official ``mcp`` SDK, protected by bearer tokens that it validates by RFC 7662
introspection at an authorization server. Run by uvicorn on 127.0.0.1 in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx2
import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer


@dataclass
class IntrospectingVerifier:
    """Accepts a token only when the authorization server says it is active and issued for ``resource``."""

    introspection_endpoint: str
    resource: str
    checked: list[bool] = field(default_factory=list)

    async def verify_token(self, token: str) -> AccessToken | None:
        async with httpx2.AsyncClient() as client:
            response = await client.post(self.introspection_endpoint, data={"token": token})
        info = response.json()
        audiences = info.get("aud")
        audiences = audiences if isinstance(audiences, list) else [audiences]
        active = bool(info.get("active")) and self.resource in audiences
        self.checked.append(active)
        if not active:
            return None
        return AccessToken(
            token=token,
            client_id=str(info.get("client_id")),
            scopes=str(info.get("scope", "")).split(),
            expires_at=info.get("exp"),
            resource=self.resource,
        )


def build_server(issuer: str, resource: str, verifier: IntrospectingVerifier) -> MCPServer:
    server = MCPServer(
        "protected-demo",
        token_verifier=verifier,
        auth=AuthSettings(
            issuer_url=issuer,
            resource_server_url=resource,
            required_scopes=["mcp:read"],
            validate_token_resource=True,
        ),
    )

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    return server


@dataclass
class RunningMCPServer:
    url: str
    verifier: IntrospectingVerifier


@contextmanager
def serve_mcp_server(issuer: str, introspection_endpoint: str) -> Iterator[RunningMCPServer]:
    """Run the SDK server on a free loopback port; its MCP endpoint is ``http://127.0.0.1:<port>/mcp``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mcp"
    verifier = IntrospectingVerifier(introspection_endpoint, url)
    app = build_server(issuer, url, verifier).streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the MCP SDK server did not start")
        time.sleep(0.02)
    try:
        yield RunningMCPServer(url=url, verifier=verifier)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
