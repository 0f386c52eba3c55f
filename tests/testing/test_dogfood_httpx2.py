"""The plugin's fixtures with httpx2 clients (Python 3.11+; skipped with the reason on 3.10)."""

from __future__ import annotations

import pytest

from mcp_oauth_auth import MCPOAuth
from mcp_oauth_auth.testing import FakeMCPStack, StackClock, assert_counts, assert_grants, assert_no_violations

from ..httpx2_support import skip_module_without_httpx2

skip_module_without_httpx2()
import httpx2  # noqa: E402


def test_sync_client_with_the_httpx2_transport(
    mcp_oauth_stack: FakeMCPStack,
    mcp_oauth_auth: MCPOAuth,
    mcp_oauth_httpx2_transport: httpx2.MockTransport,
    mcp_oauth_clock: StackClock,
) -> None:
    with httpx2.Client(auth=mcp_oauth_auth, transport=mcp_oauth_httpx2_transport) as client:
        assert client.post(mcp_oauth_stack.server_url, json={"jsonrpc": "2.0"}).status_code == 200
        mcp_oauth_clock.advance(7200)
        assert client.get(mcp_oauth_stack.server_url).status_code == 200
    assert_grants(mcp_oauth_stack, ["authorization_code", "refresh_token"])
    assert_no_violations(mcp_oauth_stack)


@pytest.mark.anyio
@pytest.mark.mcp_oauth_stack(required_scopes_by_path={"/mcp/admin": ["admin"]})
async def test_async_client_with_the_httpx2_transport(
    mcp_oauth_stack: FakeMCPStack, mcp_oauth_auth: MCPOAuth, mcp_oauth_httpx2_transport: httpx2.MockTransport
) -> None:
    async with httpx2.AsyncClient(auth=mcp_oauth_auth, transport=mcp_oauth_httpx2_transport) as http:
        assert (await http.get(mcp_oauth_stack.server_url)).status_code == 200
        assert (await http.get(f"{mcp_oauth_stack.server_url}/admin")).status_code == 200
    assert_counts(mcp_oauth_stack, authorize=2, register=1)


@pytest.mark.anyio
async def test_async_client_against_the_loopback_server(
    mcp_oauth_server: FakeMCPStack, mcp_oauth_auth: MCPOAuth
) -> None:
    async with httpx2.AsyncClient(auth=mcp_oauth_auth) as http:
        assert (await http.get(mcp_oauth_server.server_url)).status_code == 200
    assert_grants(mcp_oauth_server, ["authorization_code"])
