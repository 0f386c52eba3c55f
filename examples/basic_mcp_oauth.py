"""The core of mcp-oauth-auth: ``MCPOAuth`` as the auth of an ``httpx.AsyncClient``.

    python examples/basic_mcp_oauth.py                 # against an embedded fake MCP server, no network needed
    python examples/basic_mcp_oauth.py SERVER_URL      # against a real MCP server (opens your browser once)

The first request meets a 401; MCPOAuth then discovers the authorization server, registers this client, has
you approve, exchanges the code and sends the request again with the token — inside the one ``post`` call.
"""

from __future__ import annotations

import asyncio
import sys

import httpx

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "mcp-oauth-auth basic example", "version": "1.0"},
    },
}


async def initialize(server_url: str, auth: MCPOAuth) -> int:
    async with httpx.AsyncClient(auth=auth, timeout=60) as client:
        response = await client.post(
            server_url, json=INITIALIZE, headers={"Accept": "application/json, text/event-stream"}
        )
    print(f"POST {server_url} -> HTTP {response.status_code}")
    record = auth.record
    if record is not None:
        print(f"authorization server: {record.issuer}, client_id: {record.client.client_id}")
        print(f"tokens: {record.tokens!r}")  # a repr never shows a secret
    return response.status_code


def main() -> int:
    if len(sys.argv) > 1:
        # Your browser, and the default store (OS keyring, else encrypted files under ~/.mcp_oauth).
        server_url = sys.argv[1]
        status = asyncio.run(initialize(server_url, MCPOAuth(server_url)))
    else:
        from mcp_oauth_auth.testing import serve_stack

        with serve_stack() as stack:
            # Consent is given in-process by the fake server itself; nothing is stored beyond this process.
            auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), authorizer=stack.authorizer)
            status = asyncio.run(initialize(stack.server_url, auth))
            print(f"the fake authorization server saw {stack.count('authorize')} authorization(s)")
    if status >= 400:
        print(f"FAILED: HTTP {status}")
        return 1
    print("OK: authenticated MCP request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
