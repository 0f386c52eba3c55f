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

``hvac`` is an optional dependency: ``pip install 'mcp-oauth-auth[vault]'``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from mcp_oauth_auth.exceptions import RecordConflictError, TokenStorageError
from mcp_oauth_auth.flow.urls import safe_url
from mcp_oauth_auth.flow.values import is_number
from mcp_oauth_auth.records import CredentialRecord, RecordKey
from mcp_oauth_auth.storage.codec import decode_record, encode_record, record_id

if TYPE_CHECKING:
    import hvac

__all__ = ["VaultTokenStore"]

logger = logging.getLogger("mcp_oauth_auth")

_T = TypeVar("_T")

_INSTALL_HINT = "the Vault store needs hvac: pip install 'mcp-oauth-auth[vault]'"
_CAS_MISMATCH = "check-and-set parameter did not match the current version"
_NO_HANDLER = "no handler for route"


class _CasMismatch(Exception):
    """Vault refused a check-and-set write: the entry's current version is not the one given."""


class _NotFound(Exception):
    """Vault answered 404 for an existing mount: nothing there (or only deleted versions, whose number it gives)."""

    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version


class _Entry(NamedTuple):
    """A KV v2 entry as read: its data (None when absent or deleted) and its current version (0 when absent)."""

    data: dict[str, Any] | None
    version: int


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
        hvac_module = _import_hvac()
        self._mount = mount_point.strip("/")
        self._prefix = path_prefix.strip("/")
        if not self._mount:
            raise TokenStorageError("mount_point must name the KV v2 secrets engine, e.g. 'secret'")
        if lock_ttl <= 0:
            raise TokenStorageError(f"lock_ttl must be positive, not {lock_ttl!r}")
        self._lock_ttl = float(lock_ttl)
        self._approle_mount = approle_mount.strip("/")
        role_id = role_id or os.environ.get("VAULT_ROLE_ID") or None
        secret_id = secret_id or os.environ.get("VAULT_SECRET_ID") or None
        self._role_id: str | None = None
        self._secret_id: str | None = None
        self._namespace: str | None = None
        self._client: hvac.Client
        self._versions: dict[RecordKey, int] = {}
        self._versions_lock = threading.Lock()
        self._login_lock = threading.Lock()

        if client is not None:
            if url is not None or token is not None or namespace is not None:
                raise TokenStorageError(
                    "pass either client= or url=/token=/namespace= to VaultTokenStore: the client already has them"
                )
            self._client = client
            if role_id and secret_id and not client.token:
                self._role_id, self._secret_id = role_id, secret_id
            self._url = str(client.url)
            self._namespace = getattr(client.adapter, "namespace", None) or None
            return

        resolved_url = url or os.environ.get("VAULT_ADDR")
        if not resolved_url:
            raise TokenStorageError("no Vault address: pass url= to VaultTokenStore or set VAULT_ADDR")
        self._url = resolved_url.rstrip("/")
        self._namespace = namespace or os.environ.get("VAULT_NAMESPACE") or None
        if not token and role_id and secret_id:
            self._role_id, self._secret_id = role_id, secret_id
            token = ""  # no token until the AppRole login (and never one hvac would pick up from the environment)
        elif not token:
            token = os.environ.get("VAULT_TOKEN") or None
        if token is None:
            missing = ""
            if role_id and not secret_id:
                missing = " (an AppRole role_id is set but its secret_id / VAULT_SECRET_ID is missing)"
            elif secret_id and not role_id:
                missing = " (an AppRole secret_id is set but its role_id / VAULT_ROLE_ID is missing)"
            raise TokenStorageError(
                "no Vault credentials: pass token=, or role_id= and secret_id= (AppRole), to VaultTokenStore, "
                f"or set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID{missing}"
            )
        options: dict[str, Any] = {"timeout": timeout}  # hvac's stubs say int; requests takes a float
        self._client = hvac_module.Client(
            url=self._url,
            token=token,
            verify=None if verify is True else verify,  # None: hvac honours VAULT_CACERT / VAULT_CAPATH
            namespace=self._namespace,
            **options,
        )

    # -- TokenStore --------------------------------------------------------------------------------------------

    def load(self, key: RecordKey) -> CredentialRecord | None:
        path = self._record_path(key)
        entry = self._read(path)
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
            known = self._current_version(path)
        text = encode_record(record).decode("utf-8")
        try:
            version = self._write(path, {"record": text}, cas=known)
        except _CasMismatch:
            raise RecordConflictError(
                f"the credential record {self._name(path)} was changed by another host (or process) since this one "
                "read it; nothing was overwritten: load it again and retry"
            ) from None
        self._remember(key, version)

    def delete(self, key: RecordKey) -> None:
        path = self._record_path(key)
        self._delete_all(path)
        self._remember(key, 0)

    def list_keys(self) -> list[RecordKey]:
        folder = self._join("records")
        try:
            response = self._call(
                "list", folder, lambda: self._client.secrets.kv.v2.list_secrets(path=folder, mount_point=self._mount)
            )
        except _NotFound:
            return []
        names = _field(response, "data", "keys")
        if not isinstance(names, list):
            raise self._unexpected(folder)
        keys: list[RecordKey] = []
        for name in names:
            if not isinstance(name, str) or name.endswith("/"):
                continue  # a sub-folder: not one of ours
            path = self._join("records", name)
            entry = self._read(path)
            if entry.data is None:
                continue  # deleted since the listing, or only deleted versions left
            record = self._decode(path, entry.data, None)
            if record_id(record.key) != name:
                raise TokenStorageError(
                    f"the credential record {self._name(path)} belongs to {record.key}, whose records live at "
                    f"{self._name(self._record_path(record.key))}; move or delete it"
                )
            keys.append(record.key)
        return keys

    def lock(self, key: RecordKey) -> _VaultRecordLock:
        """A lock on ``key`` shared by every host using this Vault location, held as a lock entry.

        A holder that dies without releasing blocks the others for at most ``lock_ttl`` seconds (plus the clock
        skew between the hosts). A release that cannot reach Vault is logged, not raised: the entry then expires.
        """
        return _VaultRecordLock(self, self._join("locks", record_id(key)))

    def __repr__(self) -> str:
        namespace = f", namespace={self._namespace!r}" if self._namespace else ""
        return f"VaultTokenStore({safe_url(self._url)!r}, mount={self._mount!r}, prefix={self._prefix!r}{namespace})"

    # -- lock entries ------------------------------------------------------------------------------------------

    def _acquire_entry(self, path: str, owner: str) -> bool:
        entry = {"owner": owner, "expires_at": time.time() + self._lock_ttl}
        try:
            self._write(path, entry, cas=0)
            return True
        except _CasMismatch:
            pass
        current = self._read(path)
        if current.data is not None and not _expired(current.data):
            return False
        try:  # free (deleted meanwhile, or only deleted versions) or expired: take it over atomically
            self._write(path, entry, cas=current.version)
            return True
        except _CasMismatch:
            return False  # another contender was faster

    def _release_entry(self, path: str, owner: str) -> None:
        # KV v2 cannot delete conditionally: the entry is deleted only while it is ours and still valid with a
        # margin, so that nobody can have taken it over between this read and the delete. An entry of ours that
        # is (nearly) expired stays: the next contender takes it over.
        try:
            current = self._read(path)
            if current.data is None or current.data.get("owner") != owner:
                return
            expires_at = current.data.get("expires_at")
            if isinstance(expires_at, (int, float)) and expires_at - time.time() > min(5.0, self._lock_ttl / 4):
                self._delete_all(path)
        except TokenStorageError as exc:
            logger.warning("could not release the Vault lock %s (it expires by itself): %s", self._name(path), exc)

    # -- KV v2 operations ---------------------------------------------------------------------------------------

    def _read(self, path: str) -> _Entry:
        try:
            response = self._call(
                "read",
                path,
                lambda: self._client.secrets.kv.v2.read_secret_version(
                    path=path, mount_point=self._mount, raise_on_deleted_version=True
                ),
            )
        except _NotFound as missing:
            return _Entry(None, missing.version)
        data = _field(response, "data", "data")
        version = _field(response, "data", "metadata", "version")
        if not isinstance(version, int):
            raise self._unexpected(path)
        if data is None:
            return _Entry(None, version)
        if not isinstance(data, dict):
            raise self._unexpected(path)
        return _Entry(data, version)

    def _current_version(self, path: str) -> int:
        try:
            response = self._call(
                "read the metadata of",
                path,
                lambda: self._client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=self._mount),
            )
        except _NotFound:
            return 0
        version = _field(response, "data", "current_version")
        if not isinstance(version, int):
            raise self._unexpected(path)
        return version

    def _write(self, path: str, data: dict[str, Any], *, cas: int) -> int:
        try:
            response = self._call(
                "write",
                path,
                lambda: self._client.secrets.kv.v2.create_or_update_secret(
                    path=path, secret=data, cas=cas, mount_point=self._mount
                ),
            )
        except _NotFound:
            response = None  # a KV v2 engine never answers a write with 404
        version = _field(response, "data", "version") if response is not None else None
        if not isinstance(version, int):
            raise TokenStorageError(
                f"Vault at {safe_url(self._url)} did not answer the write of {self._name(path)} like a KV version 2 "
                f"secrets engine: is '{self._mount}' a KV v1 mount? Use a kv-v2 mount "
                f"(vault secrets enable -path=<mount> kv-v2) or pass mount_point="
            )
        return version

    def _delete_all(self, path: str) -> None:
        with contextlib.suppress(_NotFound):  # Vault answers 204 for a missing path; a 404 means the same
            self._call(
                "delete",
                path,
                lambda: self._client.secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point=self._mount),
            )

    def _call(self, action: str, path: str, operation: Callable[[], _T]) -> _T:
        """Run one hvac call, logging in with AppRole when needed, and translate every failure into ours."""
        import requests.exceptions
        from hvac import exceptions as vault

        relogged = False
        while True:
            if self._role_id is not None and not self._client.token:
                self._login(stale="")
            used = self._client.token
            try:
                return operation()
            except vault.Forbidden:
                if self._role_id is not None and not relogged:
                    relogged = True  # an AppRole token may have expired: log in again, once
                    self._login(stale=used)
                    continue
                raise self._permission_error(path) from None
            except vault.InvalidRequest as exc:
                if _CAS_MISMATCH in _errors(exc):
                    raise _CasMismatch from None
                raise self._refused(action, path, exc) from None
            except vault.InvalidPath as exc:
                if _NO_HANDLER in _errors(exc):
                    raise TokenStorageError(
                        f"no secrets engine is mounted at '{self._mount}/' on Vault at {safe_url(self._url)}"
                        f"{self._in_namespace()}: enable one (vault secrets enable -path={self._mount} kv-v2) "
                        "or pass the right mount_point"
                    ) from None
                version = _field(exc.json, "data", "metadata", "version")
                raise _NotFound(version if isinstance(version, int) else 0) from None
            except vault.VaultDown as exc:
                if "sealed" in _errors(exc).lower():
                    raise TokenStorageError(
                        f"Vault at {safe_url(self._url)} is sealed; unseal it (vault operator unseal) and try again"
                    ) from None
                raise self._refused(action, path, exc) from None
            except vault.VaultError as exc:
                raise self._refused(action, path, exc) from None
            except requests.exceptions.SSLError:
                raise TokenStorageError(
                    f"the TLS certificate of Vault at {safe_url(self._url)} could not be verified; pass verify= the "
                    "path of its CA bundle (or set VAULT_CACERT)"
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                raise TokenStorageError(
                    f"Vault at {safe_url(self._url)} is unreachable ({type(exc).__name__}) while trying to {action} "
                    f"{self._name(path)}; check VAULT_ADDR and the network, then try again"
                ) from None
            except requests.exceptions.RequestException as exc:
                raise TokenStorageError(
                    f"the request to Vault at {safe_url(self._url)} to {action} {self._name(path)} failed "
                    f"({type(exc).__name__})"
                ) from None

    def _login(self, *, stale: str) -> None:
        """Log in with AppRole, unless another thread already replaced the ``stale`` token."""
        import requests.exceptions
        from hvac import exceptions as vault

        assert self._role_id is not None
        with self._login_lock:
            if self._client.token and self._client.token != stale:
                return
            where = f"auth/{self._approle_mount}/login on Vault at {safe_url(self._url)}{self._in_namespace()}"
            try:
                response = self._client.auth.approle.login(
                    role_id=self._role_id, secret_id=self._secret_id, use_token=False, mount_point=self._approle_mount
                )
            except vault.VaultDown as exc:
                if "sealed" in _errors(exc).lower():
                    raise TokenStorageError(
                        f"Vault at {safe_url(self._url)} is sealed; unseal it (vault operator unseal) and try again"
                    ) from None
                raise TokenStorageError(f"the AppRole login ({where}) failed: {self._scrub(_errors(exc))}") from None
            except vault.VaultError as exc:
                raise TokenStorageError(
                    f"the AppRole login ({where}) was refused: {self._scrub(_errors(exc)) or type(exc).__name__}; "
                    "check the role ID and secret ID (VAULT_ROLE_ID, VAULT_SECRET_ID): a secret ID can expire or "
                    "run out of uses"
                ) from None
            except requests.exceptions.RequestException as exc:
                raise TokenStorageError(
                    f"Vault at {safe_url(self._url)} is unreachable ({type(exc).__name__}) for the AppRole login; "
                    "check VAULT_ADDR and the network, then try again"
                ) from None
            token = _field(response, "auth", "client_token")
            if not isinstance(token, str) or not token:
                raise TokenStorageError(f"the AppRole login ({where}) returned no client token")
            self._client.token = token

    # -- helpers -------------------------------------------------------------------------------------------------

    def _remember(self, key: RecordKey, version: int) -> None:
        with self._versions_lock:
            self._versions[key] = version

    def _join(self, *parts: str) -> str:
        return "/".join(part for part in (self._prefix, *parts) if part)

    def _record_path(self, key: RecordKey) -> str:
        return self._join("records", record_id(key))

    def _name(self, path: str) -> str:
        """How messages name a path: the mount and the path, as ``vault kv get -mount=<mount> <path>`` takes it."""
        return f"{self._mount}/{path}"

    def _in_namespace(self) -> str:
        return f" (namespace {self._namespace!r})" if self._namespace else ""

    def _decode(self, path: str, data: dict[str, Any], key: RecordKey | None) -> CredentialRecord:
        text = data.get("record")
        where = f"at {self._name(path)} on Vault at {safe_url(self._url)}"
        remedy = (
            f"; it was left untouched: inspect it with `vault kv get -mount={self._mount} {path}` and repair or "
            f"delete it (vault kv metadata delete -mount={self._mount} {path})"
        )
        if not isinstance(text, str):
            raise TokenStorageError(f"the credential record {where} has no 'record' text field{remedy}")
        try:
            return decode_record(text, where, key)
        except TokenStorageError as exc:
            raise TokenStorageError(f"{exc.message}{remedy}") from None

    def _permission_error(self, path: str) -> TokenStorageError:
        login = "the AppRole's token" if self._role_id is not None else "the Vault token"
        return TokenStorageError(
            f"{login} lacks permission on {self._name(path)}{self._in_namespace()} (Vault at {safe_url(self._url)}): "
            f"grant read/create/update/delete/list on {self._mount}/data/{self._join('*')} and "
            f"{self._mount}/metadata/{self._join('*')} in its policy, or, if the token expired, supply a fresh one"
        )

    def _refused(self, action: str, path: str, exc: Exception) -> TokenStorageError:
        status = {
            "InvalidRequest": 400,
            "Unauthorized": 401,
            "RateLimitExceeded": 429,
            "InternalServerError": 500,
            "VaultNotInitialized": 501,
            "BadGateway": 502,
            "VaultDown": 503,
        }.get(type(exc).__name__)
        said = self._scrub(_errors(exc)) or type(exc).__name__
        if status is not None and status < 500 and status != 429:
            remedy = "check the mount (a KV version 2 engine) and the path_prefix"
        else:
            remedy = "try again later"
        return TokenStorageError(
            f"Vault at {safe_url(self._url)} could not {action} {self._name(path)}: {said}; {remedy}; "
            "any stored record is unchanged",
            status_code=status,
        )

    def _unexpected(self, path: str) -> TokenStorageError:
        return TokenStorageError(
            f"Vault at {safe_url(self._url)} answered a request for {self._name(path)} with an unexpected document; "
            f"is '{self._mount}' a KV version 2 secrets engine?"
        )

    def _scrub(self, text: str) -> str:
        """``text`` without any credential of ours (Vault does not echo them, but a proxy might)."""
        for secret in (self._client.token, self._secret_id):
            if secret:
                text = text.replace(secret, "***")
        return text


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


def _import_hvac() -> Any:
    try:
        import hvac
    except ImportError:
        raise TokenStorageError(_INSTALL_HINT) from None
    return hvac


def _field(document: object, *names: str) -> object:
    """``document[names[0]][names[1]]...``, or None when any level is missing or not a JSON object."""
    for name in names:
        if not isinstance(document, dict):
            return None
        document = document.get(name)
    return document


def _errors(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list):
        return "; ".join(str(error).strip() for error in errors)
    return ""


def _expired(data: dict[str, Any]) -> bool:
    """Whether a lock entry no longer holds: past its expiry, or unreadable (it would otherwise block forever)."""
    expires_at = data.get("expires_at")
    if not is_number(expires_at):
        return True
    return expires_at <= time.time()
