from __future__ import annotations

import pytest

from mcp_oauth_auth.storage import MemoryTokenStore
from tests.storage.contract import MakeStore, StoreContract


class TestMemoryStore(StoreContract):
    persistent = False

    @pytest.fixture
    def make_store(self) -> MakeStore:
        return MemoryTokenStore


def test_a_record_lock_is_reentrant_for_its_holder_and_exclusive_for_others() -> None:
    from mcp_oauth_auth.storage import MemoryTokenStore
    from tests.storage.contract import make_record

    store = MemoryTokenStore()
    key = make_record().key
    mine, theirs = store.lock(key), store.lock(key)
    assert mine.try_acquire()
    assert mine.try_acquire()  # already held: still ours
    assert not theirs.try_acquire()
    mine.release()
    assert theirs.try_acquire()
    theirs.release()


def test_a_record_deleted_while_listing_is_left_out() -> None:
    from mcp_oauth_auth.storage import MemoryTokenStore
    from mcp_oauth_auth.storage.names import load_all
    from tests.storage.contract import make_record

    class Vanishing(MemoryTokenStore):
        def load(self, key):  # type: ignore[no-untyped-def]
            return None  # deleted by another process between list_keys and load

    store = Vanishing()
    store.save(make_record())
    assert load_all(store) == []
