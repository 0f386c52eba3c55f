"""What running OAuth requests inside an httpx auth flow needs beyond the effect loop.

Inside ``Auth.sync_auth_flow`` / ``async_auth_flow`` the client sends the requests the flow yields, and two of its
habits would cut a credential flow short or let its failures escape untyped (httpx 0.28+ and httpx2 alike, in
``Client._send_handling_auth``):

* every response an auth flow receives is appended to the send's ``history``, and ``_send_handling_redirects``
  raises ``TooManyRedirects`` once that list is longer than ``max_redirects`` (20): discovery fallbacks,
  registration and a device flow's polls exceed it easily. :func:`forget_oauth_responses` removes the flow's own
  OAuth responses from that list as each one comes back (it is the local of the client's frame that resumes the
  flow), so only the protected request's responses count, as for any other auth. The user's final response then
  no longer lists the OAuth responses in its ``history`` either: token responses hold tokens.
* what the client raises while an OAuth request is in flight reaches the caller as it is. That is right for a
  connection failure (raised as the client's own exception, like those of protected requests), but not for a
  redirect loop under ``follow_redirects=True`` (``TooManyRedirects``) nor for the connection the request's
  deadline shut down (:mod:`mcp_oauth_auth.driving.deadline`). The client closes the flow on its way out, and
  :func:`in_flight_failure` turns the exception being handled then into the library's typed error for those two,
  raised from the flow's close.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from mcp_oauth_auth.driving.deadline import deadline_of
from mcp_oauth_auth.driving.reading import LIMITS_EXTENSION
from mcp_oauth_auth.exceptions import OAuthError, TooManyRedirectsError
from mcp_oauth_auth.flow.urls import safe_url

__all__ = ["forget_oauth_responses", "in_flight_failure", "raise_in_flight_failure"]

#: How far up the stack the client's frame may be from the code that calls :func:`forget_oauth_responses`.
_FRAMES = 4


def forget_oauth_responses(depth: int = 1, response: Any = None) -> None:
    """Remove the flow's OAuth responses from the ``history`` of the client's send that resumed the flow (see the
    module's documentation), and from the copy ``response`` (the protected request's) holds; nothing happens
    outside an httpx / httpx2 auth flow. ``depth``: how many frames up the generator resumed by the client is."""
    if response is not None:
        response.history = [earlier for earlier in response.history if not _is_oauth(earlier)]
    frame = sys._getframe(depth)
    for _ in range(_FRAMES):
        frame = frame.f_back  # type: ignore[assignment]
        if frame is None:
            return
        if frame.f_code.co_name == "_send_handling_auth":
            history = frame.f_locals.get("history")
            if isinstance(history, list) and type(frame.f_locals.get("self")).__module__.startswith("httpx"):
                history[:] = [response for response in history if not _is_oauth(response)]
            return


def _is_oauth(response: Any) -> bool:
    return LIMITS_EXTENSION in response.request.extensions


def in_flight_failure(request: Any) -> OAuthError | None:
    """The typed error for what the client raised while the OAuth ``request`` was in flight, read from the
    exception being handled (call it where the client has closed the flow); None where there is none, or where it
    is not the request's to type (a cancellation, a KeyboardInterrupt): the client's exception then goes on."""
    deadline = deadline_of(request)
    if deadline is not None:
        deadline.finish()
        if deadline.expired:
            return deadline.failure()
    error = sys.exc_info()[1]
    if not isinstance(error, Exception):
        return None
    if type(error).__name__ != "TooManyRedirects" or type(error).__module__.split(".")[0] not in ("httpx", "httpx2"):
        return None  # a connection failure stays the client's own exception, as for protected requests
    url = safe_url(str(request.url))
    failure = TooManyRedirectsError(
        f"the HTTP client gave up on {url} after too many redirects (its max_redirects): the server redirects "
        "in a loop; credentials were kept",
        url=url,
    )
    failure.__cause__ = error
    return failure


def raise_in_flight_failure(request: Any) -> NoReturn:
    """For a flow the client closed while ``request`` was in flight: raise its typed error, or let the close go on
    (``GeneratorExit``)."""
    failure = in_flight_failure(request)
    if failure is not None:
        raise failure
    raise GeneratorExit
