"""The first login, and everything after it, against the authorization servers MCP servers ship with — with the
library's default settings, through ``httpx`` (sync) and ``httpx2`` (async, the official SDK's client):

- ``sdk-same-origin``: the official MCP Python SDK's built-in authorization server on the MCP server's origin;
- ``sdk-separate-as``: the same SDK code as an authorization server of its own, the MCP server on another origin
  checking tokens by introspection;
- ``ts-sdk``: the official MCP TypeScript SDK's ``mcpAuthRouter`` and ``requireBearerAuth`` (Node.js);
- ``fastmcp``: FastMCP's in-memory OAuth provider.

The Python ones list ``client_secret_post`` and ``client_secret_basic`` but not ``none``, so the library registers
a confidential client there, and they identify the client only by the form's ``client_id``; the TypeScript one
lists ``none`` and ``client_secret_post``, and gets a public client. How each deviates from the specifications, and
what the library does about it: docs/howto/providers.md.

Each step counts what the authorization server did by its own books (:class:`~.shipped.base.ServerState`).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from mcp_oauth_auth import HeadlessAuthorizer, MCPOAuth, MemoryTokenStore, TokenStore
from mcp_oauth_auth.authorizers.base import DEFAULT_REDIRECT_URI
from mcp_oauth_auth.storage.encrypted_file import EncryptedFileTokenStore

from .shipped.base import ADD_TOOL, ShippedServer
from .shipped.fastmcp_as import run_fastmcp
from .shipped.sdk_as import run_sdk_same_origin, run_sdk_separate_as
from .shipped.session import CLIENTS, logout, mcp_session
from .ts_sdk_server import ServerFactory as TSServerFactory
from .ts_sdk_server import ts_sdk_server_factory_fixture  # noqa: F401 - a fixture

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("sdk-same-origin", "sdk-separate-as", "ts-sdk", "fastmcp")
#: The servers built on the Python SDK's endpoints, where the tests can set up a client as an administrator would.
PYTHON_SERVERS = ("sdk-same-origin", "sdk-separate-as", "fastmcp")
#: Access token lifetime (seconds) where a step waits for expiry: long enough for one MCP session.
SHORT_TTL = 3
#: Seconds to wait past an expiry, so that both sides agree the token is dead (whole-second ``exp`` values).
PAST_EXPIRY = 1.2

Start = Callable[..., ShippedServer]


@pytest.fixture(params=SERVERS)
def start(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    """Starts the server of the test's parameter (``start(access_token_ttl=...)``); stops it after the test."""
    name = request.param
    with ExitStack() as stack:

        def start(access_token_ttl: float = 300) -> ShippedServer:
            if name == "sdk-same-origin":
                return stack.enter_context(run_sdk_same_origin(access_token_ttl))
            if name == "sdk-separate-as":
                return stack.enter_context(run_sdk_separate_as(access_token_ttl))
            if name == "fastmcp":
                return stack.enter_context(run_fastmcp(monkeypatch, access_token_ttl))
            factory: TSServerFactory = request.getfixturevalue("ts_sdk_server_factory")  # shows its log on failure
            return factory(access_token_ttl=access_token_ttl)

        yield start


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def login(server: ShippedServer, client: str, store: TokenStore) -> MCPOAuth:
    """The first login with default settings, and a whole MCP session with it."""
    auth = MCPOAuth(server.url, store=store, authorizer=HeadlessAuthorizer())
    tools, text = mcp_session(auth, server.url, client, 2, 3)
    assert (tools, text) == ([ADD_TOOL], "5")
    return auth


def bearer_status(url: str, token: str) -> int:
    """What the MCP server answers to a request carrying ``token``."""
    response = httpx.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
        timeout=10,
    )
    return response.status_code


def wait_past_expiry(auth: MCPOAuth) -> str:
    """Sleep until the current access token has expired; returns it."""
    tokens = auth.tokens
    assert tokens is not None
    assert tokens.expires_at is not None
    time.sleep(max(0.0, tokens.expires_at - time.time()) + PAST_EXPIRY)
    return tokens.access_token


def new_process(server: ShippedServer, store_dir: Path, client: str) -> dict[str, object]:
    """The same store, used by a new process whose authorizer fails if it is ever asked."""
    child = subprocess.run(
        [sys.executable, "-m", "tests.integration.shipped.session", server.url, str(store_dir), client],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    report: dict[str, object] = json.loads(child.stdout)
    return report


# -- the steps ----------------------------------------------------------------------------------------------------


def test_first_login(start: Start, client: str) -> None:
    server = start()
    login(server, client, MemoryTokenStore())
    state = server.state()
    assert (state.registrations, state.authorizations, state.token_grants) == (1, 1, ["authorization_code"])


def test_refresh_after_expiry(start: Start, client: str) -> None:
    server = start(access_token_ttl=SHORT_TTL)
    auth = login(server, client, MemoryTokenStore())
    expired = wait_past_expiry(auth)

    assert mcp_session(auth, server.url, client, 4, 4) == ([ADD_TOOL], "8")

    state = server.state()
    assert (state.registrations, state.authorizations) == (1, 1)
    assert state.token_grants[0] == "authorization_code"
    assert set(state.token_grants[1:]) == {"refresh_token"}
    # Only now: FastMCP's provider deletes the refresh token along with an expired access token presented to it.
    assert bearer_status(server.url, expired) == 401


def test_new_process_with_the_same_store(start: Start, client: str, tmp_path: Path) -> None:
    server = start()
    store_dir = tmp_path / "store"
    login(server, client, EncryptedFileTokenStore(store_dir, use_keyring=False))

    report = new_process(server, store_dir, client)

    assert report == {"tools": [ADD_TOOL], "texts": ["7"], "authorizations": 0}
    state = server.state()
    assert (state.registrations, state.authorizations, state.token_grants) == (1, 1, ["authorization_code"])


def test_new_process_after_the_stored_token_expired(start: Start, client: str, tmp_path: Path) -> None:
    server = start(access_token_ttl=SHORT_TTL)
    store_dir = tmp_path / "store"
    auth = login(server, client, EncryptedFileTokenStore(store_dir, use_keyring=False))
    wait_past_expiry(auth)

    report = new_process(server, store_dir, client)

    assert report == {"tools": [ADD_TOOL], "texts": ["7"], "authorizations": 0}
    state = server.state()
    assert (state.registrations, state.authorizations) == (1, 1)
    assert state.token_grants[-1] == "refresh_token"


def test_recovery_after_the_server_revoked_the_grant(start: Start, client: str) -> None:
    server = start()
    auth = login(server, client, MemoryTokenStore())
    server.revoke_grants()

    assert mcp_session(auth, server.url, client, 5, 6) == ([ADD_TOOL], "11")

    state = server.state()
    # Exactly one new authorization, with the same registration.
    assert (state.registrations, state.authorizations) == (1, 2)
    assert state.token_grants == ["authorization_code", "authorization_code"]


def test_logout_revokes_at_the_server(start: Start, client: str) -> None:
    server = start()
    auth = login(server, client, MemoryTokenStore())
    tokens = auth.tokens
    assert tokens is not None
    assert tokens.refresh_token is not None
    assert server.supports_revocation

    outcomes = logout(auth, client)

    assert [(outcome.token_type_hint, outcome.revoked, outcome.error) for outcome in outcomes] == [
        ("refresh_token", True, None),
        ("access_token", True, None),
    ]
    assert "refresh_token" in server.state().revoked
    assert auth.tokens is None
    assert bearer_status(server.url, tokens.access_token) == 401


@pytest.mark.parametrize("start", PYTHON_SERVERS, indirect=True)
@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_pre_registered_confidential_client(start: Start, client: str, method: str) -> None:
    """A client the server's administrator set up, with the method they chose: HTTP Basic needs ``client_id`` in
    the form too at the Python SDK's token endpoint. The SDK's ``/revoke`` wants the secret in the form, so only
    ``client_secret_post`` can log out there (docs/howto/providers.md)."""
    server = start()
    assert server.pre_register is not None
    secret = secrets.token_urlsafe(24)
    server.pre_register("pre-registered", secret, method, DEFAULT_REDIRECT_URI)
    auth = MCPOAuth(
        server.url,
        store=MemoryTokenStore(),
        authorizer=HeadlessAuthorizer(),
        client_id="pre-registered",
        client_secret=secret,
        # Where the authorization server is on another origin (sdk-separate-as), the secret goes only to a named one.
        issuer=server.issuer,
        token_endpoint_auth_method=method,
    )
    assert mcp_session(auth, server.url, client, 1, 2) == ([ADD_TOOL], "3")
    state = server.state()
    assert (state.registrations, state.authorizations, state.token_grants) == (0, 1, ["authorization_code"])

    outcomes = logout(auth, client)

    revoked = method == "client_secret_post"
    assert [(outcome.token_type_hint, outcome.revoked) for outcome in outcomes] == [
        ("refresh_token", revoked),
        ("access_token", revoked),
    ]
    assert auth.tokens is None  # forgotten locally either way


def test_the_typescript_demo_providers_500_for_a_dead_token(
    ts_sdk_server_factory: TSServerFactory, client: str
) -> None:
    """The TypeScript SDK's demo provider as it ships reports a token it does not know (revoked, or lost in a
    restart: it keeps tokens in memory) with a plain error, which ``requireBearerAuth`` answers ``500 server_error``
    without a challenge. The library takes that as a rejected token, once: exactly one new authorization."""
    server = ts_sdk_server_factory(stock_demo_errors=True)
    auth = login(server, client, MemoryTokenStore())
    server.revoke_grants()

    assert mcp_session(auth, server.url, client, 5, 6) == ([ADD_TOOL], "11")

    state = server.state()
    assert (state.registrations, state.authorizations) == (1, 2)
    assert state.token_grants == ["authorization_code", "authorization_code"]
