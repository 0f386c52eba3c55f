"""MCPOAuth with its store: record locks taken, waited for, timed out and always released; custom stores."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore, RetryPolicy
from mcp_oauth_auth.exceptions import StoreLockedError, TokenRefreshError, TokenStorageError
from mcp_oauth_auth.records import CredentialRecord, RecordKey
from mcp_oauth_auth.testing import FakeMCPStack

from .clients import KIND_PARAMS, ClientKind, send_all

FAST_RETRY = RetryPolicy(attempts=1, base_delay=0.0)


@pytest.fixture(params=KIND_PARAMS)
def kind(request: pytest.FixtureRequest) -> ClientKind:
    assert isinstance(request.param, ClientKind)
    return request.param


def authenticated(stack: FakeMCPStack, store: Any) -> RecordKey:
    """Authorize once into ``store``, then leave the stored token an hour old with 10 s to live."""
    auth = MCPOAuth(stack.server_url, store=store, authorizer=stack.authorizer, retry=FAST_RETRY)
    send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    [key] = store.list_keys()
    record = store.load(key)
    assert record is not None
    assert record.tokens is not None
    now = time.time()
    store.save(record.with_tokens(replace(record.tokens, expires_at=now + 10, issued_at=now - 3590)))
    return key


def fresh_auth(stack: FakeMCPStack, store: Any, **options: Any) -> MCPOAuth:
    """A new MCPOAuth on the same store: what another process would be."""
    return MCPOAuth(stack.server_url, store=store, authorizer=stack.authorizer, retry=FAST_RETRY, **options)


def test_a_held_record_lock_times_out_with_a_clear_error(kind: ClientKind) -> None:
    stack = FakeMCPStack()
    store = MemoryTokenStore()
    key = authenticated(stack, store)
    other_process = store.lock(key)
    assert other_process.try_acquire()
    auth = fresh_auth(stack, store, lock_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(StoreLockedError, match="stayed locked") as caught:
        send_all(kind, stack, auth, [("GET", stack.server_url)])
    assert 0.2 <= time.monotonic() - started < 5
    assert str(key) in str(caught.value)
    assert stack.grants_used() == ["authorization_code"]  # nobody spent the refresh token
    other_process.release()
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert stack.grants_used() == ["authorization_code", "refresh_token"]


def test_waiting_for_a_peer_that_finishes_then_adopting_its_token(kind: ClientKind) -> None:
    import threading

    stack = FakeMCPStack()
    store = MemoryTokenStore()
    key = authenticated(stack, store)
    peer_lock = store.lock(key)
    assert peer_lock.try_acquire()
    peer = fresh_auth(stack, store, lock_timeout=10)

    def peer_refreshes_then_releases() -> None:
        time.sleep(0.3)
        record = store.load(key)
        assert record is not None
        assert record.tokens is not None
        # The peer's refresh, done by hand: rotate through the fake AS, save, release.
        try:
            tokens = stack.issue_tokens(record.client.client_id, scopes=["mcp:read"])
            store.save(
                record.with_tokens(
                    replace(record.tokens, access_token=tokens["access_token"], expires_at=time.time() + 3600)
                )
            )
        finally:
            peer_lock.release()

    thread = threading.Thread(target=peer_refreshes_then_releases)
    thread.start()
    try:
        assert send_all(kind, stack, peer, [("GET", stack.server_url)])[0].status == 200
    finally:
        thread.join()
    assert stack.grants_used() == ["authorization_code"]  # we adopted the peer's token: no refresh of ours


def test_a_failed_refresh_releases_the_lock(kind: ClientKind) -> None:
    stack = FakeMCPStack()
    store = MemoryTokenStore()
    key = authenticated(stack, store)
    auth = fresh_auth(stack, store)
    start = time.time()
    stack.clock = lambda: start + 7200  # the stored token is expired for the server too
    stack.fail_next("refresh", status=400, json={"error": "invalid_request"}, times=2)
    with pytest.raises(TokenRefreshError):
        send_all(kind, stack, auth, [("GET", stack.server_url)])
    probe = store.lock(key)
    assert probe.try_acquire()
    probe.release()
    record = store.load(key)
    assert record is not None
    assert record.tokens is not None  # a non-final error keeps the credential


class PlainStore:
    """A user's own store: only the four protocol methods, no lock, a blocking one (run in a worker thread)."""

    def __init__(self) -> None:
        self.records: dict[RecordKey, CredentialRecord] = {}
        self.fail = False

    def load(self, key: RecordKey) -> CredentialRecord | None:
        if self.fail:
            raise OSError("disk on fire")
        return self.records.get(key)

    def save(self, record: CredentialRecord) -> None:
        self.records[record.key] = record

    def delete(self, key: RecordKey) -> None:
        self.records.pop(key, None)

    def list_keys(self) -> list[RecordKey]:
        return list(self.records)


def test_a_store_without_locks_still_refreshes_once(kind: ClientKind) -> None:
    stack = FakeMCPStack()
    store = PlainStore()
    authenticated(stack, store)
    auth = fresh_auth(stack, store)
    results = send_all(kind, stack, auth, [("GET", stack.server_url)] * 3)
    assert [r.status for r in results] == [200] * 3
    assert stack.grants_used() == ["authorization_code", "refresh_token"]


def test_store_failures_are_token_storage_errors(kind: ClientKind) -> None:
    stack = FakeMCPStack()
    store = PlainStore()
    authenticated(stack, store)
    store.fail = True
    auth = fresh_auth(stack, store)
    with pytest.raises(TokenStorageError, match="disk on fire"):
        send_all(kind, stack, auth, [("GET", stack.server_url)])


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_cancelled_during_a_refresh_leaves_the_lock_free(backend: str) -> None:
    import anyio
    import httpx

    stack = FakeMCPStack()
    store = PlainStoreWithFileLikeLock()
    key = authenticated(stack, store)
    auth = fresh_auth(stack, store)
    inner = stack.httpx_transport()

    class SlowTokenEndpoint(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/token"):
                assert not store.lock(key).try_acquire()  # the refresh holds the record lock ...
                await anyio.sleep(30)
            return await inner.handle_async_request(request)

    async def main() -> None:
        async with httpx.AsyncClient(auth=auth, transport=SlowTokenEndpoint()) as client:
            with anyio.move_on_after(0.5) as scope:
                await client.get(stack.server_url)
            assert scope.cancelled_caught
        probe = store.lock(key)
        assert probe.try_acquire()  # ... and the cancelled refresh gave it back
        probe.release()

    anyio.run(main, backend=backend)


class PlainStoreWithFileLikeLock(PlainStore):
    """A blocking store with its own locks, like the file and keyring stores."""

    def __init__(self) -> None:
        super().__init__()
        self._memory = MemoryTokenStore()

    def lock(self, key: RecordKey) -> Any:
        return self._memory.lock(key)
