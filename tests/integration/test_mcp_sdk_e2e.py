"""End to end through the official MCP SDK: its streamable HTTP server (bearer auth, protected resource metadata)
on loopback, and its client transport on an ``httpx2.AsyncClient(auth=MCPOAuth(...))``.

The authorization server is the fake stack served over real loopback HTTP; the person's consent is given by the
headless authorizer, over HTTP too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcp_oauth_auth import HeadlessAuthorizer, LoopbackBrowserAuthorizer, MCPOAuth, MemoryTokenStore
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig, serve_stack

from .mcp_sdk_server import RunningMCPServer, serve_mcp_server

pytestmark = pytest.mark.integration


@pytest.fixture
def authorization_server() -> Iterator[FakeMCPStack]:
    with serve_stack(FakeStackConfig()) as stack:
        yield stack


@pytest.fixture
def mcp_server(authorization_server: FakeMCPStack) -> Iterator[RunningMCPServer]:
    with serve_mcp_server(authorization_server.issuer, authorization_server.introspection_endpoint) as server:
        authorization_server.config.extra_resources = [server.url]
        yield server


async def call_add(auth: MCPOAuth, url: str, a: int, b: int) -> tuple[list[str], str]:
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        result = await session.call_tool("add", {"a": a, "b": b})
        text = "".join(getattr(block, "text", "") for block in result.content)
        return [tool.name for tool in tools.tools], text


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sdk_client_lists_and_calls_a_tool(
    authorization_server: FakeMCPStack, mcp_server: RunningMCPServer, backend: str
) -> None:
    auth = MCPOAuth(mcp_server.url, authorizer=HeadlessAuthorizer())
    names, text = anyio.run(call_add, auth, mcp_server.url, 2, 3, backend=backend)
    assert names == ["add"]
    assert text == "5"
    assert authorization_server.count("authorize") == 1
    assert authorization_server.grants_used() == ["authorization_code"]
    [authorization] = authorization_server.authorization_requests
    assert authorization["resource"] == mcp_server.url


def test_sdk_client_through_expiry_and_refresh(
    authorization_server: FakeMCPStack, mcp_server: RunningMCPServer
) -> None:
    store = MemoryTokenStore()
    auth = MCPOAuth(mcp_server.url, store=store, authorizer=HeadlessAuthorizer())
    assert anyio.run(call_add, auth, mcp_server.url, 1, 1)[1] == "2"

    # The authorization server now considers the token expired: the MCP server answers 401 and the client
    # refreshes inline, without asking the person again.
    start = time.time()
    authorization_server.clock = lambda: start + 7200
    assert anyio.run(call_add, auth, mcp_server.url, 2, 2)[1] == "4"
    assert authorization_server.grants_used() == ["authorization_code", "refresh_token"]
    assert False in mcp_server.verifier.checked  # the server really rejected the expired token

    # A new process with the same store starts authenticated.
    restarted = MCPOAuth(mcp_server.url, store=store, authorizer=lambda url: pytest.fail("asked again"))
    assert anyio.run(call_add, restarted, mcp_server.url, 3, 3)[1] == "6"
    assert authorization_server.count("authorize") == 1


def test_default_loopback_browser_authorizer(authorization_server: FakeMCPStack, mcp_server: RunningMCPServer) -> None:
    """The default authorizer for real: a loopback callback server, and a "browser" that follows the
    authorization server's redirect to it over HTTP."""
    opened: list[str] = []

    def browser(url: str) -> bool:
        opened.append(url)
        threading.Thread(target=httpx.get, args=(url,), kwargs={"follow_redirects": True}, daemon=True).start()
        return True

    auth = MCPOAuth(
        mcp_server.url, authorizer=LoopbackBrowserAuthorizer(open_browser=browser, on_prompt=lambda url: None)
    )
    assert anyio.run(call_add, auth, mcp_server.url, 20, 22)[1] == "42"
    assert len(opened) == 1
    [registration] = authorization_server.registration_requests
    [redirect_uri] = registration["redirect_uris"]
    assert redirect_uri.startswith("http://127.0.0.1:")
    assert authorization_server.authorization_requests[0]["redirect_uri"] == redirect_uri
