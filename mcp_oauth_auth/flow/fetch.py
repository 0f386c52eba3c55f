"""Sending flow requests with the retry rules for temporary failures (HTTP 5xx and 429).

Temporary failures are retried with exponential backoff (honouring a numeric ``Retry-After``) and, when they
persist, raised as :class:`~mcp_oauth_auth.exceptions.TemporaryOAuthError`. Nothing here ever touches stored
credentials, so a temporary failure can never cost the user their tokens.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from mcp_oauth_auth.exceptions import ConfigurationError, TemporaryOAuthError
from mcp_oauth_auth.flow.effects import Effect, HttpRequest, HttpResponse, send, sleep
from mcp_oauth_auth.flow.urls import safe_url

__all__ = ["RetryPolicy", "fetch", "is_temporary", "parse_seconds"]

logger = logging.getLogger("mcp_oauth_auth")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently temporary failures of OAuth requests are retried."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 10.0

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 1:
            raise ConfigurationError(f"RetryPolicy.attempts must be a whole number, 1 or more, not {self.attempts!r}")
        for name in ("base_delay", "max_delay"):
            if not is_duration(getattr(self, name)):
                raise ConfigurationError(f"RetryPolicy.{name} must be a finite number of seconds, 0 or more")

    def delay(self, attempt: int, response: HttpResponse) -> float:
        retry_after = parse_seconds(response.header("retry-after"))
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        return min(self.base_delay * 2.0 ** min(attempt, 64), self.max_delay)


def is_duration(value: object) -> bool:
    """Whether ``value``, given by a caller, is a finite, non-negative number of seconds (a bool is not a number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def parse_seconds(value: Any) -> float | None:
    """A finite number of seconds, 0 or more: a JSON number (not a bool) or a string of ASCII digits; else None."""
    if isinstance(value, str):
        text = value.strip()
        value = float(text) if text.isascii() and text.isdigit() else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an integer beyond the range of floats
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def is_temporary(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def fetch(
    request: HttpRequest | Callable[[], HttpRequest], policy: RetryPolicy, what: str
) -> Generator[Effect, Any, HttpResponse]:
    """Send ``request``; retry temporary failures; return the first non-temporary response.

    ``request`` may be a function making the request: it is then called for every attempt, for requests that must
    not be sent twice as they are (a signed client assertion's ``jti`` is single use).
    """
    build = request if callable(request) else lambda: request
    sent = build()
    response = yield from send(sent)
    for attempt in range(1, policy.attempts):
        if not is_temporary(response.status):
            return response
        delay = policy.delay(attempt - 1, response)
        logger.debug("%s: %s answered %s, retrying in %.1fs", what, safe_url(sent.url), response.status, delay)
        yield from sleep(delay)
        sent = build()
        response = yield from send(sent)
    if is_temporary(response.status):
        raise TemporaryOAuthError(
            f"{what} failed temporarily {policy.attempts} times; credentials were kept, try again later",
            url=safe_url(sent.url),
            status_code=response.status,
        )
    return response
