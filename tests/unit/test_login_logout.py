"""Logging in ahead of time (MCPOAuth.authenticate) and logging out with revocation (MCPOAuth.logout)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore, RetryPolicy, TokenRevocationError
from mcp_oauth_auth.testing import FakeMCPStack, serve_stack

from ..httpx2_support import needs_httpx2

FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.0)


def make_auth(stack: FakeMCPStack, store: MemoryTokenStore | None = None) -> MCPOAuth:
    return MCPOAuth(stack.server_url, store=store or MemoryTokenStore(), authorizer=stack.authorizer, retry=FAST_RETRY)


def introspect(stack: FakeMCPStack, token: str) -> dict[str, Any]:
    with httpx.Client(transport=stack.httpx_transport()) as client:
        response = client.post(stack.introspection_endpoint, data={"token": token})
    document: dict[str, Any] = response.json()
    return document


def test_authenticate_logs_in_without_a_protected_request() -> None:
    stack = FakeMCPStack()
    auth = make_auth(stack)
    with httpx.Client(transport=stack.httpx_transport()) as client:
        tokens = auth.authenticate(client)
        assert tokens.access_token
        assert stack.count("resource") == 0
        assert stack.count("authorize") == 1
        assert auth.authenticate(client) == tokens  # stored and valid: nothing more to do
    assert stack.count("token") == 1
    with httpx.Client(auth=auth, transport=stack.httpx_transport()) as client:
        assert client.get(stack.server_url).status_code == 200
    assert stack.count("token") == 1


@pytest.mark.parametrize("library", ["httpx", pytest.param("httpx2", marks=needs_httpx2)])
def test_aauthenticate_through_an_async_client(library: str) -> None:
    stack = FakeMCPStack()
    auth = make_auth(stack)

    async def main() -> None:
        if library == "httpx":
            client: Any = httpx.AsyncClient(transport=stack.httpx_transport())
        else:
            import httpx2

            client = httpx2.AsyncClient(transport=stack.httpx2_transport())
        async with client:
            tokens = await auth.aauthenticate(client)
            assert introspect(stack, tokens.access_token)["active"] is True

    anyio.run(main)


def test_logout_revokes_refresh_then_access_token_and_forgets_the_record() -> None:
    stack = FakeMCPStack()
    store = MemoryTokenStore()
    auth = make_auth(stack, store)
    with httpx.Client(transport=stack.httpx_transport()) as client:
        tokens = auth.authenticate(client)
        outcomes = auth.logout(client)
    assert [(o.token_type_hint, o.revoked) for o in outcomes] == [("refresh_token", True), ("access_token", True)]
    assert [r["token_type_hint"] for r in stack.revocation_requests] == ["refresh_token", "access_token"]
    assert introspect(stack, tokens.access_token)["active"] is False
    assert store.list_keys() == []
    assert auth.tokens is None
    # The next protected request needs (and gets) a new authorization.
    with httpx.Client(auth=auth, transport=stack.httpx_transport()) as client:
        assert client.get(stack.server_url).status_code == 200
    assert stack.count("authorize") == 2


def test_logout_revokes_what_the_store_holds_now() -> None:
    stack = FakeMCPStack()
    store = MemoryTokenStore()
    auth = make_auth(stack, store)
    with httpx.Client(transport=stack.httpx_transport()) as client:
        auth.authenticate(client)
        # Another process refreshed meanwhile: the store holds newer tokens than this object.
        peer = make_auth(stack, store)
        peer_tokens = peer.authenticate(client)
        [key] = store.list_keys()
        record = store.load(key)
        assert record is not None
        assert record.tokens == peer_tokens
        auth.logout(client)
    assert {r["token"] for r in stack.revocation_requests} == {peer_tokens.refresh_token, peer_tokens.access_token}


def test_revocation_failure_is_reported_and_the_record_still_removed() -> None:
    stack = FakeMCPStack()
    store = MemoryTokenStore()
    auth = make_auth(stack, store)
    with httpx.Client(transport=stack.httpx_transport()) as client:
        auth.authenticate(client)
        stack.fail_next("revoke", status=400, json={"error": "unsupported_token_type"}, times=2)
        outcomes = auth.logout(client)
    assert [o.revoked for o in outcomes] == [False, False]
    assert all(isinstance(o.error, TokenRevocationError) for o in outcomes)
    assert outcomes[0].error is not None
    assert outcomes[0].error.error == "unsupported_token_type"
    assert store.list_keys() == []


def test_logout_without_revocation_or_record() -> None:
    stack = FakeMCPStack()
    store = MemoryTokenStore()
    auth = make_auth(stack, store)
    with httpx.Client(transport=stack.httpx_transport()) as client:
        assert auth.logout(client) == []  # nothing stored: nothing to do
        auth.authenticate(client)
        assert auth.logout(client, revoke=False) == []
    assert stack.revocation_requests == []
    assert store.list_keys() == []


def test_secrets_never_in_outcomes() -> None:
    stack = FakeMCPStack()
    auth = make_auth(stack)
    with httpx.Client(transport=stack.httpx_transport()) as client:
        tokens = auth.authenticate(client)
        stack.fail_next("revoke", status=503, times=10)
        outcomes = auth.logout(client)
    text = json.dumps([repr(o) + str(o.error) for o in outcomes])
    assert tokens.access_token not in text
    assert tokens.refresh_token is not None
    assert tokens.refresh_token not in text


def test_without_a_client_a_default_one_is_used() -> None:
    with serve_stack() as stack:
        auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), authorizer=stack.authorizer)
        tokens = auth.authenticate()
        assert tokens.access_token
        outcomes = anyio.run(auth.alogout)
    assert [o.revoked for o in outcomes] == [True, True]


def test_names_label_the_record_and_survive_refresh_and_reauthorization() -> None:
    import time
    from dataclasses import replace

    stack = FakeMCPStack()
    store = MemoryTokenStore()
    with httpx.Client(transport=stack.httpx_transport()) as client:
        MCPOAuth(stack.server_url, store=store, authorizer=stack.authorizer, name="notes").authenticate(client)
        [key] = store.list_keys()
        record = store.load(key)
        assert record is not None
        assert record.names == ("notes",)
        store.save(record.with_tokens(None))  # the grant is gone: the next login authorizes anew
        MCPOAuth(stack.server_url, store=store, authorizer=stack.authorizer, name="work").authenticate(client)
        record = store.load(key)
        assert record is not None
        assert record.names == ("notes", "work")
        assert record.tokens is not None
        now = time.time()
        store.save(record.with_tokens(replace(record.tokens, expires_at=now + 5, issued_at=now - 3600)))
        MCPOAuth(stack.server_url, store=store, authorizer=stack.authorizer).authenticate(client)  # a refresh
    assert stack.grants_used() == ["authorization_code", "authorization_code", "refresh_token"]
    record = store.load(key)
    assert record is not None
    assert record.names == ("notes", "work")


def test_authenticate_replaces_an_expired_token_that_cannot_be_refreshed() -> None:
    import time
    from dataclasses import replace

    from mcp_oauth_auth.testing import FakeStackConfig

    stack = FakeMCPStack(FakeStackConfig(issue_refresh_tokens=False))
    store = MemoryTokenStore()
    with httpx.Client(transport=stack.httpx_transport()) as client:
        make_auth(stack, store).authenticate(client)
        [key] = store.list_keys()
        record = store.load(key)
        assert record is not None
        assert record.tokens is not None
        assert record.tokens.refresh_token is None
        store.save(record.with_tokens(replace(record.tokens, expires_at=time.time() - 60)))
        tokens = make_auth(stack, store).authenticate(client)
    assert not tokens.expires_within(0)
    assert stack.count("authorize") == 2


class UnreachableRevocation(httpx.BaseTransport, httpx.AsyncBaseTransport):
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/revoke"):
            raise httpx.ConnectError("connection refused", request=request)
        response: httpx.Response = self.inner.handle_request(request)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/revoke"):
            raise httpx.ConnectError("connection refused", request=request)
        response: httpx.Response = await self.inner.handle_async_request(request)
        return response


def test_logout_with_an_unreachable_revocation_endpoint_still_forgets_locally() -> None:
    from mcp_oauth_auth import TemporaryOAuthError

    stack = FakeMCPStack()
    store = MemoryTokenStore()
    auth = make_auth(stack, store)
    with httpx.Client(transport=UnreachableRevocation(stack.httpx_transport())) as client:
        auth.authenticate(client)
        outcomes = auth.logout(client)
    assert [o.revoked for o in outcomes] == [False, False]
    assert all(isinstance(o.error, TemporaryOAuthError) for o in outcomes)
    assert "could not reach" in str(outcomes[0].error)
    assert store.list_keys() == []

    async def main() -> list[Any]:
        async with httpx.AsyncClient(transport=UnreachableRevocation(stack.httpx_transport())) as client:
            await auth.aauthenticate(client)
            return await auth.alogout(client)

    assert [o.revoked for o in anyio.run(main)] == [False, False]
    assert store.list_keys() == []


def test_other_failures_of_the_client_are_not_swallowed() -> None:
    stack = FakeMCPStack()

    class Broken(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            raise RuntimeError("a bug in a custom transport")

    with httpx.Client(transport=Broken()) as client, pytest.raises(RuntimeError, match="custom transport"):
        make_auth(stack).authenticate(client)


def test_authenticate_with_new_scopes_authorizes_once_for_the_union() -> None:
    stack = FakeMCPStack()
    auth = make_auth(stack)
    with httpx.Client(transport=stack.httpx_transport()) as client:
        auth.authenticate(client, scopes="mcp:read")
        auth.authenticate(client, scopes=["mcp:read"])  # nothing new: no authorization
        assert stack.count("authorize") == 1
        tokens = auth.authenticate(client, scopes=["admin"])
        assert stack.count("authorize") == 2
        assert set(stack.authorization_requests[-1]["scope"].split()) >= {"mcp:read", "admin"}
        assert auth.authenticate(client, scopes="admin mcp:read") == tokens
    assert stack.count("authorize") == 2
