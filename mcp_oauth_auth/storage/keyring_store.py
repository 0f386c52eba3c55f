"""Credential records in the OS keyring (macOS Keychain, Windows Credential Manager, a Linux Secret Service).

:func:`probe_keyring` says whether the OS keyring can hold credentials here without a password prompt;
:class:`KeyringTokenStore` keeps records in it.

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
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from mcp_oauth_auth.exceptions import ConfigurationError, StoreLockedError, TokenStorageError
from mcp_oauth_auth.records import CredentialRecord, RecordKey
from mcp_oauth_auth.storage.codec import decode_record, encode_record, record_id
from mcp_oauth_auth.storage.files import FileRecordLock, default_home, ensure_private_dir

__all__ = ["DEFAULT_SERVICE", "KeyringStatus", "KeyringTokenStore", "probe_keyring"]

log = logging.getLogger(__name__)

DEFAULT_SERVICE = "mcp-oauth-auth"
"""The keyring service that holds this library's entries (and :func:`probe_keyring`'s test entry)."""

_ENTRY_FORMAT = 1
_INDEX = "index"
_MIN_CHUNK_SIZE = 256  # a chunked manifest is about 150 characters
_MAX_CHUNKS = 10_000
_GENERATION = re.compile(r"[0-9a-f]{8,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FILE_STORE_HINT = "or use the encrypted file store"
_UNLOCK_REMEDY = (
    "unlock your keyring (log in to the desktop session, or unlock the collection with your keyring manager, "
    f"e.g. Seahorse), {_FILE_STORE_HINT}"
)
_NO_KEYRING_REMEDY = (
    "make an OS keyring available (on Linux: a Secret Service such as gnome-keyring or KeePassXC running in your "
    f"D-Bus session), {_FILE_STORE_HINT}"
)


# -- probe ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyringStatus:
    """Whether an OS keyring can hold credentials here, and why (or why not) in a sentence."""

    usable: bool
    reason: str
    backend: str


class _KeyringProbe:
    """The implementation of :func:`probe_keyring`: a callable with a per-process cache for the default keyring."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._cached: KeyringStatus | None = None

    def __call__(self, backend: KeyringBackend | None = None, *, refresh: bool = False) -> KeyringStatus:
        """Whether ``backend`` (default: the active ``keyring.get_keyring()``) can hold credentials without prompting.

        The answer for the active keyring is computed once per process (``refresh=True`` or
        :meth:`cache_clear` computes it again); an explicit ``backend`` is probed on every call. Unusable: keyring's
        ``fail`` and ``null`` backends, any ``keyrings.alt`` backend (plain-text or password-prompting files), a
        chainer with nothing usable to chain, a locked Secret Service collection (checked without an unlock prompt),
        and a backend that fails a write/read/delete round trip of a test entry (service ``"mcp-oauth-auth"``,
        username ``"probe:<pid>"``). Never raises.
        """
        if backend is not None:
            return _probe(backend)
        with self._mutex:
            if self._cached is None or refresh:
                try:
                    active = keyring.get_keyring()
                except Exception as exc:
                    self._cached = KeyringStatus(
                        False, f"keyring could not choose a backend ({_describe(exc)}); {_NO_KEYRING_REMEDY}", "none"
                    )
                else:
                    self._cached = _probe(active)
            return self._cached

    def cache_clear(self) -> None:
        """Forget the cached answer for the active keyring (for tests, or after the environment changed)."""
        with self._mutex:
            self._cached = None


probe_keyring = _KeyringProbe()


def _backend_name(backend: KeyringBackend) -> str:
    """How a keyring backend is called in messages, e.g. ``'SecretService Keyring'``."""
    try:
        name = backend.name
    except Exception:
        name = None
    return name if isinstance(name, str) and name else type(backend).__name__


def _probe(backend: KeyringBackend) -> KeyringStatus:
    name = _backend_name(backend)
    try:
        problem = _static_problem(backend)
        if problem is None:
            problem = _round_trip_problem(backend)
    except Exception as exc:  # a probe answers, it does not raise
        problem = (
            f"checking the keyring backend '{name}' failed ({_describe(exc)}); use the encrypted file store instead"
        )
    if problem is not None:
        return KeyringStatus(False, problem, name)
    return KeyringStatus(True, f"the keyring backend '{name}' stores and returns entries without prompting", name)


def _static_problem(backend: KeyringBackend) -> str | None:
    """Why ``backend`` cannot be used, judged without writing anything; None when it looks usable."""
    from keyring.backends import chainer, fail, null

    name = _backend_name(backend)
    module = type(backend).__module__
    if isinstance(backend, fail.Keyring):
        if sys.platform.startswith("linux") and not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
            return (
                "keyring found no OS keyring: there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset), so no "
                f"Secret Service can be reached; run inside a desktop or D-Bus session, {_FILE_STORE_HINT}"
            )
        return f"keyring found no OS keyring (its 'fail' backend is active); {_NO_KEYRING_REMEDY}"
    if isinstance(backend, null.Keyring):
        return (
            "the keyring backend is keyring's 'null' backend, which discards every entry (chosen by "
            f"PYTHON_KEYRING_BACKEND or keyringrc.cfg); {_NO_KEYRING_REMEDY}"
        )
    if module == "keyrings.alt" or module.startswith("keyrings.alt."):
        return (
            f"the keyring backend '{name}' comes from keyrings.alt, which keeps entries in a plain-text or "
            f"password-prompting file rather than the OS keyring; {_NO_KEYRING_REMEDY}"
        )
    if isinstance(backend, chainer.ChainerBackend):
        chained = list(backend.backends)
        if not chained:
            return f"keyring's chainer has no usable backend to chain; {_NO_KEYRING_REMEDY}"
        return _static_problem(chained[0])  # the chainer writes to its first backend
    if module in ("keyring.backends.SecretService", "keyring.backends.libsecret"):
        return _secret_service_problem(backend)
    return None


def _secret_service_problem(backend: KeyringBackend) -> str | None:
    """Why the Secret Service collection ``backend`` uses cannot be used, asked without any unlock prompt."""
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return (
            "there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset), so the Secret Service cannot be reached; "
            f"run inside a desktop or D-Bus session, {_FILE_STORE_HINT}"
        )
    try:
        import secretstorage
        from secretstorage.collection import DEFAULT_COLLECTION
    except ImportError:
        return (
            f"the secretstorage package is not installed, so the Secret Service cannot be checked; {_FILE_STORE_HINT}"
        )
    try:
        connection = secretstorage.dbus_init()
    except secretstorage.SecretStorageException as exc:
        return f"the D-Bus session bus cannot be reached ({_describe(exc)}); {_FILE_STORE_HINT}"
    with contextlib.closing(connection):
        if not secretstorage.check_service_availability(connection):
            return (
                "no Secret Service runs on the D-Bus session bus (start gnome-keyring or KeePassXC's Secret Service "
                f"integration), {_FILE_STORE_HINT}"
            )
        preferred = getattr(backend, "preferred_collection", None)
        path = preferred if isinstance(preferred, str) and preferred else DEFAULT_COLLECTION
        try:
            collection = secretstorage.Collection(connection, path)  # looks the collection up; never prompts
        except secretstorage.ItemNotFoundException:
            return (
                f"the Secret Service has no collection at {path} and creating one needs an interactive prompt; "
                f"create a default keyring with your keyring manager, {_FILE_STORE_HINT}"
            )
        if collection.is_locked():
            return (
                f"the Secret Service collection {collection.get_label()!r} is locked; unlock it (log in to the "
                f"desktop session, or with your keyring manager), {_FILE_STORE_HINT}"
            )
    return None


def _round_trip_problem(backend: KeyringBackend) -> str | None:
    name = _backend_name(backend)
    username = f"probe:{os.getpid()}"
    value = secrets.token_hex(16)
    written = False
    try:
        backend.set_password(DEFAULT_SERVICE, username, value)
        written = True
        returned = backend.get_password(DEFAULT_SERVICE, username)
        backend.delete_password(DEFAULT_SERVICE, username)
        written = False
    except Exception as exc:
        if written:
            with contextlib.suppress(Exception):
                backend.delete_password(DEFAULT_SERVICE, username)
        return (
            f"a test entry ({DEFAULT_SERVICE!r}, {username!r}) could not be written, read and deleted with the "
            f"keyring backend '{name}' ({_describe(exc)}); use the encrypted file store instead"
        )
    if returned != value:
        return (
            f"the keyring backend '{name}' did not return the test entry ({DEFAULT_SERVICE!r}, {username!r}) that "
            "was just written to it; use the encrypted file store instead"
        )
    return None


def _describe(exc: BaseException, secret: str | None = None) -> str:
    """``Type: message`` for an error message; the message is left out if it quotes any part of ``secret``."""
    text = str(exc).strip()[:300]
    if secret and text and _quotes(text, secret):
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _quotes(text: str, secret: str, window: int = 12) -> bool:
    """Whether ``text`` contains ``window`` consecutive characters of ``secret`` (escaping may change the rest)."""
    size = min(window, len(secret))
    return any(secret[start : start + size] in text for start in range(len(secret) - size + 1))


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
                    f"keyring could not choose a backend ({_describe(exc)}); {_NO_KEYRING_REMEDY}"
                ) from exc
        _refuse_discarding_backend(backend)
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
        return f"KeyringTokenStore(service={self.service!r}, backend={_backend_name(self.backend)!r})"

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
            f"could not {action} {what} in {self._where(name)}: {_describe(exc, value)}; {_remedy(exc, action)}"
        )

    def _where(self, name: str) -> str:
        return f"the keyring entry {name!r} of service {self.service!r} ({_backend_name(self.backend)})"

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


def _refuse_discarding_backend(backend: KeyringBackend) -> None:
    """A backend that silently drops what is written would lose every refreshed token."""
    from keyring.backends import chainer, null

    if isinstance(backend, null.Keyring) or (isinstance(backend, chainer.ChainerBackend) and not backend.backends):
        raise TokenStorageError(
            f"the keyring backend '{_backend_name(backend)}' discards every entry, so it cannot hold credentials; "
            f"{_NO_KEYRING_REMEDY}"
        )


def _remedy(exc: Exception, action: str) -> str:
    kind = type(exc).__name__
    if isinstance(exc, keyring.errors.KeyringLocked) or kind in ("LockedException", "PromptDismissedException"):
        return _UNLOCK_REMEDY
    if isinstance(exc, (keyring.errors.NoKeyringError, keyring.errors.InitError)) or kind in (
        "SecretServiceNotAvailableException",
        "ConnectionRefusedError",
        "FileNotFoundError",
    ):
        return _NO_KEYRING_REMEDY
    if isinstance(exc, keyring.errors.PasswordSetError):
        return (
            "the keyring refused the entry (if it is too large for this keyring, use a smaller chunk_size); "
            "the previous record, if any, is unchanged"
        )
    if action == "read":
        return "check that your OS keyring is running and unlocked; nothing was changed"
    return "check that your OS keyring is running and unlocked; the previous record, if any, is unchanged"
