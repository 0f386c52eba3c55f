"""Sending flow requests with the retry rules for temporary failures (HTTP 5xx and 429).

Temporary failures are retried with exponential backoff (honouring a numeric ``Retry-After``) and, when they
persist, raised as :class:`~mcp_oauth_auth.exceptions.TemporaryOAuthError`. Nothing here ever touches stored
credentials, so a temporary failure can never cost the user their tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from mcp_oauth_auth.exceptions import ConfigurationError, TemporaryOAuthError
from mcp_oauth_auth.flow.effects import Effect, HttpRequest, HttpResponse, send, sleep
from mcp_oauth_auth.flow.urls import safe_url
from mcp_oauth_auth.flow.values import is_duration, is_whole_number, parse_seconds

__all__ = ["RetryPolicy", "fetch", "is_temporary"]

logger = logging.getLogger("mcp_oauth_auth")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently temporary failures of OAuth requests are retried."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 10.0

    def __post_init__(self) -> None:
        if not is_whole_number(self.attempts, 1):
            raise ConfigurationError(f"RetryPolicy.attempts must be a whole number, 1 or more, not {self.attempts!r}")
        for name in ("base_delay", "max_delay"):
            if not is_duration(getattr(self, name)):
                raise ConfigurationError(f"RetryPolicy.{name} must be a finite number of seconds, 0 or more")

    def delay(self, attempt: int, response: HttpResponse) -> float:
        retry_after = parse_seconds(response.header("retry-after"))
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        return min(self.base_delay * 2.0 ** min(attempt, 64), self.max_delay)


def is_temporary(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def fetch(
    request: HttpRequest | Callable[[], HttpRequest], retry: RetryPolicy, what: str
) -> Generator[Effect, Any, HttpResponse]:
    """Send ``request``; retry temporary failures; return the first non-temporary response.

    ``request`` may be a function making the request: it is then called for every attempt, for requests that must
    not be sent twice as they are (a signed client assertion's ``jti`` is single use).
    """
    build = request if callable(request) else lambda: request
    sent = build()
    response = yield from send(sent)
    for attempt in range(1, retry.attempts):
        if not is_temporary(response.status):
            return response
        delay = retry.delay(attempt - 1, response)
        logger.debug("%s: %s answered %s, retrying in %.1fs", what, safe_url(sent.url), response.status, delay)
        yield from sleep(delay)
        sent = build()
        response = yield from send(sent)
    if is_temporary(response.status):
        raise TemporaryOAuthError(
            f"{what} failed temporarily {retry.attempts} times; credentials were kept, try again later",
            url=safe_url(sent.url),
            status_code=response.status,
        )
    return response
