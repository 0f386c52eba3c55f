"""What the fake authorization server keeps: its clients, and the codes, grants, tokens and device codes it
issued. Plain records; the endpoint families read and change them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mcp_oauth_auth.testing.fake_config import KNOWN_AUTH_METHODS

__all__ = [
    "ALL_AUTH_METHODS",
    "CONFIDENTIAL_METHODS",
    "FAKE_SUBJECT",
    "JWT_METHOD",
    "AccessTokenRecord",
    "AuthorizationCode",
    "DeviceCode",
    "FakeClient",
    "Grant",
    "RefreshToken",
]

#: The subject of every authorization (there is one fake user).
FAKE_SUBJECT = "fake-user"

CONFIDENTIAL_METHODS = ("client_secret_basic", "client_secret_post")
JWT_METHOD = "private_key_jwt"
ALL_AUTH_METHODS = (*KNOWN_AUTH_METHODS, JWT_METHOD)


@dataclass
class FakeClient:
    """A client known to the fake AS. ``kind``: "pre-registered", "dynamic" or "client-metadata-document"."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    token_endpoint_auth_method: str = "none"
    redirect_uris: list[str] = field(default_factory=list)
    grant_types: list[str] = field(default_factory=lambda: ["authorization_code", "refresh_token"])
    kind: str = "pre-registered"
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)
    #: Every client authentication method the client may use (the registered one first).
    auth_methods: list[str] = field(default_factory=list)
    #: The public key that verifies the client's private_key_jwt assertions, and its ``kid`` when known.
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey | None = field(default=None, repr=False)
    key_id: str | None = None

    def __post_init__(self) -> None:
        if not self.auth_methods:
            self.auth_methods = [self.token_endpoint_auth_method]


@dataclass
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    client_id: str
    scopes: tuple[str, ...]
    resource: str | None
    expires_at: float
    #: The least number of seconds between two polls.
    interval: float
    status: Literal["pending", "approved", "denied"] = "pending"
    granted_scopes: tuple[str, ...] = ()
    used: bool = False
    last_poll: float | None = None
    #: Polls that were not answered slow_down.
    polls: int = 0


@dataclass
class AuthorizationCode:
    code: str = field(repr=False)
    client_id: str
    redirect_uri: str
    code_challenge: str = field(repr=False)
    scopes: tuple[str, ...]
    resource: str | None
    expires_at: float
    used: bool = False
    grant_id: str | None = None


@dataclass
class Grant:
    grant_id: str
    client_id: str
    scopes: tuple[str, ...]
    resource: str | None
    revoked: bool = False


@dataclass
class AccessTokenRecord:
    """An issued access token. ``active_at()`` says whether it is usable at a given time."""

    token: str = field(repr=False)
    grant: Grant
    client_id: str
    scopes: tuple[str, ...]
    resource: str | None
    issued_at: float
    expires_at: float
    revoked: bool = False
    #: The RFC 7638 thumbprint of the DPoP key the token is bound to (``cnf.jkt``), or None for a bearer token.
    jkt: str | None = None

    def problem_at(self, now: float) -> str | None:
        """Why the token is unusable at ``now`` (a description), or None when it is active."""
        if self.revoked or self.grant.revoked:
            return "The access token has been revoked"
        if now >= self.expires_at:
            return "The access token expired"
        return None


@dataclass
class RefreshToken:
    token: str = field(repr=False)
    grant: Grant
    client_id: str
    rotated_out: bool = False
    #: The DPoP key a public client's refresh token is bound to (RFC 9449 §5), or None.
    jkt: str | None = None
