"""The high-level API that users of chuk-mcp-client-oauth know: :class:`OAuthHandler`, :class:`MCPOAuthClient`,
:class:`TokenManager`, :class:`TokenStoreFactory` and :class:`OAuthTokens`.

Everything here is a thin layer: the protocol (discovery, registration, PKCE, token requests, revocation) comes
from :mod:`mcp_oauth_auth.flow` and :class:`~mcp_oauth_auth.MCPOAuth`, the persistence from the credential stores.

Names. A ``server_name`` is a label people give a credential; it is kept in the record's ``names`` and is never
the key (records are keyed by authorization server issuer and protected resource). A label belongs to one server
at a time: when the handler uses a name for a server, the label is attached to that server's credential and
removed from any other. Lookups by name with a URL only match records for that URL, and a handler never hands out
a token of another server than the one it last used under a name.

Tokens saved by hand (:meth:`TokenManager.save_tokens` for a name that labels no credential) have no issuer or
resource to be keyed by: they are kept in an *unbound* record (issuer :data:`UNBOUND_ISSUER`) that only
:class:`TokenManager` reads back, and that :class:`~mcp_oauth_auth.MCPOAuth` and :class:`OAuthHandler` never send
anywhere.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import anyio.to_thread
import httpx

from mcp_oauth_auth.auth import MCPOAuth, scope_tuple
from mcp_oauth_auth.authorizers.base import Authorizer, AuthorizerLike, as_authorizer
from mcp_oauth_auth.driving.http import is_transport_error
from mcp_oauth_auth.driving.loop import adrive
from mcp_oauth_auth.driving.perform import Performer, choose_redirect
from mcp_oauth_auth.driving.session import StoreSession, guarded
from mcp_oauth_auth.exceptions import (
    ConfigurationError,
    TemporaryOAuthError,
    TokenRevocationError,
    TokenStorageError,
)
from mcp_oauth_auth.flow.discovery import (
    AuthorizationServerMetadata,
    ProtectedResourceMetadata,
    discover_protected_resource,
    find_authorization_server,
)
from mcp_oauth_auth.flow.effects import DeleteRecord, Effect, Flow, LoadRecord, LockRecord, SaveRecord
from mcp_oauth_auth.flow.fetch import RetryPolicy, parse_seconds
from mcp_oauth_auth.flow.grants import code_grant
from mcp_oauth_auth.flow.registration import ClientSettings, identify_client
from mcp_oauth_auth.flow.revocation import RevocationOutcome, revoke_token
from mcp_oauth_auth.flow.tokens import refresh_tokens
from mcp_oauth_auth.flow.urls import BearerScope, canonical_resource, resource_identifies_server, safe_url
from mcp_oauth_auth.records import ClientRegistration, CredentialRecord, RecordKey, TokenSet, redact
from mcp_oauth_auth.storage.auto import BackendStatus, get_available_backends
from mcp_oauth_auth.storage.backends import TokenStoreBackend, create_store
from mcp_oauth_auth.storage.base import TokenStore

__all__ = [
    "UNBOUND_ISSUER",
    "MCPOAuthClient",
    "OAuthHandler",
    "OAuthTokens",
    "TokenManager",
    "TokenStoreBackend",
    "TokenStoreFactory",
    "is_unbound",
]

logger = logging.getLogger("mcp_oauth_auth")

#: The issuer of records holding tokens saved by hand for a name that labels no credential (see module docs).
UNBOUND_ISSUER = "urn:mcp-oauth-auth:unbound"
_UNBOUND_RESOURCE = "urn:mcp-oauth-auth:name:"

_T = TypeVar("_T")


# ---------------------------------------------------------------------------------------------------------------
# OAuthTokens


@dataclass(frozen=True)
class OAuthTokens:
    """Tokens as the high-level API hands them out.

    ``expires_in`` is relative (seconds from ``issued_at``, as in a token response); the absolute ``expires_at``
    is computed once, so :meth:`is_expired` stays right however long the object lives. ``repr`` never shows a
    token.
    """

    access_token: str = field(repr=False)
    token_type: str = "Bearer"
    expires_in: int | None = None
    refresh_token: str | None = field(default=None, repr=False)
    scope: str | None = None
    #: When the access token expires, in seconds since the epoch (derived from ``expires_in`` when not given).
    expires_at: float | None = field(default=None, kw_only=True)
    #: When ``expires_in`` was counted from.
    issued_at: float = field(default_factory=time.time, kw_only=True)
    id_token: str | None = field(default=None, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.access_token, str) or not self.access_token:
            raise ConfigurationError("OAuthTokens needs a non-empty access_token")
        if not isinstance(self.token_type, str) or not self.token_type:
            raise ConfigurationError("OAuthTokens.token_type must be a non-empty string")
        for name in ("refresh_token", "scope", "id_token"):
            if not isinstance(getattr(self, name), (str, type(None))):
                raise ConfigurationError(f"OAuthTokens.{name} must be a string or None")
        for name in ("expires_in", "expires_at", "issued_at"):
            value = getattr(self, name)
            if value is None and name != "issued_at":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigurationError(f"OAuthTokens.{name} must be a finite number of seconds")
        if self.expires_at is None and self.expires_in is not None:
            object.__setattr__(self, "expires_at", self.issued_at + float(self.expires_in))

    def __repr__(self) -> str:
        return (
            f"OAuthTokens(access_token={redact(self.access_token)}, token_type={self.token_type!r}, "
            f"expires_in={self.expires_in!r}, refresh_token={redact(self.refresh_token)}, scope={self.scope!r}, "
            f"expires_at={self.expires_at!r})"
        )

    def get_authorization_header(self) -> str:
        """The ``Authorization`` header value: ``"Bearer <access token>"``."""
        scheme = "Bearer" if self.token_type.lower() == "bearer" else self.token_type
        return f"{scheme} {self.access_token}"

    def is_expired(self, leeway: float = 0.0, now: float | None = None) -> bool:
        """True when the access token has expired, or will within ``leeway`` seconds. Unknown expiry: never."""
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) + leeway >= self.expires_at

    def seconds_left(self, now: float | None = None) -> float | None:
        """Seconds until the access token expires (negative once it has), or None when unknown."""
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; :meth:`from_dict` reads it back with the same absolute expiry."""
        document: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
            "expires_at": self.expires_at,
            "issued_at": self.issued_at,
        }
        if self.id_token is not None:
            document["id_token"] = self.id_token
        return document

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OAuthTokens:
        """From :meth:`to_dict` output, or from a token endpoint response body (RFC 6749 §5.1)."""
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"OAuthTokens.from_dict needs a mapping, not {type(data).__name__}")
        extra: dict[str, Any] = {}
        if data.get("issued_at") is not None:
            extra["issued_at"] = _seconds(data["issued_at"], "issued_at")
        expires_in = data.get("expires_in")
        return cls(
            access_token=data.get("access_token"),  # type: ignore[arg-type]  # checked in __post_init__
            token_type=data.get("token_type") or "Bearer",
            expires_in=None if expires_in is None else int(_seconds(expires_in, "expires_in")),
            refresh_token=data.get("refresh_token"),
            scope=data.get("scope"),
            expires_at=data.get("expires_at"),
            id_token=data.get("id_token"),
            **extra,
        )

    @classmethod
    def from_token_set(cls, tokens: TokenSet, now: float | None = None) -> OAuthTokens:
        """From a stored :class:`~mcp_oauth_auth.TokenSet`: ``expires_in`` is what is left of it at ``now``."""
        now = time.time() if now is None else now
        expires_in = None if tokens.expires_at is None else max(0, int(tokens.expires_at - now))
        return cls(
            access_token=tokens.access_token,
            token_type=tokens.token_type,
            expires_in=expires_in,
            refresh_token=tokens.refresh_token,
            scope=tokens.scope,
            expires_at=tokens.expires_at,
            issued_at=now,
            id_token=tokens.id_token,
        )

    def to_token_set(self) -> TokenSet:
        """The :class:`~mcp_oauth_auth.TokenSet` the library stores."""
        return TokenSet(
            access_token=self.access_token,
            token_type="Bearer" if self.token_type.lower() == "bearer" else self.token_type,
            expires_at=self.expires_at,
            refresh_token=self.refresh_token,
            scope=self.scope,
            id_token=self.id_token,
            issued_at=self.issued_at,
        )


def _seconds(value: Any, name: str) -> float:
    """A finite number of seconds, 0 or more, from a number or a string of digits (token responses send both)."""
    seconds = parse_seconds(value)
    if seconds is None:
        raise ConfigurationError(f"OAuthTokens: {name} must be a finite number of seconds")
    return seconds


# ---------------------------------------------------------------------------------------------------------------
# Stores


def is_unbound(record: CredentialRecord | RecordKey) -> bool:
    """Whether ``record`` holds tokens saved by hand under a name, bound to no server (see the module docs)."""
    return record.issuer == UNBOUND_ISSUER


def _unbound_key(name: str) -> RecordKey:
    return RecordKey(issuer=UNBOUND_ISSUER, resource=_UNBOUND_RESOURCE + quote(name, safe=""))


def _unbound_record(name: str, tokens: TokenSet) -> CredentialRecord:
    key = _unbound_key(name)
    return CredentialRecord(
        issuer=key.issuer,
        resource=key.resource,
        server_url=key.resource,
        client=ClientRegistration(client_id="", kind="unbound"),
        token_endpoint="",
        tokens=tokens,
        names=(name,),
    )


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"a server name must be a non-empty string, not {name!r}")


def _store_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The seed's ``vault_url=``, ``vault_token=``, ... are our Vault store's ``url=``, ``token=``, ..."""
    return {name.removeprefix("vault_"): value for name, value in options.items()}


def _create_store(backend: TokenStoreBackend | str, options: Mapping[str, Any]) -> TokenStore:
    try:
        return create_store(backend, **_store_options(options))
    except TypeError as exc:
        raise ConfigurationError(f"the {backend} credential store does not take these options: {exc}") from None


def _most_recent(records: Sequence[CredentialRecord]) -> CredentialRecord | None:
    """The record to use among several: one with tokens before one without, then the most recently updated."""
    return max(records, key=lambda record: (record.tokens is not None, record.updated_at), default=None)


def _serves(record: CredentialRecord, server_url: str) -> bool:
    """Whether a (bound) record is a credential for the MCP server at the canonical ``server_url``."""
    return record.server_url == server_url or resource_identifies_server(record.resource, server_url)


class TokenManager:
    """Credential storage by server name, over a :class:`~mcp_oauth_auth.TokenStore`.

    ``TokenManager()`` uses the automatic store (the OS keyring when usable, else encrypted files under
    ``~/.mcp_oauth``); ``backend=`` picks one by name (:class:`TokenStoreBackend`), with ``token_dir=`` and
    ``password=`` for the encrypted file store and ``vault_url=``, ``vault_token=``, ``vault_mount_point=``,
    ``vault_path_prefix=``, ``vault_namespace=`` ... for Vault. ``store=`` uses a store object you already have.

    Names label credential records (``record.names``); ``server_url=`` narrows a lookup to that server. Without a
    URL and with several credentials carrying the same label (labelled by other tools), the most recently updated
    one is used and a warning is logged. Tokens saved for a name that labels no credential go to an unbound record
    (:func:`is_unbound`).
    """

    def __init__(
        self,
        backend: TokenStoreBackend | str = TokenStoreBackend.AUTO,
        token_dir: str | os.PathLike[str] | None = None,
        password: str | None = None,
        *,
        store: TokenStore | None = None,
        lock_timeout: float = 60.0,
        **vault_options: Any,
    ) -> None:
        if store is not None:
            if backend != TokenStoreBackend.AUTO or token_dir is not None or password is not None or vault_options:
                raise ConfigurationError("pass either store= or backend= with its options to TokenManager, not both")
            self._store: TokenStore = store
        else:
            options = dict(vault_options)
            if token_dir is not None:
                options["token_dir"] = token_dir
            if password is not None:
                options["password"] = password
            self._store = _create_store(backend, options)
        self._lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"TokenManager(store={self._store!r})"

    @property
    def store(self) -> TokenStore:
        return self._store

    @property
    def blocking(self) -> bool:
        """Whether store calls may block (async callers then run them in a worker thread)."""
        return getattr(self._store, "blocking", True) is not False

    # -- the seed's API ------------------------------------------------------------------------------------------

    def save_tokens(self, server_name: str, tokens: OAuthTokens) -> None:
        """Store ``tokens`` for ``server_name``: in the credential labelled with it, else in an unbound record."""
        _check_name(server_name)
        record = self.find_credential(server_name)
        key = record.key if record is not None else _unbound_key(server_name)
        with self._session(key) as session:
            current = session.perform(LoadRecord(key))
            if current is None and record is not None:
                current = record  # deleted meanwhile: its labelled credential is still what was asked for
            updated = (
                _unbound_record(server_name, tokens.to_token_set())
                if current is None
                else current.with_tokens(tokens.to_token_set())
            )
            session.perform(SaveRecord(updated))

    def load_tokens(self, server_name: str, server_url: str | None = None) -> OAuthTokens | None:
        """The tokens stored for ``server_name`` (for that server only, with ``server_url``), or None."""
        record = self.find_credential(server_name, server_url)
        if record is None and server_url is None:
            record = self._load(_unbound_key(server_name))
        if record is None or record.tokens is None:
            return None
        return OAuthTokens.from_token_set(record.tokens)

    def has_valid_tokens(self, server_name: str, server_url: str | None = None) -> bool:
        """Whether an access token that has not expired is stored for ``server_name``."""
        tokens = self.load_tokens(server_name, server_url)
        return tokens is not None and not tokens.is_expired()

    def delete_tokens(self, server_name: str, server_url: str | None = None) -> bool:
        """Delete every credential labelled ``server_name`` (for that server only, with ``server_url``), with its
        registration, and tokens saved by hand under it. True when something was deleted. Local only: nothing is
        revoked (see :meth:`OAuthHandler.logout`)."""
        return bool(self._delete_named(server_name, server_url))

    # -- listing and lookup --------------------------------------------------------------------------------------

    def list_credentials(self) -> list[CredentialRecord]:
        """Every stored credential record, labelled or not, sorted by name and URL. Records that cannot be read
        (damaged, or of a newer format) are left out and logged."""
        return sorted(self._records(), key=lambda record: (record.names == (), record.names, record.server_url))

    def find_credential(self, server_name: str, server_url: str | None = None) -> CredentialRecord | None:
        """The server credential labelled ``server_name`` (for the server at ``server_url``, when given), or None.

        Unbound records are never returned here.
        """
        _check_name(server_name)
        candidates = self._labelled(server_name, server_url)
        if server_url is None and len(candidates) > 1:
            logger.warning(
                "%d credentials are labelled %r (%s); using the most recently updated one: pass server_url= to choose",
                len(candidates),
                server_name,
                ", ".join(record.server_url for record in candidates),
            )
        return _most_recent(candidates)

    def _labelled(self, name: str, server_url: str | None) -> list[CredentialRecord]:
        url = None if server_url is None else canonical_resource(server_url)
        return [
            record
            for record in self._records()
            if name in record.names and not is_unbound(record) and (url is None or _serves(record, url))
        ]

    # -- used by OAuthHandler ------------------------------------------------------------------------------------

    def _unique_credential(self, name: str) -> CredentialRecord | None:
        """The one server credential labelled ``name``; None when there is none, or more than one."""
        candidates = self._labelled(name, None)
        return candidates[0] if len(candidates) == 1 else None

    def _attach_name(self, name: str, key: RecordKey) -> None:
        """Label the credential ``key`` with ``name`` and take the label off every other record: a name belongs
        to one server at a time. Tokens saved by hand under the name are dropped (a real credential replaces them).
        """
        with self._session(key) as session:
            record = session.perform(LoadRecord(key))
            if record is not None and name not in record.names:
                session.perform(SaveRecord(replace(record, names=(*record.names, name))))
        for other in self._records():
            if other.key != key and name in other.names:
                self._remove_label(name, other.key)

    def _remove_label(self, name: str, key: RecordKey) -> None:
        with self._session(key) as session:
            record = session.perform(LoadRecord(key))
            if record is None or name not in record.names:
                return
            if is_unbound(record):
                session.perform(DeleteRecord(key))
            else:
                names = tuple(label for label in record.names if label != name)
                session.perform(SaveRecord(replace(record, names=names)))
                logger.info("the name %r now labels another server; it was taken off %s", name, key)

    def _delete_named(self, name: str, server_url: str | None) -> list[RecordKey]:
        _check_name(name)
        keys = [record.key for record in self._labelled(name, server_url)]
        keys.append(_unbound_key(name))
        deleted = []
        for key in keys:
            with self._session(key) as session:
                if session.perform(LoadRecord(key)) is not None:
                    session.perform(DeleteRecord(key))
                    deleted.append(key)
        return deleted

    def _delete_keys(self, keys: Sequence[RecordKey]) -> None:
        for key in keys:
            with self._session(key) as session:
                session.perform(DeleteRecord(key))

    # -- store access --------------------------------------------------------------------------------------------

    def _records(self) -> Iterator[CredentialRecord]:
        for key in guarded(self._store.list_keys):
            try:
                record = self._load(key)
            except TokenStorageError as exc:
                logger.warning("skipping a credential record that cannot be read: %s", exc)
                continue
            if record is not None:
                yield record

    def _load(self, key: RecordKey) -> CredentialRecord | None:
        record: CredentialRecord | None = guarded(lambda: self._store.load(key))
        return record

    @contextmanager
    def _session(self, key: RecordKey) -> Iterator[StoreSession]:
        """A store session holding the record lock of ``key``: changes never interleave with a refresh."""
        session = StoreSession(self._store, self._lock_timeout)
        try:
            session.perform(LockRecord(key))
            yield session
        finally:
            session.close()


class TokenStoreFactory:
    """Stores by name, as chuk-mcp-client-oauth offered them."""

    @staticmethod
    def create(backend: TokenStoreBackend | str = TokenStoreBackend.AUTO, **options: Any) -> TokenStore:
        """A new store (see :func:`mcp_oauth_auth.storage.create_store`; ``vault_*`` option names are accepted)."""
        return _create_store(backend, options)

    @staticmethod
    def get_available_backends() -> list[TokenStoreBackend]:
        """The backends that can store credentials on this machine now, best first (``AUTO`` is not listed)."""
        available = []
        for status in get_available_backends():
            if not status.available:
                continue
            if status.name == "keyring":
                keyring_backend = _platform_keyring(status.reason)
                if keyring_backend is not None:
                    available.append(keyring_backend)
            else:
                available.append(TokenStoreBackend(status.name))
        return available

    @staticmethod
    def describe_backends() -> list[BackendStatus]:
        """Every backend with whether it works here and why (or why not) — see
        :func:`mcp_oauth_auth.get_available_backends`."""
        return get_available_backends()


def _platform_keyring(description: str) -> TokenStoreBackend | None:
    """The named keyring backend of this platform, when the usable OS keyring is that one."""
    if sys.platform == "darwin":
        return TokenStoreBackend.KEYCHAIN
    if sys.platform == "win32":
        return TokenStoreBackend.CREDENTIAL_MANAGER
    if sys.platform.startswith("linux") and "secretservice" in description.lower().replace(" ", ""):
        return TokenStoreBackend.SECRET_SERVICE
    return None


# ---------------------------------------------------------------------------------------------------------------
# HTTP plumbing shared by OAuthHandler and MCPOAuthClient


@contextmanager
def _network_errors(url: str) -> Iterator[None]:
    """Connection failures and timeouts become :class:`TemporaryOAuthError` (nothing stored was touched)."""
    try:
        yield
    except Exception as exc:
        raise _network_error(exc, url) from exc


def _network_error(exc: Exception, url: str) -> Exception:
    """A connection failure or timeout as a :class:`TemporaryOAuthError`; anything else is re-raised as it is."""
    if not is_transport_error(exc):
        raise exc
    return TemporaryOAuthError(
        f"could not reach the server ({type(exc).__name__}: {exc}); credentials were kept, try again later",
        url=safe_url(_failed_url(exc) or url),
    )


def _failed_url(exc: BaseException) -> str | None:
    """The URL of the request that failed, when the exception knows it."""
    try:
        return str(exc.request.url)  # type: ignore[attr-defined]
    except Exception:
        return None


#: An ``httpx.AsyncClient`` (or ``httpx2.AsyncClient``) to use and leave open, or a callable making a new one
#: per operation (closed afterwards), or None for a new default ``httpx.AsyncClient`` per operation.
HttpClientSource = Any


@asynccontextmanager
async def _http_client(source: HttpClientSource) -> AsyncIterator[Any]:
    if source is not None and not callable(source):
        yield source
        return
    client = source() if source is not None else httpx.AsyncClient()
    async with client:
        yield client


async def _in_worker(blocking: bool, function: Callable[..., _T], *args: Any) -> _T:
    if not blocking:
        return function(*args)
    return await anyio.to_thread.run_sync(function, *args)


# ---------------------------------------------------------------------------------------------------------------
# OAuthHandler

#: MCPOAuth options an OAuthHandler passes through to every MCPOAuth it makes.
_MCPOAUTH_OPTIONS = frozenset(
    {
        "token_endpoint_auth_method",
        "send_resource_indicator",
        "trust_unadvertised_pkce",
        "resource_metadata_url",
        "refresh_skew",
        "retry",
        "allow_insecure_http",
        "max_step_up",
        "lock_timeout",
        "grant_type",
        "private_key",
        "issuer",
    }
)


class OAuthHandler:
    """OAuth for several MCP servers by name: log in, keep tokens fresh, build headers, send requests, log out.

    One :class:`~mcp_oauth_auth.MCPOAuth` per (server name, server URL) does the work, so concurrent calls for one
    server share one refresh or authorization. Its credentials live in ``token_manager``'s store (by default the
    automatic store: the OS keyring when usable, else encrypted files).

    Args:
        token_manager: where credentials are stored; None: ``TokenManager()``.
        authorizer: how the person approves (default: the system browser with a loopback callback, or the device
            flow where no browser can open); e.g. :class:`~mcp_oauth_auth.HeadlessAuthorizer` or any callable
            taking the authorization URL and returning the callback URL.
        client_id: a pre-registered client ID, as for :class:`~mcp_oauth_auth.MCPOAuth` (the same for every
            server: give per-server credentials through separate handlers).
        client_secret: its secret, for a confidential client.
        client_metadata_url: a Client ID Metadata Document URL.
        client_name: the name shown to the person on dynamic registration.
        redirect_uri: a fixed redirect URI (it must match a pre-registered one).
        http_client: the ``httpx.AsyncClient`` (or ``httpx2.AsyncClient``) every OAuth and protected request goes
            through (left open), or a callable returning a new client per operation (closed afterwards). Default:
            a new ``httpx.AsyncClient`` per operation.
        **options: more :class:`~mcp_oauth_auth.MCPOAuth` options (``issuer`` for the pre-registered client,
            ``retry``, ``refresh_skew``, ``trust_unadvertised_pkce``, ``send_resource_indicator``,
            ``allow_insecure_http``, ...).
    """

    def __init__(
        self,
        token_manager: TokenManager | None = None,
        *,
        authorizer: AuthorizerLike | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        client_metadata_url: str | None = None,
        client_name: str = "mcp-oauth-auth",
        redirect_uri: str | None = None,
        http_client: HttpClientSource = None,
        **options: Any,
    ) -> None:
        unknown = sorted(set(options) - _MCPOAUTH_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"OAuthHandler got unknown options {unknown}; MCPOAuth options are {sorted(_MCPOAUTH_OPTIONS)}"
            )
        self.token_manager = token_manager if token_manager is not None else TokenManager()
        self._auth_options: dict[str, Any] = {
            "authorizer": None if authorizer is None else as_authorizer(authorizer),
            "client_id": client_id,
            "client_secret": client_secret,
            "client_metadata_url": client_metadata_url,
            "client_name": client_name,
            "redirect_uri": redirect_uri,
            **options,
        }
        self._http_source = http_client
        self._mutex = threading.Lock()
        self._auths: dict[tuple[str, str], MCPOAuth] = {}
        #: The canonical server URL each name was last used for.
        self._last_url: dict[str, str] = {}
        #: (name, record key) pairs already labelled in the store by this handler.
        self._labelled: set[tuple[str, RecordKey]] = set()

    def __repr__(self) -> str:
        return f"OAuthHandler(token_manager={self.token_manager!r}, servers={sorted(self._last_url)})"

    def auth_for(self, server_name: str, server_url: str, scopes: Sequence[str] | str | None = None) -> MCPOAuth:
        """The :class:`~mcp_oauth_auth.MCPOAuth` this handler uses for ``server_name`` at ``server_url`` (made on
        first use, with ``scopes``): put it on your own client as ``auth=`` to share its credentials."""
        _check_name(server_name)
        url = canonical_resource(server_url)
        with self._mutex:
            self._last_url[server_name] = url
            auth = self._auths.get((server_name, url))
            if auth is None:
                auth = MCPOAuth(
                    server_url,
                    scopes=scope_tuple(scopes),
                    store=self.token_manager.store,
                    name=server_name,
                    **self._auth_options,
                )
                self._auths[(server_name, url)] = auth
            return auth

    async def ensure_authenticated_mcp(
        self, server_name: str, server_url: str, scopes: Sequence[str] | str | None = None
    ) -> OAuthTokens:
        """Tokens for the MCP server: the stored ones while valid, else refreshed, else a new authorization.

        ``scopes`` that this credential was never requested with trigger one new authorization asking for the
        union of the old and the new scopes (scopes a server chose not to grant are not asked for again).
        """
        wanted = scope_tuple(scopes)
        auth = self.auth_for(server_name, server_url, wanted)
        with _network_errors(auth.server_url):
            async with _http_client(self._http_source) as client:
                tokens = await auth.aauthenticate(client, scopes=wanted)
        await self._label(server_name, auth)
        return OAuthTokens.from_token_set(tokens)

    async def prepare_headers_for_mcp_server(
        self,
        server_name: str,
        server_url: str,
        scopes: Sequence[str] | str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """``extra_headers`` plus ``Authorization: Bearer <token>`` with a valid token (an ``Authorization`` among
        ``extra_headers`` is replaced)."""
        tokens = await self.ensure_authenticated_mcp(server_name, server_url, scopes)
        headers = {name: value for name, value in (extra_headers or {}).items() if name.lower() != "authorization"}
        headers["Authorization"] = tokens.get_authorization_header()
        return headers

    def get_authorization_header(self, server_name: str) -> str | None:
        """``"Bearer <token>"`` for the server this handler last used under ``server_name``, or None.

        None when that server has no token yet, or its token has expired (this call cannot refresh: use
        :meth:`prepare_headers_for_mcp_server`). A handler that has not used the name yet looks in the store, and
        answers only when exactly one server credential carries the name.
        """
        _check_name(server_name)
        with self._mutex:
            url = self._last_url.get(server_name)
            auth = None if url is None else self._auths.get((server_name, url))
        if url is not None:
            tokens = auth.tokens if auth is not None else None
        else:
            record = self.token_manager._unique_credential(server_name)
            tokens = record.tokens if record is not None else None
        if tokens is None or tokens.expires_within(0):
            return None
        return OAuthTokens.from_token_set(tokens).get_authorization_header()

    def clear_tokens(self, server_name: str) -> bool:
        """Forget ``server_name``'s credentials here and in the store, without telling any server. True when
        something was deleted."""
        deleted = self.token_manager._delete_named(server_name, None)
        self._forget(server_name, deleted)
        return bool(deleted)

    async def logout(self, server_name: str, server_url: str | None = None) -> list[RevocationOutcome]:
        """Log out of ``server_name``.

        With ``server_url``: revoke the refresh token, then the access token, at the authorization server
        (RFC 7009), then delete the credential locally. A revocation that fails (network, a temporary server
        failure, no revocation endpoint, a refusal) does not stop the local removal; each token's outcome is
        returned, and failures are logged.
        Without ``server_url``: local removal only, like :meth:`clear_tokens`.
        """
        manager = self.token_manager
        if server_url is None:
            deleted = await _in_worker(manager.blocking, manager._delete_named, server_name, None)
            self._forget(server_name, deleted)
            return []
        auth = self.auth_for(server_name, server_url)
        async with _http_client(self._http_source) as client:
            # An unreachable authorization server is reported per token (TemporaryOAuthError), not raised.
            outcomes = await auth.alogout(client, revoke=True)
        deleted = await _in_worker(manager.blocking, manager._delete_named, server_name, server_url)
        self._forget(server_name, deleted, logged_out_url=auth.server_url)
        for outcome in outcomes:
            if not outcome.revoked:
                logger.warning("%s: the %s was not revoked: %s", server_name, outcome.token_type_hint, outcome.error)
        return outcomes

    async def authenticated_request(
        self, server_name: str, server_url: str, url: str, method: str = "GET", **kwargs: Any
    ) -> httpx.Response:
        """Send a request to the MCP server with its token; a 401 or 403 ``insufficient_scope`` is handled inline
        (refresh, new authorization, step-up) and the request sent again.

        ``url`` is absolute or relative to the server URL's origin (``"/mcp/tools"``), and must be on the server:
        its token is never sent anywhere else. ``kwargs`` go to ``client.request`` (``json=``, ``headers=``, ...).
        """
        auth = self.auth_for(server_name, server_url)
        target = httpx.URL(auth.server_url).join(url)
        scope = BearerScope.for_resource(auth.server_url)
        if not scope.covers(target.scheme, target.host, target.port, target.path):
            raise ConfigurationError(
                f"{safe_url(str(target))} is not on the MCP server {auth.server_url}: its token is never sent there",
                url=safe_url(str(target)),
            )
        with _network_errors(str(target)):
            async with _http_client(self._http_source) as client:
                response: httpx.Response = await client.request(method, str(target), auth=auth, **kwargs)
        await self._label(server_name, auth)
        return response

    # -- helpers -------------------------------------------------------------------------------------------------

    async def _label(self, name: str, auth: MCPOAuth) -> None:
        """Make the stored credential in use carry ``name`` (once per handler and credential)."""
        record = auth.record
        if record is None:
            return
        labelled = (name, record.key)
        with self._mutex:
            if labelled in self._labelled:
                return
            self._labelled.add(labelled)
        try:
            await _in_worker(self.token_manager.blocking, self.token_manager._attach_name, name, record.key)
        except BaseException:
            with self._mutex:
                self._labelled.discard(labelled)
            raise
        with self._mutex:  # the label was taken off every other credential
            self._labelled = {(label, key) for label, key in self._labelled if label != name or key == record.key}

    def _forget(self, name: str, deleted: Sequence[RecordKey], logged_out_url: str | None = None) -> None:
        """Drop the in-memory state of ``name``, and of every name whose credential was just deleted (or whose
        server was just logged out of)."""
        with self._mutex:
            self._last_url.pop(name, None)
            for (label, url), auth in list(self._auths.items()):
                record = auth.record
                if label == name or url == logged_out_url or (record is not None and record.key in deleted):
                    del self._auths[(label, url)]
                    if self._last_url.get(label) == url:
                        del self._last_url[label]
            self._labelled = {(label, key) for label, key in self._labelled if label != name and key not in deleted}


# ---------------------------------------------------------------------------------------------------------------
# MCPOAuthClient


class MCPOAuthClient:
    """The authorization flow step by step, for one MCP server: discovery, registration, authorization, refresh
    and revocation, each one call. Nothing is stored: keeping the tokens is up to you (or use
    :class:`OAuthHandler`).

    Args:
        server_url: the MCP endpoint.
        redirect_uri: the redirect URI to register and authorize with; default: the authorizer's choice (a free
            loopback port for the browser authorizer).
        authorizer: how the person approves in :meth:`authorize`; default
            :class:`~mcp_oauth_auth.LoopbackBrowserAuthorizer`.
        http_client: as for :class:`OAuthHandler`.
        client_id: a pre-registered client (then :meth:`register_client` is not needed).
        client_secret: its secret, for a confidential client.
    """

    def __init__(
        self,
        server_url: str,
        redirect_uri: str | None = None,
        *,
        authorizer: AuthorizerLike | None = None,
        http_client: HttpClientSource = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        client_name: str = "mcp-oauth-auth",
        retry: RetryPolicy | None = None,
        send_resource_indicator: bool = True,
        trust_unadvertised_pkce: bool = False,
        allow_insecure_http: bool = False,
    ) -> None:
        self.server_url = canonical_resource(server_url)
        self.redirect_uri = redirect_uri
        self._authorizer: Authorizer = (
            as_authorizer(authorizer) if authorizer is not None else _default_browser_authorizer()
        )
        self._http_source = http_client
        self._settings = ClientSettings(client_id=client_id, client_secret=client_secret, client_name=client_name)
        self._settings.validate()
        self._retry = retry or RetryPolicy()
        self._send_resource = send_resource_indicator
        self._trust_unadvertised_pkce = trust_unadvertised_pkce
        self._allow_http = allow_insecure_http
        self._resource_metadata: ProtectedResourceMetadata | None = None
        self._metadata: AuthorizationServerMetadata | None = None
        self._registration: ClientRegistration | None = None
        self._tokens: OAuthTokens | None = None

    def __repr__(self) -> str:
        return (
            f"MCPOAuthClient({self.server_url!r}, issuer={self.issuer!r}, "
            f"client_id={self.client_id!r}, authorized={self._tokens is not None})"
        )

    # -- what discovery found ------------------------------------------------------------------------------------

    @property
    def issuer(self) -> str | None:
        return None if self._metadata is None else self._metadata.issuer

    @property
    def authorization_url(self) -> str | None:
        """The authorization endpoint (None before :meth:`discover_authorization_server`)."""
        return None if self._metadata is None else self._metadata.authorization_endpoint

    @property
    def token_url(self) -> str | None:
        return None if self._metadata is None else self._metadata.token_endpoint

    @property
    def registration_endpoint(self) -> str | None:
        return None if self._metadata is None else self._metadata.registration_endpoint

    @property
    def revocation_endpoint(self) -> str | None:
        return None if self._metadata is None else self._metadata.revocation_endpoint

    @property
    def scopes_supported(self) -> list[str]:
        """The authorization server's ``scopes_supported`` (empty before discovery or when not published)."""
        return [] if self._metadata is None else list(self._metadata.scopes_supported)

    @property
    def code_challenge_methods_supported(self) -> list[str] | None:
        """The PKCE methods the authorization server advertises; None when it does not say (or before
        discovery)."""
        methods = None if self._metadata is None else self._metadata.code_challenge_methods_supported
        return None if methods is None else list(methods)

    @property
    def resource(self) -> str:
        """The resource indicator (RFC 8707) for this server: its protected resource metadata's ``resource``."""
        return self._resource_metadata.resource if self._resource_metadata is not None else self.server_url

    @property
    def resource_scopes_supported(self) -> list[str]:
        """The protected resource metadata's ``scopes_supported``: what :meth:`authorize` asks for by default."""
        return [] if self._resource_metadata is None else list(self._resource_metadata.scopes_supported)

    @property
    def client_id(self) -> str | None:
        if self._registration is not None:
            return self._registration.client_id
        return self._settings.client_id

    @property
    def tokens(self) -> OAuthTokens | None:
        """The tokens of the last :meth:`authorize` or :meth:`refresh_token`."""
        return self._tokens

    # -- the steps -----------------------------------------------------------------------------------------------

    async def discover_authorization_server(self) -> dict[str, Any]:
        """Find the server's authorization server (RFC 9728, then RFC 8414 / OpenID discovery; the 2025-03-26
        fallbacks for servers without resource metadata). Returns its metadata document."""
        self._resource_metadata, self._metadata = await self._run(
            _discover(self.server_url, self._retry, self._allow_http)
        )
        metadata = self._metadata
        if metadata.extra:
            return dict(metadata.extra)
        return {
            "issuer": metadata.issuer,
            "authorization_endpoint": metadata.authorization_endpoint,
            "token_endpoint": metadata.token_endpoint,
            "registration_endpoint": metadata.registration_endpoint,
        }

    async def register_client(
        self, client_name: str | None = None, redirect_uris: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Dynamic client registration (RFC 7591) as a native public client with one redirect URI. Returns the
        registration (``client_id``, ``redirect_uris``, ...)."""
        server = await self._server()
        if redirect_uris is not None and len(redirect_uris) != 1:
            raise ConfigurationError(f"register_client takes exactly one redirect URI, got {len(redirect_uris)}")
        redirect_uri = redirect_uris[0] if redirect_uris else self.redirect_uri or choose_redirect(self._authorizer, ())
        settings = ClientSettings(client_name=client_name or self._settings.client_name)
        self._registration = await self._run(identify_client(settings, server, None, redirect_uri, (), self._retry))
        self.redirect_uri = redirect_uri
        return self._registration.to_dict()

    async def authorize(self, scopes: Sequence[str] | str | None = None) -> OAuthTokens:
        """Authorization code + PKCE S256 through the authorizer, then the code exchange.

        ``scopes`` default to the resource's ``scopes_supported``; ``offline_access`` is added when the
        authorization server lists it (so that a refresh token is issued). Registers the client first when
        needed.
        """
        server = await self._server()
        chosen = scope_tuple(scopes)
        if chosen is None:
            chosen = tuple(self.resource_scopes_supported)
        if "offline_access" in server.scopes_supported and "offline_access" not in chosen:
            chosen = (*chosen, "offline_access")
        client, tokens = await self._run(
            code_grant(
                server,
                self._settings,
                self._registration,
                self.redirect_uri,
                chosen,
                self._resource_parameter(),
                self._retry,
                trust_unadvertised_pkce=self._trust_unadvertised_pkce,
            )
        )
        self._registration = client
        self._tokens = OAuthTokens.from_token_set(tokens)
        return self._tokens

    async def refresh_token(self, refresh_token: str) -> OAuthTokens:
        """A new access token for ``refresh_token`` (RFC 6749 §6). A rejected refresh token raises
        :class:`~mcp_oauth_auth.InvalidGrantError`: authorize again."""
        server = await self._server()
        client = await self._client_registration(server)
        tokens = await self._run(
            refresh_tokens(server.token_endpoint, client, refresh_token, self._resource_parameter(), self._retry)
        )
        self._tokens = OAuthTokens.from_token_set(tokens)
        return self._tokens

    async def revoke_token(self, token: str, token_type_hint: str | None = None) -> bool:
        """Revoke ``token`` (RFC 7009). True when revoked; a refusal, or a server without a revocation endpoint,
        raises :class:`~mcp_oauth_auth.TokenRevocationError`."""
        server = await self._server()
        if server.revocation_endpoint is None:
            raise TokenRevocationError(
                f"the authorization server {server.issuer} publishes no revocation_endpoint (RFC 7009)",
                url=server.url or server.issuer,
            )
        client = await self._client_registration(server)
        await self._run(
            revoke_token(server.revocation_endpoint, client, token, token_type_hint, self._retry, issuer=server.issuer)
        )
        return True

    # -- helpers -------------------------------------------------------------------------------------------------

    async def _server(self) -> AuthorizationServerMetadata:
        if self._metadata is None:
            await self.discover_authorization_server()
        assert self._metadata is not None
        return self._metadata

    def _resource_parameter(self) -> str | None:
        return self.resource if self._send_resource else None

    async def _client_registration(self, server: AuthorizationServerMetadata) -> ClientRegistration:
        if self._registration is None:
            if not self._settings.client_id:
                raise ConfigurationError(
                    "no client registration yet: call register_client() or authorize() first, or pass client_id="
                )
            self._registration = await self._run(
                identify_client(self._settings, server, None, self.redirect_uri, (), self._retry)
            )
        return self._registration

    async def _run(self, flow: Flow) -> Any:
        """Drive a sans-IO flow: its HTTP requests through the client, its sleeps and its authorizer calls."""
        async with _http_client(self._http_source) as client:
            return await adrive(flow, client, Performer(authorizer=self._authorizer), _unreachable)


def _unreachable(exc: Exception, request: Any) -> Exception:
    error = _network_error(exc, str(request.url))
    error.__cause__ = exc
    return error


def _discover(
    server_url: str, retry: RetryPolicy, allow_http: bool
) -> Generator[Effect, Any, tuple[ProtectedResourceMetadata | None, AuthorizationServerMetadata]]:
    """Protected resource metadata, then the first listed authorization server that publishes metadata."""
    prm = yield from discover_protected_resource(server_url, None, retry, allow_http=allow_http)
    server = yield from find_authorization_server(server_url, prm, retry, allow_http=allow_http)
    return prm, server


def _default_browser_authorizer() -> Authorizer:
    from mcp_oauth_auth.authorizers.loopback import LoopbackBrowserAuthorizer

    return LoopbackBrowserAuthorizer()
