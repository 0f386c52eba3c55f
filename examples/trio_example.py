"""``MCPOAuth`` in a trio program: the same auth object, with ``httpx.AsyncClient`` running on trio.

    python examples/trio_example.py                 # embedded fake MCP server, no network
    python examples/trio_example.py SERVER_URL      # a real MCP server (opens your browser once)

Needs ``pip install trio``.
"""

from __future__ import annotations

import sys

import httpx
import trio

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "mcp-oauth-auth example", "version": "1.0"},
    },
}
HEADERS = {"Accept": "application/json, text/event-stream"}


async def run(server_url: str, auth: MCPOAuth) -> list[int]:
    statuses: list[int] = []
    async with httpx.AsyncClient(auth=auth, timeout=60) as client:

        async def initialize() -> None:
            statuses.append((await client.post(server_url, json=INITIALIZE, headers=HEADERS)).status_code)

        # Ten tasks start at once without a token: they share one authorization.
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(initialize)
    print(f"10 concurrent initialize requests on trio -> {sorted(statuses)}")
    return statuses


def main() -> int:
    if len(sys.argv) > 1:
        statuses = trio.run(run, sys.argv[1], MCPOAuth(sys.argv[1]))
    else:
        from mcp_oauth_auth.testing import serve_stack

        with serve_stack() as stack:
            auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), authorizer=stack.authorizer)
            statuses = trio.run(run, stack.server_url, auth)
            print(f"authorizations: {stack.count('authorize')}")
    if len(statuses) != 10 or any(status >= 400 for status in statuses):
        print("FAILED")
        return 1
    print("OK: trio program authenticated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
