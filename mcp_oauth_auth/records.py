"""Credential records: the plain data that a :class:`~mcp_oauth_auth.storage.TokenStore` persists.

One :class:`CredentialRecord` per (authorization server issuer, protected resource, account). It holds everything
needed to use and refresh the credential in a new process without rediscovery: the client registration, the tokens
with an absolute expiry, the granted scopes and the endpoints of the issuer that produced them.

Records are frozen dataclasses with ``to_dict``/``from_dict`` for JSON, and a ``repr`` that redacts every secret.
``from_dict`` checks the type of every field (records may be edited by hand in a keyring or in Vault) and raises
:class:`RecordFormatError` naming the first bad field, never its value.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from mcp_oauth_auth.flow.values import finite_number

__all__ = ["ClientRegistration", "CredentialRecord", "RecordFormatError", "RecordKey", "TokenSet", "redact"]

RECORD_FORMAT = 1

_T = TypeVar("_T")
_MISSING: Any = object()


class RecordFormatError(ValueError):
    """A record document given to ``from_dict`` lacks a required field, or has a field of the wrong type.

    ``field`` is the field's path in the document (``tokens.expires_at``, ``names[2]``). The message names the field,
    the type expected and the JSON type found, never the value found: it may be a secret. The stores report it as a
    :class:`~mcp_oauth_auth.exceptions.TokenStorageError`.
    """

    def __init__(self, field: str, expected: str, found: str) -> None:
        if found == "missing":
            super().__init__(f"{field} is missing (expected {expected})")
        else:
            super().__init__(f"{field} must be {expected} (found {found})")
        self.field = field
        self.expected = expected
        self.found = found

    def __reduce__(self) -> tuple[type[RecordFormatError], tuple[str, str, str]]:
        return type(self), (self.field, self.expected, self.found)


def _found(value: object) -> str:
    """What a wrong value is, in JSON terms, without the value itself."""
    if value is _MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number" if finite_number(value) is not None else "NaN, an infinity or an out-of-range number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _str(data: dict[str, Any], name: str, default: str | None = None) -> str:
    """A required string field; a missing one is ``default`` when there is one."""
    value = data.get(name, _MISSING)
    if isinstance(value, str):
        return value
    if value is _MISSING and default is not None:
        return default
    raise RecordFormatError(name, "a string", _found(value))


def _opt_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or isinstance(value, str):
        return value
    raise RecordFormatError(name, "a string or null", _found(value))


def _float(data: dict[str, Any], name: str, default: float) -> float:
    """A finite number; a missing one is ``default``."""
    value = data.get(name, _MISSING)
    if value is _MISSING:
        return default
    number = finite_number(value)
    if number is None:
        raise RecordFormatError(name, "a finite number", _found(value))
    return number


def _opt_float(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    number = finite_number(value)
    if number is None and value is not None:
        raise RecordFormatError(name, "a finite number or null", _found(value))
    return number


def _opt_int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise RecordFormatError(name, "an integer or null", _found(value))


def _str_tuple(data: dict[str, Any], name: str) -> tuple[str, ...]:
    """A list of strings; a missing one is empty."""
    value = data.get(name, ())
    if not isinstance(value, (list, tuple)):
        raise RecordFormatError(name, "a list of strings", _found(value))
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise RecordFormatError(f"{name}[{index}]", "a string", _found(item))
    return tuple(value)


def _opt_str_map(data: dict[str, Any], name: str) -> dict[str, str] | None:
    """An object whose values are strings, or None when missing or null."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RecordFormatError(name, "an object or null", _found(value))
    for item_name, item in value.items():
        if not isinstance(item, str):
            raise RecordFormatError(f"{name}.{item_name}", "a string", _found(item))
    return dict(value)


def _part(parse: Callable[[dict[str, Any]], _T], data: dict[str, Any], name: str) -> _T:
    """The object ``parse`` makes of the JSON object ``data[name]``; errors name the field with its path."""
    value = data.get(name, _MISSING)
    if not isinstance(value, dict):
        raise RecordFormatError(name, "an object", _found(value))
    try:
        return parse(value)
    except RecordFormatError as exc:
        raise RecordFormatError(f"{name}.{exc.field}", exc.expected, exc.found) from None


def redact(secret: str | None) -> str:
    """What a secret looks like in a repr or a log line: its presence, never its value."""
    return "None" if secret is None else "'***'"


@dataclass(frozen=True)
class RecordKey:
    """Identifies one credential record: the issuer that granted it, the resource it is for, and the account label
    that tells two credentials for the same pair apart (a personal and a work account); None is the default account,
    that of every record written before accounts existed."""

    issuer: str
    resource: str
    account: str | None = None

    def __str__(self) -> str:
        account = "" if self.account is None else f" (account {self.account!r})"
        return f"{self.resource} @ {self.issuer}{account}"


@dataclass(frozen=True)
class ClientRegistration:
    """How this client identifies itself to one authorization server.

    ``kind`` is ``"pre-registered"``, ``"client-metadata-document"`` or ``"dynamic"`` (RFC 7591).
    """

    client_id: str
    kind: str
    token_endpoint_auth_method: str = "none"
    client_secret: str | None = field(default=None, repr=False)
    redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()
    client_secret_expires_at: int | None = None
    registration_access_token: str | None = field(default=None, repr=False)
    registration_client_uri: str | None = None
    #: The ``scope`` the registration allows (RFC 7591 §2), when it was registered with one; None: not limited.
    scope: str | None = None

    def __repr__(self) -> str:
        return (
            f"ClientRegistration(client_id={self.client_id!r}, kind={self.kind!r}, "
            f"token_endpoint_auth_method={self.token_endpoint_auth_method!r}, "
            f"client_secret={redact(self.client_secret)}, redirect_uris={self.redirect_uris!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "kind": self.kind,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "client_secret": self.client_secret,
            "redirect_uris": list(self.redirect_uris),
            "grant_types": list(self.grant_types),
            "client_secret_expires_at": self.client_secret_expires_at,
            "registration_access_token": self.registration_access_token,
            "registration_client_uri": self.registration_client_uri,
            "scope": self.scope,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClientRegistration:
        """From :meth:`to_dict` output; :class:`RecordFormatError` when a field is missing or of the wrong type."""
        return cls(
            client_id=_str(data, "client_id"),
            kind=_str(data, "kind"),
            token_endpoint_auth_method=_str(data, "token_endpoint_auth_method", "none"),
            client_secret=_opt_str(data, "client_secret"),
            redirect_uris=_str_tuple(data, "redirect_uris"),
            grant_types=_str_tuple(data, "grant_types"),
            client_secret_expires_at=_opt_int(data, "client_secret_expires_at"),
            registration_access_token=_opt_str(data, "registration_access_token"),
            registration_client_uri=_opt_str(data, "registration_client_uri"),
            scope=_opt_str(data, "scope"),
        )


@dataclass(frozen=True)
class TokenSet:
    """Tokens from one token response, with the expiry made absolute (seconds since the epoch)."""

    access_token: str = field(repr=False)
    token_type: str = "Bearer"
    expires_at: float | None = None
    refresh_token: str | None = field(default=None, repr=False)
    scope: str | None = None
    id_token: str | None = field(default=None, repr=False)
    issued_at: float = field(default_factory=time.time)

    def __repr__(self) -> str:
        return (
            f"TokenSet(access_token={redact(self.access_token)}, token_type={self.token_type!r}, "
            f"expires_at={self.expires_at!r}, refresh_token={redact(self.refresh_token)}, scope={self.scope!r})"
        )

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        """True when the access token is expired, or will be within ``seconds``. Unknown expiry: never."""
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) + seconds >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
            "id_token": self.id_token,
            "issued_at": self.issued_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenSet:
        """From :meth:`to_dict` output; :class:`RecordFormatError` when a field is missing or of the wrong type."""
        access_token = _str(data, "access_token")
        if not access_token or not all(0x21 <= ord(c) <= 0x7E for c in access_token):
            # It goes into an Authorization header: control or non-ASCII characters would make httpx fail with a
            # message quoting the whole header.
            raise RecordFormatError("access_token", "a non-empty string of printable ASCII", "other characters")
        return cls(
            access_token=access_token,
            token_type=_str(data, "token_type", "Bearer"),
            expires_at=_opt_float(data, "expires_at"),
            refresh_token=_opt_str(data, "refresh_token"),
            scope=_opt_str(data, "scope"),
            id_token=_opt_str(data, "id_token"),
            issued_at=_float(data, "issued_at", 0.0),
        )


@dataclass(frozen=True)
class CredentialRecord:
    """Everything stored for one (issuer, resource, account).

    ``token_endpoint`` and ``revocation_endpoint`` are the discovered endpoints of ``issuer``: a restarted process
    refreshes with them, never with a guessed endpoint. ``requested_scopes`` is what was asked for (the base for a
    step-up union); ``tokens.scope`` is what was granted.
    """

    issuer: str
    resource: str
    server_url: str
    client: ClientRegistration
    token_endpoint: str
    tokens: TokenSet | None = None
    requested_scopes: tuple[str, ...] = ()
    authorization_endpoint: str | None = None
    revocation_endpoint: str | None = None
    updated_at: float = field(default_factory=time.time)
    #: Labels people use for this credential (``server_name`` in the high-level API, ``mcp-oauth login NAME``):
    #: aliases for listing and lookup, never part of the key.
    names: tuple[str, ...] = ()
    #: The DPoP private key (PKCS#8 PEM) the tokens are bound to (RFC 9449), or None: stored encrypted with the
    #: tokens, never shown in a ``repr``. Records written before DPoP support have none.
    dpop_key: str | None = field(default=None, repr=False)
    #: The account label, part of the key (``MCPOAuth(..., account="work")``): None for the default account. Records
    #: of the default account are stored exactly as before accounts existed (no ``account`` field, the same key).
    account: str | None = None
    #: How a new grant is obtained for this credential without a person, when it has no refresh token: what
    #: ``mcp-oauth login`` was given for workload identity or enterprise-managed authorization (file paths, the
    #: identity provider, the *name* of the environment variable holding its secret), never a secret; the CLI's
    #: ``token`` and ``test`` rebuild the grant from it (:mod:`mcp_oauth_auth.cli.renewal`). None for every other
    #: record, which is stored exactly as before (no ``renewal`` field).
    renewal: dict[str, str] | None = field(default=None, hash=False)

    @property
    def key(self) -> RecordKey:
        return RecordKey(issuer=self.issuer, resource=self.resource, account=self.account)

    def with_tokens(self, tokens: TokenSet | None) -> CredentialRecord:
        return replace(self, tokens=tokens, updated_at=time.time())

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "issuer": self.issuer,
            "resource": self.resource,
            "server_url": self.server_url,
            "client": self.client.to_dict(),
            "token_endpoint": self.token_endpoint,
            "tokens": None if self.tokens is None else self.tokens.to_dict(),
            "requested_scopes": list(self.requested_scopes),
            "authorization_endpoint": self.authorization_endpoint,
            "revocation_endpoint": self.revocation_endpoint,
            "updated_at": self.updated_at,
            "names": list(self.names),
            **({"dpop_key": self.dpop_key} if self.dpop_key is not None else {}),
            **({"account": self.account} if self.account is not None else {}),
            **({"renewal": dict(self.renewal)} if self.renewal is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CredentialRecord:
        """From :meth:`to_dict` output (``format`` is the caller's to check, see :mod:`mcp_oauth_auth.storage.codec`).

        Raises :class:`RecordFormatError` naming the first field that is missing or of the wrong type.
        """
        issuer = _str(data, "issuer")
        resource = _str(data, "resource")
        return cls(
            issuer=issuer,
            resource=resource,
            server_url=_str(data, "server_url", resource),
            client=_part(ClientRegistration.from_dict, data, "client"),
            token_endpoint=_str(data, "token_endpoint"),
            tokens=None if data.get("tokens") is None else _part(TokenSet.from_dict, data, "tokens"),
            requested_scopes=_str_tuple(data, "requested_scopes"),
            authorization_endpoint=_opt_str(data, "authorization_endpoint"),
            revocation_endpoint=_opt_str(data, "revocation_endpoint"),
            updated_at=_float(data, "updated_at", 0.0),
            names=_str_tuple(data, "names"),
            dpop_key=_opt_str(data, "dpop_key"),
            account=_opt_str(data, "account"),
            renewal=_opt_str_map(data, "renewal"),
        )
