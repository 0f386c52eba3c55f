"""The HTTP client handling shared by OAuthHandler and MCPOAuthClient: where their clients come from, and network
failures as :class:`~mcp_oauth_auth.exceptions.TemporaryOAuthError`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import httpx

from mcp_oauth_auth.driving.http import is_transport_error
from mcp_oauth_auth.exceptions import TemporaryOAuthError
from mcp_oauth_auth.flow.urls import safe_url

__all__ = ["HttpClientSource", "http_client", "in_worker", "network_error", "network_errors"]

_T = TypeVar("_T")


@contextmanager
def network_errors(url: str) -> Iterator[None]:
    """Connection failures and timeouts become :class:`TemporaryOAuthError` (nothing stored was touched)."""
    try:
        yield
    except Exception as exc:
        raise network_error(exc, url) from exc


def network_error(exc: Exception, url: str) -> Exception:
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
async def http_client(source: HttpClientSource) -> AsyncIterator[Any]:
    if source is not None and not callable(source):
        yield source
        return
    client = source() if source is not None else httpx.AsyncClient()
    async with client:
        yield client


async def in_worker(blocking: bool, function: Callable[..., _T], *args: Any) -> _T:
    if not blocking:
        return function(*args)
    return await anyio.to_thread.run_sync(function, *args)
