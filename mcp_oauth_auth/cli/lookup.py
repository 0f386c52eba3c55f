"""Stored credentials by the names people give them (``record.names``), and the store they live in."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from mcp_oauth_auth.cli.errors import CLIError, ExitCode, NotLoggedInError
from mcp_oauth_auth.cli.output import Terminal
from mcp_oauth_auth.exceptions import ConfigurationError, TokenStorageError
from mcp_oauth_auth.records import CredentialRecord, RecordKey
from mcp_oauth_auth.storage.base import RecordLock, TokenStore
from mcp_oauth_auth.storage.memory import MutexRecordLock
from mcp_oauth_auth.storage.names import StoredRecord, labelled, load_all, serves

__all__ = [
    "RecordView",
    "StoredRecord",
    "add_name",
    "find_record",
    "labelled",
    "load_all",
    "open_store",
    "store_description",
    "store_label",
]


def open_store(backend: str) -> TokenStore:
    """The store named on the command line (``--store``): see :func:`~mcp_oauth_auth.storage.create_store`."""
    from mcp_oauth_auth.storage.backends import TokenStoreBackend, create_store

    try:
        return create_store(backend)
    except ConfigurationError as exc:
        choices = ", ".join(member.value for member in TokenStoreBackend)
        raise CLIError(str(exc), f"--store takes one of: {choices}", ExitCode.USAGE) from None


def _concrete(store: TokenStore) -> TokenStore:
    from mcp_oauth_auth.storage.auto import AutoTokenStore

    return store.chosen if isinstance(store, AutoTokenStore) else store


def store_label(store: TokenStore) -> str:
    """A short name for the store actually in use: ``keyring``, ``encrypted_file``, ``vault``, ``memory``."""
    kind = type(_concrete(store)).__name__
    labels = {
        "KeyringTokenStore": "keyring",
        "EncryptedFileTokenStore": "encrypted_file",
        "VaultTokenStore": "vault",
        "RedisTokenStore": "redis",
        "MemoryTokenStore": "memory",
    }
    return labels.get(kind, kind)


def store_description(store: TokenStore) -> str:
    """The store with where it keeps things, e.g. ``encrypted_file (/home/me/.mcp_oauth)``."""
    concrete = _concrete(store)
    directory = getattr(concrete, "directory", None) or getattr(concrete, "url", None)
    label = store_label(store)
    return f"{label} ({directory})" if directory is not None else label


def find_record(
    store: TokenStore, name: str, url: str | None = None, terminal: Terminal | None = None
) -> CredentialRecord:
    """The record named ``name`` (optionally for the server ``url``); the most recently updated when several are
    (``terminal`` then says so on stderr).

    A ``name`` that is no record's name but a server URL finds that server's record.
    """
    everything = load_all(store)
    records = [found.record for found in everything if found.record is not None]
    matches = labelled(everything, name)
    if not matches and "://" in name:
        matches = [record for record in records if serves(record, name)]
    if url is not None:
        matches = [record for record in matches if serves(record, url)]
    if not matches:
        where = f" for {url}" if url else ""
        unreadable = len(everything) - len(records)
        hint = "`mcp-oauth list` shows the stored credentials; `mcp-oauth login NAME URL` adds one"
        if unreadable:
            hint += f" ({unreadable} stored record{'s' if unreadable != 1 else ''} cannot be read: see `list`)"
        raise NotLoggedInError(f"no stored credential named {name!r}{where} in the {store_label(store)} store", hint)
    latest = max(matches, key=lambda record: record.updated_at)
    others = {record.server_url for record in matches} - {latest.server_url}
    if others and terminal is not None:
        terminal.note(
            f"note: {name!r} also names {', '.join(sorted(others))}; using {latest.server_url}, the most recently "
            "updated (--url chooses)"
        )
    return latest


def add_name(store: TokenStore, key: RecordKey, name: str) -> CredentialRecord | None:
    """Label the record with ``name`` and make it the most recently updated, so that ``name`` means this record
    from now on (under the store's lock for it, when the store has locks). The updated record, or None if gone."""
    make_lock = getattr(store, "lock", None)
    lock: RecordLock | None = make_lock(key) if callable(make_lock) else None
    if lock is not None:
        deadline = time.monotonic() + 30
        while not lock.try_acquire():
            if time.monotonic() > deadline:
                raise TokenStorageError(f"the credential record {key} stayed locked; try again")
            time.sleep(0.02)
    try:
        record = store.load(key)
        if record is None:
            return None
        names = record.names if name in record.names else (*record.names, name)
        updated = replace(record, names=names, updated_at=time.time())
        store.save(updated)
        return updated
    finally:
        if lock is not None:
            lock.release()


class RecordView:
    """The store, seen as holding only one record: so that :class:`~mcp_oauth_auth.MCPOAuth` works on exactly the
    record a person named, even when the store holds others for the same server (another issuer)."""

    def __init__(self, store: TokenStore, key: RecordKey) -> None:
        self._store = store
        self._key = key
        self._mutex = threading.Lock()
        self.blocking = getattr(store, "blocking", True)

    def load(self, key: RecordKey) -> CredentialRecord | None:
        return self._store.load(key)

    def save(self, record: CredentialRecord) -> None:
        self._store.save(record)

    def delete(self, key: RecordKey) -> None:
        self._store.delete(key)

    def list_keys(self) -> list[RecordKey]:
        return [self._key]

    def lock(self, key: RecordKey) -> RecordLock:
        make_lock = getattr(self._store, "lock", None)
        if callable(make_lock):
            lock: RecordLock = make_lock(key)
            return lock
        return MutexRecordLock(self._mutex)

    def __repr__(self) -> str:
        return repr(self._store)
