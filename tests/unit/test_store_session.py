"""The drivers' store session (driving/session.py): record locks taken, waited for and released, sync and async."""

from __future__ import annotations

import anyio
import pytest

from mcp_oauth_auth.driving.session import StoreSession
from mcp_oauth_auth.exceptions import StoreLockedError, TokenStorageError
from mcp_oauth_auth.flow.effects import LoadRecord, LockRecord, UnlockRecord
from mcp_oauth_auth.storage import MemoryTokenStore
from tests.storage.contract import make_record


def test_unlocking_what_is_not_locked_is_harmless_and_close_releases_the_rest() -> None:
    store = MemoryTokenStore()
    key = make_record().key
    session = StoreSession(store, lock_timeout=1.0)
    session.perform(UnlockRecord(key))
    session.perform(LockRecord(key))
    other = store.lock(key)
    assert not other.try_acquire()
    session.close()
    assert other.try_acquire()
    other.release()


def test_an_async_lock_waits_for_its_holder_then_gives_up_naming_it() -> None:
    store = MemoryTokenStore()
    key = make_record().key
    holder = store.lock(key)
    assert holder.try_acquire()

    async def main() -> None:
        session = StoreSession(store, lock_timeout=0.05)
        with pytest.raises(StoreLockedError, match=r"stayed locked for 0\.05 s"):
            await session.perform_async(LockRecord(key))
        await session.aclose()
        holder.release()
        session = StoreSession(store, lock_timeout=5.0)
        await session.perform_async(LockRecord(key))
        assert not store.lock(key).try_acquire()
        await session.aclose()
        assert store.lock(key).try_acquire()

    anyio.run(main)


def test_what_is_not_a_storage_effect_is_refused() -> None:
    with pytest.raises(TokenStorageError, match="not a storage effect"):  # a store failure, as all of them
        StoreSession(MemoryTokenStore(), 1.0).perform(object())  # type: ignore[arg-type]
    assert StoreSession(MemoryTokenStore(), 1.0).perform(LoadRecord(make_record().key)) is None


def test_a_non_blocking_store_is_used_without_worker_threads() -> None:
    class NonBlocking(MemoryTokenStore):
        blocking = False  # an in-memory store: no call of it can block the event loop

    store = NonBlocking()
    key = make_record().key

    async def main() -> None:
        session = StoreSession(store, lock_timeout=1.0)
        assert not session.blocking
        await session.perform_async(LockRecord(key))
        assert not store.lock(key).try_acquire()
        await session.aclose()
        assert store.lock(key).try_acquire()

    anyio.run(main)
