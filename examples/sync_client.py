"""``MCPOAuth`` on a plain synchronous ``httpx.Client``, shared by several threads.

python examples/sync_client.py                 # embedded fake MCP server, no network
python examples/sync_client.py SERVER_URL      # a real MCP server (opens your browser once)
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import httpx

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


def run(server_url: str, auth: MCPOAuth) -> list[int]:
    with httpx.Client(auth=auth, timeout=60) as client, ThreadPoolExecutor(max_workers=8) as pool:
        # Eight threads start at once without a token: they share one authorization.
        statuses = list(
            pool.map(lambda _: client.post(server_url, json=INITIALIZE, headers=HEADERS).status_code, range(8))
        )
    print(f"8 concurrent initialize requests from 8 threads -> {statuses}")
    return statuses


def main() -> int:
    if len(sys.argv) > 1:
        statuses = run(sys.argv[1], MCPOAuth(sys.argv[1]))
    else:
        from mcp_oauth_auth.testing import serve_stack

        with serve_stack() as stack:
            auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), authorizer=stack.authorizer)
            statuses = run(stack.server_url, auth)
            print(f"authorizations: {stack.count('authorize')}, token requests: {stack.count('token')}")
    if any(status >= 400 for status in statuses):
        print("FAILED")
        return 1
    print("OK: synchronous client authenticated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
