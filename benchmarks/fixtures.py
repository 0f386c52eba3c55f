"""What the scenarios share: the server, its token, in-process transports and the clients under test.

The transports are in-process (no sockets) so that what is measured is the client stack and its auth, not a
network. ``bearer_transport`` answers like a minimal MCP endpoint that checks the bearer token; ``delayed``
adds simulated latency to any transport (including the fake authorization stack's).

This module imports only ``httpx``, ``anyio`` and ``mcp_oauth_auth`` eagerly: the cold-start child processes use
it, and ``httpx2`` and the official SDK are imported only by the variants that need them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio

from mcp_oauth_auth import ClientRegistration, CredentialRecord, MCPOAuth, MemoryTokenStore, RetryPolicy, TokenSet
from mcp_oauth_auth.storage import TokenStore

__all__ = [
    "BODY",
    "ISSUER",
    "REQUEST_HEADERS",
    "SERVER_URL",
    "TOKEN",
    "bearer_transport",
    "delayed",
    "make_record",
    "minimal_auth",
    "ours",
    "refuse_authorization",
    "sdk_missing",
    "sdk_provider",
]

SERVER_URL = "https://mcp.bench/mcp"
ISSUER = "https://auth.bench"
CLIENT_ID = "bench-client"
REDIRECT_URI = "http://127.0.0.1:33418/callback"
#: As long as the access tokens of common authorization servers' opaque tokens (43 base64url characters).
TOKEN = "bench-access-token-0123456789abcdefghijklmnopq"
REFRESH_TOKEN = "bench-refresh-token-0123456789abcdefghijklmn"
#: An MCP request: a JSON-RPC ping, sent as bytes so that every variant pays the same body cost.
BODY = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
REQUEST_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
RESULT = b'{"jsonrpc":"2.0","id":1,"result":{}}'
CHALLENGE = 'Bearer resource_metadata="https://mcp.bench/.well-known/oauth-protected-resource/mcp"'
#: Fast retries: no scenario injects failures, and a retry would only hide one.
RETRY = RetryPolicy(attempts=2, base_delay=0.0)


def make_record(server_url: str = SERVER_URL, token: str = TOKEN, lifetime: float = 86_400.0) -> CredentialRecord:
    """A stored credential as a previous authorization would have left it: valid for ``lifetime`` seconds."""
    now = time.time()
    return CredentialRecord(
        issuer=ISSUER,
        resource=server_url,
        server_url=server_url,
        client=ClientRegistration(
            client_id=CLIENT_ID,
            kind="dynamic",
            redirect_uris=(REDIRECT_URI,),
            grant_types=("authorization_code", "refresh_token"),
        ),
        token_endpoint=f"{ISSUER}/token",
        tokens=TokenSet(
            access_token=token,
            expires_at=now + lifetime,
            refresh_token=REFRESH_TOKEN,
            scope="mcp:read mcp:write",
            issued_at=now,
        ),
        requested_scopes=("mcp:read", "mcp:write"),
        authorization_endpoint=f"{ISSUER}/authorize",
    )


def refuse_authorization(url: str) -> str:
    """The authorizer of scenarios that must never ask the person."""
    raise AssertionError("the benchmark client was asked to authorize: the seeded credential was not used")


def ours(store: TokenStore | None = None, server_url: str = SERVER_URL, **options: Any) -> MCPOAuth:
    """MCPOAuth with a stored valid credential (a MemoryTokenStore seeded with :func:`make_record` by default)."""
    if store is None:
        store = MemoryTokenStore()
        store.save(make_record(server_url))
    options.setdefault("authorizer", refuse_authorization)
    options.setdefault("retry", RETRY)
    return MCPOAuth(server_url, store=store, **options)


def minimal_auth(library: ModuleType, token: str = TOKEN) -> Any:
    """The floor of any auth plugin on ``library`` (httpx or httpx2): an ``Auth`` that sets the same
    ``Authorization: Bearer <token>`` header as MCPOAuth (its value built once) and yields the request, nothing else.

    It overrides ``sync_auth_flow`` and ``async_auth_flow`` as MCPOAuth does, so both skip the base class's
    ``auth_flow`` wrapper and the comparison is of the work itself.
    """
    value = f"Bearer {token}"

    class MinimalAuth(library.Auth):  # type: ignore[name-defined,misc]
        def sync_auth_flow(self, request: Any) -> Any:
            request.headers["Authorization"] = value
            yield request

        async def async_auth_flow(self, request: Any) -> Any:
            request.headers["Authorization"] = value
            yield request

    return MinimalAuth()


def expire_stored_token(store: TokenStore) -> None:
    """Make the access token of the store's only record expired one second ago, as the client sees it."""
    [key] = store.list_keys()
    record = store.load(key)
    assert record is not None
    assert record.tokens is not None
    now = time.time()
    lifetime = (record.tokens.expires_at or now) - record.tokens.issued_at
    store.save(record.with_tokens(replace(record.tokens, expires_at=now - 1, issued_at=now - 1 - lifetime)))


# -- transports ------------------------------------------------------------------------------------------------


def bearer_transport(library: ModuleType, token: str | None, *, delay: float = 0.0) -> Any:
    """A transport of ``library`` (httpx or httpx2) that answers like an MCP endpoint checking bearer tokens.

    With ``token``, 200 and a JSON-RPC result when the request carries ``Authorization: Bearer <token>``, else
    401 with a challenge; without, 200 to everything (the "no auth" baseline pays the same header lookup).
    ``delay`` seconds of simulated latency precede each answer (``anyio.sleep`` / ``time.sleep``).
    """
    expected = None if token is None else f"Bearer {token}"
    response_class = library.Response
    ok_headers = [("content-type", "application/json")]
    challenge_headers = [("www-authenticate", CHALLENGE)]

    def answer(request: Any) -> Any:
        authorization = request.headers.get("authorization")
        if expected is None or authorization == expected:
            return response_class(200, headers=ok_headers, content=RESULT)
        return response_class(401, headers=challenge_headers)

    class BearerTransport(library.BaseTransport, library.AsyncBaseTransport):  # type: ignore[name-defined,misc]
        def handle_request(self, request: Any) -> Any:
            if delay:
                time.sleep(delay)
            return answer(request)

        async def handle_async_request(self, request: Any) -> Any:
            if delay:
                await anyio.sleep(delay)
            return answer(request)

    return BearerTransport()


def delayed(library: ModuleType, inner: Any, delay: float) -> Any:
    """``inner`` (a transport of ``library``) with ``delay`` seconds of latency before every request."""

    class DelayedTransport(library.BaseTransport, library.AsyncBaseTransport):  # type: ignore[name-defined,misc]
        def handle_request(self, request: Any) -> Any:
            time.sleep(delay)
            return inner.handle_request(request)

        async def handle_async_request(self, request: Any) -> Any:
            await anyio.sleep(delay)
            return await inner.handle_async_request(request)

    return DelayedTransport()


# -- the official MCP SDK ----------------------------------------------------------------------------------------


def sdk_missing() -> str | None:
    """Why the official SDK's OAuthClientProvider cannot be measured here, or None when it can."""
    try:
        import httpx2  # noqa: F401
        from mcp.client.auth import OAuthClientProvider  # noqa: F401
    except ImportError as exc:
        return f"the official MCP SDK (mcp 2.x with httpx2) is not importable: {exc}"
    return None


class SDKMemoryStorage:
    """The SDK's ``TokenStorage`` protocol, in memory: the SDK ships no persistent storage of its own."""

    def __init__(self, tokens: Any = None, client_info: Any = None) -> None:
        self.tokens = tokens
        self.client_info = client_info

    async def get_tokens(self) -> Any:
        return self.tokens

    async def set_tokens(self, tokens: Any) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> Any:
        return self.client_info

    async def set_client_info(self, client_info: Any) -> None:
        self.client_info = client_info


class FollowingBrowser:
    """The SDK's redirect and callback handlers, played by an authorizer (``FakeMCPStack.authorizer``): it takes
    the authorization URL and returns the URL the authorization server redirected to."""

    def __init__(self, authorizer: Callable[[str], str]) -> None:
        self._authorizer = authorizer
        self._callback: str | None = None

    async def redirect(self, authorization_url: str) -> None:
        self._callback = self._authorizer(authorization_url)

    async def callback(self) -> Any:
        from mcp.shared.auth import AuthorizationCodeResult

        assert self._callback is not None, "callback before redirect"
        query = parse_qs(urlsplit(self._callback).query)
        self._callback = None

        def first(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        return AuthorizationCodeResult(code=first("code") or "", state=first("state"), iss=first("iss"))


def sdk_provider(
    server_url: str = SERVER_URL,
    *,
    seeded: bool = True,
    authorizer: Callable[[str], str] | None = None,
) -> Any:
    """The official SDK's ``OAuthClientProvider``.

    ``seeded``: its storage holds a valid token and the client registration (steady state: only the per-request
    cost is measured); else it is empty and ``authorizer`` approves the authorization (full flow).
    """
    from mcp.client.auth import OAuthClientProvider
    from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
    from pydantic import AnyUrl

    storage = SDKMemoryStorage()
    if seeded:
        storage.tokens = OAuthToken(
            access_token=TOKEN, expires_in=86_400, refresh_token=REFRESH_TOKEN, scope="mcp:read mcp:write"
        )
        storage.client_info = OAuthClientInformationFull(
            client_id=CLIENT_ID, redirect_uris=[AnyUrl(REDIRECT_URI)], token_endpoint_auth_method="none"
        )
    browser = FollowingBrowser(authorizer or refuse_authorization)
    return OAuthClientProvider(
        server_url,
        OAuthClientMetadata(redirect_uris=[AnyUrl(REDIRECT_URI)], client_name="mcp-oauth-auth benchmark"),
        storage,
        redirect_handler=browser.redirect,
        callback_handler=browser.callback,
    )
