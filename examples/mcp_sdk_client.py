"""The official MCP Python SDK (``mcp`` 2.x) as the client, with ``MCPOAuth`` on its ``httpx2.AsyncClient``.

    python examples/mcp_sdk_client.py                 # starts a real SDK server locally, no network needed
    python examples/mcp_sdk_client.py SERVER_URL      # lists the tools of a real MCP server (browser once)

Without a URL this starts two servers on 127.0.0.1:

* an MCP server built with the SDK (``MCPServer``, streamable HTTP) with one tool, ``add``. It accepts a bearer
  token only when the authorization server's introspection endpoint (RFC 7662) says it is active and was issued
  for this server, and publishes protected resource metadata naming that authorization server;
* the fake authorization server of ``mcp_oauth_auth.testing``, which approves every request (headless consent).

The client is the SDK's own: ``streamable_http_client`` and ``ClientSession``. ``MCPOAuth`` answers the SDK
server's 401 with discovery, registration, authorization and the code exchange, inline.

Needs Python 3.11+ and ``pip install "mcp-oauth-auth[httpx2,testing]" mcp``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore


async def use_server(server_url: str, auth: MCPOAuth) -> list[str]:
    async with (
        httpx2.AsyncClient(auth=auth, timeout=60) as http,
        streamable_http_client(server_url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = [tool.name for tool in (await session.list_tools()).tools]
        print(f"tools: {tools}")
        if "add" in tools:
            result = await session.call_tool("add", {"a": 19, "b": 23})
            print(f"add(19, 23) = {''.join(getattr(block, 'text', '') for block in result.content)}")
        return tools


class IntrospectionVerifier:
    """The SDK's TokenVerifier: ask the authorization server whether the token is active and meant for us."""

    def __init__(self, introspection_endpoint: str, resource: str) -> None:
        self.introspection_endpoint = introspection_endpoint
        self.resource = resource

    async def verify_token(self, token: str) -> Any:
        from mcp.server.auth.provider import AccessToken

        async with httpx.AsyncClient() as client:
            answer = (await client.post(self.introspection_endpoint, data={"token": token})).json()
        audiences = answer.get("aud") if isinstance(answer.get("aud"), list) else [answer.get("aud")]
        if not answer.get("active") or self.resource not in audiences:
            return None
        return AccessToken(
            token=token,
            client_id=str(answer.get("client_id")),
            scopes=str(answer.get("scope", "")).split(),
            expires_at=answer.get("exp"),
            resource=self.resource,
        )


@contextlib.contextmanager
def sdk_server(issuer: str, introspection_endpoint: str) -> Iterator[str]:
    """Run an SDK MCP server on a free loopback port; yields its MCP endpoint URL."""
    from mcp.server.auth.settings import AuthSettings
    from mcp.server.mcpserver import MCPServer

    from mcp_oauth_auth.testing import reserve_loopback_port, serve_asgi

    listener = reserve_loopback_port()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/mcp"
    server = MCPServer(
        "calculator",
        token_verifier=IntrospectionVerifier(introspection_endpoint, url),
        auth=AuthSettings(
            issuer_url=issuer, resource_server_url=url, required_scopes=["mcp:read"], validate_token_resource=True
        ),
        log_level="WARNING",
    )

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    app = server.streamable_http_app(host="127.0.0.1")
    with serve_asgi(app, sock=listener, lifespan="on", name="the MCP SDK server"):
        yield url


def main() -> int:
    if len(sys.argv) > 1:
        tools = anyio.run(use_server, sys.argv[1], MCPOAuth(sys.argv[1]))
        print(f"OK: connected with the MCP SDK, {len(tools)} tool(s)")
        return 0
    from mcp_oauth_auth.testing import serve_stack

    with serve_stack() as authorization_server:
        with sdk_server(authorization_server.issuer, authorization_server.introspection_endpoint) as server_url:
            # The fake authorization server issues tokens for the SDK server too.
            authorization_server.config.extra_resources = [server_url]
            auth = MCPOAuth(server_url, store=MemoryTokenStore(), authorizer=authorization_server.authorizer)
            tools = anyio.run(use_server, server_url, auth)
        authorizations = authorization_server.count("authorize")
    print(f"authorizations: {authorizations}")
    if tools != ["add"] or authorizations != 1:
        print("FAILED")
        return 1
    print("OK: MCP SDK client session through MCPOAuth")
    return 0


if __name__ == "__main__":
    sys.exit(main())
