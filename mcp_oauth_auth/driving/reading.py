"""Reading OAuth responses with bounds: a size cap and an overall deadline for the body.

A hostile server could answer a metadata or token request with an endless or enormous body (read whole into
memory), or trickle one byte at a time (httpx's timeouts are per read, so a trickle never times out). Every OAuth
response is read here instead: at most ``max_body`` bytes (after content decoding, so a compressed bomb counts at
its real size), within ``deadline`` seconds from sending the request (:mod:`mcp_oauth_auth.driving.deadline`
bounds the wait for the headers, and a silent server, the same way); past either, the connection is closed and a
:class:`~mcp_oauth_auth.exceptions.ResponseLimitError` is thrown into the flow (a temporary failure: stored
credentials are kept).

The limits travel with each request, as the flow's guard set them (:mod:`mcp_oauth_auth.flow.guard`), in the request's
``extensions`` under :data:`LIMITS_EXTENSION`; transports ignore extensions they do not know.
"""

from __future__ import annotations

import time
from typing import Any

from mcp_oauth_auth.driving.deadline import deadline_of, finish_deadline
from mcp_oauth_auth.exceptions import ResponseLimitError
from mcp_oauth_auth.flow.effects import DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_RESPONSE_DEADLINE
from mcp_oauth_auth.flow.urls import safe_url

__all__ = ["LIMITS_EXTENSION", "aread_bounded", "limits_of", "read_bounded"]

LIMITS_EXTENSION = "mcp_oauth_auth.read_limits"


def limits_of(request: Any) -> tuple[int, float]:
    """``(max_body, deadline)`` for the response to ``request`` (the defaults where the request carries none)."""
    limits = request.extensions.get(LIMITS_EXTENSION)
    return limits if limits is not None else (DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_RESPONSE_DEADLINE)


def _declared_too_large(response: Any, max_body: int) -> bool:
    lengths = response.headers.get_list("content-length")
    return len(lengths) == 1 and lengths[0].strip().isdigit() and int(lengths[0]) > max_body


def _too_large(response: Any, max_body: int) -> ResponseLimitError:
    url = safe_url(str(response.request.url))
    return ResponseLimitError(
        f"the response from {url} is larger than {max_body} bytes (max_response_size); not read", url=url
    )


def _too_slow(response: Any, deadline: float) -> ResponseLimitError:
    url = safe_url(str(response.request.url))
    return ResponseLimitError(
        f"the response from {url} took longer than {deadline:g} s to arrive (response_deadline); not read", url=url
    )


class _Body:
    """The body of one response as it arrives, within its request's limits (shared by the sync and async readers)."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.max_body, self.deadline = limits_of(response.request)
        if _declared_too_large(response, self.max_body):
            raise _too_large(response, self.max_body)
        self.chunks: list[bytes] = []
        watchdog = deadline_of(response.request)
        self.size, self.started = 0, time.monotonic() if watchdog is None else watchdog.started

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_body:
            raise _too_large(self.response, self.max_body)
        self.chunks.append(chunk)
        if time.monotonic() - self.started > self.deadline:
            raise _too_slow(self.response, self.deadline)

    def keep(self) -> None:
        self.response._content = b"".join(self.chunks)


def read_bounded(response: Any) -> None:
    """Read ``response``'s body within its request's limits (the body is then ``response.content``); raise
    :class:`ResponseLimitError`, the connection closed, past either."""
    try:
        body = _Body(response)
        for chunk in response.iter_bytes():
            body.add(chunk)
    except BaseException as exc:
        response.close()
        _raise_past_deadline(response, exc)
        raise
    finally:
        finish_deadline(response.request)
    body.keep()


async def aread_bounded(response: Any) -> None:
    """Async form of :func:`read_bounded`."""
    try:
        body = _Body(response)
        async for chunk in response.aiter_bytes():
            body.add(chunk)
    except BaseException as exc:
        await response.aclose()
        _raise_past_deadline(response, exc)
        raise
    finally:
        finish_deadline(response.request)
    body.keep()


def _raise_past_deadline(response: Any, exc: BaseException) -> None:
    """Raise :class:`ResponseLimitError` where ``exc`` is the read failing because the deadline shut the
    connection down."""
    watchdog = deadline_of(response.request)
    if watchdog is not None and watchdog.expired:
        raise watchdog.failure() from exc
