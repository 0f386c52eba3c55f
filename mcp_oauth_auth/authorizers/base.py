"""The :class:`Authorizer` interface: how a person approves an authorization request.

An authorizer receives the authorization URL and returns the callback URL that the authorization server redirected
to (carrying ``code``, ``state`` and ``iss``). The flow validates that URL; the authorizer only transports it.
Any callable, sync or async, taking the URL and returning the callback URL is accepted and adapted by
:func:`as_authorizer`.
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from mcp_oauth_auth.flow.printable import printable_text

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.device_authorization import DeviceAuthorization

__all__ = [
    "DEFAULT_REDIRECT_URI",
    "Authorizer",
    "AuthorizerLike",
    "CallableAuthorizer",
    "as_authorizer",
    "device_prompt",
]

#: Used when neither the caller nor the authorizer chooses a redirect URI (RFC 8252 §7.3 loopback form).
DEFAULT_REDIRECT_URI = "http://127.0.0.1:33418/callback"


class Authorizer:
    """Base class for authorizers.

    Subclasses implement :meth:`authorize` (blocking) and may override :meth:`authorize_async` when they can wait
    without a thread, and :meth:`redirect_uri` when they decide where the authorization server redirects to.

    ``interaction`` tells the flow how this authorizer lets the person approve: ``"redirect"`` (a browser visits
    the authorization URL and is redirected back: :meth:`authorize`) or ``"device"`` (RFC 8628: the person visits
    a verification URI anywhere and confirms a code: :meth:`show_device_code`).
    """

    interaction: ClassVar[str] = "redirect"

    def redirect_uri(self, registered: Sequence[str]) -> str | None:
        """The redirect URI to use for the next authorization, or None to let the caller decide.

        ``registered`` lists the redirect URIs of the client's existing registration, so that an authorizer can
        prefer one of them (and spare a new registration) when it is still usable.
        """
        return None

    def authorize(self, authorization_url: str, redirect_uri: str) -> str:
        """Have the person approve at ``authorization_url``; return the URL the server redirected to."""
        raise NotImplementedError

    async def authorize_async(self, authorization_url: str, redirect_uri: str) -> str:
        """Async form of :meth:`authorize`; by default runs it in a worker thread."""
        import anyio.to_thread

        return await anyio.to_thread.run_sync(self.authorize, authorization_url, redirect_uri, abandon_on_cancel=True)

    def show_device_code(self, device: DeviceAuthorization) -> Awaitable[None] | None:
        """Tell the person where to go and which code to confirm (device flow); by default on stderr."""
        print(device_prompt(device), file=sys.stderr, flush=True)
        return None


def device_prompt(device: DeviceAuthorization) -> str:
    """The device flow's instructions for a person, in plain text (the server's values with control characters
    escaped: they are refused when parsed, and escaped again here for a :class:`DeviceAuthorization` made
    elsewhere)."""
    lines = ["To authorize this application, visit:", f"    {printable_text(device.verification_uri)}"]
    lines.append(f"and confirm the code:  {printable_text(device.display_user_code)}")
    if device.verification_uri_complete:
        lines.append(f"(or open {printable_text(device.verification_uri_complete)}, which carries the code)")
    seconds = device.seconds_left()
    if math.isfinite(seconds):
        minutes = max(1, round(seconds / 60))
        lines.append(f"The code expires in {minutes} minute{'s' if minutes != 1 else ''}. Waiting for approval...")
    else:
        lines.append("Waiting for approval...")
    return "\n".join(lines)


AuthorizerFunction = Callable[[str], str | Awaitable[str]]
AuthorizerLike = Authorizer | AuthorizerFunction


class CallableAuthorizer(Authorizer):
    """Adapts a plain callable ``f(authorization_url) -> callback_url``, sync or async, to :class:`Authorizer`."""

    def __init__(self, function: AuthorizerFunction) -> None:
        self._function = function
        self._is_async = inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
            getattr(function, "__call__", None)  # noqa: B004 - an instance with an async __call__
        )

    def authorize(self, authorization_url: str, redirect_uri: str) -> str:
        if not self._is_async:
            return _as_callback_url(self._function(authorization_url))
        # A coroutine cannot be awaited from sync code that may itself run inside an event loop (a sync client
        # used from async code): give it an event loop of its own in a fresh thread.
        import concurrent.futures

        import anyio

        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(anyio.run, self._await_function, authorization_url).result()

    async def authorize_async(self, authorization_url: str, redirect_uri: str) -> str:
        if self._is_async:
            return await self._await_function(authorization_url)
        import anyio.to_thread

        result = await anyio.to_thread.run_sync(self._function, authorization_url, abandon_on_cancel=True)
        return await _resolve(result)

    async def _await_function(self, authorization_url: str) -> str:
        return await _resolve(self._function(authorization_url))

    def __repr__(self) -> str:
        return f"CallableAuthorizer({self._function!r})"


async def _resolve(result: str | Awaitable[str]) -> str:
    if inspect.isawaitable(result):
        result = await result
    return _as_callback_url(result)


def _as_callback_url(result: object) -> str:
    if not isinstance(result, str):
        from mcp_oauth_auth.exceptions import AuthorizationError

        raise AuthorizationError(
            f"the authorizer returned {type(result).__name__}, expected the callback URL as a string"
        )
    return result


def as_authorizer(value: AuthorizerLike) -> Authorizer:
    """An :class:`Authorizer` for ``value``: itself when it already is one, else a :class:`CallableAuthorizer`."""
    if isinstance(value, Authorizer):
        return value
    if callable(value):
        return CallableAuthorizer(value)
    raise TypeError(f"authorizer must be an Authorizer or a callable, not {type(value).__name__}")
