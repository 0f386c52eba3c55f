"""MCPOAuth through real httpx / httpx2 clients (sync, asyncio, trio) against the fake MCP authorization stack."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from mcp_oauth_auth import (
    ClientRegistrationRequiredError,
    InsufficientScopeError,
    IssuerMismatchError,
    MCPOAuth,
    MemoryTokenStore,
    PKCENotSupportedError,
    RequestNotReplayableError,
    ResourceMismatchError,
    RetryPolicy,
    TemporaryOAuthError,
)
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig

from .clients import KIND_PARAMS, ClientKind, DelayedTransport, Seen, send_all

FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.0)


@pytest.fixture(params=KIND_PARAMS)
def kind(request: pytest.FixtureRequest) -> ClientKind:
    assert isinstance(request.param, ClientKind)
    return request.param


def make_auth(stack: FakeMCPStack, **options: Any) -> MCPOAuth:
    options.setdefault("store", MemoryTokenStore())
    options.setdefault("authorizer", stack.authorizer)
    options.setdefault("retry", FAST_RETRY)
    return MCPOAuth(stack.server_url, **options)


def authorization_query(stack: FakeMCPStack, index: int = -1) -> dict[str, str]:
    return stack.authorization_requests[index]


# -- the first authorization --------------------------------------------------------------------------------------


def test_first_request_runs_the_whole_flow(kind: ClientKind) -> None:
    stack = FakeMCPStack()
    auth = make_auth(stack)
    seen = Seen()
    [result] = send_all(kind, stack, auth, [("POST", stack.server_url, {"json": {"jsonrpc": "2.0"}})], seen)
    assert result.status == 200
    assert result.body["ok"] is True
    assert result.body["body_length"] > 0  # the body was replayed intact
    assert stack.count("register") == 1
    assert stack.count("authorize") == 1
    query = authorization_query(stack)
    assert query["code_challenge_method"] == "S256"
    assert query["resource"] == stack.server_url
    assert query["scope"].split() == ["mcp:read", "mcp:write", "offline_access"]
    grants = [(r["grant_type"], r["resource"]) for r in stack.token_requests]
    assert grants == [("authorization_code", stack.server_url)]
    assert stack.violations == []
    # The bearer token went to the resource only.
    for method, url, authorization in seen.requests:
        if url.startswith(stack.server_url):
            continue
        assert authorization is None or not authorization.startswith("Bearer"), (method, url)


def test_later_requests_reuse_the_token(kind: ClientKind) -> None:
    stack = FakeMCPStack()
    auth = make_auth(stack)
    results = send_all(kind, stack, auth, [("GET", stack.server_url)] * 5)
    assert [r.status for r in results] == [200] * 5
    assert stack.count("token") == 1
    assert stack.count("resource") == 6  # one 401, then five successes


def test_bearer_never_sent_to_the_authorization_server_on_another_origin(kind: ClientKind) -> None:
    stack = FakeMCPStack(FakeStackConfig(as_base_url="https://auth.test"))
    auth = make_auth(stack)
    seen = Seen()
    send_all(kind, stack, auth, [("GET", stack.server_url), ("GET", "https://auth.test/anything")], seen)
    bearer_urls = {url for _, url, header in seen.requests if header and header.startswith("Bearer")}
    assert bearer_urls == {stack.server_url}


def test_bearer_scoped_to_resource_path(kind: ClientKind) -> None:
    stack = FakeMCPStack()
    auth = make_auth(stack)
    seen = Seen()
    base = stack.base_url
    send_all(
        kind,
        stack,
        auth,
        [
            ("GET", stack.server_url),
            ("GET", f"{base}/mcpx"),
            ("GET", f"{base}/other"),
            ("GET", f"{stack.server_url}/tools"),
        ],
        seen,
    )
    with_bearer = [url for _, url, header in seen.requests if header and header.startswith("Bearer")]
    assert f"{base}/mcpx" not in with_bearer
    assert f"{base}/other" not in with_bearer
    assert f"{stack.server_url}/tools" in with_bearer
    assert all("access_token" not in url for _, url, _ in seen.requests)


AS_VARIANTS = [
    ("oauth", ""),
    ("oidc", ""),
    ("oauth", "/tenant1"),
    ("oidc", "/tenant1"),
    ("oidc_append_only", "/tenant1"),
]


@pytest.mark.parametrize(
    ("prm_mode", "as_mode", "issuer_path"),
    # A server without PRM (2025-03-26) is its own authorization server, at its origin: no issuer path there.
    [(prm, as_mode, path) for prm in ("header", "path", "root") for as_mode, path in AS_VARIANTS]
    + [("none", as_mode, path) for as_mode, path in AS_VARIANTS if not path],
)
def test_discovery_variants(prm_mode: str, as_mode: str, issuer_path: str) -> None:
    stack = FakeMCPStack(FakeStackConfig(prm_mode=prm_mode, as_metadata_mode=as_mode, issuer_path=issuer_path))
    auth = make_auth(stack)
    [result] = send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    assert result.status == 200
    assert auth.record is not None
    assert auth.record.issuer == stack.issuer


def test_legacy_server_without_any_metadata_uses_default_endpoints(
    kind: ClientKind, caplog: pytest.LogCaptureFixture
) -> None:
    """MCP 2025-03-26: no protected resource metadata and no authorization server metadata at the server's origin:
    the default /authorize, /token and /register there, with PKCE S256, without an opt-in (that revision made PKCE
    mandatory for every server, so there is no advertisement to verify), and logged."""
    caplog.set_level(logging.INFO, logger="mcp_oauth_auth")
    stack = FakeMCPStack(FakeStackConfig(prm_mode="none", as_metadata_mode="none"))
    auth = make_auth(stack)
    [result] = send_all(kind, stack, auth, [("GET", stack.server_url)])
    assert result.status == 200
    assert (stack.count("register"), stack.count("authorize"), stack.count("token")) == (1, 1, 1)
    assert authorization_query(stack)["code_challenge_method"] == "S256"
    assert auth.record is not None
    assert auth.record.issuer == stack.base_url
    assert auth.record.token_endpoint == f"{stack.base_url}/token"
    [fallback] = [record for record in caplog.records if "2025-03-26 default endpoints" in record.getMessage()]
    assert fallback.levelno == logging.INFO
    assert f"{stack.base_url}/authorize" in fallback.getMessage()


def test_authenticate_checks_for_a_challenge_before_using_the_default_endpoints() -> None:
    """authenticate() sends nothing to the endpoint while discovery finds metadata; with none at all, one GET must be
    answered 401 before /register, /authorize and /token at the origin are used (a 2025-03-26 server is)."""
    import httpx

    stack = FakeMCPStack(FakeStackConfig(prm_mode="none", as_metadata_mode="none"))
    auth = make_auth(stack)
    with httpx.Client(transport=stack.httpx_transport()) as http:
        auth.authenticate(http)
    assert stack.count("resource") == 1  # the check: answered 401
    assert (stack.count("register"), stack.count("authorize"), stack.count("token")) == (1, 1, 1)


def test_legacy_server_metadata_without_pkce_methods_is_still_refused() -> None:
    """Metadata at the origin of a server without protected resource metadata that omits
    code_challenge_methods_supported is a refusal, as everywhere: only the documented opt-out proceeds."""
    config = FakeStackConfig(prm_mode="none", code_challenge_methods_supported=None)
    stack = FakeMCPStack(config)
    with pytest.raises(PKCENotSupportedError, match="trust_unadvertised_pkce=True"):
        send_all(ClientKind("httpx", "sync"), stack, make_auth(stack), [("GET", stack.server_url)])
    assert stack.count("register") == 0
    assert stack.count("authorize") == 0
    auth = make_auth(stack, trust_unadvertised_pkce=True)
    assert send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])[0].status == 200


def test_openid_provider_with_offline_access_gets_prompt_consent() -> None:
    stack = FakeMCPStack(FakeStackConfig(as_metadata_mode="oidc", refresh_token_requires_offline_access=True))
    auth = make_auth(stack)
    send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    assert authorization_query(stack)["prompt"] == "consent"
    assert auth.tokens is not None
    assert auth.tokens.refresh_token is not None


def test_offline_access_only_when_listed() -> None:
    stack = FakeMCPStack(FakeStackConfig(scopes_supported=["mcp:read", "mcp:write"]))
    send_all(ClientKind("httpx", "sync"), stack, make_auth(stack), [("GET", stack.server_url)])
    assert "offline_access" not in authorization_query(stack)["scope"]


def test_challenge_scope_beats_prm_scopes_and_explicit_scopes_join_it() -> None:
    """The challenge's scope is authoritative for the operation (MCP scope selection): scopes the caller asks for
    are requested together with it, not instead of it."""
    stack = FakeMCPStack(FakeStackConfig(challenge_scope="mcp:read"))
    send_all(ClientKind("httpx", "sync"), stack, make_auth(stack), [("GET", stack.server_url)])
    assert authorization_query(stack)["scope"] == "mcp:read offline_access"
    stack2 = FakeMCPStack(FakeStackConfig(challenge_scope="mcp:read"))
    send_all(ClientKind("httpx", "sync"), stack2, make_auth(stack2, scopes="admin"), [("GET", stack2.server_url)])
    assert authorization_query(stack2)["scope"] == "admin mcp:read offline_access"
    stack3 = FakeMCPStack(FakeStackConfig(challenge_scope=None))
    send_all(ClientKind("httpx", "sync"), stack3, make_auth(stack3, scopes="admin"), [("GET", stack3.server_url)])
    assert authorization_query(stack3)["scope"] == "admin offline_access"  # explicit scopes beat the PRM's


# -- refusals: no authorization request is made --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "error"),
    [
        (FakeStackConfig(prm_resource="https://evil.test/mcp"), ResourceMismatchError),
        (FakeStackConfig(metadata_issuer="https://evil.test"), IssuerMismatchError),
        (FakeStackConfig(code_challenge_methods_supported=["plain"]), PKCENotSupportedError),
        (FakeStackConfig(code_challenge_methods_supported=None), PKCENotSupportedError),
        (FakeStackConfig(registration_enabled=False), ClientRegistrationRequiredError),
    ],
    ids=["prm-resource", "metadata-issuer", "pkce-plain-only", "pkce-unadvertised", "no-dcr"],
)
def test_refusals_before_authorization(kind: ClientKind, config: FakeStackConfig, error: type[Exception]) -> None:
    stack = FakeMCPStack(config)
    with pytest.raises(error):
        send_all(kind, stack, make_auth(stack), [("GET", stack.server_url)])
    assert stack.count("authorize") == 0
    assert stack.count("token") == 0


def test_unadvertised_pkce_opt_out() -> None:
    stack = FakeMCPStack(FakeStackConfig(code_challenge_methods_supported=None))
    auth = make_auth(stack, trust_unadvertised_pkce=True)
    assert send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])[0].status == 200


@pytest.mark.parametrize("callback_iss", ["missing", "wrong"])
def test_callback_iss_problems_stop_before_token_exchange(kind: ClientKind, callback_iss: str) -> None:
    stack = FakeMCPStack(FakeStackConfig(callback_iss=callback_iss))
    with pytest.raises(IssuerMismatchError):
        send_all(kind, stack, make_auth(stack), [("GET", stack.server_url)])
    assert stack.count("authorize") == 1
    assert stack.count("token") == 0


def test_iss_absent_and_not_advertised_is_fine() -> None:
    stack = FakeMCPStack(FakeStackConfig(iss_parameter_supported=False))
    assert send_all(ClientKind("httpx", "sync"), stack, make_auth(stack), [("GET", stack.server_url)])[0].status == 200


# -- client identity ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_pre_registered_confidential_client(kind: ClientKind, method: str) -> None:
    stack = FakeMCPStack(FakeStackConfig(registration_enabled=False))
    redirect = "http://127.0.0.1:8765/callback"
    stack.add_client("pre", client_secret="s e+c%/ret", token_endpoint_auth_method=method, redirect_uris=[redirect])
    auth = make_auth(
        stack, client_id="pre", client_secret="s e+c%/ret", redirect_uri=redirect, token_endpoint_auth_method=method
    )
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert [(r["client_id"], r["auth_method"]) for r in stack.token_requests] == [("pre", method)]
    assert stack.count("register") == 0


def test_client_id_metadata_document() -> None:
    stack = FakeMCPStack(FakeStackConfig(client_id_metadata_document_supported=True))
    auth = make_auth(stack, client_metadata_url="https://client.example/oauth/metadata.json")
    assert send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert authorization_query(stack)["client_id"] == "https://client.example/oauth/metadata.json"
    assert stack.count("register") == 0


# -- expiry, refresh, restart --------------------------------------------------------------------------------------


def test_expired_token_is_refreshed_before_sending(kind: ClientKind) -> None:
    stack = FakeMCPStack(FakeStackConfig(access_token_lifetime=120))
    auth = make_auth(stack, refresh_skew=60)
    send_all(kind, stack, auth, [("GET", stack.server_url)])
    store = auth.store
    later = make_auth(stack, store=store, refresh_skew=600)  # a new process for which the token is expiring
    results = send_all(kind, stack, later, [("GET", stack.server_url), ("GET", stack.server_url)])
    assert [r.status for r in results] == [200, 200]
    assert stack.grants_used() == ["authorization_code", "refresh_token", "refresh_token"]
    assert stack.count("authorize") == 1  # nobody was asked again
    assert stack.count("resource") == 4  # 401 + 200 for the first process, then no 401 on the refreshed path


def test_restart_with_same_store_needs_no_authorization(kind: ClientKind) -> None:
    stack = FakeMCPStack()
    store = MemoryTokenStore()
    send_all(kind, stack, make_auth(stack, store=store), [("GET", stack.server_url)])
    stack.reset_log()
    restarted = make_auth(stack, store=store, authorizer=lambda url: pytest.fail("asked to authorize again"))
    assert send_all(kind, stack, restarted, [("GET", stack.server_url)])[0].status == 200
    assert stack.count("as_metadata") == 0
    assert stack.count("prm") == 0
    assert stack.count("token") == 0


def test_401_with_refresh_token_refreshes_without_asking(kind: ClientKind) -> None:
    stack = FakeMCPStack()
    auth = make_auth(stack)
    send_all(kind, stack, auth, [("GET", stack.server_url)])
    start = time.time()
    stack.clock = lambda: start + 7200  # the server now considers the token expired
    results = send_all(kind, stack, auth, [("GET", stack.server_url)])
    assert results[0].status == 200
    assert stack.grants_used() == ["authorization_code", "refresh_token"]
    assert stack.count("authorize") == 1


def test_rotated_refresh_token_is_persisted_and_used(kind: ClientKind) -> None:
    stack = FakeMCPStack(FakeStackConfig(rotate_refresh_tokens=True))
    auth = make_auth(stack, refresh_skew=10_000)  # every request finds the token expiring
    send_all(kind, stack, auth, [("GET", stack.server_url)] * 3)
    refreshes = [r for r in stack.token_requests if r["grant_type"] == "refresh_token"]
    assert len(refreshes) >= 2
    assert all(r["status"] == 200 for r in refreshes)  # never reused a retired refresh token
    stored = auth.store.load(auth.record.key) if auth.record else None
    assert stored is not None
    assert stored.tokens == auth.tokens


def test_refresh_without_new_refresh_token_keeps_the_old_one() -> None:
    stack = FakeMCPStack(FakeStackConfig(rotate_refresh_tokens=False, return_refresh_token_on_refresh=False))
    auth = make_auth(stack, refresh_skew=10_000)
    send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)] * 3)
    assert stack.grants_used() == ["authorization_code", "refresh_token", "refresh_token"]
    assert auth.tokens is not None
    assert auth.tokens.refresh_token is not None


def test_invalid_grant_falls_back_to_new_authorization(kind: ClientKind) -> None:
    stack = FakeMCPStack()
    auth = make_auth(stack)
    send_all(kind, stack, auth, [("GET", stack.server_url)])
    start = time.time()
    stack.clock = lambda: start + 7200
    stack.fail_next("refresh", status=400, json={"error": "invalid_grant"})
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert stack.grants_used() == ["authorization_code", "refresh_token", "authorization_code"]
    assert stack.count("authorize") == 2


@pytest.mark.parametrize("error", ["unauthorized_client", "unsupported_grant_type", "invalid_scope"])
def test_other_final_refresh_errors_also_lead_to_a_new_authorization(error: str) -> None:
    stack = FakeMCPStack()
    auth = make_auth(stack)
    send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    start = time.time()
    stack.clock = lambda: start + 7200
    stack.fail_next("refresh", status=400, json={"error": error})
    assert send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert stack.grants_used() == ["authorization_code", "refresh_token", "authorization_code"]


def test_a_refresh_refused_for_another_reason_keeps_the_credential() -> None:
    from mcp_oauth_auth import TokenRefreshError

    stack = FakeMCPStack()
    store = MemoryTokenStore()
    auth = make_auth(stack, store=store)
    send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    [key] = store.list_keys()
    before = store.load(key)
    start = time.time()
    stack.clock = lambda: start + 7200
    stack.fail_next("refresh", status=400, json={"error": "invalid_request"})
    with pytest.raises(TokenRefreshError, match="invalid_request"):
        send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    assert store.load(key) == before
    assert stack.count("authorize") == 1


@pytest.mark.parametrize("status", [500, 503, 429])
def test_temporary_refresh_failure_keeps_credentials(kind: ClientKind, status: int) -> None:
    stack = FakeMCPStack()
    auth = make_auth(stack)
    send_all(kind, stack, auth, [("GET", stack.server_url)])
    record_before = auth.record
    assert record_before is not None
    start = time.time()
    stack.clock = lambda: start + 7200
    stack.fail_next("refresh", status=status, times=FAST_RETRY.attempts)
    with pytest.raises(TemporaryOAuthError):
        send_all(kind, stack, auth, [("GET", stack.server_url)])
    assert auth.store.load(record_before.key) == record_before
    assert stack.count("authorize") == 1
    # Once the server recovers, the kept refresh token works.
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert stack.count("authorize") == 1


# -- step-up -------------------------------------------------------------------------------------------------------


def test_step_up_on_insufficient_scope(kind: ClientKind) -> None:
    stack = FakeMCPStack(FakeStackConfig(required_scopes_by_path={"/mcp/admin": ["admin"]}))
    auth = make_auth(stack)
    results = send_all(
        kind, stack, auth, [("GET", stack.server_url), ("POST", f"{stack.server_url}/admin", {"json": {"x": 1}})]
    )
    assert [r.status for r in results] == [200, 200]
    first, second = stack.authorization_requests
    assert set(second["scope"].split()) == set(first["scope"].split()) | {"admin"}
    assert results[1].body["body_length"] > 0


def forbidding(stack: FakeMCPStack, scopes: Any) -> Any:
    """A transport in front of ``stack`` whose /mcp/admin always answers 403 insufficient_scope, naming the scope
    ``scopes()`` returns."""
    import httpx

    inner = stack.httpx_transport()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/mcp/admin":
            challenge = f'Bearer error="insufficient_scope", scope="{scopes()}"'
            return httpx.Response(403, headers={"WWW-Authenticate": challenge})
        response = inner.handle_request(request)
        response.read()
        return response

    return httpx.MockTransport(handler)


def test_step_up_gives_up_after_the_cap() -> None:
    import itertools

    import httpx

    config = FakeStackConfig(scopes_supported=["mcp:read", "mcp:write", *(f"admin{n}" for n in range(1, 5))])
    stack = FakeMCPStack(config)
    auth = make_auth(stack, max_step_up=1)
    numbers = itertools.count(1)
    # Each refusal names a scope not asked for yet: only the cap ends the step-ups.
    with httpx.Client(auth=auth, transport=forbidding(stack, lambda: f"admin{next(numbers)}")) as client:
        assert client.get(stack.server_url).status_code == 200
        with pytest.raises(InsufficientScopeError, match="after 1 step-up"):
            client.get(f"{stack.server_url}/admin")
    assert stack.count("authorize") == 2  # the first authorization plus one step-up


def test_step_up_for_scopes_already_asked_for_fails_at_once() -> None:
    """Asking again for the same scopes would show the person the same consent for nothing."""
    import httpx

    stack = FakeMCPStack(FakeStackConfig(required_scopes_by_path={"/mcp/admin": ["admin"]}))
    auth = make_auth(stack)  # max_step_up=2
    with httpx.Client(auth=auth, transport=forbidding(stack, lambda: "admin")) as client:
        assert client.get(stack.server_url).status_code == 200
        with pytest.raises(InsufficientScopeError, match="already asked for"):
            client.get(f"{stack.server_url}/admin")  # one step-up asks for admin; the server still refuses
        with pytest.raises(InsufficientScopeError, match="already asked for"):
            client.get(f"{stack.server_url}/admin")  # no new authorization for the same refusal
    assert stack.count("authorize") == 2


def test_a_new_authorization_keeps_the_scopes_a_step_up_added(kind: ClientKind) -> None:
    stack = FakeMCPStack(FakeStackConfig(required_scopes_by_path={"/mcp/admin": ["admin"]}))
    auth = make_auth(stack)
    send_all(kind, stack, auth, [("GET", stack.server_url), ("GET", f"{stack.server_url}/admin")])
    assert "admin" in authorization_query(stack)["scope"].split()
    # The grant ends (the refresh token is refused): the new authorization asks for admin again, so the next admin
    # request needs no second step-up.
    start = time.time()
    stack.clock = lambda: start + 7200
    stack.fail_next("refresh", status=400, json={"error": "invalid_grant"})
    results = send_all(kind, stack, auth, [("GET", stack.server_url), ("GET", f"{stack.server_url}/admin")])
    assert [r.status for r in results] == [200, 200]
    assert stack.count("authorize") == 3
    assert "admin" in authorization_query(stack)["scope"].split()


# -- concurrency ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_concurrent_requests_on_expired_token_refresh_once(backend: str) -> None:
    import anyio
    import httpx

    stack = FakeMCPStack()
    auth = make_auth(stack)
    send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    make_stored_token_expiring(auth.store)
    expiring = make_auth(stack, store=auth.store)
    statuses: list[int] = []

    async def main() -> None:
        async with httpx.AsyncClient(auth=expiring, transport=DelayedTransport(stack.httpx_transport())) as client:

            async def one() -> None:
                statuses.append((await client.get(stack.server_url)).status_code)

            async with anyio.create_task_group() as group:
                for _ in range(100):
                    group.start_soon(one)

    anyio.run(main, backend=backend)
    assert statuses == [200] * 100
    assert stack.grants_used() == ["authorization_code", "refresh_token"]


def make_stored_token_expiring(store: MemoryTokenStore) -> None:
    """Leave the stored access token, issued an hour ago, 10 s of life: the next request refreshes it."""
    [key] = store.list_keys()
    stored = store.load(key)
    assert stored is not None
    assert stored.tokens is not None
    now = time.time()
    store.save(stored.with_tokens(replace(stored.tokens, expires_at=now + 10, issued_at=now - 3590)))


def test_threads_share_one_refresh() -> None:
    import concurrent.futures

    import httpx

    stack = FakeMCPStack()
    auth = make_auth(stack)
    send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    make_stored_token_expiring(auth.store)
    expiring = make_auth(stack, store=auth.store)
    with (
        httpx.Client(auth=expiring, transport=DelayedTransport(stack.httpx_transport())) as client,
        concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool,
    ):
        statuses = list(pool.map(lambda _: client.get(stack.server_url).status_code, range(64)))
    assert statuses == [200] * 64
    assert stack.grants_used() == ["authorization_code", "refresh_token"]


def test_concurrent_first_requests_authorize_once() -> None:
    import anyio
    import httpx

    stack = FakeMCPStack()
    auth = make_auth(stack)

    async def main() -> list[int]:
        async with httpx.AsyncClient(auth=auth, transport=stack.httpx_transport()) as client:
            results: list[int] = []

            async def one() -> None:
                results.append((await client.get(stack.server_url)).status_code)

            async with anyio.create_task_group() as group:
                for _ in range(20):
                    group.start_soon(one)
            return results

    assert anyio.run(main) == [200] * 20
    assert stack.count("authorize") == 1
    assert stack.count("register") == 1


# -- authorizers, secrets ------------------------------------------------------------------------------------------


def test_async_and_sync_callables_as_authorizers(kind: ClientKind) -> None:
    stack = FakeMCPStack()
    calls: list[str] = []

    async def async_authorizer(url: str) -> str:
        calls.append("async")
        return stack.authorizer(url)

    def sync_authorizer(url: str) -> str:
        calls.append("sync")
        return stack.authorizer(url)

    for authorizer in (async_authorizer, sync_authorizer):
        auth = make_auth(stack, authorizer=authorizer)
        assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert calls == ["async", "sync"]


def test_no_secret_in_logs_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mcp_oauth_auth")
    stack = FakeMCPStack(FakeStackConfig(registration_auth_method="client_secret_post"))
    callbacks: list[str] = []

    def authorizer(url: str) -> str:
        callbacks.append(stack.authorizer(url))
        return callbacks[-1]

    auth = make_auth(stack, authorizer=authorizer, refresh_skew=10_000)
    send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)] * 2)
    record = auth.record
    assert record is not None
    assert record.tokens is not None
    assert record.client.client_secret is not None
    code = parse_qs(urlsplit(callbacks[0]).query)["code"][0]
    secrets = [record.tokens.access_token, record.tokens.refresh_token, record.client.client_secret, code]
    text = caplog.text + repr(auth) + repr(record) + repr(record.tokens) + repr(record.client)
    for secret in secrets:
        assert secret
        assert secret not in text
    assert callbacks[0] not in caplog.text


# -- more of the contract --------------------------------------------------------------------------------------------


def test_no_scope_parameter_when_nothing_suggests_one() -> None:
    stack = FakeMCPStack(FakeStackConfig(prm_scopes_supported=[], scopes_supported=["mcp:read"]))
    send_all(ClientKind("httpx", "sync"), stack, make_auth(stack), [("GET", stack.server_url)])
    assert "scope" not in authorization_query(stack)


def test_without_refresh_token_a_rejected_token_means_new_authorization() -> None:
    stack = FakeMCPStack(FakeStackConfig(issue_refresh_tokens=False))
    auth = make_auth(stack)
    send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    assert auth.tokens is not None
    assert auth.tokens.refresh_token is None
    start = time.time()
    stack.clock = lambda: start + 7200
    assert send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert stack.grants_used() == ["authorization_code", "authorization_code"]


def test_network_error_during_refresh_keeps_credentials() -> None:
    import httpx

    stack = FakeMCPStack()
    auth = make_auth(stack)
    send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    before = auth.record
    assert before is not None
    inner = stack.httpx_transport()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            raise httpx.ConnectError("connection refused", request=request)
        response = inner.handle_request(request)
        response.read()
        return response

    start = time.time()
    stack.clock = lambda: start + 7200
    with httpx.Client(auth=auth, transport=httpx.MockTransport(handler)) as client, pytest.raises(httpx.ConnectError):
        client.get(stack.server_url)
    assert auth.store.load(before.key) == before


def test_streaming_body_is_not_replayed_but_credentials_are_renewed() -> None:
    import anyio
    import httpx

    stack = FakeMCPStack()
    auth = make_auth(stack)

    async def chunks() -> Any:
        yield b'{"streamed": '
        yield b"true}"

    class StreamingTransport(httpx.AsyncBaseTransport):
        """Consumes request bodies chunk by chunk like a network transport (MockTransport buffers them)."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
            answer = stack.handle(request.method, str(request.url), list(request.headers.items()), body)
            return httpx.Response(answer.status, headers=answer.headers, content=answer.body)

    async def main() -> int:
        async with httpx.AsyncClient(auth=auth, transport=StreamingTransport()) as client:
            with pytest.raises(RequestNotReplayableError):
                await client.post(stack.server_url, content=chunks())
            return (await client.post(stack.server_url, content=chunks())).status_code

    assert anyio.run(main) == 200
    assert stack.count("authorize") == 1


def test_unrelated_requests_are_not_delayed_by_an_authorization() -> None:
    import anyio
    import httpx

    stack = FakeMCPStack()
    person_may_approve = anyio.Event()
    order: list[str] = []

    async def slow_person(url: str) -> str:
        await person_may_approve.wait()
        return stack.authorizer(url)

    auth = make_auth(stack, authorizer=slow_person)

    async def main() -> None:
        async with httpx.AsyncClient(auth=auth, transport=stack.httpx_transport()) as client:

            async def protected() -> None:
                assert (await client.get(stack.server_url)).status_code == 200
                order.append("protected")

            async def unrelated() -> None:
                await client.get(f"{stack.base_url}/elsewhere")
                order.append("unrelated")
                person_may_approve.set()

            async with anyio.create_task_group() as group:
                group.start_soon(protected)
                await anyio.sleep(0.05)
                group.start_soon(unrelated)

    anyio.run(main)
    assert order == ["unrelated", "protected"]


def test_respx_routes_work_too() -> None:
    import anyio
    import httpx
    import respx

    stack = FakeMCPStack()
    auth = make_auth(stack)

    async def main() -> int:
        with respx.mock(assert_all_called=False) as router:
            stack.mock_respx(router)
            async with httpx.AsyncClient(auth=auth) as client:
                return (await client.get(stack.server_url)).status_code

    assert anyio.run(main) == 200
    assert stack.grants_used() == ["authorization_code"]


def test_a_server_that_forgot_the_dynamic_client_gets_a_new_registration(kind: ClientKind) -> None:
    store = MemoryTokenStore()
    before_restart = FakeMCPStack()
    send_all(kind, before_restart, make_auth(before_restart, store=store), [("GET", before_restart.server_url)])
    after_restart = FakeMCPStack()  # same URLs, but every client and token forgotten
    assert after_restart.server_url == before_restart.server_url
    start = time.time()
    after_restart.clock = lambda: start + 7200
    auth = make_auth(after_restart, store=store)
    assert send_all(kind, after_restart, auth, [("GET", after_restart.server_url)])[0].status == 200
    assert after_restart.count("register") == 1
    assert after_restart.count("authorize") == 1
    [key] = store.list_keys()
    record = store.load(key)
    assert record is not None
    assert record.client.client_id in after_restart.clients


def test_without_a_store_the_default_store_persists_across_instances() -> None:
    stack = FakeMCPStack()
    first = MCPOAuth(stack.server_url, authorizer=stack.authorizer, retry=FAST_RETRY)
    send_all(ClientKind("httpx", "sync"), stack, first, [("GET", stack.server_url)])
    assert "EncryptedFileTokenStore" in repr(first.store)  # no usable keyring in the tests: encrypted files
    second = MCPOAuth(stack.server_url, authorizer=stack.authorizer, retry=FAST_RETRY)
    assert send_all(ClientKind("httpx", "sync"), stack, second, [("GET", stack.server_url)])[0].status == 200
    assert stack.count("authorize") == 1  # the second "process" started authenticated
