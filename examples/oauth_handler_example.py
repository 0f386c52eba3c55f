"""The high-level API known from chuk-mcp-client-oauth: ``OAuthHandler`` with named servers.

    python examples/oauth_handler_example.py                       # embedded fake MCP server, no network
    python examples/oauth_handler_example.py SERVER_URL [NAME]     # a real MCP server (browser once, then stored)

Shows: logging in (cached -> refreshed -> new authorization), ready-made headers, a request through the
handler, and logging out with token revocation.
"""

from __future__ import annotations

import asyncio
import sys

from mcp_oauth_auth import OAuthHandler, TokenManager, TokenStoreBackend

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


async def tour(handler: OAuthHandler, name: str, server_url: str) -> bool:
    tokens = await handler.ensure_authenticated_mcp(name, server_url)
    print(f"logged in to {name!r}: {tokens!r}")  # OAuthTokens' repr redacts the tokens

    again = await handler.ensure_authenticated_mcp(name, server_url)
    print(f"second call reused the stored token: {again.access_token == tokens.access_token}")

    headers = await handler.prepare_headers_for_mcp_server(name, server_url, extra_headers={"X-Client": "example"})
    print(f"headers ready: {sorted(headers)}")
    print(f"get_authorization_header({name!r}) is set: {handler.get_authorization_header(name) is not None}")

    response = await handler.authenticated_request(
        name,
        server_url,
        server_url,
        method="POST",
        json=INITIALIZE,
        headers=HEADERS,
    )
    print(f"initialize through the handler -> HTTP {response.status_code}")

    outcomes = await handler.logout(name, server_url)
    for outcome in outcomes:
        state = "revoked" if outcome.revoked else f"NOT revoked ({outcome.error})"
        print(f"logout: {outcome.token_type_hint} {state}")
    print(f"after logout a header is available: {handler.get_authorization_header(name) is not None}")
    return response.status_code < 400 and handler.get_authorization_header(name) is None


def main() -> int:
    if len(sys.argv) > 1:
        server_url = sys.argv[1]
        name = sys.argv[2] if len(sys.argv) > 2 else "example"
        ok = asyncio.run(tour(OAuthHandler(), name, server_url))
    else:
        from mcp_oauth_auth.testing import serve_stack

        with serve_stack() as stack:
            handler = OAuthHandler(TokenManager(backend=TokenStoreBackend.MEMORY), authorizer=stack.authorizer)
            ok = asyncio.run(tour(handler, "demo", stack.server_url))
            print(f"the fake server revoked {sum(r['revoked'] for r in stack.revocation_requests)} token(s)")
    if not ok:
        print("FAILED")
        return 1
    print("OK: high-level handler tour complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
