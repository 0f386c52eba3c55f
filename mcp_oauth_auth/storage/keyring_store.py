"""Credential records in the OS keyring (macOS Keychain, Windows Credential Manager, a Linux Secret Service).

:class:`KeyringTokenStore` keeps records in it; :func:`probe_keyring` (from
:mod:`~mcp_oauth_auth.storage.keyring_probe`) says whether the OS keyring can hold credentials here without a
password prompt.

Entry layout
------------

Every entry belongs to one keyring *service* (``"mcp-oauth-auth"`` unless configured) and is named by its keyring
*username*:

* ``record:<record_id>`` — one credential record (:func:`~mcp_oauth_auth.storage.codec.record_id` of its key).
* ``index`` — the keys of every stored record, a JSON list of ``{"issuer": ..., "resource": ...}``: keyring offers
  no way to enumerate entries, so :meth:`KeyringTokenStore.list_keys` reads this list.
* ``record:<record_id>:<generation>:<n>`` and ``index:<generation>:<n>`` — chunks of a long value.

The entry under a value's own name is its *manifest*, a JSON object in one of two forms:

* ``{"v": 1, "inline": <value>}`` when this whole document fits in ``chunk_size`` characters (every value is a JSON
  object or list, embedded as it is rather than as an escaped string);
* ``{"v": 1, "generation": "<hex>", "chunks": <n>, "length": <characters>, "sha256": "<hex of the UTF-8 value>"}``
  otherwise, the value being the concatenation of the chunks ``<name>:<generation>:0`` … ``<name>:<generation>:<n-1>``,
  each at most ``chunk_size`` characters.

Values are JSON with non-ASCII characters escaped, so a character is one byte in UTF-8 and two in UTF-16: the default
``chunk_size`` of 1000 characters stays below the 2560-byte limit of a Windows Credential Manager entry.

A save writes the chunks under a new random generation, then the manifest (the commit point), then deletes the chunks
of the generation it replaced: a crash at any instant leaves either the old or the new complete value, and at worst
some orphaned chunks. A load verifies the length and SHA-256 of the chunks; a missing chunk or a mismatch is
reported as a :class:`~mcp_oauth_auth.exceptions.TokenStorageError` and nothing is deleted.

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
import hashlib
import json
import logging
import os
import re
import secrets
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

_ENTRY_FORMAT = 1
_INDEX = "index"
_MIN_CHUNK_SIZE = 256  # a chunked manifest is about 150 characters
_MAX_CHUNKS = 10_000
_GENERATION = re.compile(r"[0-9a-f]{8,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")

# -- store ------------------------------------------------------------------------------------------------------------


class _UnreadableEntryError(TokenStorageError):
    """A manifest or index that cannot be interpreted (its data is left untouched)."""


class _ChunkError(TokenStorageError):
    """A chunk that is missing or does not match its manifest; possibly a concurrent save replaced the value."""


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
        if chunk_size < _MIN_CHUNK_SIZE:
            raise ConfigurationError(f"chunk_size must be at least {_MIN_CHUNK_SIZE} characters, not {chunk_size}")
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
        self._lock_dir = Path(lock_dir) if lock_dir is not None else default_home() / "locks"
        self._lock_dir_ready = False

    # -- TokenStore ------------------------------------------------------------------------------------------------

    def load(self, key: RecordKey) -> CredentialRecord | None:
        name = _record_entry(key)
        text = self._read_value(name, f"the credential record for {key}")
        if text is None:
            return None
        return decode_record(text, self._where(name), expected=key)

    def save(self, record: CredentialRecord) -> None:
        key = record.key
        name = _record_entry(key)
        text = encode_record(record).decode("utf-8")
        what = f"the credential record for {key}"
        with self._store_lock():
            keys = self._read_index_for_update()
            if keys is not None and key not in keys:
                self._write_value(_INDEX, _encode_index([*keys, key]), "the keyring index")
            self._write_value(name, text, what)

    def delete(self, key: RecordKey) -> None:
        name = _record_entry(key)
        with self._store_lock():
            self._delete_value(name, f"the credential record for {key}")
            keys = self._read_index_for_update()
            if keys is not None and key in keys:
                self._write_value(_INDEX, _encode_index([k for k in keys if k != key]), "the keyring index")

    def list_keys(self) -> list[RecordKey]:
        keys = self._read_index()
        # A crash between the index update and the record write of a first save can leave a key without a record.
        return [key for key in keys if self._get(_record_entry(key), f"the credential record for {key}") is not None]

    def lock(self, key: RecordKey) -> FileRecordLock:
        return FileRecordLock(self._locks() / f"{record_id(key)}.lock")

    def __repr__(self) -> str:
        return f"KeyringTokenStore(service={self.service!r}, backend={backend_name(self.backend)!r})"

    # -- values: manifests and chunks -----------------------------------------------------------------------------

    def _read_value(self, name: str, what: str) -> str | None:
        for attempt in range(3):
            raw = self._get(name, what)
            if raw is None:
                return None
            manifest = self._parse_manifest(name, raw)
            if "inline" in manifest:
                return json.dumps(manifest["inline"], separators=(",", ":"))
            try:
                return self._read_chunks(name, manifest, what)
            except _ChunkError:
                # A concurrent save commits a new generation and then deletes ours: read the new manifest again.
                if attempt < 2 and self._get(name, what) != raw:
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_chunks(self, name: str, manifest: dict[str, Any], what: str) -> str:
        generation, count = manifest["generation"], manifest["chunks"]
        parts = []
        for n in range(count):
            part = self._get(f"{name}:{generation}:{n}", what)
            if part is None:
                raise _ChunkError(
                    f"{what} is incomplete: chunk {n} of {count} (entry {name}:{generation}:{n}) listed in "
                    f"{self._where(name)} is missing; nothing was deleted. {self._delete_remedy(name)}"
                )
            parts.append(part)
        text = "".join(parts)
        if len(text) != manifest["length"] or hashlib.sha256(text.encode("utf-8")).hexdigest() != manifest["sha256"]:
            raise _ChunkError(
                f"{what} is damaged: its {count} chunks do not match the checksum in {self._where(name)}; nothing "
                f"was deleted. {self._delete_remedy(name)}"
            )
        return text

    def _parse_manifest(self, name: str, raw: str) -> dict[str, Any]:
        try:
            manifest: Any = json.loads(raw)
        except ValueError:
            manifest = None
        if not isinstance(manifest, dict):
            raise _UnreadableEntryError(
                f"{self._where(name)} is not an mcp-oauth-auth entry (not a JSON object); it was left untouched. "
                f"{self._delete_remedy(name)}"
            )
        version = manifest.get("v")
        if isinstance(version, int) and version > _ENTRY_FORMAT:
            raise _UnreadableEntryError(
                f"{self._where(name)} was written in entry format {version} by a newer mcp-oauth-auth (this one "
                f"reads format {_ENTRY_FORMAT}); upgrade mcp-oauth-auth to use it"
            )
        if version == _ENTRY_FORMAT and isinstance(manifest.get("inline"), (dict, list)):
            return manifest
        generation, count, length, digest = (manifest.get(k) for k in ("generation", "chunks", "length", "sha256"))
        if (
            version == _ENTRY_FORMAT
            and isinstance(generation, str)
            and _GENERATION.fullmatch(generation)
            and type(count) is int
            and 0 < count <= _MAX_CHUNKS
            and type(length) is int
            and isinstance(digest, str)
            and _SHA256.fullmatch(digest)
        ):
            return manifest
        raise _UnreadableEntryError(
            f"{self._where(name)} is not a valid mcp-oauth-auth entry (unknown or incomplete manifest); it was left "
            f"untouched. {self._delete_remedy(name)}"
        )

    def _old_generation(self, name: str, what: str) -> tuple[str, int] | None:
        """The chunk generation of the value under ``name`` now, if it is one we can read."""
        raw = self._get(name, what)
        if raw is None:
            return None
        try:
            manifest = self._parse_manifest(name, raw)
        except _UnreadableEntryError:
            return None  # overwritten by the save, but its chunks (if any) are not ours to guess at
        if "generation" in manifest:
            return manifest["generation"], manifest["chunks"]
        return None

    def _write_value(self, name: str, text: str, what: str) -> None:
        old = self._old_generation(name, what)
        manifest = f'{{"inline":{text},"v":{_ENTRY_FORMAT}}}'  # text is a JSON object or list
        written: list[str] = []
        if len(manifest) > self.chunk_size:
            generation = secrets.token_hex(16)
            size = self.chunk_size
            parts = [text[start : start + size] for start in range(0, len(text), size)]
            manifest = _dumps(
                {
                    "v": _ENTRY_FORMAT,
                    "generation": generation,
                    "chunks": len(parts),
                    "length": len(text),
                    "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                }
            )
            try:
                for n, part in enumerate(parts):
                    chunk = f"{name}:{generation}:{n}"
                    self._set(chunk, part, what)
                    written.append(chunk)
            except TokenStorageError:
                self._discard(written, what)
                raise
        try:
            self._set(name, manifest, what)  # the commit point
        except TokenStorageError:
            self._discard(written, what)
            raise
        if old is not None:
            generation, count = old
            self._discard([f"{name}:{generation}:{n}" for n in range(count)], what)

    def _delete_value(self, name: str, what: str) -> None:
        old = self._old_generation(name, what)
        self._remove(name, what)
        if old is not None:
            generation, count = old
            self._discard([f"{name}:{generation}:{n}" for n in range(count)], what)

    def _discard(self, names: list[str], what: str) -> None:
        """Delete chunks nothing refers to any more; a failure only leaves orphaned entries behind."""
        for name in names:
            try:
                self._remove(name, what)
            except TokenStorageError as exc:
                log.warning("could not delete an unused chunk of %s: %s", what, exc)

    # -- index -----------------------------------------------------------------------------------------------------

    def _read_index(self) -> list[RecordKey]:
        text = self._read_value(_INDEX, "the keyring index")
        if text is None:
            return []
        keys = _decode_index(text)
        if keys is None:
            raise _UnreadableEntryError(
                f"{self._where(_INDEX)} (the list of stored records) is not a JSON list of keys; it was left "
                f"untouched. Delete it (`keyring del {self.service} {_INDEX}`); the records stay, and each reappears "
                "in the list when it is saved again"
            )
        return keys

    def _read_index_for_update(self) -> list[RecordKey] | None:
        """The index, or None when it is unreadable: a save must not fail (and lose new tokens) because of it."""
        try:
            return self._read_index()
        except (_UnreadableEntryError, _ChunkError) as exc:
            log.warning("the keyring index is not updated: %s", exc)
            return None

    # -- keyring calls -------------------------------------------------------------------------------------------

    def _get(self, name: str, what: str) -> str | None:
        try:
            return self.backend.get_password(self.service, name)
        except Exception as exc:
            raise self._backend_error("read", what, name, exc) from exc

    def _set(self, name: str, value: str, what: str) -> None:
        try:
            self.backend.set_password(self.service, name, value)
        except Exception as exc:
            raise self._backend_error("save", what, name, exc, value) from exc

    def _remove(self, name: str, what: str) -> None:
        try:
            self.backend.delete_password(self.service, name)
        except keyring.errors.PasswordDeleteError as exc:
            if self._get(name, what) is not None:  # otherwise it was not there: nothing to delete
                raise self._backend_error("delete", what, name, exc) from exc
        except Exception as exc:
            raise self._backend_error("delete", what, name, exc) from exc

    def _backend_error(
        self, action: str, what: str, name: str, exc: Exception, value: str | None = None
    ) -> TokenStorageError:
        return TokenStorageError(
            f"could not {action} {what} in {self._where(name)}: {describe(exc, value)}; {failure_remedy(exc, action)}"
        )

    def _where(self, name: str) -> str:
        return f"the keyring entry {name!r} of service {self.service!r} ({backend_name(self.backend)})"

    def _delete_remedy(self, name: str) -> str:
        if name == _INDEX:
            return f"Delete it (`keyring del {self.service} {_INDEX}`) if you do not need it"
        return "To start over, delete the record (KeyringTokenStore.delete) and authorize again"

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


def _record_entry(key: RecordKey) -> str:
    return f"record:{record_id(key)}"


def _dumps(document: object) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def _encode_index(keys: list[RecordKey]) -> str:
    return _dumps([{"issuer": key.issuer, "resource": key.resource} for key in keys])


def _decode_index(text: str) -> list[RecordKey] | None:
    try:
        document: Any = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, list):
        return None
    keys = []
    for item in document:
        if not (
            isinstance(item, dict) and isinstance(item.get("issuer"), str) and isinstance(item.get("resource"), str)
        ):
            return None
        keys.append(RecordKey(item["issuer"], item["resource"]))
    return keys
