"""Against a real, independently written authorization server: oidc-provider (Node.js), with a real MCP server built
with the official SDK in front of it, validating the tokens by introspection (audience = the MCP server).

The person's consent is given through the provider's own sign-in and consent pages (HTML forms, posted over HTTP by
:class:`~tests.integration.oidc_provider.Person`); the device flow through the provider's device pages. What the
provider saw is read from its log. See ``tests/integration/oidc/README.md`` for the provider's configuration.

Run as a script, this module is the "restarted process" of :func:`test_restart_resumes_without_a_new_authorization`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcp_oauth_auth import DeviceAuthorizer, HeadlessAuthorizer, MCPOAuth, MemoryTokenStore
from mcp_oauth_auth.flow.device import DEVICE_CODE_GRANT, DeviceAuthorization
from mcp_oauth_auth.storage.encrypted_file import EncryptedFileTokenStore

from .mcp_sdk_server import ADMIN_TOOL
from .oidc_provider import (  # noqa: F401 - oidc_stack and oidc_stack_factory are fixtures
    ADMIN_SCOPE,
    CONFIDENTIAL_CLIENTS,
    MACHINE_CLIENTS,
    OTHER_RESOURCE,
    OIDCStack,
    Person,
    StackFactory,
    complete_device_authorization,
    oidc_stack_factory_fixture,
    oidc_stack_fixture,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]
SIGN_IN, CONSENT = "Sign in", "Authorize access"
#: Access token lifetime (seconds) where a test waits for expiry: long enough for one MCP session to finish.
SHORT_TTL = 4

Call = tuple[str, dict[str, Any]]


async def call_tools(auth: MCPOAuth, url: str, calls: Sequence[Call]) -> list[str]:
    """One MCP session through the official SDK client on an ``httpx2.AsyncClient(auth=auth)``: the tools' texts."""
    # MCPOAuth instances derive from httpx2.Auth at run time (where httpx2 is installed), not in the type system.
    async with (
        httpx2.AsyncClient(auth=cast("httpx2.Auth", auth), timeout=30) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        texts = []
        for name, arguments in calls:
            result = await session.call_tool(name, arguments)
            assert not result.is_error, result
            texts.append("".join(getattr(block, "text", "") for block in result.content))
        return texts


def add(a: int, b: int) -> Call:
    return "add", {"a": a, "b": b}


class RecordingAuthorizer(HeadlessAuthorizer):
    """The headless authorizer, keeping each authorization URL and the callback URL it reached."""

    def __init__(self, person: Person) -> None:
        super().__init__(page_handler=person.page_handler)
        self.exchanges: list[tuple[str, str]] = []

    def authorize(self, authorization_url: str, redirect_uri: str) -> str:
        callback = super().authorize(authorization_url, redirect_uri)
        self.exchanges.append((authorization_url, callback))
        return callback

    async def authorize_async(self, authorization_url: str, redirect_uri: str) -> str:
        callback = await super().authorize_async(authorization_url, redirect_uri)
        self.exchanges.append((authorization_url, callback))
        return callback


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def bearer_status(url: str, token: str) -> httpx.Response:
    """What the MCP server answers to a request carrying ``token``."""
    return httpx.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
        timeout=10,
    )


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- scenarios ---------------------------------------------------------------------------------------------------


def test_first_authorization_and_tool_call(oidc_stack: OIDCStack) -> None:
    provider, url = oidc_stack.provider, oidc_stack.url
    person = oidc_stack.person()
    authorizer = RecordingAuthorizer(person)
    auth = MCPOAuth(url, store=MemoryTokenStore(), authorizer=authorizer)

    assert anyio.run(call_tools, auth, url, [add(2, 3)]) == ["5"]

    # The person saw the provider's real sign-in and consent pages, once each.
    assert person.pages == [SIGN_IN, CONSENT]
    assert provider.interactions() == ["login", "consent"]
    # Dynamic registration of a public native client, then the authorization request.
    [registration] = provider.requests("registration")
    assert registration["status"] == 201
    assert registration["registered"]["token_endpoint_auth_method"] == "none"
    assert registration["registered"]["application_type"] == "native"
    assert set(registration["registered"]["grant_types"]) == {"authorization_code", "refresh_token"}
    [(authorization_url, callback)] = authorizer.exchanges
    sent = query(authorization_url)
    assert sent["code_challenge_method"] == "S256"
    assert sent["resource"] == url
    assert set(sent["scope"].split()) == {"mcp:read", "offline_access"}
    # RFC 9207: the provider's callback carries its issuer (and the library checked it).
    assert query(callback)["iss"] == provider.issuer
    [exchange] = provider.requests("token", grant_type="authorization_code")
    assert (exchange["status"], exchange["resource"], exchange["client_auth"]) == (200, url, "none")
    # The token is for the MCP server (audience), with the requested scope; a refresh token came with it.
    assert auth.record is not None
    tokens = auth.record.tokens
    assert tokens is not None
    assert tokens.refresh_token is not None
    info = provider.introspect(tokens.access_token)
    assert info["active"] is True
    assert info["aud"] == url
    assert info["client_id"] == auth.record.client.client_id
    assert set(info["scope"].split()) == {"mcp:read"}
    assert oidc_stack.mcp.verifier.checked[-1] is True


def test_refresh_after_expiry_with_rotation(oidc_stack_factory: StackFactory) -> None:
    stack: OIDCStack = oidc_stack_factory(access_token_ttl=SHORT_TTL)
    provider, url = stack.provider, stack.url
    person = stack.person()
    # refresh_skew=0: refresh when the token has expired, not at half its lifetime (so exactly once here).
    auth = MCPOAuth(
        url,
        store=MemoryTokenStore(),
        authorizer=HeadlessAuthorizer(page_handler=person.page_handler),
        refresh_skew=0,
    )
    assert anyio.run(call_tools, auth, url, [add(1, 1)]) == ["2"]
    assert auth.record is not None
    client_id = auth.record.client.client_id
    first = auth.record.tokens
    assert first is not None
    assert first.refresh_token is not None
    assert first.expires_at is not None

    # The access token expires at the provider; the next call refreshes it (and the refresh token rotates).
    time.sleep(max(0.0, first.expires_at - time.time()) + 1.0)
    assert provider.introspect(first.access_token)["active"] is False
    assert anyio.run(call_tools, auth, url, [add(2, 2)]) == ["4"]
    second = auth.tokens
    assert second is not None
    assert second.access_token != first.access_token
    assert second.refresh_token not in (None, first.refresh_token)
    [refresh] = provider.requests("token", grant_type="refresh_token")
    assert (refresh["status"], refresh["resource"]) == (200, url)
    assert provider.introspect(second.access_token)["active"] is True

    # The old refresh token is really spent: the provider refuses it...
    reused = provider.token_request(
        {"grant_type": "refresh_token", "refresh_token": first.refresh_token, "resource": url}, client_id, public=True
    )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # ... and, taking the reuse for a theft, revokes the whole grant, current tokens included.
    assert provider.introspect(second.access_token)["active"] is False
    assert person.pages == [SIGN_IN, CONSENT]

    # The MCP server now rejects the client's token (401): the refresh is refused (invalid_grant) and the client
    # asks the person again, then succeeds.
    assert anyio.run(call_tools, auth, url, [add(3, 3)]) == ["6"]
    assert stack.mcp.verifier.checked.count(False) >= 1
    refused = provider.requests("token", grant_type="refresh_token", error="invalid_grant")
    assert len(refused) == 2  # ours above, then the client's
    assert person.pages == [SIGN_IN, CONSENT, SIGN_IN, CONSENT]


def test_restart_resumes_without_a_new_authorization(oidc_stack: OIDCStack, tmp_path: Path) -> None:
    provider, url = oidc_stack.provider, oidc_stack.url
    person = oidc_stack.person()
    store_dir = tmp_path / "store"
    auth = MCPOAuth(
        url,
        store=EncryptedFileTokenStore(store_dir, use_keyring=False),
        authorizer=HeadlessAuthorizer(page_handler=person.page_handler),
    )
    assert anyio.run(call_tools, auth, url, [add(20, 22)]) == ["42"]
    assert auth.tokens is not None
    seen_before = len(provider.log_lines())

    # A new process, with the same store and an authorizer that fails if it is ever asked.
    child = subprocess.run(
        [sys.executable, "-m", "tests.integration.test_oidc_provider", url, str(store_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert report == {"texts": ["7"], "authorizations": 0, "token": digest(auth.tokens.access_token)}
    after = provider.log_lines()[seen_before:]
    provider_routes = [line.get("route") for line in after if line.get("event") == "request"]
    # Only the MCP server's introspection: no registration, no authorization, no token request.
    assert set(provider_routes) == {"introspection"}
    assert not [line for line in after if line.get("event") in ("login", "consent", "page")]


def test_step_up_to_an_extra_scope(oidc_stack: OIDCStack) -> None:
    """The MCP server answers 403 ``insufficient_scope`` (scope="mcp:read mcp:admin") to the admin tool: the client
    asks the person again for the union of the scopes, and the call goes through with the new token.

    The dynamic registration was made for the first scopes: the provider refuses an authorization request for
    more of its scopes than the client registered (``invalid_scope``), so the client must cope with that too."""
    provider, url = oidc_stack.provider, oidc_stack.url
    person = oidc_stack.person()
    authorizer = RecordingAuthorizer(person)
    auth = MCPOAuth(url, store=MemoryTokenStore(), authorizer=authorizer)

    texts = anyio.run(call_tools, auth, url, [add(1, 2), (ADMIN_TOOL, {})])

    assert texts[0] == "3"
    assert texts[1].endswith("tokens checked")
    assert oidc_stack.mcp.gate is not None
    assert oidc_stack.mcp.gate.refused == [ADMIN_TOOL]  # 403 insufficient_scope once, then allowed
    assert person.pages == [SIGN_IN, CONSENT, SIGN_IN, CONSENT]
    requested = [set(query(authorization_url)["scope"].split()) for authorization_url, _ in authorizer.exchanges]
    assert requested[0] == {"mcp:read", "offline_access"}
    assert requested[-1] == {"mcp:read", "offline_access", ADMIN_SCOPE}
    [_, step_up] = provider.events("consent", decision="approve")
    assert ADMIN_SCOPE in step_up["scope"].split()
    assert auth.tokens is not None
    info = provider.introspect(auth.tokens.access_token)
    assert info["active"] is True
    assert set(info["scope"].split()) == {"mcp:read", ADMIN_SCOPE}


def test_logout_revokes_the_tokens(oidc_stack: OIDCStack) -> None:
    provider, url = oidc_stack.provider, oidc_stack.url
    person = oidc_stack.person()
    store = MemoryTokenStore()
    auth = MCPOAuth(url, store=store, authorizer=HeadlessAuthorizer(page_handler=person.page_handler))
    assert anyio.run(call_tools, auth, url, [add(5, 5)]) == ["10"]
    tokens = auth.tokens
    assert tokens is not None
    assert tokens.refresh_token is not None

    outcomes = auth.logout()

    assert [(outcome.token_type_hint, outcome.revoked, outcome.error) for outcome in outcomes] == [
        ("refresh_token", True, None),
        ("access_token", True, None),
    ]
    revocations = provider.requests("revocation")
    assert [(r["status"], r["token_type_hint"], r["client_auth"]) for r in revocations] == [
        (200, "refresh_token", "none"),
        (200, "access_token", "none"),
    ]
    assert provider.introspect(tokens.access_token) == {"active": False}
    assert provider.introspect(tokens.refresh_token) == {"active": False}
    assert auth.tokens is None
    assert bearer_status(url, tokens.access_token).status_code == 401


def test_device_flow_approved_on_the_device_pages(oidc_stack: OIDCStack) -> None:
    provider, url = oidc_stack.provider, oidc_stack.url
    shown: list[DeviceAuthorization] = []
    person = oidc_stack.person()
    finished: list[str] = []
    failures: list[BaseException] = []

    def approve(device: DeviceAuthorization) -> None:
        # On another device, the person opens the verification URI and types the code shown.
        shown.append(device)
        person.user_code = device.user_code

        def browse() -> None:
            try:
                finished.append(complete_device_authorization(device.verification_uri, person))
            except BaseException as exc:  # reported by the test
                failures.append(exc)

        threading.Thread(target=browse, daemon=True).start()

    auth = MCPOAuth(url, store=MemoryTokenStore(), authorizer=DeviceAuthorizer(on_prompt=approve))
    assert anyio.run(call_tools, auth, url, [add(6, 7)]) == ["13"]

    assert failures == []
    assert len(shown) == 1
    assert shown[0].verification_uri == f"{provider.issuer}/device"
    # The provider's own device pages (code entry, confirmation), our sign-in and consent, the success page.
    assert person.pages == ["Sign-in", "Device Login Confirmation", SIGN_IN, CONSENT, "Sign-in Success"]
    assert finished == ["Sign-in Success"]
    [started] = provider.requests("device_authorization")
    assert (started["status"], started["resource"]) == (200, url)
    polls = provider.requests("token", grant_type=DEVICE_CODE_GRANT)
    assert polls[-1]["status"] == 200
    assert {poll["error"] for poll in polls[:-1]} <= {"authorization_pending"}
    assert auth.record is not None
    assert DEVICE_CODE_GRANT in auth.record.client.grant_types
    tokens = auth.record.tokens
    assert tokens is not None
    assert tokens.refresh_token is not None
    info = provider.introspect(tokens.access_token)
    assert (info["active"], info["aud"]) == (True, url)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "private_key_jwt"])
def test_client_credentials(oidc_stack: OIDCStack, method: str) -> None:
    provider, url = oidc_stack.provider, oidc_stack.url
    client_id = MACHINE_CLIENTS[method]
    auth = MCPOAuth(
        url,
        store=MemoryTokenStore(),
        grant_type="client_credentials",
        client_id=client_id,
        # The provider is on another origin than the MCP server: its secret or key goes only to a named issuer.
        issuer=provider.issuer,
        token_endpoint_auth_method=None if method == "private_key_jwt" else method,
        **provider.client_credentials(client_id),
    )
    assert anyio.run(call_tools, auth, url, [add(8, 9)]) == ["17"]

    [issued] = provider.requests("token", grant_type="client_credentials")
    assert (issued["status"], issued["client_auth"], issued["client_id"], issued["resource"]) == (
        200,
        method,
        client_id,
        url,
    )
    assert provider.requests("authorization") == []
    assert provider.requests("registration") == []
    assert auth.tokens is not None
    assert auth.tokens.refresh_token is None
    info = provider.introspect(auth.tokens.access_token)
    assert (info["active"], info["aud"], info["client_id"]) == (True, url, client_id)
    assert set(info["scope"].split()) == {"mcp:read"}

    # Audience check: a valid token of the same provider, issued for another resource, does not open the server.
    other = provider.token_request(
        {"grant_type": "client_credentials", "resource": OTHER_RESOURCE, "scope": "mcp:read"}, client_id
    )
    assert other.status_code == 200
    other_token = other.json()["access_token"]
    assert provider.introspect(other_token)["aud"] == OTHER_RESOURCE
    rejected = bearer_status(url, other_token)
    assert rejected.status_code == 401
    assert "resource_metadata=" in rejected.headers["WWW-Authenticate"]


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "private_key_jwt"])
def test_confidential_client(oidc_stack_factory: StackFactory, method: str) -> None:
    stack: OIDCStack = oidc_stack_factory(access_token_ttl=SHORT_TTL)
    provider, url = stack.provider, stack.url
    client_id = CONFIDENTIAL_CLIENTS[method]
    person = stack.person()
    auth = MCPOAuth(
        url,
        store=MemoryTokenStore(),
        authorizer=HeadlessAuthorizer(page_handler=person.page_handler),
        client_id=client_id,
        issuer=provider.issuer,  # another origin than the MCP server's: named, as its secret or key requires
        token_endpoint_auth_method=None if method == "private_key_jwt" else method,
        refresh_skew=0,
        **provider.client_credentials(client_id),
    )
    assert anyio.run(call_tools, auth, url, [add(10, 11)]) == ["21"]
    assert provider.requests("registration") == []
    [exchange] = provider.requests("token", grant_type="authorization_code")
    assert (exchange["status"], exchange["client_auth"], exchange["client_id"]) == (200, method, client_id)

    # After expiry the client refreshes, authenticated the same way (the provider accepts only the registered
    # method, so a wrong one would be refused with invalid_client).
    tokens = auth.tokens
    assert tokens is not None
    assert tokens.expires_at is not None
    time.sleep(max(0.0, tokens.expires_at - time.time()) + 1.0)
    assert anyio.run(call_tools, auth, url, [add(1, 1)]) == ["2"]
    [refresh] = provider.requests("token", grant_type="refresh_token")
    assert (refresh["status"], refresh["client_auth"], refresh["client_id"]) == (200, method, client_id)
    assert person.pages == [SIGN_IN, CONSENT]


def test_registration_where_the_mcp_scopes_belong_to_the_resource_only(oidc_stack_factory: StackFactory) -> None:
    """oidc-provider configured with the MCP scopes on the resource server only (they are not in its own
    ``scopes``/``scopes_supported``): a dynamic registration that lists them in ``scope`` is refused
    (``invalid_client_metadata``), and the client must still get authorized, and step up."""
    stack: OIDCStack = oidc_stack_factory(provider_scopes=())
    provider, url = stack.provider, stack.url
    assert "mcp:read" not in provider.metadata["scopes_supported"]
    person = stack.person()
    auth = MCPOAuth(url, store=MemoryTokenStore(), authorizer=HeadlessAuthorizer(page_handler=person.page_handler))
    texts = anyio.run(call_tools, auth, url, [add(2, 2), (ADMIN_TOOL, {})])
    assert texts[0] == "4"
    assert texts[1].endswith("tokens checked")
    assert person.pages == [SIGN_IN, CONSENT, SIGN_IN, CONSENT]
    assert auth.tokens is not None
    assert set(provider.introspect(auth.tokens.access_token)["scope"].split()) == {"mcp:read", ADMIN_SCOPE}


# -- the restarted process ---------------------------------------------------------------------------------------


def _resume(url: str, store_dir: str) -> dict[str, Any]:
    authorizations = 0

    def no_person_here(authorization_url: str) -> str:
        nonlocal authorizations
        authorizations += 1
        raise RuntimeError("the restarted process must not need a new authorization")

    auth = MCPOAuth(url, store=EncryptedFileTokenStore(store_dir, use_keyring=False), authorizer=no_person_here)
    texts = anyio.run(call_tools, auth, url, [add(3, 4)])
    token = auth.tokens.access_token if auth.tokens else ""
    return {"texts": texts, "authorizations": authorizations, "token": digest(token)}


if __name__ == "__main__":
    print(json.dumps(_resume(sys.argv[1], sys.argv[2])))
