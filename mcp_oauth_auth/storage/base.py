"""The :class:`TokenStore` protocol that every credential backend implements, and the record lock it may offer."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from mcp_oauth_auth.records import CredentialRecord, RecordKey

__all__ = ["LockingTokenStore", "RecordLock", "TokenStore"]


@runtime_checkable
class TokenStore(Protocol):
    """Where credential records live between requests and between processes.

    The calls are synchronous; the async driver runs them in a worker thread unless the store declares
    ``blocking = False`` (as the in-memory store does). Implementations raise
    :class:`~mcp_oauth_auth.exceptions.TokenStorageError` on failure and must never lose a record because of
    unreadable input: a record that cannot be decoded is reported, not deleted or overwritten.
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


@runtime_checkable
class RecordLock(Protocol):
    """An exclusive lock on one record, shared by every process (and, for a remote store, host) using the store.

    The flow holds it while it re-reads a record, refreshes its tokens and saves the rotated ones, so that two
    processes never spend the same single-use refresh token. It never blocks: the drivers poll
    :meth:`try_acquire` (from a worker thread for blocking stores), so a waiting event loop stays responsive and a
    cancelled wait leaves nothing behind. :meth:`release` may be called from another thread than the one that
    acquired. A lock whose holder died must not stay held forever (an OS file lock is released by the kernel; a
    lock entry carries an expiry).
    """

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True when this object now holds it."""
        ...

    def release(self) -> None:
        """Give the lock up; no error when it is not held."""
        ...


@runtime_checkable
class LockingTokenStore(TokenStore, Protocol):
    """A store that coordinates refreshes across processes. Stores without :meth:`lock` get in-process locking."""

    def lock(self, key: RecordKey) -> RecordLock:
        """A new, unheld lock object for the record ``key`` (the record need not exist)."""
        ...
