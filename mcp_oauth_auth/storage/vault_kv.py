"""The Vault side of :class:`~mcp_oauth_auth.storage.vault.VaultTokenStore`: one hvac client for one KV version 2
location, the AppRole login, the KV v2 operations the store is built on, and every failure of Vault or the network
explained as a :class:`~mcp_oauth_auth.exceptions.TokenStorageError` (never with a credential in it).

Internal to :mod:`mcp_oauth_auth.storage`; the store keeps the layout, check-and-set and the lock entries.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from mcp_oauth_auth.exceptions import TokenStorageError
from mcp_oauth_auth.flow.urls import safe_url

if TYPE_CHECKING:
    import hvac

_T = TypeVar("_T")

_INSTALL_HINT = "the Vault store needs hvac: pip install 'mcp-oauth-auth[vault]'"
_CAS_MISMATCH = "check-and-set parameter did not match the current version"
_NO_HANDLER = "no handler for route"


class CasMismatch(Exception):
    """Vault refused a check-and-set write: the entry's current version is not the one given."""


class NotFound(Exception):
    """Vault answered 404 for an existing mount: nothing there (or only deleted versions, whose number it gives)."""

    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version


class Entry(NamedTuple):
    """A KV v2 entry as read: its data (None when absent or deleted) and its current version (0 when absent)."""

    data: dict[str, Any] | None
    version: int


class VaultKV:
    """One KV v2 location (``mount`` and ``prefix``) on one Vault, through one hvac client (see
    :class:`~mcp_oauth_auth.storage.vault.VaultTokenStore` for the arguments)."""

    def __init__(
        self,
        url: str | None,
        token: str | None,
        *,
        namespace: str | None,
        mount: str,
        prefix: str,
        role_id: str | None,
        secret_id: str | None,
        approle_mount: str,
        verify: bool | str,
        timeout: float,
        client: hvac.Client | None,
    ) -> None:
        self.mount = mount
        self.prefix = prefix
        self._approle_mount = approle_mount.strip("/")
        self._role_id: str | None = None
        self._secret_id: str | None = None
        self.namespace: str | None = None
        self._client: hvac.Client
        self._login_lock = threading.Lock()
        self.url: str
        role_id = role_id or os.environ.get("VAULT_ROLE_ID") or None
        secret_id = secret_id or os.environ.get("VAULT_SECRET_ID") or None

        if client is not None:
            if url is not None or token is not None or namespace is not None:
                raise TokenStorageError(
                    "pass either client= or url=/token=/namespace= to VaultTokenStore: the client already has them"
                )
            self._client = client
            if role_id and secret_id and not client.token:
                self._role_id, self._secret_id = role_id, secret_id
            self.url = str(client.url)
            self.namespace = getattr(client.adapter, "namespace", None) or None
            return

        resolved_url = url or os.environ.get("VAULT_ADDR")
        if not resolved_url:
            raise TokenStorageError("no Vault address: pass url= to VaultTokenStore or set VAULT_ADDR")
        self.url = resolved_url.rstrip("/")
        self.namespace = namespace or os.environ.get("VAULT_NAMESPACE") or None
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
        self._client = import_hvac().Client(
            url=self.url,
            token=token,
            verify=None if verify is True else verify,  # None: hvac honours VAULT_CACERT / VAULT_CAPATH
            namespace=self.namespace,
            **options,
        )

    # -- KV v2 operations ---------------------------------------------------------------------------------------

    def read(self, path: str) -> Entry:
        try:
            response = self._call(
                "read",
                path,
                lambda: self._client.secrets.kv.v2.read_secret_version(
                    path=path, mount_point=self.mount, raise_on_deleted_version=True
                ),
            )
        except NotFound as missing:
            return Entry(None, missing.version)
        data = _field(response, "data", "data")
        version = _field(response, "data", "metadata", "version")
        if not isinstance(version, int):
            raise self.unexpected(path)
        if data is None:
            return Entry(None, version)
        if not isinstance(data, dict):
            raise self.unexpected(path)
        return Entry(data, version)

    def current_version(self, path: str) -> int:
        try:
            response = self._call(
                "read the metadata of",
                path,
                lambda: self._client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=self.mount),
            )
        except NotFound:
            return 0
        version = _field(response, "data", "current_version")
        if not isinstance(version, int):
            raise self.unexpected(path)
        return version

    def write(self, path: str, data: dict[str, Any], *, cas: int) -> int:
        try:
            response = self._call(
                "write",
                path,
                lambda: self._client.secrets.kv.v2.create_or_update_secret(
                    path=path, secret=data, cas=cas, mount_point=self.mount
                ),
            )
        except NotFound:
            response = None  # a KV v2 engine never answers a write with 404
        version = _field(response, "data", "version") if response is not None else None
        if not isinstance(version, int):
            raise TokenStorageError(
                f"Vault at {safe_url(self.url)} did not answer the write of {self.name(path)} like a KV version 2 "
                f"secrets engine: is '{self.mount}' a KV v1 mount? Use a kv-v2 mount "
                f"(vault secrets enable -path=<mount> kv-v2) or pass mount_point="
            )
        return version

    def delete_all(self, path: str) -> None:
        with contextlib.suppress(NotFound):  # Vault answers 204 for a missing path; a 404 means the same
            self._call(
                "delete",
                path,
                lambda: self._client.secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point=self.mount),
            )

    def list_names(self, folder: str) -> list[object]:
        """The names listed under ``folder`` (none when it does not exist)."""
        try:
            response = self._call(
                "list", folder, lambda: self._client.secrets.kv.v2.list_secrets(path=folder, mount_point=self.mount)
            )
        except NotFound:
            return []
        names = _field(response, "data", "keys")
        if not isinstance(names, list):
            raise self.unexpected(folder)
        return names

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
                    raise CasMismatch from None
                raise self._refused(action, path, exc) from None
            except vault.InvalidPath as exc:
                if _NO_HANDLER in _errors(exc):
                    raise TokenStorageError(
                        f"no secrets engine is mounted at '{self.mount}/' on Vault at {safe_url(self.url)}"
                        f"{self._in_namespace()}: enable one (vault secrets enable -path={self.mount} kv-v2) "
                        "or pass the right mount_point"
                    ) from None
                version = _field(exc.json, "data", "metadata", "version")
                raise NotFound(version if isinstance(version, int) else 0) from None
            except vault.VaultDown as exc:
                if "sealed" in _errors(exc).lower():
                    raise TokenStorageError(
                        f"Vault at {safe_url(self.url)} is sealed; unseal it (vault operator unseal) and try again"
                    ) from None
                raise self._refused(action, path, exc) from None
            except vault.VaultError as exc:
                raise self._refused(action, path, exc) from None
            except requests.exceptions.SSLError:
                raise TokenStorageError(
                    f"the TLS certificate of Vault at {safe_url(self.url)} could not be verified; pass verify= the "
                    "path of its CA bundle (or set VAULT_CACERT)"
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                raise TokenStorageError(
                    f"Vault at {safe_url(self.url)} is unreachable ({type(exc).__name__}) while trying to {action} "
                    f"{self.name(path)}; check VAULT_ADDR and the network, then try again"
                ) from None
            except requests.exceptions.RequestException as exc:
                raise TokenStorageError(
                    f"the request to Vault at {safe_url(self.url)} to {action} {self.name(path)} failed "
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
            where = f"auth/{self._approle_mount}/login on Vault at {safe_url(self.url)}{self._in_namespace()}"
            try:
                response = self._client.auth.approle.login(
                    role_id=self._role_id, secret_id=self._secret_id, use_token=False, mount_point=self._approle_mount
                )
            except vault.VaultDown as exc:
                if "sealed" in _errors(exc).lower():
                    raise TokenStorageError(
                        f"Vault at {safe_url(self.url)} is sealed; unseal it (vault operator unseal) and try again"
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
                    f"Vault at {safe_url(self.url)} is unreachable ({type(exc).__name__}) for the AppRole login; "
                    "check VAULT_ADDR and the network, then try again"
                ) from None
            token = _field(response, "auth", "client_token")
            if not isinstance(token, str) or not token:
                raise TokenStorageError(f"the AppRole login ({where}) returned no client token")
            self._client.token = token

    # -- names and messages --------------------------------------------------------------------------------------

    def join(self, *parts: str) -> str:
        return "/".join(part for part in (self.prefix, *parts) if part)

    def name(self, path: str) -> str:
        """How messages name a path: the mount and the path, as ``vault kv get -mount=<mount> <path>`` takes it."""
        return f"{self.mount}/{path}"

    def _in_namespace(self) -> str:
        return f" (namespace {self.namespace!r})" if self.namespace else ""

    def _permission_error(self, path: str) -> TokenStorageError:
        login = "the AppRole's token" if self._role_id is not None else "the Vault token"
        return TokenStorageError(
            f"{login} lacks permission on {self.name(path)}{self._in_namespace()} (Vault at {safe_url(self.url)}): "
            f"grant read/create/update/delete/list on {self.mount}/data/{self.join('*')} and "
            f"{self.mount}/metadata/{self.join('*')} in its policy, or, if the token expired, supply a fresh one"
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
            f"Vault at {safe_url(self.url)} could not {action} {self.name(path)}: {said}; {remedy}; "
            "any stored record is unchanged",
            status_code=status,
        )

    def unexpected(self, path: str) -> TokenStorageError:
        return TokenStorageError(
            f"Vault at {safe_url(self.url)} answered a request for {self.name(path)} with an unexpected document; "
            f"is '{self.mount}' a KV version 2 secrets engine?"
        )

    def _scrub(self, text: str) -> str:
        """``text`` without any credential of ours (Vault does not echo them, but a proxy might)."""
        for secret in (self._client.token, self._secret_id):
            if secret:
                text = text.replace(secret, "***")
        return text


def import_hvac() -> Any:
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
