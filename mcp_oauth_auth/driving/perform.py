"""Performing the flow's effects other than HTTP: the store session, the authorizer, sleep.

A :class:`Performer` blocks (sync clients); :meth:`Performer.perform_async` waits without blocking the event loop
(async clients, asyncio or trio). HTTP goes through the caller's client: see :mod:`~mcp_oauth_auth.driving.loop`.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Awaitable
from typing import Any

from mcp_oauth_auth.authorizers.base import DEFAULT_REDIRECT_URI, Authorizer
from mcp_oauth_auth.driving.session import StoreSession
from mcp_oauth_auth.exceptions import OAuthError, WorkloadIdentityError
from mcp_oauth_auth.flow.effects import (
    Authorize,
    ChooseRedirect,
    Effect,
    ObtainAssertion,
    ResolveHost,
    ShowDeviceCode,
    Sleep,
    StorageEffect,
)

__all__ = ["Performer"]


class Performer:
    """Performs one run's effects: storage through ``session``, approval through ``authorizer`` (either may be
    None for flows that never ask for it: discovery, say), sleeps on the clock."""

    def __init__(self, session: StoreSession | None = None, authorizer: Authorizer | None = None) -> None:
        self.session = session
        self.authorizer = authorizer

    def perform(self, effect: Effect) -> Any:
        if isinstance(effect, StorageEffect) and self.session is not None:
            return self.session.perform(effect)
        if isinstance(effect, Sleep):
            time.sleep(effect.seconds)
            return None
        if isinstance(effect, ResolveHost):
            from mcp_oauth_auth.driving.resolution import resolve

            return resolve(effect.host, effect.port)
        if isinstance(effect, ObtainAssertion):
            found = _assertion(effect.source)
            if inspect.isawaitable(found):
                import anyio

                found = anyio.run(_awaited_assertion, found)
            return _checked_assertion(found)
        authorizer = self.authorizer
        if authorizer is None:
            raise TypeError(f"cannot perform {effect!r} here")
        if isinstance(effect, ChooseRedirect):
            return choose_redirect(authorizer, effect.registered)
        if isinstance(effect, Authorize):
            return authorizer.authorize(effect.url, effect.redirect_uri)
        if isinstance(effect, ShowDeviceCode):
            shown = authorizer.show_device_code(effect.device)
            if inspect.isawaitable(shown):
                # An async prompt hook used from a sync client: run it to completion on a loop of its own.
                import anyio

                anyio.run(_awaited, shown)
            return None
        raise TypeError(f"cannot perform {effect!r} here")

    async def perform_async(self, effect: Effect) -> Any:
        if isinstance(effect, StorageEffect) and self.session is not None:
            return await self.session.perform_async(effect)
        if isinstance(effect, Sleep):
            import anyio

            await anyio.sleep(effect.seconds)
            return None
        if isinstance(effect, ResolveHost):
            import anyio.to_thread

            from mcp_oauth_auth.driving.resolution import resolve

            return await anyio.to_thread.run_sync(resolve, effect.host, effect.port)
        if isinstance(effect, ObtainAssertion):
            found = _assertion(effect.source)
            return _checked_assertion(await _awaited_assertion(found) if inspect.isawaitable(found) else found)
        if isinstance(effect, Authorize) and self.authorizer is not None:
            return await self.authorizer.authorize_async(effect.url, effect.redirect_uri)
        if isinstance(effect, ShowDeviceCode) and self.authorizer is not None:
            shown = self.authorizer.show_device_code(effect.device)
            if inspect.isawaitable(shown):
                await shown
            return None
        return self.perform(effect)

    def close(self) -> None:
        """Release what the run still holds (the store's record locks)."""
        if self.session is not None:
            self.session.close()

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.aclose()


def choose_redirect(authorizer: Authorizer, registered: tuple[str, ...]) -> str:
    """The authorizer's redirect URI; when it leaves the choice to the caller, :data:`DEFAULT_REDIRECT_URI`.

    (An authorizer that prefers one of the ``registered`` URIs says so itself: see ``Authorizer.redirect_uri``.)
    """
    return authorizer.redirect_uri(registered) or DEFAULT_REDIRECT_URI


async def _awaited(awaitable: Awaitable[None]) -> None:
    await awaitable


def _assertion(source: object) -> object:
    """The workload's JWT from its source: the string itself, the file's text (read now, as platforms rotate these
    files), or what the function returns (perhaps an awaitable)."""
    if isinstance(source, str):
        return source
    if isinstance(source, os.PathLike):
        path = os.fspath(source)
        try:
            with open(path, encoding="utf-8") as file:
                return file.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise WorkloadIdentityError(f"the workload assertion file {path} cannot be read: {reason}") from None
    try:
        return source()  # type: ignore[operator]  # checked callable by FlowConfig
    except OAuthError:
        raise
    except Exception as exc:
        raise _provider_failed(exc) from exc


async def _awaited_assertion(awaitable: Any) -> object:
    try:
        return await awaitable
    except OAuthError:
        raise
    except Exception as exc:
        raise _provider_failed(exc) from exc


def _provider_failed(exc: Exception) -> WorkloadIdentityError:
    # Only the type: the message of a failed token fetch may quote what it fetched.
    return WorkloadIdentityError(
        f"the function giving the workload assertion failed ({type(exc).__name__}; see the cause)"
    )


def _checked_assertion(found: object) -> str:
    """A JWT is one line of visible ASCII; surrounding whitespace (a file's final newline) is dropped."""
    text = found.strip() if isinstance(found, str) else None
    if not text or not all(0x21 <= ord(c) <= 0x7E for c in text):
        raise WorkloadIdentityError(
            "the workload assertion is empty or not a JWT (a JWT is one line of visible ASCII characters)"
        )
    return text
