"""OAuthTokens: tokens as the seed-compatible API hands them out, a view of the library's :class:`TokenSet`."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import FrozenInstanceError, replace
from typing import Any

from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.values import is_number, parse_seconds
from mcp_oauth_auth.records import TokenSet, redact

__all__ = ["OAuthTokens"]


class OAuthTokens:
    """Tokens as the high-level API hands them out: a read-only view of the library's :class:`TokenSet`, with the
    two things the seed's token object adds to it, the relative ``expires_in`` and the ``token_type`` as given.

    ``expires_in`` is relative (seconds from ``issued_at``, as in a token response); the absolute ``expires_at``
    is computed once, so :meth:`is_expired` stays right however long the object lives. ``repr`` never shows a
    token. Instances are immutable, compare equal field by field and can be hashed, like the dataclass they were.
    """

    __slots__ = ("_tokens", "expires_in", "token_type")

    _tokens: TokenSet
    #: The ``token_type`` as given (the stored token set has ``Bearer`` for any spelling of it).
    token_type: str
    #: Seconds from ``issued_at`` to expiry, as a token response gives it.
    expires_in: int | None

    def __init__(
        self,
        access_token: str,
        token_type: str = "Bearer",  # noqa: S107 - a token type, not a secret
        expires_in: int | None = None,
        refresh_token: str | None = None,
        scope: str | None = None,
        *,
        expires_at: float | None = None,
        issued_at: float | None = None,
        id_token: str | None = None,
    ) -> None:
        issued_at = time.time() if issued_at is None else issued_at
        if not isinstance(access_token, str) or not access_token:
            raise ConfigurationError("OAuthTokens needs a non-empty access_token")
        if not isinstance(token_type, str) or not token_type:
            raise ConfigurationError("OAuthTokens.token_type must be a non-empty string")
        for name, text in (("refresh_token", refresh_token), ("scope", scope), ("id_token", id_token)):
            if not isinstance(text, (str, type(None))):
                raise ConfigurationError(f"OAuthTokens.{name} must be a string or None")
        for name, value in (("expires_in", expires_in), ("expires_at", expires_at), ("issued_at", issued_at)):
            if value is not None and (not is_number(value) or not math.isfinite(value)):
                raise ConfigurationError(f"OAuthTokens.{name} must be a finite number of seconds")
        if expires_at is None and expires_in is not None:
            expires_at = issued_at + float(expires_in)
        tokens = TokenSet(
            access_token=access_token,
            token_type="Bearer" if token_type.lower() == "bearer" else token_type,
            expires_at=expires_at,
            refresh_token=refresh_token,
            scope=scope,
            id_token=id_token,
            issued_at=issued_at,
        )
        self._set(tokens, token_type, expires_in)

    def _set(self, tokens: TokenSet, token_type: str, expires_in: int | None) -> None:
        object.__setattr__(self, "_tokens", tokens)
        object.__setattr__(self, "token_type", token_type)
        object.__setattr__(self, "expires_in", expires_in)

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    @property
    def access_token(self) -> str:
        return self._tokens.access_token

    @property
    def refresh_token(self) -> str | None:
        return self._tokens.refresh_token

    @property
    def scope(self) -> str | None:
        return self._tokens.scope

    @property
    def expires_at(self) -> float | None:
        """When the access token expires, in seconds since the epoch (derived from ``expires_in`` when not given)."""
        return self._tokens.expires_at

    @property
    def issued_at(self) -> float:
        """When ``expires_in`` was counted from."""
        return self._tokens.issued_at

    @property
    def id_token(self) -> str | None:
        return self._tokens.id_token

    def _identity(self) -> tuple[object, ...]:
        return (self._tokens, self.token_type, self.expires_in)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, OAuthTokens)
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __reduce__(self) -> tuple[Any, ...]:
        return (_from_view_state, self._identity())

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
        """A view of a stored :class:`~mcp_oauth_auth.TokenSet`: ``expires_in`` is what is left of it at ``now``
        (which becomes ``issued_at``, the time it is counted from)."""
        now = time.time() if now is None else now
        expires_in = None if tokens.expires_at is None else max(0, int(tokens.expires_at - now))
        view = cls.__new__(cls)
        view._set(replace(tokens, issued_at=now), tokens.token_type, expires_in)
        return view

    def to_token_set(self) -> TokenSet:
        """The :class:`~mcp_oauth_auth.TokenSet` the library stores (the one this object is a view of)."""
        return self._tokens


def _from_view_state(tokens: TokenSet, token_type: str, expires_in: int | None) -> OAuthTokens:
    view = OAuthTokens.__new__(OAuthTokens)
    view._set(tokens, token_type, expires_in)
    return view


def _seconds(value: Any, name: str) -> float:
    """A finite number of seconds, 0 or more, from a number or a string of digits (token responses send both)."""
    seconds = parse_seconds(value)
    if seconds is None:
        raise ConfigurationError(f"OAuthTokens: {name} must be a finite number of seconds")
    return seconds
