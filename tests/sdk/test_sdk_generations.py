"""The drop-in claim, for whichever generation of the official ``mcp`` SDK is installed (``nox -s mcp1`` pins 1.x,
``nox -s mcp2`` pins 2.x; ``nox -s tests`` runs it with the dev pin).

The SDK's own server (streamable HTTP, and SSE) with its bearer auth and protected resource metadata runs on
loopback; the SDK's own client transports and ``ClientSession`` talk to it with ``auth=MCPOAuth(...)`` and nothing
else: in 1.x that auth object is used as an ``httpx.Auth``, in 2.x as an ``httpx2.Auth``. The authorization server
is the strict fake of ``mcp_oauth_auth.testing`` on loopback; the SDK server checks tokens by introspection there.

The fake's issuer has a path (``/oauth``, as with Keycloak realms or Entra tenants). With a path-less issuer the
1.x case fails today: mcp 1.x publishes ``authorization_servers`` through pydantic's ``AnyHttpUrl``, which renders
``http://host:port`` as ``http://host:port/``, and MCPOAuth compares the metadata's ``issuer`` with that string
exactly (RFC 8414 §3.3), so it refuses the authorization server's metadata with ``IssuerMismatchError``.
"""

from __future__ import annotations

import importlib
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client import streamable_http
from mcp.client.sse import sse_client
from mcp.shared._httpx_utils import create_mcp_http_client

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig, serve_stack

from .sdk_server import SDK_GENERATION, RunningSDKServer, Transport, serve_sdk_server

pytestmark = pytest.mark.integration

ISSUER_PATH = "/oauth"

#: How the client reaches the server: (client entry point, server transport). Every generation has
#: ``streamable_http_client(url, http_client=...)`` (given the SDK's own client factory's client, with our auth) and
#: ``sse_client(url, auth=...)``; 1.x also has the deprecated ``streamablehttp_client(url, auth=...)``, still the
#: most common 1.x spelling.
CLIENTS: dict[str, Transport] = {"streamable_http_client": "streamable_http", "sse_client": "sse"}
if hasattr(streamable_http, "streamablehttp_client"):
    CLIENTS["streamablehttp_client"] = "streamable_http"


@asynccontextmanager
async def open_streams(client: str, url: str, auth: MCPOAuth) -> AsyncIterator[tuple[Any, Any]]:
    """The SDK client transport's (read, write) streams; 1.x streamable HTTP also yields a session id getter."""
    if client == "sse_client":
        async with sse_client(url, auth=auth) as streams:
            yield streams[0], streams[1]
    elif client == "streamablehttp_client":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            transport = streamable_http.streamablehttp_client(url, auth=auth)
        async with transport as streams:
            yield streams[0], streams[1]
    else:
        # The SDK's own factory: an httpx.AsyncClient in 1.x, an httpx2.AsyncClient in 2.x, which refuses an auth
        # object that is not an httpx2.Auth.
        async with (
            create_mcp_http_client(auth=auth) as http,
            streamable_http.streamable_http_client(url, http_client=http) as streams,
        ):
            yield streams[0], streams[1]


async def call_add(client: str, url: str, auth: MCPOAuth, a: int, b: int) -> tuple[list[str], str]:
    with anyio.fail_after(30):  # a transport that hangs on an unexpected 401 fails here rather than at the timeout
        async with open_streams(client, url, auth) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            result = await session.call_tool("add", {"a": a, "b": b})
    # 2.x renamed isError; read the old name only on 1.x (2.x warns when it is read).
    assert not (result.is_error if hasattr(result, "is_error") else result.isError), result
    return [tool.name for tool in tools.tools], "".join(getattr(block, "text", "") for block in result.content)


@pytest.fixture(params=list(CLIENTS))
def client(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def authorization_server() -> Iterator[FakeMCPStack]:
    with serve_stack(FakeStackConfig(issuer_path=ISSUER_PATH)) as stack:
        yield stack


@pytest.fixture
def mcp_server(authorization_server: FakeMCPStack, client: str) -> Iterator[RunningSDKServer]:
    stack = authorization_server
    with serve_sdk_server(CLIENTS[client], stack.issuer, stack.introspection_endpoint) as server:
        stack.config.extra_resources = [server.resource]  # the fake issues tokens for the SDK server too
        yield server


def new_auth(server: RunningSDKServer, stack: FakeMCPStack) -> MCPOAuth:
    # The SSE server's resource is its origin (its messages endpoint is not below /sse): a parent of the server URL,
    # which the client accepts only when told to (RFC 9728 §3.3 asks for the identical resource).
    return MCPOAuth(
        server.url,
        store=MemoryTokenStore(),
        authorizer=stack.authorizer,
        allow_parent_resource=server.transport == "sse",
    )


def test_mcpoauth_is_an_auth_of_the_sdk_http_library() -> None:
    """mcp 1.x builds ``httpx`` clients, mcp 2.x ``httpx2`` ones; either accepts MCPOAuth as its own kind of auth."""
    assert int(version("mcp").split(".")[0]) == SDK_GENERATION
    http = create_mcp_http_client()
    anyio.run(http.aclose)
    library = importlib.import_module(type(http).__module__.partition(".")[0])
    assert library.__name__ == ("httpx2" if SDK_GENERATION == 2 else "httpx")
    auth = MCPOAuth("http://127.0.0.1:9/mcp", store=MemoryTokenStore(), authorizer=lambda url: url)
    assert isinstance(auth, library.Auth)


def test_first_authorization_and_tool_call(
    authorization_server: FakeMCPStack, mcp_server: RunningSDKServer, client: str
) -> None:
    stack, server = authorization_server, mcp_server
    auth = new_auth(server, stack)
    assert isinstance(auth, httpx.Auth)

    assert anyio.run(call_add, client, server.url, auth, 2, 3) == (["add"], "5")

    # One authorization with the SDK server as the resource, found through the SDK server's own challenge and
    # metadata (the fake's resource metadata was never asked for).
    assert stack.count("authorize") == 1
    assert stack.grants_used() == ["authorization_code"]
    [authorization] = stack.authorization_requests
    assert authorization["resource"] == server.resource
    assert stack.count("prm") == 0
    assert stack.violations == []

    first, metadata, *rest = server.exchanges
    expected_method = "GET" if server.transport == "sse" else "POST"
    assert (first.method, first.status, first.authorization) == (expected_method, 401, None)
    assert first.www_authenticate is not None
    assert first.www_authenticate.startswith("Bearer ")
    assert f'resource_metadata="{server.resource_metadata_url}"' in first.www_authenticate
    metadata_path = httpx.URL(server.resource_metadata_url).path
    assert (metadata.method, metadata.path, metadata.status) == ("GET", metadata_path, 200)
    assert rest, "no MCP request after the authorization"
    token = auth.tokens.access_token if auth.tokens else None
    assert token is not None
    assert all(exchange.authorization == f"Bearer {token}" for exchange in rest)
    assert all(exchange.status is not None and exchange.status < 300 for exchange in rest)
    if server.transport == "sse":  # the messages endpoint is not below /sse: covered by the origin-wide resource
        assert any(exchange.path == "/messages/" for exchange in rest)
    assert server.verifier.verdicts
    assert all(server.verifier.verdicts)


def test_refresh_after_expiry(authorization_server: FakeMCPStack, mcp_server: RunningSDKServer, client: str) -> None:
    stack, server = authorization_server, mcp_server
    auth = new_auth(server, stack)
    assert anyio.run(call_add, client, server.url, auth, 1, 1)[1] == "2"
    first_token = auth.tokens.access_token if auth.tokens else None
    seen = len(server.exchanges)

    # Two hours later for the authorization server: its introspection says the token is no longer active, so the
    # SDK server answers 401, and MCPOAuth refreshes inline and replays, without asking the person again.
    start = time.time()
    stack.clock = lambda: start + 7200
    assert anyio.run(call_add, client, server.url, auth, 2, 2)[1] == "4"

    assert stack.grants_used() == ["authorization_code", "refresh_token"]
    assert stack.count("refresh") == 1
    assert stack.count("authorize") == 1
    later = server.exchanges[seen:]
    assert later[0].authorization == f"Bearer {first_token}"
    assert later[0].status == 401
    assert False in server.verifier.verdicts  # the server really rejected the expired token
    second_token = auth.tokens.access_token if auth.tokens else None
    assert second_token not in (None, first_token)
    assert all(exchange.authorization == f"Bearer {second_token}" for exchange in later[1:])
    assert all(exchange.status is not None and exchange.status < 300 for exchange in later[1:])
