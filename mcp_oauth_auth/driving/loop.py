"""The one effect loop: a flow's effects answered, sync or async, with its HTTP through the caller's client.

:func:`effect_loop` is the loop itself, free of I/O: it sends each result into the flow (or throws a failure into
it) and hands out the next effect, an OAuth request as an ``httpx`` / ``httpx2`` request. Around it, shells a few
lines long, as httpx's own ``Auth.sync_auth_flow`` / ``async_auth_flow``:

* :func:`run` / :func:`run_async` perform every effect but HTTP with a :class:`~mcp_oauth_auth.driving.perform.
  Performer` and yield the requests, for an httpx auth flow to send;
* :func:`drive` / :func:`adrive` send those requests through a client themselves, with the client's own auth
  disabled and redirects not followed (credentials are never resent elsewhere).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from mcp_oauth_auth.driving.deadline import deadline_of, finish_deadline
from mcp_oauth_auth.driving.http import as_unreachable, library_request, request_class, response_result
from mcp_oauth_auth.driving.in_auth_flow import forget_oauth_responses, raise_in_flight_failure
from mcp_oauth_auth.driving.perform import Performer
from mcp_oauth_auth.driving.reading import aread_bounded, read_bounded
from mcp_oauth_auth.driving.resolution import peer_refusal
from mcp_oauth_auth.exceptions import ConfigurationError, ResponseLimitError, TemporaryOAuthError, UnsafeURLError
from mcp_oauth_auth.flow.effects import Flow, SendHttp

__all__ = ["Failure", "Finished", "adrive", "drive", "effect_loop", "run", "run_async"]

#: Turns an exception raised by ``client.send`` into the one thrown into the flow (or raises it as it is).
Unreachable = Callable[[Exception, Any], BaseException]
#: Told every request sent and its response, or the exception sending it raised.
Observer = Callable[[Any, Any], None]


@dataclass(frozen=True)
class Failure:
    """Sent back instead of a response when a request could not be sent: ``error`` is thrown into the flow."""

    error: BaseException


@dataclass
class Finished:
    """What the flow returned, once :func:`run_async` has run it (async generators return nothing)."""

    value: Any = None


def effect_loop(
    flow: Flow, request_class: type[Any], timeout: Any = None, is_async: bool = False
) -> Generator[Any, Any, Any]:
    """Run ``flow``: yield an ``httpx`` / ``httpx2`` request for each HTTP effect (send back the response, read, or a
    :class:`Failure`) and every other effect as it is (send back its result). Returns what the flow returns.
    ``is_async``: the requests are for an async client."""
    with closing(flow):
        result: Any = None
        failure: BaseException | None = None
        while True:
            try:
                effect = flow.send(result) if failure is None else flow.throw(failure)
            except StopIteration as stop:
                return stop.value
            result, failure = None, None
            if not isinstance(effect, SendHttp):
                outcome = yield effect
                if isinstance(outcome, Failure):  # a temporary store failure: the flow decides (see _perform)
                    failure = outcome.error
                else:
                    result = outcome
                continue
            try:
                limits = (effect.max_body, effect.deadline)
                request = library_request(
                    request_class, effect.request, timeout, limits, effect.peer_check, is_async=is_async
                )
            except Exception as exc:  # httpx.InvalidURL, an IDNA error: a URL httpx cannot send, from a server
                failure = _unsendable(effect.request.url, exc)
                continue
            answer = yield request
            if isinstance(answer, Failure):
                failure = answer.error
                continue
            try:
                result = response_result(answer, effect.request)
            except ConfigurationError as exc:
                failure = exc


def _unsendable(url: str, exc: Exception) -> UnsafeURLError:
    from mcp_oauth_auth.flow.urls import safe_url

    return UnsafeURLError(f"the HTTP client cannot send to {safe_url(url)} ({type(exc).__name__})", url=safe_url(url))


def run(flow: Flow, performer: Performer, request_class: type[Any], timeout: Any = None) -> Generator[Any, Any, Any]:
    """The sync shell: performs every effect but HTTP; yields the requests (send back the response or a Failure)."""
    finished = Finished()
    with closing(effect_loop(flow, request_class, timeout)) as steps:
        step = _next(steps, None, finished)
        while step is not _DONE:
            if isinstance(step, request_class):
                closed = False
                try:
                    response = yield step
                except GeneratorExit:  # inside an auth flow: the client failed, see driving/in_auth_flow.py
                    closed = True
                if closed:
                    raise_in_flight_failure(step)
                forget_oauth_responses()
                step = _next(steps, _read(response), finished)
            else:
                step = _next(steps, _perform(performer.perform, step), finished)
    return finished.value


async def run_async(
    flow: Flow, performer: Performer, request_class: type[Any], finished: Finished | None = None, timeout: Any = None
) -> AsyncGenerator[Any, Any]:
    """The async shell of :func:`run`; what the flow returns goes to ``finished``."""
    finished = Finished() if finished is None else finished
    with closing(effect_loop(flow, request_class, timeout, is_async=True)) as steps:
        step = _next(steps, None, finished)
        while step is not _DONE:
            if not isinstance(step, request_class):
                try:
                    outcome = await performer.perform_async(step)
                except TemporaryOAuthError as exc:
                    outcome = Failure(exc)
                step = _next(steps, outcome, finished)
                continue
            response = yield step
            if not isinstance(response, Failure):
                try:
                    _admit(response)
                    await aread_bounded(response)
                except (ResponseLimitError, UnsafeURLError) as exc:
                    await response.aclose()
                    finish_deadline(response.request)
                    response = Failure(exc)
            step = _next(steps, response, finished)


_DONE = object()


def _next(steps: Generator[Any, Any, Any], result: Any, finished: Finished) -> Any:
    """The effect loop's next step for ``result``; ``_DONE`` once the flow has returned (into ``finished``)."""
    try:
        return steps.send(result)
    except StopIteration as stop:
        finished.value = stop.value
        return _DONE


def _perform(perform: Callable[[Any], Any], effect: Any) -> Any:
    """``perform(effect)``; a temporary failure (a remote store unreachable) goes back into the flow, which may carry
    on with a still-valid token, instead of ending it here."""
    try:
        return perform(effect)
    except TemporaryOAuthError as exc:
        return Failure(exc)


def _read(response: Any) -> Any:
    """``response``, its body read within bounds, or the Failure to throw into the flow (the response closed)."""
    if not isinstance(response, Failure):
        try:
            _admit(response)
            read_bounded(response)
        except (ResponseLimitError, UnsafeURLError) as exc:
            response.close()
            finish_deadline(response.request)
            return Failure(exc)
    return response


def _admit(response: Any) -> None:
    """Raise the address policy's refusal of the address ``response`` came from, if any (before it is read)."""
    refusal = peer_refusal(response)
    if refusal is not None:
        raise refusal


def drive(
    flow: Flow,
    client: Any,
    performer: Performer,
    unreachable: Unreachable = as_unreachable,
    observe: Observer | None = None,
) -> Any:
    """Run ``flow`` with its requests sent through the sync ``client``; return what the flow returns."""
    steps = run(flow, performer, request_class(client), client.timeout)
    with closing(steps):
        try:
            request = next(steps)
            while True:
                try:
                    response = client.send(request, auth=None, follow_redirects=False, stream=True)
                except Exception as exc:
                    response = _failed(request, exc, unreachable, observe)
                else:
                    if observe is not None:
                        observe(request, response)
                request = steps.send(response)
        except StopIteration as stop:
            return stop.value


async def adrive(flow: Flow, client: Any, performer: Performer, unreachable: Unreachable = as_unreachable) -> Any:
    """Run ``flow`` with its requests sent through the async ``client``; return what the flow returns."""
    finished = Finished()
    steps = run_async(flow, performer, request_class(client), finished, client.timeout)
    try:
        request = await steps.__anext__()
        while True:
            try:
                response = await client.send(request, auth=None, follow_redirects=False, stream=True)
            except Exception as exc:
                response = _failed(request, exc, unreachable, None)
            request = await steps.asend(response)
    except StopAsyncIteration:
        return finished.value
    finally:
        await steps.aclose()


def _failed(request: Any, exc: Exception, unreachable: Unreachable, observe: Observer | None) -> Failure:
    if observe is not None:
        observe(request, exc)
    deadline = deadline_of(request)
    if deadline is not None:
        deadline.finish()
        if deadline.expired:  # the deadline shut the connection down: that is why it failed
            return Failure(deadline.failure())
    return Failure(unreachable(exc, request))
