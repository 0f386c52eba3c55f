"""Credential records: the plain data that a :class:`~mcp_oauth_auth.storage.TokenStore` persists.

One :class:`CredentialRecord` per (authorization server issuer, protected resource). It holds everything needed to
use and refresh the credential in a new process without rediscovery: the client registration, the tokens with an
absolute expiry, the granted scopes and the endpoints of the issuer that produced them.

Records are frozen dataclasses with ``to_dict``/``from_dict`` for JSON, and a ``repr`` that redacts every secret.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["ClientRegistration", "CredentialRecord", "RecordKey", "TokenSet", "redact"]

RECORD_FORMAT = 1


def redact(secret: str | None) -> str:
    """What a secret looks like in a repr or a log line: its presence, never its value."""
    return "None" if secret is None else "'***'"


@dataclass(frozen=True)
class RecordKey:
    """Identifies one credential record: the issuer that granted it and the resource it is for."""

    issuer: str
    resource: str

    def __str__(self) -> str:
        return f"{self.resource} @ {self.issuer}"


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
        return cls(
            client_id=data["client_id"],
            kind=data["kind"],
            token_endpoint_auth_method=data.get("token_endpoint_auth_method", "none"),
            client_secret=data.get("client_secret"),
            redirect_uris=tuple(data.get("redirect_uris", ())),
            grant_types=tuple(data.get("grant_types", ())),
            client_secret_expires_at=data.get("client_secret_expires_at"),
            registration_access_token=data.get("registration_access_token"),
            registration_client_uri=data.get("registration_client_uri"),
            scope=data.get("scope"),
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
        return cls(
            access_token=data["access_token"],
            token_type=data.get("token_type", "Bearer"),
            expires_at=data.get("expires_at"),
            refresh_token=data.get("refresh_token"),
            scope=data.get("scope"),
            id_token=data.get("id_token"),
            issued_at=data.get("issued_at", 0.0),
        )


@dataclass(frozen=True)
class CredentialRecord:
    """Everything stored for one (issuer, resource) pair.

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

    @property
    def key(self) -> RecordKey:
        return RecordKey(issuer=self.issuer, resource=self.resource)

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
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CredentialRecord:
        tokens = data.get("tokens")
        return cls(
            issuer=data["issuer"],
            resource=data["resource"],
            server_url=data.get("server_url", data["resource"]),
            client=ClientRegistration.from_dict(data["client"]),
            token_endpoint=data["token_endpoint"],
            tokens=None if tokens is None else TokenSet.from_dict(tokens),
            requested_scopes=tuple(data.get("requested_scopes", ())),
            authorization_endpoint=data.get("authorization_endpoint"),
            revocation_endpoint=data.get("revocation_endpoint"),
            updated_at=data.get("updated_at", 0.0),
            names=tuple(data.get("names", ())),
        )
