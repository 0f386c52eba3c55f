"""The seed-compatible high-level API (OAuthHandler, MCPOAuthClient, TokenManager, TokenStoreFactory, OAuthTokens)
against the fake MCP authorization stack."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from mcp_oauth_auth import (
    AuthorizationDeniedError,
    ConfigurationError,
    InvalidGrantError,
    MCPOAuth,
    MCPOAuthClient,
    MemoryTokenStore,
    OAuthHandler,
    OAuthTokens,
    RetryPolicy,
    TemporaryOAuthError,
    TokenManager,
    TokenRevocationError,
    TokenSet,
    TokenStorageError,
    TokenStoreBackend,
    TokenStoreFactory,
)
from mcp_oauth_auth.handler import UNBOUND_ISSUER, is_unbound
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig, serve_stack

FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.0)


# -- helpers -----------------------------------------------------------------------------------------------------


class Network:
    """Routes requests to fake stacks by origin, and remembers every request (URL and Authorization header)."""

    def __init__(self, *stacks: FakeMCPStack) -> None:
        self.stacks = stacks
        self.seen: list[tuple[str, str | None]] = []
        self.unreachable: Callable[[httpx.Request], bool] = lambda request: False

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((str(request.url), request.headers.get("authorization")))
        if self.unreachable(request):
            raise httpx.ConnectError("connection refused", request=request)
        stack = self._stack_for(str(request.url))
        answer = stack.handle(request.method, str(request.url), request.headers.multi_items(), request.content)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)

    def _stack_for(self, url: str) -> FakeMCPStack:
        for stack in self.stacks:
            if url.startswith(stack.base_url + "/"):
                return stack
        raise AssertionError(f"no stack serves {url}")

    def authorizer(self, authorization_url: str) -> str:
        return self._stack_for(authorization_url).authorizer(authorization_url)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport())

    def handler(self, manager: TokenManager | None = None, **options: Any) -> OAuthHandler:
        return OAuthHandler(
            manager or TokenManager(backend=TokenStoreBackend.MEMORY),
            authorizer=self.authorizer,
            http_client=self.client,
            retry=FAST_RETRY,
            **options,
        )

    def tokens_sent_to(self, stack: FakeMCPStack) -> set[str]:
        return {
            header.removeprefix("Bearer ")
            for url, header in self.seen
            if header is not None and header.startswith("Bearer ") and url.startswith(stack.base_url + "/")
        }


def introspect(stack: FakeMCPStack, token: str) -> dict[str, Any]:
    with httpx.Client(transport=stack.httpx_transport()) as client:
        document: dict[str, Any] = client.post(stack.introspection_endpoint, data={"token": token}).json()
    return document


def stored_record(manager: TokenManager, name: str) -> Any:
    record = manager.find_credential(name)
    assert record is not None
    return record


def expire_stored_tokens(manager: TokenManager, name: str, *, refresh_token: str | None = None) -> None:
    """Make the stored access token (nearly) expired, as a restarted process would find it later."""
    record = stored_record(manager, name)
    now = time.time()
    tokens = replace(record.tokens, expires_at=now + 5, issued_at=now - 3600)
    if refresh_token is not None:
        tokens = replace(tokens, refresh_token=refresh_token)
    manager.store.save(record.with_tokens(tokens))


# -- OAuthHandler: the ladder ------------------------------------------------------------------------------------


def test_ensure_authenticated_authorizes_once_then_uses_the_stored_token() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    handler = network.handler()

    async def main() -> tuple[OAuthTokens, OAuthTokens]:
        first = await handler.ensure_authenticated_mcp("notes", stack.server_url)
        second = await handler.ensure_authenticated_mcp("notes", stack.server_url)
        return first, second

    first, second = anyio.run(main)
    assert first.access_token == second.access_token
    assert first.get_authorization_header() == f"Bearer {first.access_token}"
    assert first.refresh_token is not None
    assert first.expires_in is not None
    assert 3500 < first.expires_in <= 3600
    assert stack.count("authorize") == 1
    assert stack.count("token") == 1
    assert introspect(stack, first.access_token)["active"] is True
    assert stored_record(handler.token_manager, "notes").names == ("notes",)


def test_cached_then_refreshed_then_new_authorization() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    manager = TokenManager(backend="memory")

    def ensure() -> OAuthTokens:
        # A new handler each time: a restarted process with the same store.
        return anyio.run(network.handler(manager).ensure_authenticated_mcp, "notes", stack.server_url)

    authorized = ensure()
    assert stack.grants_used() == ["authorization_code"]

    cached = ensure()
    assert cached.access_token == authorized.access_token
    assert stack.grants_used() == ["authorization_code"]

    expire_stored_tokens(manager, "notes")
    refreshed = ensure()
    assert refreshed.access_token != authorized.access_token
    assert stack.grants_used() == ["authorization_code", "refresh_token"]
    assert stack.count("authorize") == 1

    expire_stored_tokens(manager, "notes", refresh_token="not-a-valid-refresh-token")
    reauthorized = ensure()
    assert stack.grants_used() == ["authorization_code", "refresh_token", "refresh_token", "authorization_code"]
    assert stack.count("authorize") == 2
    assert introspect(stack, reauthorized.access_token)["active"] is True
    assert stored_record(manager, "notes").names == ("notes",)


def test_twenty_concurrent_calls_share_one_authorization() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    handler = network.handler()
    results: list[OAuthTokens] = []

    async def main() -> None:
        async def one() -> None:
            results.append(await handler.ensure_authenticated_mcp("notes", stack.server_url))

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(one)

    anyio.run(main)
    assert len(results) == 20
    assert len({tokens.access_token for tokens in results}) == 1
    assert stack.count("authorize") == 1
    assert stack.count("register") == 1
    assert stack.count("token") == 1


def test_twenty_concurrent_calls_on_an_expiring_token_share_one_refresh() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    manager = TokenManager(backend="memory")
    anyio.run(network.handler(manager).ensure_authenticated_mcp, "notes", stack.server_url)
    expire_stored_tokens(manager, "notes")
    handler = network.handler(manager)
    results: list[OAuthTokens] = []

    async def main() -> None:
        async def one() -> None:
            results.append(await handler.ensure_authenticated_mcp("notes", stack.server_url))

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(one)

    anyio.run(main)
    assert len({tokens.access_token for tokens in results}) == 1
    assert stack.grants_used() == ["authorization_code", "refresh_token"]


def test_new_scopes_authorize_once_more_with_the_union() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    handler = network.handler()

    async def main() -> list[OAuthTokens]:
        return [
            await handler.ensure_authenticated_mcp("notes", stack.server_url, scopes=["mcp:read"]),
            await handler.ensure_authenticated_mcp("notes", stack.server_url, scopes=["mcp:read"]),
            await handler.ensure_authenticated_mcp("notes", stack.server_url, scopes="mcp:write"),
            await handler.ensure_authenticated_mcp("notes", stack.server_url, scopes=["mcp:write", "mcp:read"]),
            await handler.ensure_authenticated_mcp("notes", stack.server_url),
        ]

    tokens = anyio.run(main)
    assert stack.count("authorize") == 2
    first, second = stack.authorization_requests
    assert first["scope"].split() == ["mcp:read", "offline_access"]
    assert set(second["scope"].split()) == {"mcp:read", "mcp:write", "offline_access"}
    assert tokens[2].scope is not None
    assert "mcp:write" in tokens[2].scope.split()
    assert len({t.access_token for t in tokens[2:]}) == 1


# -- OAuthHandler: headers ---------------------------------------------------------------------------------------


def test_prepare_headers_adds_the_bearer_to_extra_headers() -> None:
    stack = FakeMCPStack()
    handler = Network(stack).handler()
    headers = anyio.run(
        lambda: handler.prepare_headers_for_mcp_server(
            "notes",
            stack.server_url,
            extra_headers={"Accept": "application/json", "authorization": "Basic c3RhbGU="},
        )
    )
    token = stored_record(handler.token_manager, "notes").tokens.access_token
    assert headers == {"Accept": "application/json", "Authorization": f"Bearer {token}"}


def test_get_authorization_header(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    manager = TokenManager(backend="memory")
    handler = network.handler(manager)
    assert handler.get_authorization_header("notes") is None
    tokens = anyio.run(handler.ensure_authenticated_mcp, "notes", stack.server_url)
    assert handler.get_authorization_header("notes") == f"Bearer {tokens.access_token}"
    # A handler that has not used the name yet finds the one credential carrying it.
    assert network.handler(manager).get_authorization_header("notes") == f"Bearer {tokens.access_token}"
    assert network.handler(manager).get_authorization_header("other") is None
    # An expired token is no header: this call cannot refresh.
    later = time.time() + 7200
    monkeypatch.setattr(time, "time", lambda: later)
    assert handler.get_authorization_header("notes") is None


# -- OAuthHandler: names -----------------------------------------------------------------------------------------


def test_a_name_reused_for_another_server_never_hands_out_the_first_servers_token() -> None:
    server_a = FakeMCPStack(base_url="https://a.test")
    server_b = FakeMCPStack(base_url="https://b.test")
    network = Network(server_a, server_b)
    manager = TokenManager(backend="memory")
    handler = network.handler(manager)

    token_a = anyio.run(handler.ensure_authenticated_mcp, "work", server_a.server_url).access_token
    assert handler.get_authorization_header("work") == f"Bearer {token_a}"
    token_b = anyio.run(handler.ensure_authenticated_mcp, "work", server_b.server_url).access_token

    assert token_a != token_b
    assert server_b.count("authorize") == 1  # B was not handed A's credential
    assert handler.get_authorization_header("work") == f"Bearer {token_b}"
    response = anyio.run(handler.authenticated_request, "work", server_b.server_url, server_b.server_url)
    assert response.status_code == 200
    assert network.tokens_sent_to(server_b) == {token_b}
    assert network.tokens_sent_to(server_a) == set()  # A's token went to A's token endpoint only as a form field
    assert introspect(server_b, token_b)["aud"] == server_b.server_url

    # The label moved: it is B's now, in the store too, for a restarted process.
    assert manager.find_credential("work") is not None
    assert stored_record(manager, "work").server_url == server_b.server_url
    assert manager.load_tokens("work", server_url=server_a.server_url) is None
    [record_a] = [r for r in manager.list_credentials() if r.server_url == server_a.server_url]
    assert record_a.names == ()
    assert network.handler(manager).get_authorization_header("work") == f"Bearer {token_b}"

    # Back to A: its stored credential is reused (no new authorization) and labelled again.
    again = anyio.run(handler.ensure_authenticated_mcp, "work", server_a.server_url)
    assert again.access_token == token_a
    assert server_a.count("authorize") == 1
    assert handler.get_authorization_header("work") == f"Bearer {token_a}"
    assert stored_record(manager, "work").server_url == server_a.server_url
    assert network.handler(manager).get_authorization_header("work") == f"Bearer {token_a}"


def test_a_failed_login_under_a_reused_name_gives_no_header() -> None:
    server_a = FakeMCPStack(base_url="https://a.test")
    server_b = FakeMCPStack(FakeStackConfig(deny_authorization=True), base_url="https://b.test")
    network = Network(server_a, server_b)
    handler = network.handler()
    anyio.run(handler.ensure_authenticated_mcp, "work", server_a.server_url)
    with pytest.raises(AuthorizationDeniedError):
        anyio.run(handler.ensure_authenticated_mcp, "work", server_b.server_url)
    assert handler.get_authorization_header("work") is None


def test_a_name_labelling_several_servers_elsewhere_is_ambiguous(caplog: pytest.LogCaptureFixture) -> None:
    server_a = FakeMCPStack(base_url="https://a.test")
    server_b = FakeMCPStack(base_url="https://b.test")
    network = Network(server_a, server_b)
    manager = TokenManager(backend="memory")
    # Another tool labelled both credentials "work" (MCPOAuth(name=...) does not move labels).
    tokens = {}
    for stack in (server_a, server_b):
        auth = MCPOAuth(stack.server_url, store=manager.store, authorizer=network.authorizer, name="work")
        with httpx.Client(transport=network.transport()) as client:
            tokens[stack.base_url] = auth.authenticate(client).access_token

    # A handler that has not used the name cannot know which server is meant: no header.
    assert network.handler(manager).get_authorization_header("work") is None
    # The manager picks the most recently updated one and says so; a URL chooses exactly.
    with caplog.at_level("WARNING", logger="mcp_oauth_auth"):
        assert stored_record(manager, "work").server_url == server_b.server_url
    assert "2 credentials are labelled 'work'" in caplog.text
    loaded = manager.load_tokens("work", server_url=server_a.server_url)
    assert loaded is not None
    assert loaded.access_token == tokens[server_a.base_url]


def test_two_names_for_one_server_share_its_credential() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    handler = network.handler()
    first = anyio.run(handler.ensure_authenticated_mcp, "a", stack.server_url)
    second = anyio.run(handler.ensure_authenticated_mcp, "b", stack.server_url)
    assert first.access_token == second.access_token
    assert stack.count("authorize") == 1
    assert stored_record(handler.token_manager, "a").names == ("a", "b")
    # Clearing one name deletes the shared credential: the other name has no token any more either.
    assert handler.clear_tokens("a") is True
    assert handler.get_authorization_header("b") is None
    assert handler.token_manager.list_credentials() == []


def test_logging_out_under_one_name_logs_out_the_other_names_of_the_server_too() -> None:
    stack = FakeMCPStack()
    handler = Network(stack).handler()
    anyio.run(handler.ensure_authenticated_mcp, "a", stack.server_url)
    anyio.run(handler.ensure_authenticated_mcp, "b", stack.server_url)
    assert handler.get_authorization_header("b") is not None
    outcomes = anyio.run(handler.logout, "a", stack.server_url)
    assert [o.revoked for o in outcomes] == [True, True]
    assert handler.get_authorization_header("a") is None
    assert handler.get_authorization_header("b") is None
    anyio.run(handler.ensure_authenticated_mcp, "b", stack.server_url)
    assert stack.count("authorize") == 2


def test_server_names_must_be_non_empty() -> None:
    handler = Network(FakeMCPStack()).handler()
    with pytest.raises(ConfigurationError):
        anyio.run(handler.ensure_authenticated_mcp, " ", "https://mcp.test/mcp")
    with pytest.raises(ConfigurationError):
        handler.get_authorization_header("")


def test_unknown_options_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="colour"):
        OAuthHandler(TokenManager(backend="memory"), colour="blue")


# -- OAuthHandler: clearing and logging out ----------------------------------------------------------------------


def test_clear_tokens_is_local_only() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    handler = network.handler()
    tokens = anyio.run(handler.ensure_authenticated_mcp, "notes", stack.server_url)
    assert handler.clear_tokens("notes") is True
    assert handler.clear_tokens("notes") is False
    assert stack.revocation_requests == []
    assert introspect(stack, tokens.access_token)["active"] is True  # the server was not told
    assert handler.token_manager.list_credentials() == []
    assert handler.get_authorization_header("notes") is None
    anyio.run(handler.ensure_authenticated_mcp, "notes", stack.server_url)
    assert stack.count("authorize") == 2


def test_logout_revokes_refresh_then_access_token_then_forgets() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    handler = network.handler()
    tokens = anyio.run(handler.ensure_authenticated_mcp, "notes", stack.server_url)
    outcomes = anyio.run(handler.logout, "notes", stack.server_url)
    assert [(o.token_type_hint, o.revoked) for o in outcomes] == [("refresh_token", True), ("access_token", True)]
    assert [r["token_type_hint"] for r in stack.revocation_requests] == ["refresh_token", "access_token"]
    assert introspect(stack, tokens.access_token)["active"] is False
    assert handler.token_manager.list_credentials() == []
    assert handler.get_authorization_header("notes") is None
    # Logged out means a new authorization next time.
    anyio.run(handler.ensure_authenticated_mcp, "notes", stack.server_url)
    assert stack.count("authorize") == 2


def test_a_refused_revocation_still_clears_locally_and_is_reported() -> None:
    stack = FakeMCPStack()
    handler = Network(stack).handler()
    anyio.run(handler.ensure_authenticated_mcp, "notes", stack.server_url)
    stack.fail_next("revoke", status=400, json={"error": "unsupported_token_type"}, times=2)
    outcomes = anyio.run(handler.logout, "notes", stack.server_url)
    assert [o.revoked for o in outcomes] == [False, False]
    assert all(isinstance(o.error, TokenRevocationError) for o in outcomes)
    assert handler.token_manager.list_credentials() == []
    assert handler.get_authorization_header("notes") is None


def test_an_unreachable_authorization_server_still_clears_locally_and_is_reported() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    handler = network.handler()
    tokens = anyio.run(handler.ensure_authenticated_mcp, "notes", stack.server_url)
    network.unreachable = lambda request: request.url.path.endswith("/revoke")
    outcomes = anyio.run(handler.logout, "notes", stack.server_url)
    assert [(o.token_type_hint, o.revoked) for o in outcomes] == [("refresh_token", False), ("access_token", False)]
    assert all(isinstance(o.error, TemporaryOAuthError) for o in outcomes)
    assert tokens.access_token not in str(outcomes[0].error)
    assert handler.token_manager.list_credentials() == []
    assert handler.get_authorization_header("notes") is None


def test_logout_without_a_url_is_local_only() -> None:
    stack = FakeMCPStack()
    handler = Network(stack).handler()
    anyio.run(handler.ensure_authenticated_mcp, "notes", stack.server_url)
    assert anyio.run(handler.logout, "notes") == []
    assert stack.revocation_requests == []
    assert handler.token_manager.list_credentials() == []


# -- OAuthHandler: requests --------------------------------------------------------------------------------------


def test_authenticated_request_logs_in_inline_and_stays_on_the_server() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    handler = network.handler()

    async def main() -> list[httpx.Response]:
        return [
            await handler.authenticated_request("notes", stack.server_url, stack.server_url, method="POST", json={}),
            await handler.authenticated_request("notes", stack.server_url, "/mcp/tools"),
        ]

    first, second = anyio.run(main)
    assert first.status_code == 200
    assert first.json()["method"] == "POST"
    assert second.json()["path"] == "/mcp/tools"
    assert stack.count("authorize") == 1
    assert stored_record(handler.token_manager, "notes").names == ("notes",)
    sent = len(network.seen)
    for elsewhere in ("https://elsewhere.test/mcp", "/other", "https://mcp.test/mcpx"):
        with pytest.raises(ConfigurationError, match="never sent there"):
            anyio.run(handler.authenticated_request, "notes", stack.server_url, elsewhere)
    assert len(network.seen) == sent


def test_a_shared_client_is_used_and_left_open() -> None:
    stack = FakeMCPStack()

    async def main() -> bool:
        async with httpx.AsyncClient(transport=stack.httpx_transport()) as client:
            handler = OAuthHandler(
                TokenManager(backend="memory"), authorizer=stack.authorizer, http_client=client, retry=FAST_RETRY
            )
            await handler.ensure_authenticated_mcp("notes", stack.server_url)
            response = await handler.authenticated_request("notes", stack.server_url, stack.server_url)
            assert response.status_code == 200
            return client.is_closed

    assert anyio.run(main) is False
    assert stack.count("authorize") == 1


def test_network_failures_raise_temporary_oauth_error() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    network.unreachable = lambda request: True
    handler = network.handler()
    with pytest.raises(TemporaryOAuthError) as caught:
        anyio.run(handler.ensure_authenticated_mcp, "notes", stack.server_url)
    assert caught.value.url is not None
    assert caught.value.url.startswith("https://mcp.test/")
    with pytest.raises(TemporaryOAuthError):
        anyio.run(handler.authenticated_request, "notes", stack.server_url, stack.server_url)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_through_a_real_loopback_server(backend: str) -> None:
    with serve_stack() as stack:
        handler = OAuthHandler(TokenManager(backend="memory"), authorizer=stack.authorizer)

        async def main() -> tuple[OAuthTokens, int, list[bool]]:
            tokens = await handler.ensure_authenticated_mcp("local", stack.server_url)
            response = await handler.authenticated_request("local", stack.server_url, stack.server_url)
            outcomes = await handler.logout("local", stack.server_url)
            return tokens, response.status_code, [outcome.revoked for outcome in outcomes]

        tokens, status, revoked = anyio.run(main, backend=backend)
    assert tokens.access_token
    assert status == 200
    assert revoked == [True, True]


# -- TokenManager ------------------------------------------------------------------------------------------------


def test_token_manager_keeps_hand_saved_tokens_in_an_unbound_record() -> None:
    manager = TokenManager(backend=TokenStoreBackend.MEMORY)
    tokens = OAuthTokens("access-1", expires_in=3600, refresh_token="refresh-1", scope="read")
    assert manager.load_tokens("svc") is None
    assert manager.has_valid_tokens("svc") is False
    manager.save_tokens("svc", tokens)
    loaded = manager.load_tokens("svc")
    assert loaded is not None
    assert (loaded.access_token, loaded.refresh_token, loaded.scope) == ("access-1", "refresh-1", "read")
    assert loaded.expires_at == tokens.expires_at
    assert manager.has_valid_tokens("svc") is True
    [record] = manager.list_credentials()
    assert is_unbound(record)
    assert record.issuer == UNBOUND_ISSUER
    assert record.names == ("svc",)
    # Hand-saved tokens belong to no server: a lookup for a server never finds them.
    assert manager.load_tokens("svc", server_url="https://mcp.test/mcp") is None
    assert manager.find_credential("svc") is None
    manager.save_tokens("svc", OAuthTokens("access-2"))
    assert [r.tokens.access_token if r.tokens else None for r in manager.list_credentials()] == ["access-2"]
    assert manager.delete_tokens("svc") is True
    assert manager.delete_tokens("svc") is False
    assert manager.list_credentials() == []


def test_token_manager_saves_into_the_labelled_credential() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    manager = TokenManager(backend="memory")
    anyio.run(network.handler(manager).ensure_authenticated_mcp, "notes", stack.server_url)
    before = stored_record(manager, "notes")
    manager.save_tokens("notes", OAuthTokens("imported", expires_in=60))
    after = stored_record(manager, "notes")
    assert after.key == before.key
    assert after.client == before.client
    assert after.tokens.access_token == "imported"
    assert len(manager.list_credentials()) == 1
    loaded = manager.load_tokens("notes", server_url=stack.server_url)
    assert loaded is not None
    assert loaded.access_token == "imported"
    assert manager.load_tokens("notes", server_url="https://other.test/mcp") is None
    assert manager.delete_tokens("notes", server_url="https://other.test/mcp") is False
    assert manager.delete_tokens("notes", server_url=stack.server_url) is True
    assert manager.list_credentials() == []


def test_an_expired_token_is_not_valid() -> None:
    manager = TokenManager(backend="memory")
    manager.save_tokens("svc", OAuthTokens("old", expires_in=60, issued_at=time.time() - 120))
    assert manager.load_tokens("svc") is not None
    assert manager.has_valid_tokens("svc") is False


def test_hand_saved_tokens_give_way_to_a_real_credential() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    manager = TokenManager(backend="memory")
    manager.save_tokens("notes", OAuthTokens("by-hand"))
    handler = network.handler(manager)
    assert handler.get_authorization_header("notes") is None  # never sent to a server on its own
    tokens = anyio.run(handler.ensure_authenticated_mcp, "notes", stack.server_url)
    assert tokens.access_token != "by-hand"
    [record] = manager.list_credentials()
    assert not is_unbound(record)
    loaded = manager.load_tokens("notes")
    assert loaded is not None
    assert loaded.access_token == tokens.access_token


def test_token_manager_with_an_encrypted_file_store(tmp_path: Path) -> None:
    manager = TokenManager(backend=TokenStoreBackend.ENCRYPTED_FILE, token_dir=tmp_path, password="correct horse")
    manager.save_tokens("svc", OAuthTokens("secret-access", refresh_token="secret-refresh", expires_in=600))
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert files
    assert not any(b"secret-access" in path.read_bytes() for path in files)

    reopened = TokenManager(backend="encrypted_file", token_dir=str(tmp_path), password="correct horse")
    loaded = reopened.load_tokens("svc")
    assert loaded is not None
    assert loaded.access_token == "secret-access"
    assert reopened.has_valid_tokens("svc") is True

    wrong = TokenManager(backend="encrypted_file", token_dir=tmp_path, password="wrong")
    with pytest.raises(TokenStorageError):
        wrong.save_tokens("other", OAuthTokens("x"))


def test_a_handler_over_an_encrypted_file_store_survives_a_restart(tmp_path: Path) -> None:
    stack = FakeMCPStack()
    network = Network(stack)

    def manager() -> TokenManager:
        return TokenManager(backend="encrypted_file", token_dir=tmp_path, password="pw")

    first = anyio.run(network.handler(manager()).ensure_authenticated_mcp, "notes", stack.server_url)
    again = anyio.run(network.handler(manager()).ensure_authenticated_mcp, "notes", stack.server_url)
    assert again.access_token == first.access_token
    assert stack.count("authorize") == 1
    assert [r.names for r in manager().list_credentials()] == [("notes",)]


def test_token_manager_options_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="unknown credential store"):
        TokenManager(backend="floppy-disk")
    with pytest.raises(ConfigurationError):
        TokenManager(backend="memory", password="pw")
    with pytest.raises(ConfigurationError):
        TokenManager(backend="memory", store=MemoryTokenStore())
    with pytest.raises(ConfigurationError):
        TokenManager(backend="encrypted_file", colour="blue")
    store = MemoryTokenStore()
    assert TokenManager(store=store).store is store


def test_vault_options_use_the_seed_names() -> None:
    manager = TokenManager(
        backend=TokenStoreBackend.VAULT,
        vault_url="http://127.0.0.1:1",
        vault_token="s.test",
        vault_mount_point="kv",
        vault_path_prefix="team",
    )
    assert "127.0.0.1:1" in repr(manager.store)
    assert "kv" in repr(manager.store)


def test_token_store_factory() -> None:
    # The test environment has no usable OS keyring and no Vault (see tests/conftest.py).
    assert TokenStoreFactory.get_available_backends() == [TokenStoreBackend.ENCRYPTED_FILE, TokenStoreBackend.MEMORY]
    names = [status.name for status in TokenStoreFactory.describe_backends()]
    assert names == ["keyring", "encrypted_file", "vault", "memory"]
    assert isinstance(TokenStoreFactory.create("memory"), MemoryTokenStore)


# -- OAuthTokens -------------------------------------------------------------------------------------------------


def test_oauth_tokens_expiry_is_absolute() -> None:
    issued = 1_000_000.0
    tokens = OAuthTokens("abc", expires_in=3600, issued_at=issued)
    assert tokens.expires_at == issued + 3600
    assert tokens.is_expired(now=issued + 3599) is False
    assert tokens.is_expired(now=issued + 3600) is True
    assert tokens.is_expired(leeway=60, now=issued + 3550) is True
    assert tokens.seconds_left(now=issued + 600) == 3000
    assert OAuthTokens("abc").is_expired() is False
    assert OAuthTokens("abc").seconds_left() is None
    assert OAuthTokens("abc", expires_in=60).is_expired() is False
    assert OAuthTokens("abc", expires_in=60, issued_at=time.time() - 61).is_expired() is True


def test_oauth_tokens_header_dict_and_repr() -> None:
    tokens = OAuthTokens("the-access", "bearer", 3600, "the-refresh", "read write")
    assert tokens.get_authorization_header() == "Bearer the-access"
    document = tokens.to_dict()
    assert json.loads(json.dumps(document)) == document
    assert document["access_token"] == "the-access"
    assert document["expires_in"] == 3600
    assert OAuthTokens.from_dict(document) == tokens
    assert "the-access" not in repr(tokens)
    assert "the-refresh" not in repr(tokens)
    with pytest.raises(ConfigurationError):
        OAuthTokens("")


def test_oauth_tokens_from_a_token_response_and_a_token_set() -> None:
    response = {"access_token": "a", "token_type": "Bearer", "expires_in": 120, "refresh_token": "r"}
    tokens = OAuthTokens.from_dict(response)
    assert tokens.expires_at is not None
    assert abs(tokens.expires_at - (time.time() + 120)) < 5

    now = time.time()
    token_set = TokenSet("a", expires_at=now + 90, refresh_token="r", scope="s", id_token="i", issued_at=now - 30)
    converted = OAuthTokens.from_token_set(token_set, now=now)
    assert converted.expires_in == 90
    assert converted.expires_at == token_set.expires_at
    back = converted.to_token_set()
    assert (back.access_token, back.expires_at, back.refresh_token, back.scope, back.id_token) == (
        "a",
        now + 90,
        "r",
        "s",
        "i",
    )


@pytest.mark.parametrize(
    "data",
    [
        {"token_type": "Bearer"},
        {"access_token": ""},
        {"access_token": 5},
        {"access_token": "a", "expires_in": "soon"},
        {"access_token": "a", "expires_in": "²"},
        {"access_token": "a", "expires_in": float("nan")},
        {"access_token": "a", "expires_in": True},
        {"access_token": "a", "issued_at": "yesterday"},
        {"access_token": "a", "expires_at": float("inf")},
        {"access_token": "a", "refresh_token": 7},
        {"access_token": "a", "scope": ["read"]},
        {"access_token": "a", "token_type": 1},
    ],
)
def test_oauth_tokens_from_bad_data_is_a_configuration_error(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="OAuthTokens"):
        OAuthTokens.from_dict(data)


def test_oauth_tokens_accept_numeric_strings_as_token_responses_send_them() -> None:
    tokens = OAuthTokens.from_dict({"access_token": "a", "expires_in": "120", "issued_at": "1000"})
    assert (tokens.expires_in, tokens.expires_at) == (120, 1120.0)


# -- MCPOAuthClient ----------------------------------------------------------------------------------------------


def test_mcp_oauth_client_step_by_step() -> None:
    stack = FakeMCPStack()

    async def main() -> None:
        client = MCPOAuthClient(
            stack.server_url,
            authorizer=stack.authorizer,
            http_client=lambda: httpx.AsyncClient(transport=stack.httpx_transport()),
        )
        assert client.authorization_url is None
        metadata = await client.discover_authorization_server()
        assert metadata["issuer"] == stack.issuer
        assert client.issuer == stack.issuer
        assert client.authorization_url == stack.authorization_endpoint
        assert client.token_url == stack.token_endpoint
        assert client.registration_endpoint == stack.registration_endpoint
        assert client.revocation_endpoint == stack.revocation_endpoint
        assert client.scopes_supported == ["mcp:read", "mcp:write", "admin", "offline_access"]
        assert client.code_challenge_methods_supported == ["S256"]
        assert client.resource == stack.server_url

        registration = await client.register_client(
            client_name="Step by step", redirect_uris=["http://127.0.0.1:8765/callback"]
        )
        assert registration["client_id"] == client.client_id
        assert stack.registration_requests[0]["client_name"] == "Step by step"
        assert stack.registration_requests[0]["redirect_uris"] == ["http://127.0.0.1:8765/callback"]

        tokens = await client.authorize(scopes=["mcp:read"])
        assert stack.count("register") == 1  # the registration was reused
        [authorization] = stack.authorization_requests
        assert authorization["redirect_uri"] == "http://127.0.0.1:8765/callback"
        assert authorization["code_challenge_method"] == "S256"
        assert authorization["resource"] == stack.server_url
        assert introspect(stack, tokens.access_token)["active"] is True
        assert tokens.refresh_token is not None

        refreshed = await client.refresh_token(tokens.refresh_token)
        assert refreshed.access_token != tokens.access_token
        assert client.tokens == refreshed
        with pytest.raises(InvalidGrantError):
            await client.refresh_token(tokens.refresh_token)  # rotated: the old one is dead (and kills the grant)

        assert await client.revoke_token(refreshed.access_token, "access_token") is True
        assert stack.revocation_requests[-1]["token_type_hint"] == "access_token"
        assert introspect(stack, refreshed.access_token)["active"] is False

    anyio.run(main)
    assert stack.grants_used() == ["authorization_code", "refresh_token", "refresh_token"]


def test_mcp_oauth_client_with_a_pre_registered_client() -> None:
    stack = FakeMCPStack(FakeStackConfig(registration_enabled=False))
    stack.add_client("pre-registered", redirect_uris=["http://127.0.0.1:9/callback"])

    async def main() -> None:
        client = MCPOAuthClient(
            stack.server_url,
            "http://127.0.0.1:9/callback",
            authorizer=stack.authorizer,
            client_id="pre-registered",
            http_client=lambda: httpx.AsyncClient(transport=stack.httpx_transport()),
        )
        tokens = await client.authorize()
        assert tokens.refresh_token is not None
        assert introspect(stack, tokens.access_token)["client_id"] == "pre-registered"
        await client.refresh_token(tokens.refresh_token)

    anyio.run(main)
    assert stack.count("register") == 0
    assert stack.grants_used() == ["authorization_code", "refresh_token"]


def test_mcp_oauth_client_errors() -> None:
    stack = FakeMCPStack()
    network = Network(stack)

    async def main() -> None:
        client = MCPOAuthClient(stack.server_url, authorizer=stack.authorizer, http_client=network.client)
        with pytest.raises(ConfigurationError, match="register_client"):
            await client.refresh_token("anything")
        with pytest.raises(ConfigurationError):
            await client.register_client(redirect_uris=["http://127.0.0.1:1/a", "http://127.0.0.1:2/b"])
        network.unreachable = lambda request: True
        unreachable = MCPOAuthClient(stack.server_url, authorizer=stack.authorizer, http_client=network.client)
        with pytest.raises(TemporaryOAuthError):
            await unreachable.discover_authorization_server()

    anyio.run(main)
