"""An in-memory :class:`~mcp_oauth_auth.storage.TokenStore`: for tests and short-lived programs."""

from __future__ import annotations

import threading

from mcp_oauth_auth.records import CredentialRecord, RecordKey

__all__ = ["MemoryTokenStore", "MutexRecordLock"]


class MemoryTokenStore:
    """Keeps records in a dict for the life of the process. Thread-safe; never blocks the event loop.

    Its record locks coordinate every :class:`~mcp_oauth_auth.MCPOAuth` sharing this store in one process.
    """

    blocking = False

    def __init__(self) -> None:
        self._records: dict[RecordKey, CredentialRecord] = {}
        self._locks: dict[RecordKey, threading.Lock] = {}
        self._lock = threading.Lock()

    def load(self, key: RecordKey) -> CredentialRecord | None:
        with self._lock:
            return self._records.get(key)

    def save(self, record: CredentialRecord) -> None:
        with self._lock:
            self._records[record.key] = record

    def delete(self, key: RecordKey) -> None:
        with self._lock:
            self._records.pop(key, None)

    def list_keys(self) -> list[RecordKey]:
        with self._lock:
            return list(self._records)

    def lock(self, key: RecordKey) -> MutexRecordLock:
        with self._lock:
            shared = self._locks.setdefault(key, threading.Lock())
        return MutexRecordLock(shared)

    def __repr__(self) -> str:
        return f"MemoryTokenStore({len(self._records)} records)"


class MutexRecordLock:
    """A record lock over a thread lock shared by the lock objects of one record: coordinates one process only."""

    def __init__(self, shared: threading.Lock) -> None:
        self._shared = shared
        self._held = False

    def try_acquire(self) -> bool:
        if not self._held:
            self._held = self._shared.acquire(blocking=False)
        return self._held

    def release(self) -> None:
        if self._held:
            self._held = False
            self._shared.release()
