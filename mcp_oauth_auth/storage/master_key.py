"""The master key of an encrypted file store: where it comes from, how it is derived, checked and cached.

store.json (:mod:`~mcp_oauth_auth.storage.encrypted_format`) names the key source, chosen when the store is created;
:class:`~mcp_oauth_auth.storage.encrypted_file.EncryptedFileTokenStore` says what each one protects against:

* ``password`` (``password=`` or ``$MCP_OAUTH_PASSWORD``, NFC-normalised): scrypt (n=2**15, r=8, p=3, 32-byte salt
  for new stores; existing stores use the parameters in store.json).
* ``keyring``: a random 32-byte key in the OS keyring (service ``mcp-oauth-auth``, user ``file-store-key:<directory>``),
  for a new store without a password when ``use_keyring`` is true and
  :func:`~mcp_oauth_auth.storage.keyring_store.probe_keyring` finds the keyring usable.
* ``key-file``: a random 32-byte key, base64, in ``store.key`` (0600) or ``key_file=``.

A key is checked against store.json's key check value before use, so a wrong password or a replaced key is reported
as such; a key that has gone missing is reported, never silently replaced, and a store is never opened with another
source. The first process to use a new store creates its key and store.json under ``locks/store.lock``; racing
processes end up with the same key. A verified key is kept in memory, once per process and store.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib
import logging
import os
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from mcp_oauth_auth.exceptions import StoreLockedError, TokenStorageError, WrongPasswordError
from mcp_oauth_auth.storage.encrypted_format import (
    KEY_BYTES,
    KEY_FILE,
    KEYRING,
    PASSWORD,
    SALT_BYTES,
    NewerFormatError,
    StoreInfo,
    b64,
    key_check_matches,
    parse_store_info,
    seal_key_check,
    unb64,
)
from mcp_oauth_auth.storage.files import FileRecordLock, create_exclusive, ensure_private_dir, read_trusted

__all__ = ["KEYRING_SERVICE", "PASSWORD_ENV", "MasterKey"]

PASSWORD_ENV = "MCP_OAUTH_PASSWORD"
KEYRING_SERVICE = "mcp-oauth-auth"

_LOG = logging.getLogger("mcp_oauth_auth")

# scrypt cost for new password stores (OWASP: n=2**15, r=8, p=3). Existing stores use the parameters in store.json.
# Tests lower _SCRYPT_N; production code never changes it.
_SCRYPT_N = 2**15
_SCRYPT_R = 8
_SCRYPT_P = 3

_INIT_LOCK_TIMEOUT = 30.0

# -- master key cache (per process) ------------------------------------------------------------------------------

_MASTER_KEYS: dict[tuple[str, ...], bytes] = {}
_KEY_LOCKS: dict[tuple[str, ...], threading.Lock] = {}
_CACHE_LOCK = threading.Lock()


def _cached_master_key(cache_key: tuple[str, ...], produce: Callable[[], bytes]) -> bytes:
    """The verified master key for ``cache_key``, produced (derived, read) at most once per process."""
    with _CACHE_LOCK:
        known = _MASTER_KEYS.get(cache_key)
        if known is not None:
            return known
        key_lock = _KEY_LOCKS.setdefault(cache_key, threading.Lock())
    with key_lock:  # two store objects opening one store at once: one derivation, the other waits for it
        with _CACHE_LOCK:
            known = _MASTER_KEYS.get(cache_key)
        if known is None:
            known = produce()
            with _CACHE_LOCK:
                _MASTER_KEYS[cache_key] = known
        return known


def _derive_password_key(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    """scrypt: the only expensive step; the cache above makes it run once per process and store."""
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=KEY_BYTES, n=n, r=r, p=p).derive(password.encode("utf-8"))


# -- the OS keyring, behind a seam the tests replace ------------------------------------------------------------


class _KeySlot(Protocol):
    """Where a keyring-backed store keeps its master key (base64 text)."""

    def get(self, account: str) -> str | None: ...

    def set(self, account: str, secret: str) -> None: ...


class _SystemKeyring:
    def get(self, account: str) -> str | None:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, account)

    def set(self, account: str, secret: str) -> None:
        import keyring

        keyring.set_password(KEYRING_SERVICE, account, secret)


def _os_keyring() -> tuple[_KeySlot | None, str]:
    """The OS keyring when it is usable, else None and why not (asks the keyring backend's probe)."""
    from mcp_oauth_auth.storage.keyring_quick import keyring_out_of_reach

    out_of_reach = keyring_out_of_reach()
    if out_of_reach is not None:
        return None, out_of_reach
    try:
        module: Any = importlib.import_module("mcp_oauth_auth.storage.keyring_store")
        status: Any = module.probe_keyring()
    except ImportError:
        return None, "the keyring support of mcp-oauth-auth is not installed"
    except Exception as exc:
        return None, f"probing the OS keyring failed ({type(exc).__name__})"
    if not status.usable:
        return None, str(status.reason)
    return _SystemKeyring(), ""


# -- the master key of one store ---------------------------------------------------------------------------------


class MasterKey:
    """The master key of the encrypted file store in ``directory``, from the source its store.json names.

    ``password`` (default ``$MCP_OAUTH_PASSWORD``), ``key_file`` and ``use_keyring`` are those of
    :class:`~mcp_oauth_auth.storage.encrypted_file.EncryptedFileTokenStore`; ``records_dir`` and ``locks_dir`` are the
    store's, and ``has_records`` says whether it holds records: a store with records but no store.json gets no new
    key. Nothing touches the disk or the keyring before :meth:`get`.
    """

    def __init__(
        self,
        directory: Path,
        password: str | None,
        *,
        key_file: str | os.PathLike[str] | None,
        use_keyring: bool,
        records_dir: Path,
        locks_dir: Path,
        has_records: Callable[[], bool],
    ) -> None:
        self.directory = directory
        self.records_dir = records_dir
        self.locks_dir = locks_dir
        self._has_records = has_records
        self._info_path = directory / "store.json"
        if password is None:
            password = os.environ.get(PASSWORD_ENV) or None
        elif not password:
            raise TokenStorageError(
                f"the password for the credential store at {self.directory} is empty; pass a real password, "
                f"or password=None to keep the key in the OS keyring or a key file"
            )
        # NFC: the same password typed on systems that compose accents differently gives the same key.
        self._password: str | None = None if password is None else unicodedata.normalize("NFC", password)
        self._protected = password is not None
        self._key_file = (
            self.directory / "store.key" if key_file is None else Path(os.path.abspath(Path(key_file).expanduser()))
        )
        self._use_keyring = use_keyring
        self._master: bytes | None = None
        self._source: str | None = None
        self._mutex = threading.Lock()

    @property
    def known_source(self) -> str | None:
        """The key source store.json names (``password``, ``keyring``, ``key-file``) once the key has been used;
        None before."""
        return self._source

    @property
    def key_file(self) -> Path:
        """Where a ``key-file`` store keeps its key."""
        return self._key_file

    @property
    def source(self) -> str:
        """The key source store.json names once the key is known, else the one(s) a new store would get."""
        if self._source is not None:
            return self._source
        if self._protected:
            return PASSWORD
        return f"{KEYRING}-or-{KEY_FILE}" if self._use_keyring else KEY_FILE

    def get(self) -> bytes:
        """The master key, found (or, for a new store, created) on the first call, then kept in this object."""
        with self._mutex:
            if self._master is None:
                ensure_private_dir(self.directory)
                info = self._store_info()
                self._master = self._unlock(info)
                self._source = info.key_source
                self._password = None  # the master key is all this object needs from now on
            return self._master

    def _store_info(self) -> StoreInfo:
        """store.json, created (once, by one process) when it does not exist yet."""
        try:
            info = self._read_store_info()
        except NewerFormatError:
            raise
        except TokenStorageError:
            info = None  # maybe being created in place (no hard links): look again under the lock
        if info is not None:
            return info
        with self._init_lock():
            info = self._read_store_info()
            if info is None:
                info = self._create_store()
        return info

    def _read_store_info(self) -> StoreInfo | None:
        data = read_trusted(self._info_path, "read")
        return None if data is None else parse_store_info(data, self._info_path, self.directory)

    @contextlib.contextmanager
    def _init_lock(self) -> Iterator[None]:
        """Serialise creating store.json and its key (a keyring entry cannot be created exclusively)."""
        ensure_private_dir(self.locks_dir)
        lock = FileRecordLock(self.locks_dir / "store.lock")
        deadline = time.monotonic() + _INIT_LOCK_TIMEOUT
        while not lock.try_acquire():
            if time.monotonic() > deadline:
                raise StoreLockedError(
                    f"another process ({lock.holder()}) has been setting up the credential store at {self.directory} "
                    f"for {_INIT_LOCK_TIMEOUT:.0f} s; try again, or end that process"
                )
            time.sleep(0.01)
        try:
            yield
        finally:
            lock.release()

    def _create_store(self) -> StoreInfo:
        """Write a new store.json (with its key first); when another process wins the race, use its store.json."""
        if self._has_records():
            raise TokenStorageError(
                f"the credential store at {self.directory} has records but no store.json, so their key cannot be "
                f"found; restore {self._info_path} from a backup, or remove {self.records_dir} to start over "
                f"(you will have to sign in again)"
            )
        store_id = uuid.uuid4().hex
        if self._password is not None:
            salt = os.urandom(SALT_BYTES)
            source, key_file = PASSWORD, None
            master = _derive_password_key(self._password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
        else:
            salt = b""
            source, master = self._create_random_key()
            key_file = str(self._key_file) if source == KEY_FILE else None
        check_nonce, check_ciphertext = seal_key_check(master)
        candidate = StoreInfo(
            key_source=source,
            store_id=store_id,
            salt=salt,
            n=_SCRYPT_N if source == PASSWORD else 0,
            r=_SCRYPT_R if source == PASSWORD else 0,
            p=_SCRYPT_P if source == PASSWORD else 0,
            check_nonce=check_nonce,
            check_ciphertext=check_ciphertext,
            key_file=key_file,
        )
        with _CACHE_LOCK:  # before store.json appears, so that no other thread derives the key again
            _MASTER_KEYS[self._cache_key(candidate)] = master
        create_exclusive(self._info_path, candidate.to_json())
        info = self._read_store_info()  # ours, or the one of a process that created it first
        if info is None:
            raise TokenStorageError(f"{self._info_path} vanished while it was being created; try again")
        return info

    def _create_random_key(self) -> tuple[str, bytes]:
        """A random master key in the OS keyring if usable, else in the key file; an existing one is reused."""
        if self._use_keyring:
            slot, reason = _os_keyring()
            if slot is not None:
                account = self._keyring_account()
                try:
                    existing = unb64(slot.get(account), KEY_BYTES)
                    if existing is not None:
                        return KEYRING, existing  # left by a setup that stopped before writing store.json
                    key = os.urandom(KEY_BYTES)
                    slot.set(account, b64(key))
                    stored = slot.get(account)
                except Exception as exc:
                    raise self._keyring_error(account, f"the OS keyring failed ({type(exc).__name__})") from None
                if stored is not None and hmac.compare_digest(stored.encode(), b64(key).encode()):
                    return KEYRING, key
                reason = "the OS keyring did not keep the key"
            _LOG.info("keeping the key of the credential store at %s in %s: %s", self.directory, self._key_file, reason)
        existing = self._read_key_file()
        if existing is not None:
            return KEY_FILE, existing
        if not self._key_file.parent.exists():
            ensure_private_dir(self._key_file.parent)
        if create_exclusive(self._key_file, b64(os.urandom(KEY_BYTES)).encode("ascii") + b"\n"):
            _LOG.warning(
                "the credential store at %s keeps its key in %s: anyone who can read that file can read your "
                "tokens; set MCP_OAUTH_PASSWORD or use the OS keyring for more protection",
                self.directory,
                self._key_file,
            )
        created = self._read_key_file()  # ours, or the one of a process that created it first
        if created is None:
            raise TokenStorageError(f"the key file {self._key_file} vanished while it was being created; try again")
        return KEY_FILE, created

    def _cache_key(self, info: StoreInfo) -> tuple[str, ...]:
        directory = str(self.directory.resolve())
        if info.key_source == PASSWORD:
            assert self._password is not None
            # A digest of the password keeps a wrong password from reusing the key cached for the right one.
            digest = hashlib.sha256(info.salt + self._password.encode("utf-8")).hexdigest()
            params = f"scrypt:{info.n}:{info.r}:{info.p}:{b64(info.salt)}"
            return (directory, info.store_id, PASSWORD, params, digest)
        if info.key_source == KEYRING:
            return (directory, info.store_id, KEYRING, self._keyring_account())
        return (directory, info.store_id, KEY_FILE, str(self._key_file))

    def _unlock(self, info: StoreInfo) -> bytes:
        """The master key described by store.json, from the source it names, checked against its check value."""
        if info.key_source == PASSWORD:
            if self._password is None:
                raise TokenStorageError(
                    f"the credential store at {self.directory} is protected by a password: set {PASSWORD_ENV} "
                    f"or pass password="
                )
        elif self._password is not None:
            where = "the OS keyring" if info.key_source == KEYRING else "a key file"
            raise TokenStorageError(
                f"the credential store at {self.directory} is not protected by a password (its key is in {where}); "
                f"unset {PASSWORD_ENV} and pass no password= for it, or choose another directory for a "
                f"password-protected store"
            )
        return _cached_master_key(self._cache_key(info), lambda: self._checked(info, self._produce_key(info)))

    def _produce_key(self, info: StoreInfo) -> bytes:
        if info.key_source == PASSWORD:
            assert self._password is not None
            return _derive_password_key(self._password, info.salt, info.n, info.r, info.p)
        if info.key_source == KEYRING:
            return self._keyring_key()
        return self._existing_key_file(info)

    def _checked(self, info: StoreInfo, master: bytes) -> bytes:
        if key_check_matches(info, master):
            return master
        if info.key_source == PASSWORD:
            raise WrongPasswordError(
                f"wrong password for the credential store at {self.directory}; its records are unchanged: try again "
                f"with the right password ({PASSWORD_ENV} or password=)"
            )
        if info.key_source == KEYRING:
            raise self._keyring_error(
                self._keyring_account(), "the key there is not the one this store was set up with"
            )
        raise TokenStorageError(
            f"the key file {self._key_file} does not open the credential store at {self.directory}: it is not the "
            f"key the store was set up with{self._key_file_hint(info)}; restore the original key file, or remove "
            f"{self.directory} to start over (you will have to sign in again)"
        )

    # -- key sources -------------------------------------------------------------------------------------------

    def _keyring_account(self) -> str:
        return f"file-store-key:{self.directory.resolve()}"

    def _keyring_error(self, account: str, problem: str) -> TokenStorageError:
        return TokenStorageError(
            f"the credential store at {self.directory} keeps its key in the OS keyring (service "
            f"{KEYRING_SERVICE!r}, user {account!r}), but {problem}. Its records are unchanged and no new key was "
            f"made: unlock or repair the keyring and try again, or remove {self.directory} to start over (you will "
            f"have to sign in again)"
        )

    def _keyring_key(self) -> bytes:
        account = self._keyring_account()
        if not self._use_keyring:
            raise self._keyring_error(account, "use_keyring=False was given")
        slot, reason = _os_keyring()
        if slot is None:
            raise self._keyring_error(account, f"the keyring is not usable now: {reason}")
        try:
            stored = slot.get(account)
        except Exception as exc:
            raise self._keyring_error(account, f"reading it failed ({type(exc).__name__})") from None
        if stored is None:
            raise self._keyring_error(account, "the keyring has no such entry (it was deleted)")
        key = unb64(stored, KEY_BYTES)
        if key is None:
            raise self._keyring_error(account, "the keyring entry is not a key of this library")
        return key

    def _read_key_file(self) -> bytes | None:
        data = read_trusted(self._key_file, "read the key file", secret=True)
        if data is None:
            return None
        key = unb64(data.strip().decode("ascii", errors="replace"), KEY_BYTES)
        if key is None:
            raise TokenStorageError(
                f"the key file {self._key_file} is damaged; restore it from a backup, or remove {self.directory} "
                f"to start over (you will have to sign in again)"
            )
        return key

    def _existing_key_file(self, info: StoreInfo) -> bytes:
        key = self._read_key_file()
        if key is None:
            raise TokenStorageError(
                f"the key file {self._key_file} of the credential store at {self.directory} is missing"
                f"{self._key_file_hint(info)}; its records cannot be read without it and no new key was made: "
                f"restore the key file (or pass key_file=), or remove {self.directory} to start over (you will have "
                f"to sign in again)"
            )
        return key

    def _key_file_hint(self, info: StoreInfo) -> str:
        if info.key_file is not None and info.key_file != str(self._key_file):
            return f" (it was set up with the key file {info.key_file})"
        return ""
