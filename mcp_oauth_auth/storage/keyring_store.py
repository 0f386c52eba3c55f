"""Credential records in the OS keyring (macOS Keychain, Windows Credential Manager, a Linux Secret Service).

:class:`KeyringTokenStore` keeps records in it; :func:`probe_keyring` (from
:mod:`~mcp_oauth_auth.storage.keyring_probe`) says whether the OS keyring can hold credentials here without a
password prompt.

Entry layout
------------

Every entry belongs to one keyring *service* (``"mcp-oauth-auth"`` unless configured) and is named by its keyring
*username*:

* ``record:<record_id>`` — one credential record (:func:`~mcp_oauth_auth.storage.codec.record_id` of its key).
* ``index`` — the keys of every stored record, a JSON list of ``{"issuer": ..., "resource": ...}`` (with
  ``"account": ...`` for a named account's record): keyring offers
  no way to enumerate entries, so :meth:`KeyringTokenStore.list_keys` reads this list.
* ``record:<record_id>:<generation>:<n>`` and ``index:<generation>:<n>`` — chunks of a long value.

The entry under a value's own name is its *manifest*: the value inline when it fits in ``chunk_size`` characters,
else the count, length and SHA-256 of its chunks (:mod:`~mcp_oauth_auth.storage.keyring_chunks` describes the
format). A save writes the chunks, then the manifest, then deletes the chunks it replaced, so a crash at any
instant leaves either the old or the new complete value; a missing or damaged chunk is reported as a
:class:`~mcp_oauth_auth.exceptions.TokenStorageError` and nothing is deleted.

Locking
-------

Saves and deletes run under a file lock, ``<lock_dir>/keyring-index.lock``, so that the read-modify-write of the index
and the replacement of chunk generations by concurrent processes never lose an update. The record locks of
:meth:`KeyringTokenStore.lock` are file locks too (``<lock_dir>/<record_id>.lock``). Keyring has no atomic
compare-and-set, so a lock *entry* in the keyring would race (two processes both see it free, both write it). Every
process that shares an OS keyring runs on the same host as the same user, where an OS file lock is atomic and is
released by the kernel if its holder dies.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from mcp_oauth_auth.exceptions import ConfigurationError, StoreLockedError, TokenStorageError
from mcp_oauth_auth.records import CredentialRecord, RecordKey
from mcp_oauth_auth.storage.codec import decode_record, encode_record, record_id
from mcp_oauth_auth.storage.files import FileRecordLock, default_home, ensure_private_dir
from mcp_oauth_auth.storage.keyring_chunks import (
    MIN_CHUNK_SIZE,
    ChunkError,
    UnreadableEntryError,
    delete_value,
    entry_json,
    read_value,
    write_value,
)
from mcp_oauth_auth.storage.keyring_probe import (
    DEFAULT_SERVICE,
    NO_KEYRING_REMEDY,
    KeyringStatus,
    backend_name,
    describe,
    failure_remedy,
    probe_keyring,
    refuse_discarding_backend,
)

__all__ = ["DEFAULT_SERVICE", "KeyringStatus", "KeyringTokenStore", "probe_keyring"]

log = logging.getLogger(__name__)

_INDEX = "index"


class KeyringTokenStore:
    """Credential records in the OS keyring, one entry per record (several for a long record), plus an index.

    ``service`` is the keyring service name of every entry; ``backend`` a ``keyring`` backend object (default: the
    active one, ``keyring.get_keyring()``); ``lock_dir`` the directory of the lock files (default:
    ``default_home() / "locks"``); ``chunk_size`` the longest entry written, in characters. See the module
    documentation for the entry layout and why locks are files. :func:`probe_keyring` says whether the OS keyring
    is usable before choosing this store; a backend that silently discards entries (keyring's ``null`` backend, a
    chainer with nothing to chain) is refused here, since it would lose every refreshed token.
    """

    blocking = True
    lock_timeout: float = 30.0
    """How long a save or delete waits for another process's save or delete before raising StoreLockedError."""

    def __init__(
        self,
        service: str = DEFAULT_SERVICE,
        *,
        backend: KeyringBackend | None = None,
        lock_dir: str | os.PathLike[str] | None = None,
        chunk_size: int = 1000,
    ) -> None:
        if not service:
            raise ConfigurationError("the keyring service name must not be empty")
        if chunk_size < MIN_CHUNK_SIZE:
            raise ConfigurationError(f"chunk_size must be at least {MIN_CHUNK_SIZE} characters, not {chunk_size}")
        if backend is None:
            try:
                backend = keyring.get_keyring()
            except Exception as exc:
                raise TokenStorageError(
                    f"keyring could not choose a backend ({describe(exc)}); {NO_KEYRING_REMEDY}"
                ) from exc
        refuse_discarding_backend(backend)
        self.service = service
        self.backend = backend
        self.chunk_size = chunk_size
        self._entries = _Entries(self)
        self._lock_dir = Path(lock_dir) if lock_dir is not None else default_home() / "locks"
        self._lock_dir_ready = False

    # -- TokenStore ------------------------------------------------------------------------------------------------

    def load(self, key: RecordKey) -> CredentialRecord | None:
        name = _record_entry(key)
        text = read_value(self._entries, name, f"the credential record for {key}")
        if text is None:
            return None
        return decode_record(text, self._entries.where(name), expected=key)

    def save(self, record: CredentialRecord) -> None:
        key = record.key
        name = _record_entry(key)
        text = encode_record(record).decode("utf-8")
        what = f"the credential record for {key}"
        with self._store_lock():
            keys = self._read_index_for_update()
            if keys is not None and key not in keys:
                write_value(self._entries, _INDEX, _encode_index([*keys, key]), "the keyring index", self.chunk_size)
            write_value(self._entries, name, text, what, self.chunk_size)

    def delete(self, key: RecordKey) -> None:
        name = _record_entry(key)
        with self._store_lock():
            delete_value(self._entries, name, f"the credential record for {key}")
            keys = self._read_index_for_update()
            if keys is not None and key in keys:
                remaining = _encode_index([k for k in keys if k != key])
                write_value(self._entries, _INDEX, remaining, "the keyring index", self.chunk_size)

    def list_keys(self) -> list[RecordKey]:
        keys = self._read_index()
        # A crash between the index update and the record write of a first save can leave a key without a record.
        return [
            key for key in keys if self._entries.get(_record_entry(key), f"the credential record for {key}") is not None
        ]

    def lock(self, key: RecordKey) -> FileRecordLock:
        return FileRecordLock(self._locks() / f"{record_id(key)}.lock")

    def __repr__(self) -> str:
        return f"KeyringTokenStore(service={self.service!r}, backend={backend_name(self.backend)!r})"

    # -- index -----------------------------------------------------------------------------------------------------

    def _read_index(self) -> list[RecordKey]:
        text = read_value(self._entries, _INDEX, "the keyring index")
        if text is None:
            return []
        keys = _decode_index(text)
        if keys is None:
            raise UnreadableEntryError(
                f"{self._entries.where(_INDEX)} (the list of stored records) is not a JSON list of keys; it was left "
                f"untouched. Delete it (`keyring del {self.service} {_INDEX}`); the records stay, and each reappears "
                "in the list when it is saved again"
            )
        return keys

    def _read_index_for_update(self) -> list[RecordKey] | None:
        """The index, or None when it is unreadable: a save must not fail (and lose new tokens) because of it."""
        try:
            return self._read_index()
        except (UnreadableEntryError, ChunkError) as exc:
            log.warning("the keyring index is not updated: %s", exc)
            return None

    # -- locks ---------------------------------------------------------------------------------------------------

    def _locks(self) -> Path:
        if not self._lock_dir_ready:
            ensure_private_dir(self._lock_dir)
            self._lock_dir_ready = True
        return self._lock_dir

    @contextlib.contextmanager
    def _store_lock(self) -> Iterator[None]:
        """Exclusive access to the index and to chunk generations, across threads and processes."""
        lock = FileRecordLock(self._locks() / "keyring-index.lock")
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.002
        while not lock.try_acquire():
            if time.monotonic() >= deadline:
                raise StoreLockedError(
                    f"the keyring store lock {lock.path} has been held by {lock.holder()} for more than "
                    f"{self.lock_timeout:g} s; if that process hangs, stop it (the lock is released when it exits)"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        try:
            yield
        finally:
            lock.release()


class _Entries:
    """The store's keyring entries by name, as :mod:`~mcp_oauth_auth.storage.keyring_chunks` uses them.

    Every keyring call of the store goes through here and reports its failure as a TokenStorageError that says what
    to do. The store's ``service`` and ``backend`` are read at each call.
    """

    def __init__(self, store: KeyringTokenStore) -> None:
        self._store = store

    def get(self, name: str, what: str) -> str | None:
        try:
            return self._store.backend.get_password(self._store.service, name)
        except Exception as exc:
            raise self._backend_error("read", what, name, exc) from exc

    def set(self, name: str, value: str, what: str) -> None:
        try:
            self._store.backend.set_password(self._store.service, name, value)
        except Exception as exc:
            raise self._backend_error("save", what, name, exc, value) from exc

    def remove(self, name: str, what: str) -> None:
        try:
            self._store.backend.delete_password(self._store.service, name)
        except keyring.errors.PasswordDeleteError as exc:
            if self.get(name, what) is not None:  # otherwise it was not there: nothing to delete
                raise self._backend_error("delete", what, name, exc) from exc
        except Exception as exc:
            raise self._backend_error("delete", what, name, exc) from exc

    def _backend_error(
        self, action: str, what: str, name: str, exc: Exception, value: str | None = None
    ) -> TokenStorageError:
        return TokenStorageError(
            f"could not {action} {what} in {self.where(name)}: {describe(exc, value)}; {failure_remedy(exc, action)}"
        )

    def where(self, name: str) -> str:
        return f"the keyring entry {name!r} of service {self._store.service!r} ({backend_name(self._store.backend)})"

    def delete_remedy(self, name: str) -> str:
        if name == _INDEX:
            return f"Delete it (`keyring del {self._store.service} {_INDEX}`) if you do not need it"
        return "To start over, delete the record (KeyringTokenStore.delete) and authorize again"


def _record_entry(key: RecordKey) -> str:
    return f"record:{record_id(key)}"


def _encode_index(keys: list[RecordKey]) -> str:
    """The index as JSON; a named account's key has an ``account`` member, the default account's none (as before
    accounts existed)."""
    return entry_json(
        [
            {"issuer": key.issuer, "resource": key.resource, **({"account": key.account} if key.account else {})}
            for key in keys
        ]
    )


def _decode_index(text: str) -> list[RecordKey] | None:
    try:
        document: Any = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, list):
        return None
    keys = []
    for item in document:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("issuer"), str)
            and isinstance(item.get("resource"), str)
            and (item.get("account") is None or isinstance(item.get("account"), str))
        ):
            return None
        keys.append(RecordKey(item["issuer"], item["resource"], item.get("account")))
    return keys
