"""Performing the flow's storage effects against a :class:`~mcp_oauth_auth.storage.TokenStore` (the store session
of :class:`~mcp_oauth_auth.driving.perform.Performer`, also used on its own by ``TokenManager``).

One :class:`StoreSession` serves one run of a flow (a refresh, an authorization): it loads, saves and deletes
records, takes and releases the store's record locks (polling, so that neither a thread nor an event loop blocks
on another process), and when the run ends, however it ends, releases every lock the run still holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from mcp_oauth_auth.exceptions import StoreLockedError
from mcp_oauth_auth.flow.effects import (
    DeleteRecord,
    Effect,
    LoadRecord,
    LoadRecords,
    LockRecord,
    SaveRecord,
    UnlockRecord,
)
from mcp_oauth_auth.records import RecordKey
from mcp_oauth_auth.storage.base import RecordLock, TokenStore
from mcp_oauth_auth.storage.memory import MutexRecordLock
from mcp_oauth_auth.storage.names import guarded, serves

__all__ = ["StoreSession"]

_FIRST_POLL = 0.005
_MAX_POLL = 0.1


class StoreSession:
    def __init__(self, store: TokenStore, lock_timeout: float) -> None:
        self.store = store
        self.blocking = getattr(store, "blocking", True) is not False
        self.lock_timeout = lock_timeout
        self._locks: dict[RecordKey, RecordLock] = {}

    # -- sync ----------------------------------------------------------------------------------------------

    def perform(self, effect: Effect) -> Any:
        if isinstance(effect, LockRecord):
            lock = self._lock_for(effect.key)
            self._wait(effect.key, lock, lambda: guarded(lock.try_acquire), time.sleep)
            return None
        if isinstance(effect, UnlockRecord):
            unlocked = self._locks.pop(effect.key, None)
            if unlocked is not None:
                guarded(unlocked.release)
            return None
        return guarded(lambda: self._access(effect))

    def close(self) -> None:
        """Release every lock still held (the flow failed or was abandoned between lock and unlock)."""
        locks, self._locks = list(self._locks.values()), {}
        for lock in locks:
            guarded(lock.release)

    # -- async ---------------------------------------------------------------------------------------------

    async def perform_async(self, effect: Effect) -> Any:
        if not self.blocking:
            return self.perform(effect)
        import anyio
        import anyio.to_thread

        if isinstance(effect, LockRecord):
            # The lock object is registered before the first attempt, so that aclose() releases it even when the
            # task is cancelled while a worker thread is acquiring it.
            lock = self._lock_for(effect.key)
            start = time.monotonic()
            delay = _FIRST_POLL
            while not await anyio.to_thread.run_sync(guarded, lock.try_acquire):
                self._check_deadline(effect.key, lock, start)
                await anyio.sleep(delay)
                delay = min(delay * 2, _MAX_POLL)
            return None
        return await anyio.to_thread.run_sync(self.perform, effect)

    async def aclose(self) -> None:
        if not self._locks:
            return
        import anyio
        import anyio.to_thread

        with anyio.CancelScope(shield=True):
            if self.blocking:
                await anyio.to_thread.run_sync(self.close)
            else:
                self.close()

    # -- helpers -------------------------------------------------------------------------------------------

    def _lock_for(self, key: RecordKey) -> RecordLock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = _new_lock(self.store, key)
        return lock

    def _wait(
        self, key: RecordKey, lock: RecordLock, acquire: Callable[[], bool], pause: Callable[[float], None]
    ) -> None:
        start = time.monotonic()
        delay = _FIRST_POLL
        while not acquire():
            self._check_deadline(key, lock, start)
            pause(delay)
            delay = min(delay * 2, _MAX_POLL)

    def _check_deadline(self, key: RecordKey, lock: RecordLock, start: float) -> None:
        if time.monotonic() - start < self.lock_timeout:
            return
        holder = getattr(lock, "holder", None)
        held_by = f" (held by {holder()})" if callable(holder) else ""
        raise StoreLockedError(
            f"the credential record {key} in {self.store!r} stayed locked for {self.lock_timeout:g} s{held_by}: "
            f"another process is refreshing it and did not finish; if none is running, the lock is stale: "
            f"{lock!r}"
        )

    def _access(self, effect: Effect) -> Any:
        store = self.store
        if isinstance(effect, LoadRecords):
            keys = [key for key in store.list_keys() if serves(key, effect.resource)]
            return [record for key in keys if (record := store.load(key)) is not None]
        if isinstance(effect, LoadRecord):
            return store.load(effect.key)
        if isinstance(effect, SaveRecord):
            store.save(effect.record)
            return None
        if isinstance(effect, DeleteRecord):
            store.delete(effect.key)
            return None
        raise TypeError(f"not a storage effect: {effect!r}")


def _new_lock(store: TokenStore, key: RecordKey) -> RecordLock:
    make_lock = getattr(store, "lock", None)
    if callable(make_lock):
        lock: RecordLock = make_lock(key)
        return lock
    return MutexRecordLock(_process_local_mutex(store, key))


_process_mutexes: dict[tuple[int, RecordKey], threading.Lock] = {}
_process_mutexes_guard = threading.Lock()


def _process_local_mutex(store: TokenStore, key: RecordKey) -> threading.Lock:
    """For stores without locks of their own: at least every user of the store object in this process agrees."""
    with _process_mutexes_guard:
        return _process_mutexes.setdefault((id(store), key), threading.Lock())
