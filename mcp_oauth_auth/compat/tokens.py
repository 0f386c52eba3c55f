"""OAuthTokens: tokens as the seed-compatible API hands them out, a view of the library's :class:`TokenSet`."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.values import is_number, parse_seconds
from mcp_oauth_auth.records import TokenSet, redact

__all__ = ["OAuthTokens"]


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
            if not is_number(value) or not math.isfinite(value):
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
