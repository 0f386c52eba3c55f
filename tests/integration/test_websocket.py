"""WebSocket handshakes carrying MCPOAuth's bearer token, against a loopback WebSocket endpoint that refuses the
handshake without a valid token: HTTP 401 with ``WWW-Authenticate: Bearer ..., resource_metadata="..."`` before the
upgrade (the ASGI WebSocket Denial Response), tokens checked by introspection at the fake authorization server.

Two client libraries:

* ``httpx-ws`` (``aconnect_ws`` / ``connect_ws``) on an ``httpx.AsyncClient`` / ``httpx.Client``;
* httpx2's own WebSocket support, ``httpx2.AsyncClient.websocket()`` / ``httpx2.Client.websocket()`` (the
  ``httpx2.websockets`` package, derived from httpx-ws; it needs ``wsproto``, i.e. ``httpx2[ws]``, which the dev
  extra gets through ``httpx-ws``). Not collected where httpx2 is not installed (Python 3.10).

Both send the handshake as ``client.stream("GET", url, ...)``, so it goes through the client's auth flow: the 401
before the upgrade makes MCPOAuth authorize (or refresh) and replay the handshake, transparently.

The URL given to the client must be the ``http(s)://`` one. MCPOAuth sends its token only to its server URL's
scheme, host, port and path, and refuses ``ws(s)://`` server URLs: with a ``ws://`` URL the handshake carries no
token and the 401 is left to the caller.
"""

from __future__ import annotations

import importlib.util
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import anyio
import httpx
import httpx_ws
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig, reserve_loopback_port, serve_asgi, serve_stack

pytestmark = pytest.mark.integration

HAS_HTTPX2 = importlib.util.find_spec("httpx2") is not None
LIBRARIES = ["httpx-ws", "httpx2"] if HAS_HTTPX2 else ["httpx-ws"]
_TLS = ssl.create_default_context()  # built once: the server makes an introspection client per handshake


@dataclass
class Handshake:
    authorization: str | None
    #: 101 when upgraded, else the status of the denial response.
    status: int


@dataclass
class WebSocketServer:
    url: str
    resource_metadata_url: str
    handshakes: list[Handshake] = field(default_factory=list)


def build_app(server: WebSocketServer, issuer: str, introspection_endpoint: str) -> Starlette:
    resource = server.url

    async def token_is_valid(authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        async with httpx.AsyncClient(timeout=10, verify=_TLS) as client:
            response = await client.post(introspection_endpoint, data={"token": token})
        claims = response.json()
        return claims.get("active") is True and claims.get("aud") == resource

    async def echo(websocket: WebSocket) -> None:
        authorization = websocket.headers.get("authorization")
        if not await token_is_valid(authorization):
            server.handshakes.append(Handshake(authorization, 401))
            error = ', error="invalid_token"' if authorization else ""
            challenge = f'Bearer resource_metadata="{server.resource_metadata_url}"{error}'
            # uvicorn closes the connection after a denial response: say so, or the client may reuse it for the
            # replayed handshake and meet a connection reset.
            headers = {"WWW-Authenticate": challenge, "Connection": "close"}
            denial = JSONResponse({"error": "invalid_token"}, 401, headers=headers)
            await websocket.send_denial_response(denial)
            return
        server.handshakes.append(Handshake(authorization, 101))
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(f"echo: {text}")

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "resource": resource,
                "authorization_servers": [issuer],
                "scopes_supported": ["mcp:read"],
                "bearer_methods_supported": ["header"],
            }
        )

    return Starlette(
        routes=[
            WebSocketRoute("/ws", echo),
            Route("/.well-known/oauth-protected-resource/ws", metadata, methods=["GET"]),
        ]
    )


@pytest.fixture
def authorization_server() -> Iterator[FakeMCPStack]:
    with serve_stack(FakeStackConfig()) as stack:
        yield stack


@pytest.fixture
def ws_server(authorization_server: FakeMCPStack) -> Iterator[WebSocketServer]:
    sock = reserve_loopback_port()
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = WebSocketServer(f"{origin}/ws", f"{origin}/.well-known/oauth-protected-resource/ws")
    stack = authorization_server
    stack.config.extra_resources = [server.url]
    app = build_app(server, stack.issuer, stack.introspection_endpoint)
    with serve_asgi(app, sock=sock, ws="wsproto", name="the WebSocket server"):
        yield server


# -- one echo over a WebSocket, per library and mode ----------------------------------------------------------


async def echo_async(library: str, url: str, auth: MCPOAuth | None, text: str) -> str:
    if library == "httpx-ws":
        async with httpx.AsyncClient(auth=auth) as client, httpx_ws.aconnect_ws(url, client) as ws:
            await ws.send_text(text)
            return await ws.receive_text()
    import httpx2

    async with httpx2.AsyncClient(auth=auth) as client2, client2.websocket(url) as ws2:
        await ws2.send_text(text)
        return await ws2.receive_text()


def echo_sync(library: str, url: str, auth: MCPOAuth | None, text: str) -> str:
    if library == "httpx-ws":
        with httpx.Client(auth=auth) as client, httpx_ws.connect_ws(url, client) as ws:
            ws.send_text(text)
            return ws.receive_text()
    import httpx2

    with httpx2.Client(auth=auth) as client2, client2.websocket(url) as ws2:
        ws2.send_text(text)
        return ws2.receive_text()


Echo = Callable[[str, MCPOAuth | None, str], str]


@pytest.fixture(params=[(library, mode) for library in LIBRARIES for mode in ("async", "sync")], ids="-".join)
def echo(request: pytest.FixtureRequest) -> Echo:
    library, mode = request.param

    def run(url: str, auth: MCPOAuth | None, text: str) -> str:
        if mode == "async":
            return anyio.run(echo_async, library, url, auth, text)
        return echo_sync(library, url, auth, text)

    return run


def upgrade_error(library: str) -> type[Exception]:
    if library == "httpx-ws":
        return httpx_ws.WebSocketUpgradeError
    import httpx2.websockets

    return httpx2.websockets.WebSocketUpgradeError


# -- tests ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_handshake_without_a_valid_token_is_refused_before_the_upgrade(
    authorization_server: FakeMCPStack, ws_server: WebSocketServer, library: str
) -> None:
    with pytest.raises(upgrade_error(library)) as refused:
        anyio.run(echo_async, library, ws_server.url, None, "hello")
    response = refused.value.response  # type: ignore[attr-defined]
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Bearer resource_metadata="{ws_server.resource_metadata_url}"'

    # A token the authorization server does not know is refused too.
    headers = {"Authorization": "Bearer not-a-token"}
    with (
        httpx.Client(headers=headers) as client,
        pytest.raises(httpx_ws.WebSocketUpgradeError) as refused,
        httpx_ws.connect_ws(ws_server.url, client),
    ):
        pass
    assert 'error="invalid_token"' in refused.value.response.headers["www-authenticate"]
    assert ws_server.handshakes == [Handshake(None, 401), Handshake("Bearer not-a-token", 401)]
    assert authorization_server.count("token") == 0


def test_mcpoauth_authorizes_on_the_refused_handshake_and_replays_it(
    authorization_server: FakeMCPStack, ws_server: WebSocketServer, echo: Echo
) -> None:
    stack = authorization_server
    auth = MCPOAuth(ws_server.url, store=MemoryTokenStore(), authorizer=stack.authorizer)

    assert echo(ws_server.url, auth, "hello") == "echo: hello"

    token = auth.tokens.access_token if auth.tokens else None
    assert token is not None
    assert ws_server.handshakes == [Handshake(None, 401), Handshake(f"Bearer {token}", 101)]
    assert stack.count("authorize") == 1
    assert stack.grants_used() == ["authorization_code"]
    assert stack.authorization_requests[0]["resource"] == ws_server.url

    # With a token in hand, the next handshake carries it from the start.
    assert echo(ws_server.url, auth, "again") == "echo: again"
    assert ws_server.handshakes[2:] == [Handshake(f"Bearer {token}", 101)]


def test_an_expired_token_is_refreshed_on_the_refused_handshake(
    authorization_server: FakeMCPStack, ws_server: WebSocketServer, echo: Echo
) -> None:
    stack = authorization_server
    auth = MCPOAuth(ws_server.url, store=MemoryTokenStore(), authorizer=stack.authorizer)
    assert echo(ws_server.url, auth, "one") == "echo: one"
    old = auth.tokens.access_token if auth.tokens else None

    start = time.time()
    stack.clock = lambda: start + 7200  # the authorization server now considers the token expired
    assert echo(ws_server.url, auth, "two") == "echo: two"

    new = auth.tokens.access_token if auth.tokens else None
    assert new not in (None, old)
    assert ws_server.handshakes[2:] == [Handshake(f"Bearer {old}", 401), Handshake(f"Bearer {new}", 101)]
    assert stack.grants_used() == ["authorization_code", "refresh_token"]
    assert stack.count("authorize") == 1
