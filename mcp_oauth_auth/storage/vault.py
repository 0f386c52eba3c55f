"""A :class:`~mcp_oauth_auth.storage.TokenStore` in HashiCorp Vault's KV version 2 secrets engine.

Every host that points at the same Vault location shares the records, and two hosts never overwrite each other's
rotated refresh token:

* Layout: the record for a key lives at ``<path_prefix>/records/<record_id(key)>`` with the data
  ``{"record": "<the record as JSON text>"}``; the lock entry for that key at ``<path_prefix>/locks/<record_id(key)>``.
* Check-and-set: the store remembers, per key, the KV version it last read or wrote, and every save is a KV v2 write
  with ``cas=<that version>`` (``cas=0``, "create only", when the key did not exist). When another host wrote the
  record in between, Vault refuses the write and :meth:`VaultTokenStore.save` raises
  :class:`~mcp_oauth_auth.exceptions.RecordConflictError`: nothing is overwritten, and the flow re-reads the record
  under the record lock. A save of a key this store object has never read first looks up the current version, so
  plain application code can save without loading.
* Record locks are lock entries written with ``cas=0`` (succeeds only when there is none). Each carries its owner and
  an ``expires_at`` (wall clock, seconds since the epoch): a holder that died blocks the others for at most
  ``lock_ttl`` seconds, after which the next contender takes the entry over with ``cas=<its version>``. Hosts must
  keep their clocks roughly synchronized (NTP): clock skew shortens or lengthens that period.

The Vault policy the token (or AppRole) needs, for the defaults ``mount_point="secret"`` and
``path_prefix="mcp-oauth"``::

    path "secret/data/mcp-oauth/*"     { capabilities = ["create", "read", "update", "delete"] }
    path "secret/metadata/mcp-oauth/*" { capabilities = ["read", "list", "delete"] }

``hvac`` is an optional dependency: ``pip install 'mcp-oauth-auth[vault]'``. The connection to Vault (the hvac
client, the AppRole login, the KV v2 calls and how each failure is explained) is
:mod:`mcp_oauth_auth.storage.vault_kv`; this module is the store built on it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from mcp_oauth_auth.exceptions import RecordConflictError, TokenStorageError
from mcp_oauth_auth.flow.urls import safe_url
from mcp_oauth_auth.flow.values import is_number
from mcp_oauth_auth.records import CredentialRecord, RecordKey
from mcp_oauth_auth.storage.codec import decode_record, encode_record, record_id
from mcp_oauth_auth.storage.vault_kv import CasMismatch, VaultKV, import_hvac

if TYPE_CHECKING:
    import hvac

__all__ = ["VaultTokenStore"]

logger = logging.getLogger("mcp_oauth_auth")


class VaultTokenStore:
    """Credential records in a Vault KV v2 secrets engine, shared by every host using the same location.

    ``url``, ``token`` and ``namespace`` default to the environment variables ``VAULT_ADDR``, ``VAULT_TOKEN`` and
    ``VAULT_NAMESPACE``. With ``role_id`` and ``secret_id`` (or ``VAULT_ROLE_ID`` and ``VAULT_SECRET_ID``) the store
    logs in with AppRole (at ``auth/<approle_mount>``) on first use, and logs in again once when Vault refuses an
    expired token. An explicit ``token`` wins over AppRole, and AppRole over ``VAULT_TOKEN``.

    ``verify`` is True (system CAs, or ``VAULT_CACERT``/``VAULT_CAPATH`` when set), False (no TLS verification:
    never in production) or the path of a CA bundle. ``timeout`` bounds each request in seconds. ``client`` is an
    already configured :class:`hvac.Client` (address, TLS, namespace, token) to use instead of building one; only
    AppRole arguments may accompany it.

    Records whose data cannot be read are reported with :class:`~mcp_oauth_auth.exceptions.TokenStorageError`
    naming their Vault path, and left untouched. The Vault token never appears in an error or in ``repr``.
    """

    blocking = True

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        namespace: str | None = None,
        mount_point: str = "secret",
        path_prefix: str = "mcp-oauth",
        role_id: str | None = None,
        secret_id: str | None = None,
        approle_mount: str = "approle",
        verify: bool | str = True,
        timeout: float = 10,
        lock_ttl: float = 60,
        client: hvac.Client | None = None,
    ) -> None:
        import_hvac()
        mount = mount_point.strip("/")
        if not mount:
            raise TokenStorageError("mount_point must name the KV v2 secrets engine, e.g. 'secret'")
        if lock_ttl <= 0:
            raise TokenStorageError(f"lock_ttl must be positive, not {lock_ttl!r}")
        self._lock_ttl = float(lock_ttl)
        self._kv = VaultKV(
            url,
            token,
            namespace=namespace,
            mount=mount,
            prefix=path_prefix.strip("/"),
            role_id=role_id,
            secret_id=secret_id,
            approle_mount=approle_mount,
            verify=verify,
            timeout=timeout,
            client=client,
        )
        self._versions: dict[RecordKey, int] = {}
        self._versions_lock = threading.Lock()

    # -- TokenStore --------------------------------------------------------------------------------------------

    def load(self, key: RecordKey) -> CredentialRecord | None:
        path = self._record_path(key)
        entry = self._kv.read(path)
        self._remember(key, entry.version)
        if entry.data is None:
            return None
        return self._decode(path, entry.data, key)

    def save(self, record: CredentialRecord) -> None:
        key = record.key
        path = self._record_path(key)
        with self._versions_lock:
            known = self._versions.get(key)
        if known is None:
            known = self._kv.current_version(path)
        text = encode_record(record).decode("utf-8")
        try:
            version = self._kv.write(path, {"record": text}, cas=known)
        except CasMismatch:
            raise RecordConflictError(
                f"the credential record {self._kv.name(path)} was changed by another host (or process) since this one "
                "read it; nothing was overwritten: load it again and retry"
            ) from None
        self._remember(key, version)

    def delete(self, key: RecordKey) -> None:
        path = self._record_path(key)
        self._kv.delete_all(path)
        self._remember(key, 0)

    def list_keys(self) -> list[RecordKey]:
        names = self._kv.list_names(self._kv.join("records"))
        keys: list[RecordKey] = []
        for name in names:
            if not isinstance(name, str) or name.endswith("/"):
                continue  # a sub-folder: not one of ours
            path = self._kv.join("records", name)
            entry = self._kv.read(path)
            if entry.data is None:
                continue  # deleted since the listing, or only deleted versions left
            record = self._decode(path, entry.data, None)
            if record_id(record.key) != name:
                raise TokenStorageError(
                    f"the credential record {self._kv.name(path)} belongs to {record.key}, whose records live at "
                    f"{self._kv.name(self._record_path(record.key))}; move or delete it"
                )
            keys.append(record.key)
        return keys

    def lock(self, key: RecordKey) -> _VaultRecordLock:
        """A lock on ``key`` shared by every host using this Vault location, held as a lock entry.

        A holder that dies without releasing blocks the others for at most ``lock_ttl`` seconds (plus the clock
        skew between the hosts). A release that cannot reach Vault is logged, not raised: the entry then expires.
        """
        return _VaultRecordLock(self, self._kv.join("locks", record_id(key)))

    def __repr__(self) -> str:
        namespace = f", namespace={self._kv.namespace!r}" if self._kv.namespace else ""
        kv = self._kv
        return f"VaultTokenStore({safe_url(kv.url)!r}, mount={kv.mount!r}, prefix={kv.prefix!r}{namespace})"

    # -- lock entries ------------------------------------------------------------------------------------------

    def _acquire_entry(self, path: str, owner: str) -> bool:
        entry = {"owner": owner, "expires_at": time.time() + self._lock_ttl}
        try:
            self._kv.write(path, entry, cas=0)
            return True
        except CasMismatch:
            pass
        current = self._kv.read(path)
        if current.data is not None and not _expired(current.data):
            return False
        try:  # free (deleted meanwhile, or only deleted versions) or expired: take it over atomically
            self._kv.write(path, entry, cas=current.version)
            return True
        except CasMismatch:
            return False  # another contender was faster

    def _release_entry(self, path: str, owner: str) -> None:
        # KV v2 cannot delete conditionally: the entry is deleted only while it is ours and still valid with a
        # margin, so that nobody can have taken it over between this read and the delete. An entry of ours that
        # is (nearly) expired stays: the next contender takes it over.
        try:
            current = self._kv.read(path)
            if current.data is None or current.data.get("owner") != owner:
                return
            expires_at = current.data.get("expires_at")
            if isinstance(expires_at, (int, float)) and expires_at - time.time() > min(5.0, self._lock_ttl / 4):
                self._kv.delete_all(path)
        except TokenStorageError as exc:
            logger.warning("could not release the Vault lock %s (it expires by itself): %s", self._kv.name(path), exc)

    # -- helpers -------------------------------------------------------------------------------------------------

    def _remember(self, key: RecordKey, version: int) -> None:
        with self._versions_lock:
            self._versions[key] = version

    def _record_path(self, key: RecordKey) -> str:
        return self._kv.join("records", record_id(key))

    def _decode(self, path: str, data: dict[str, Any], key: RecordKey | None) -> CredentialRecord:
        text = data.get("record")
        where = f"at {self._kv.name(path)} on Vault at {safe_url(self._kv.url)}"
        remedy = (
            f"; it was left untouched: inspect it with `vault kv get -mount={self._kv.mount} {path}` and repair or "
            f"delete it (vault kv metadata delete -mount={self._kv.mount} {path})"
        )
        if not isinstance(text, str):
            raise TokenStorageError(f"the credential record {where} has no 'record' text field{remedy}")
        try:
            return decode_record(text, where, key)
        except TokenStorageError as exc:
            raise TokenStorageError(f"{exc.message}{remedy}") from None


class _VaultRecordLock:
    """One lock object on one lock entry. ``release`` may run on another thread than ``try_acquire``."""

    def __init__(self, store: VaultTokenStore, path: str) -> None:
        self._store = store
        self._path = path
        self._owner = f"{uuid.uuid4().hex} {socket.gethostname()} pid {os.getpid()}"
        self._held = False
        self._mutex = threading.Lock()

    def try_acquire(self) -> bool:
        with self._mutex:
            if not self._held:
                self._held = self._store._acquire_entry(self._path, self._owner)
            return self._held

    def release(self) -> None:
        with self._mutex:
            held, self._held = self._held, False
            if held:
                self._store._release_entry(self._path, self._owner)

    def __repr__(self) -> str:
        return f"_VaultRecordLock({self._path!r}, held={self._held})"


def _expired(data: dict[str, Any]) -> bool:
    """Whether a lock entry no longer holds: past its expiry, or unreadable (it would otherwise block forever)."""
    expires_at = data.get("expires_at")
    if not is_number(expires_at):
        return True
    return expires_at <= time.time()
