"""Parsing ``WWW-Authenticate`` challenges (RFC 9110 §11.6.1; Bearer parameters from RFC 6750 §3 and RFC 9728 §5.1).

Servers send several challenges in one header or across several headers, in any order, with quoted or unquoted
parameter values. Only the ``Bearer`` challenge matters here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "MAX_ERROR_DOCUMENT",
    "BearerChallenge",
    "Challenge",
    "is_unverified_token_answer",
    "parse_bearer_challenge",
    "parse_www_authenticate",
]

#: The most bytes of a ``500`` answer read to tell an authentication layer's error document from anything else.
MAX_ERROR_DOCUMENT = 4096

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_SCHEME = re.compile(rf"\s*({_TOKEN})")
# Unquoted values are matched leniently (up to a comma or space): servers send bare URLs, which RFC 9110's token
# grammar does not allow.
_PARAM = re.compile(rf'\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))')
_TOKEN68 = re.compile(r"\s*([A-Za-z0-9\-._~+/]+=*)\s*(?=,|$)")
_SEPARATOR = re.compile(r"\s*,")
_QUOTED_PAIR = re.compile(r"\\(.)")


@dataclass(frozen=True)
class Challenge:
    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None


@dataclass(frozen=True)
class BearerChallenge:
    """The parameters of a ``Bearer`` challenge that drive the MCP authorization flow."""

    error: str | None = None
    error_description: str | None = None
    scope: str | None = None
    resource_metadata: str | None = None

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.scope.split()) if self.scope else ()


def parse_www_authenticate(values: Iterable[str]) -> list[Challenge]:
    """Every challenge in the given ``WWW-Authenticate`` header values, in order. Malformed tails are ignored."""
    challenges: list[Challenge] = []
    for value in values:
        challenges.extend(_parse_one_header(value))
    return challenges


def parse_bearer_challenge(values: Iterable[str]) -> BearerChallenge | None:
    """The first ``Bearer`` challenge among ``values``, or None when there is none."""
    return first_challenge(values, "bearer")


def first_challenge(values: Iterable[str], scheme: str) -> BearerChallenge | None:
    """The parameters of the first challenge of ``scheme`` (lower-case) among ``values``, or None. ``DPoP``
    challenges carry the same parameters as ``Bearer`` ones (RFC 9449 §7.1)."""
    for challenge in parse_www_authenticate(values):
        if challenge.scheme == scheme:
            params = challenge.params
            return BearerChallenge(
                error=params.get("error"),
                error_description=params.get("error_description"),
                scope=params.get("scope"),
                resource_metadata=params.get("resource_metadata"),
            )
    return None


def _parse_one_header(value: str) -> list[Challenge]:
    challenges: list[Challenge] = []
    position = 0
    while True:
        position = _skip_separators(value, position)
        scheme = _SCHEME.match(value, position)
        if not scheme:
            return challenges
        position = scheme.end()
        params: dict[str, str] = {}
        token68 = None
        blob = _TOKEN68.match(value, position)
        if blob:
            token68 = blob.group(1)
            position = blob.end()
        while True:
            # Empty list elements (",,", or a comma right after the scheme) are allowed and ignored (RFC 9110
            # §5.6.1); what follows the commas belongs to this challenge only if it is a parameter.
            after = _skip_separators(value, position)
            param = _PARAM.match(value, after)
            if param is None:
                break
            name = param.group(1).lower()
            quoted, bare = param.group(2), param.group(3)
            params.setdefault(name, _QUOTED_PAIR.sub(r"\1", quoted) if quoted is not None else bare)
            position = param.end()
        challenges.append(Challenge(scheme.group(1).lower(), params, token68))


def _skip_separators(value: str, position: int) -> int:
    while (separator := _SEPARATOR.match(value, position)) is not None:
        position = separator.end()
    return position


def is_unverified_token_answer(status: int, content_type: str | None, body: bytes) -> bool:
    """Whether a ``500`` answer to a request that carried a bearer token came from the server's authentication layer
    failing to verify the token, rather than from the MCP server behind it.

    The MCP TypeScript SDK's ``requireBearerAuth`` answers ``500 {"error": "server_error", ...}``, without a
    challenge, when its verifier fails with anything but an OAuth error — which its own demo provider does for every
    unknown, expired or revoked token. That shape is an OAuth error document (RFC 6749 §5.2): a JSON object whose
    ``error`` is ``server_error``, not a JSON-RPC message. The caller may then treat the token as rejected, once.
    """
    if status != 500 or len(body) > MAX_ERROR_DOCUMENT:
        return False
    if (content_type or "").split(";")[0].strip().lower() != "application/json":
        return False
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(document, dict) and document.get("error") == "server_error" and "jsonrpc" not in document
