"""An in-memory :class:`~mcp_oauth_auth.storage.TokenStore`: for tests and short-lived programs."""

from __future__ import annotations

import threading

from mcp_oauth_auth.records import CredentialRecord, RecordKey

__all__ = ["MemoryTokenStore"]


class MemoryTokenStore:
    """Keeps records in a dict for the life of the process. Thread-safe; never blocks the event loop."""

    blocking = False

    def __init__(self) -> None:
        self._records: dict[RecordKey, CredentialRecord] = {}
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

    def __repr__(self) -> str:
        return f"MemoryTokenStore({len(self._records)} records)"
