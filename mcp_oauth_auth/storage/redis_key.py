"""The master key of a :class:`~mcp_oauth_auth.storage.redis_store.RedisTokenStore`.

The key never reaches Redis. What Redis holds (at ``<prefix>:store``) is the same description the encrypted file
store keeps in store.json (:class:`~mcp_oauth_auth.storage.encrypted_format.StoreInfo`): the key source, the scrypt
salt and parameters of a password store, a random store id and a key check value, so that every host finds the
same salt and a wrong key is recognised as such before any record is touched. The sources, as for the file store:

* ``password`` (``password=`` or ``$MCP_OAUTH_PASSWORD``): scrypt; every host of the fleet sets the same password.
* ``key-file`` (``key_file=``): a random 32-byte key, base64, in a file that every host has a copy of. A missing
  file is created (0600) only for a store that does not exist yet.
* ``keyring``: a random key in the OS keyring (service ``mcp-oauth-auth``, user ``redis-store-key:<url>/<prefix>``)
  when neither is given; other hosts need the same entry, so this suits one host (or a keyring the fleet shares).
"""

from __future__ import annotations

import hashlib
import os
import threading
import unicodedata
import uuid
from collections.abc import Callable
from pathlib import Path

from mcp_oauth_auth.exceptions import TokenStorageError
from mcp_oauth_auth.storage.encrypted_format import (
    KEY_BYTES,
    KEY_FILE,
    KEYRING,
    PASSWORD,
    SALT_BYTES,
    StoreInfo,
    b64,
    key_check_matches,
    seal_key_check,
    unb64,
)
from mcp_oauth_auth.storage.files import create_exclusive, read_optional
from mcp_oauth_auth.storage.master_key import (
    _SCRYPT_N,
    _SCRYPT_P,
    _SCRYPT_R,
    KEYRING_SERVICE,
    PASSWORD_ENV,
    _cached_master_key,
    _derive_password_key,
    _os_keyring,
)

__all__ = ["RedisMasterKey"]


class RedisMasterKey:
    """The master key of the Redis store ``where`` (its URL without credentials, and its prefix).

    ``read_info`` returns the stored description (None when there is none); ``create_info`` stores one unless
    another host did first (True when it was stored). Nothing is read before :meth:`get`.
    """

    def __init__(
        self,
        where: str,
        read_info: Callable[[], StoreInfo | None],
        create_info: Callable[[StoreInfo], bool],
        *,
        password: str | None,
        key_file: str | os.PathLike[str] | None,
        use_keyring: bool,
    ) -> None:
        self._where = where
        self._read_info = read_info
        self._create_info = create_info
        if password is None:
            password = os.environ.get(PASSWORD_ENV) or None
        elif not password:
            raise TokenStorageError(f"the password for the credential store {where} is empty; pass a real password")
        self._password = None if password is None else unicodedata.normalize("NFC", password)
        self._key_file = None if key_file is None else Path(os.path.abspath(Path(key_file).expanduser()))
        self._use_keyring = use_keyring
        self._master: bytes | None = None
        self._mutex = threading.Lock()

    @property
    def source(self) -> str:
        """The key source this object would use (or uses): password, key-file or keyring."""
        if self._password is not None:
            return PASSWORD
        return KEY_FILE if self._key_file is not None else KEYRING

    def get(self) -> bytes:
        """The verified master key: read, derived or (for a new store) created on the first call, then kept."""
        with self._mutex:
            if self._master is None:
                info = self._read_info()
                if info is None:
                    candidate, master = self._new_store()
                    if self._create_info(candidate):
                        self._master = master
                        return master
                    info = self._read_info()  # another host was first: use its description
                    if info is None:
                        raise TokenStorageError(f"the description of the credential store {self._where} vanished")
                self._master = self._unlock(info)
            return self._master

    # -- a new store ---------------------------------------------------------------------------------------------

    def _new_store(self) -> tuple[StoreInfo, bytes]:
        salt = b""
        if self._password is not None:
            salt = os.urandom(SALT_BYTES)
            source, master = PASSWORD, _derive_password_key(self._password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
        elif self._key_file is not None:
            source, master = KEY_FILE, self._read_or_create_key_file()
        else:
            source, master = KEYRING, self._new_keyring_key()
        nonce, ciphertext = seal_key_check(master)
        password_store = source == PASSWORD
        info = StoreInfo(
            key_source=source,
            store_id=uuid.uuid4().hex,
            check_nonce=nonce,
            check_ciphertext=ciphertext,
            salt=salt,
            n=_SCRYPT_N if password_store else 0,
            r=_SCRYPT_R if password_store else 0,
            p=_SCRYPT_P if password_store else 0,
            key_file=str(self._key_file) if source == KEY_FILE else None,
        )
        return info, master

    def _read_or_create_key_file(self) -> bytes:
        assert self._key_file is not None
        key = self._read_key_file()
        if key is None:
            create_exclusive(self._key_file, b64(os.urandom(KEY_BYTES)).encode("ascii") + b"\n")
            key = self._read_key_file()
        if key is None:
            raise TokenStorageError(f"the key file {self._key_file} vanished while it was being created; try again")
        return key

    def _new_keyring_key(self) -> bytes:
        slot, reason = _os_keyring() if self._use_keyring else (None, "use_keyring=False was given")
        if slot is None:
            raise TokenStorageError(
                f"the credential store {self._where} needs an encryption key: set {PASSWORD_ENV} (the same on every "
                f"host), or pass key_file= (a copy on every host); the OS keyring is not usable: {reason}"
            )
        account = self._keyring_account()
        try:
            key = unb64(slot.get(account), KEY_BYTES)
            if key is None:
                key = os.urandom(KEY_BYTES)
                slot.set(account, b64(key))
        except Exception as exc:
            raise self._keyring_error(f"the OS keyring failed ({type(exc).__name__})") from None
        return key

    # -- an existing store ---------------------------------------------------------------------------------------

    def _unlock(self, info: StoreInfo) -> bytes:
        cache_key: tuple[str, ...]
        produce: Callable[[], bytes]
        if info.key_source == PASSWORD:
            password = self._password
            if password is None:
                raise TokenStorageError(
                    f"the credential store {self._where} is protected by a password: set {PASSWORD_ENV} or pass "
                    "password="
                )
            digest = hashlib.sha256(info.salt + password.encode("utf-8")).hexdigest()
            cache_key = (self._where, info.store_id, PASSWORD, b64(info.salt), str(info.n), digest)

            def produce() -> bytes:
                assert password is not None
                return _derive_password_key(password, info.salt, info.n, info.r, info.p)

        elif self._password is not None:
            raise TokenStorageError(
                f"the credential store {self._where} is not protected by a password (its key is in "
                f"{'the OS keyring' if info.key_source == KEYRING else 'a key file'}); unset {PASSWORD_ENV} and pass "
                "no password= for it"
            )
        elif info.key_source == KEY_FILE:
            if self._key_file is None:
                raise TokenStorageError(
                    f"the credential store {self._where} keeps its key in a key file (set up with {info.key_file}); "
                    "pass key_file= the path of your copy"
                )
            cache_key = (self._where, info.store_id, KEY_FILE, str(self._key_file))
            produce = self._existing_key_file
        else:
            cache_key = (self._where, info.store_id, KEYRING, self._keyring_account())
            produce = self._keyring_key
        return _cached_master_key(cache_key, lambda: self._checked(info, produce()))

    def _checked(self, info: StoreInfo, master: bytes) -> bytes:
        if key_check_matches(info, master):
            return master
        what = {PASSWORD: "wrong password", KEY_FILE: f"the key file {self._key_file} does not match"}.get(
            info.key_source, "the key in the OS keyring does not match"
        )
        raise TokenStorageError(
            f"{what} for the credential store {self._where}: it is not the key the store was set up with; its "
            "records are unchanged"
        )

    def _read_key_file(self) -> bytes | None:
        assert self._key_file is not None
        data = read_optional(self._key_file, "read the key file")
        if data is None:
            return None
        key = unb64(data.strip().decode("ascii", errors="replace"), KEY_BYTES)
        if key is None:
            raise TokenStorageError(f"the key file {self._key_file} is not a base64 32-byte key")
        return key

    def _existing_key_file(self) -> bytes:
        key = self._read_key_file()
        if key is None:
            raise TokenStorageError(
                f"the key file {self._key_file} of the credential store {self._where} is missing; copy it from the "
                "host that set the store up (no new key was made)"
            )
        return key

    def _keyring_account(self) -> str:
        return f"redis-store-key:{self._where}"

    def _keyring_error(self, problem: str) -> TokenStorageError:
        return TokenStorageError(
            f"the credential store {self._where} keeps its key in the OS keyring (service {KEYRING_SERVICE!r}, user "
            f"{self._keyring_account()!r}), but {problem}; its records are unchanged"
        )

    def _keyring_key(self) -> bytes:
        slot, reason = _os_keyring() if self._use_keyring else (None, "use_keyring=False was given")
        if slot is None:
            raise self._keyring_error(f"the keyring is not usable here: {reason}")
        try:
            key = unb64(slot.get(self._keyring_account()), KEY_BYTES)
        except Exception as exc:
            raise self._keyring_error(f"reading it failed ({type(exc).__name__})") from None
        if key is None:
            raise self._keyring_error("the keyring has no such entry on this host")
        return key
