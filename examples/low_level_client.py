"""``MCPOAuthClient``: the authorization flow one step at a time (discovery, registration, authorization,
refresh, revocation). Nothing is stored: this is for learning and for debugging a server.

    python examples/low_level_client.py                 # embedded fake MCP server, no network
    python examples/low_level_client.py SERVER_URL      # a real MCP server (opens your browser)
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from mcp_oauth_auth import MCPOAuthClient, OAuthError


async def walk_through(server_url: str, **options: Any) -> None:
    client = MCPOAuthClient(server_url, **options)

    await client.discover_authorization_server()
    print(f"issuer:                 {client.issuer}")
    print(f"authorization endpoint: {client.authorization_url}")
    print(f"token endpoint:         {client.token_url}")
    print(f"registration endpoint:  {client.registration_endpoint}")
    print(f"scopes supported:       {client.scopes_supported}")
    print(f"PKCE methods:           {client.code_challenge_methods_supported}")

    if client.registration_endpoint:
        registration = await client.register_client(client_name="mcp-oauth-auth low-level example")
        print(f"registered client_id:   {registration['client_id']}")

    tokens = await client.authorize()
    print(f"authorized:             {tokens!r}")

    if tokens.refresh_token:
        refreshed = await client.refresh_token(tokens.refresh_token)
        print(f"refreshed:              new access token {refreshed.access_token != tokens.access_token}")
        tokens = refreshed

    if client.revocation_endpoint:
        try:
            if tokens.refresh_token:
                await client.revoke_token(tokens.refresh_token, "refresh_token")
            await client.revoke_token(tokens.access_token, "access_token")
            print("revoked:                refresh and access token")
        except OAuthError as exc:
            print(f"revocation failed:      {exc}")


@contextlib.contextmanager
def server_and_options() -> Iterator[tuple[str, dict[str, Any]]]:
    if len(sys.argv) > 1:
        yield sys.argv[1], {}
        return
    from mcp_oauth_auth.testing import serve_stack

    with serve_stack() as stack:
        yield stack.server_url, {"authorizer": stack.authorizer}


def main() -> int:
    with server_and_options() as (server_url, options):
        asyncio.run(walk_through(server_url, **options))
    print("OK: step-by-step flow complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
