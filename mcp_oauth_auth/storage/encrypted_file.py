"""An encrypted-file :class:`~mcp_oauth_auth.storage.TokenStore`: one AES-256-GCM file per record, on this machine.

Layout of the store directory (default :func:`~mcp_oauth_auth.storage.files.default_home`)::

    store.json                       how to get the master key: key source, scrypt salt and parameters (password
                                     stores), a random store id and a key check value. No secret.
    store.key                        the master key, only for key-file stores (``key_file=`` puts it elsewhere)
    records/<record_id>.rec          one record: a JSON envelope around the ciphertext
    records/<record_id>.rec.corrupt-<unix time>
                                     an unreadable record that :meth:`~EncryptedFileTokenStore.save` replaced (kept)
    locks/<record_id>.lock           the record locks (``flock``); ``locks/store.lock`` guards creating store.json

Each record file is encrypted with AES-256-GCM under a key derived from the store's master key, and bound to its
issuer and resource, which stay in clear so that :meth:`~EncryptedFileTokenStore.list_keys` needs no key: a file
edited, renamed or copied over another record's name does not decrypt (the formats:
:mod:`~mcp_oauth_auth.storage.encrypted_format`).

The master key (:mod:`~mcp_oauth_auth.storage.master_key`) comes from one of three sources, chosen when the store is
created and written in store.json; a store is never opened with another source, and a key that has gone missing is
reported, never silently replaced:

* ``password`` (``password=`` or ``$MCP_OAUTH_PASSWORD``): scrypt (n=2**15, r=8, p=3, 32-byte salt). The master key
  is derived once per process and cached in memory. Protects the records against anyone who gets the files (a
  stolen disk, a backup, another account) but not the password; it does not protect against malware running as you
  while the password is in your environment.
* ``keyring`` (no password, the OS keyring is usable): a random 32-byte key kept in the OS keyring (service
  ``mcp-oauth-auth``, user ``file-store-key:<directory>``). The files alone are useless; the key is as safe as your
  OS login session and keyring.
* ``key-file`` (no password, no usable keyring, or ``use_keyring=False``): a random key in ``store.key`` (0600).
  This protects only against leaking a single record file, or a backup or sync that leaves the key file out. It
  does NOT protect against anyone who can read your home directory: they can read the key file too.

store.json also holds a key check value (the master key's AES-GCM encryption of a constant), so a wrong password
or a replaced key is reported as such instead of as damaged records. Files are 0600 from creation and directories
0700; records are replaced atomically (temporary file, fsync, rename), so a crash leaves the old or the new record.
A record that cannot be read is never overwritten silently: :meth:`~EncryptedFileTokenStore.load` reports it and
leaves it alone, :meth:`~EncryptedFileTokenStore.save` keeps a ``.corrupt-*`` copy of it before writing, and one
written by a newer version of this library is never overwritten.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

from mcp_oauth_auth.exceptions import TokenStorageError
from mcp_oauth_auth.records import CredentialRecord, RecordKey
from mcp_oauth_auth.storage.codec import decode_record, encode_record, record_id
from mcp_oauth_auth.storage.encrypted_format import (
    RECORD_REMEDY,
    NewerFormatError,
    listed_key,
    newer_record_format,
    parse_envelope,
    seal_record,
)
from mcp_oauth_auth.storage.files import (
    FileRecordLock,
    create_exclusive,
    default_home,
    ensure_private_dir,
    fsync_directory,
    read_optional,
    storage_error,
    sweep_temporaries,
    write_atomic,
)
from mcp_oauth_auth.storage.master_key import KEYRING_SERVICE, PASSWORD_ENV, MasterKey

__all__ = ["KEYRING_SERVICE", "PASSWORD_ENV", "EncryptedFileTokenStore"]

_LOG = logging.getLogger("mcp_oauth_auth")

_RECORD_NAME = re.compile(r"[0-9a-f]{40}\.rec")


class EncryptedFileTokenStore:
    """Credential records in AES-256-GCM encrypted files, one per record, in a private directory.

    ``directory`` defaults to :func:`~mcp_oauth_auth.storage.files.default_home` (``$MCP_OAUTH_HOME``, else
    ``$XDG_DATA_HOME/mcp_oauth``, else ``~/.mcp_oauth``). ``password`` defaults to ``$MCP_OAUTH_PASSWORD``; without
    one the master key is random and kept in the OS keyring (unless ``use_keyring=False``) or in ``key_file``
    (default ``<directory>/store.key``). See the module documentation for what each choice protects against: a
    password protects against stolen files and backups; the keyring makes the files alone useless; a key file only
    protects against leaking single record files or backups that leave the key file out, NOT against anyone who
    can read your home directory.

    Nothing touches the disk before the first call; nothing ever prompts. The master key is derived (scrypt) or
    read once per process and store, then cached in memory. Every failure is a
    :class:`~mcp_oauth_auth.exceptions.TokenStorageError` saying which file and what to do, without any secret.
    Calls block on file I/O (and, the first time, on key derivation): the async driver runs them in a worker thread.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        password: str | None = None,
        *,
        key_file: str | os.PathLike[str] | None = None,
        use_keyring: bool = True,
    ) -> None:
        base = default_home() if directory is None else Path(directory)
        self.directory = Path(os.path.abspath(base.expanduser()))
        self._master_key = MasterKey(
            self.directory,
            password,
            key_file=key_file,
            use_keyring=use_keyring,
            records_dir=self.records_dir,
            locks_dir=self.locks_dir,
            has_records=lambda: bool(self._record_names()),
        )
        self._swept = False

    @property
    def records_dir(self) -> Path:
        return self.directory / "records"

    @property
    def locks_dir(self) -> Path:
        return self.directory / "locks"

    def _record_path(self, key: RecordKey) -> Path:
        return self.records_dir / f"{record_id(key)}.rec"

    def _record_names(self) -> list[str]:
        """The names of the record files, sorted (not temporary files, nor copies of unreadable records)."""
        try:
            names = sorted(os.listdir(self.records_dir))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise storage_error("list the records in", self.records_dir, exc) from None
        return [name for name in names if _RECORD_NAME.fullmatch(name)]

    # -- TokenStore --------------------------------------------------------------------------------------------

    def load(self, key: RecordKey) -> CredentialRecord | None:
        path = self._record_path(key)
        data = read_optional(path, "read")
        if data is None:
            return None
        return self._open_record(path, key, data)

    def save(self, record: CredentialRecord) -> None:
        key = record.key
        master = self._master_key.get()
        ensure_private_dir(self.records_dir)
        if not self._swept:
            sweep_temporaries(self.records_dir)
            self._swept = True
        path = self._record_path(key)
        existing = read_optional(path, "read")
        if existing is not None:
            self._keep_if_unreadable(path, key, existing)
        write_atomic(path, seal_record(encode_record(record), key, master))

    def delete(self, key: RecordKey) -> None:
        path = self._record_path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise storage_error("delete", path, exc) from None
        fsync_directory(path.parent)

    def list_keys(self) -> list[RecordKey]:
        keys: list[RecordKey] = []
        for name in self._record_names():
            path = self.records_dir / name
            try:
                data = read_optional(path, "read")
            except TokenStorageError as exc:
                _LOG.warning("skipping the credential record %s: %s", path, exc)
                continue
            if data is None:
                continue  # deleted meanwhile
            key = listed_key(data, path)
            if key is None:
                _LOG.warning("skipping the credential record %s: it cannot be parsed; %s", path, RECORD_REMEDY)
            elif f"{record_id(key)}.rec" != name:
                _LOG.warning(
                    "skipping the credential record %s: it holds the record of another file (renamed or copied); %s",
                    path,
                    RECORD_REMEDY,
                )
            else:
                keys.append(key)
        return keys

    def lock(self, key: RecordKey) -> FileRecordLock:
        ensure_private_dir(self.directory)
        ensure_private_dir(self.locks_dir)
        return FileRecordLock(self.locks_dir / f"{record_id(key)}.lock")

    @property
    def key_source(self) -> str | None:
        """Where the master key came from once the store has been used: ``"password"``, ``"keyring"`` or
        ``"key-file"`` (a key file beside the records: anyone who can read them can read that too); None before."""
        return self._master_key.known_source

    @property
    def key_file(self) -> Path:
        """The key file of a ``"key-file"`` store."""
        return self._master_key.key_file

    def __repr__(self) -> str:
        return f"EncryptedFileTokenStore({str(self.directory)!r}, key={self._master_key.source})"

    # -- records -----------------------------------------------------------------------------------------------

    def _open_record(self, path: Path, key: RecordKey, data: bytes) -> CredentialRecord:
        envelope = parse_envelope(data, path)
        if envelope.key != key:
            raise TokenStorageError(
                f"the credential record {path} holds the record of {envelope.key}, not of {key}: it was renamed or "
                f"copied; {RECORD_REMEDY}"
            )
        plaintext = envelope.open(self._master_key.get(), path)
        try:
            return decode_record(plaintext, str(path), expected=key)
        except TokenStorageError as exc:
            if newer_record_format(plaintext):
                raise NewerFormatError(exc.message) from None
            raise

    def _keep_if_unreadable(self, path: Path, key: RecordKey, existing: bytes) -> None:
        """Before ``path`` is replaced: refuse if a newer version wrote it, keep a copy if it is unreadable."""
        try:
            self._open_record(path, key, existing)
        except NewerFormatError as exc:
            raise TokenStorageError(
                f"{exc.message}. Refusing to overwrite it: upgrade mcp-oauth-auth, or remove the file to sign in "
                f"again with this version"
            ) from None
        except TokenStorageError as exc:
            stamp = int(time.time())
            for attempt in range(100):
                suffix = f".corrupt-{stamp}" if attempt == 0 else f".corrupt-{stamp}-{attempt}"
                aside = path.with_name(path.name + suffix)
                if create_exclusive(aside, existing):
                    break
            else:
                raise TokenStorageError(f"could not keep a copy of the unreadable record {path}") from None
            _LOG.warning("replacing an unreadable credential record, kept as %s: %s", aside, exc.message)
