"""The :class:`TokenStore` protocol that every credential backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from mcp_oauth_auth.records import CredentialRecord, RecordKey

__all__ = ["TokenStore"]


@runtime_checkable
class TokenStore(Protocol):
    """Where credential records live between requests and between processes.

    The calls are synchronous; the async driver runs them in a worker thread unless the store declares
    ``blocking = False`` (as the in-memory store does). Implementations raise
    :class:`~mcp_oauth_auth.exceptions.TokenStorageError` on failure and must never lose a record because of
    unreadable input: a record that cannot be decoded is reported, not deleted.
    """

    def load(self, key: RecordKey) -> CredentialRecord | None:
        """The record for ``key``, or None when there is none."""
        ...

    def save(self, record: CredentialRecord) -> None:
        """Store ``record`` under ``record.key``, replacing any previous one atomically."""
        ...

    def delete(self, key: RecordKey) -> None:
        """Remove the record for ``key``; no error when there is none."""
        ...

    def list_keys(self) -> list[RecordKey]:
        """The keys of every stored record."""
        ...
