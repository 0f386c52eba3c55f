"""The flow's neutral HTTP requests and responses as ``httpx`` / ``httpx2`` ones, and the failures of sending them.

httpx2 is never imported here unless the caller's client or request is an httpx2 one.
"""

from __future__ import annotations

from typing import Any

import httpx

from mcp_oauth_auth.exceptions import ConfigurationError, ConnectionFailedError
from mcp_oauth_auth.flow.effects import HttpRequest, HttpResponse, PeerCheck

__all__ = [
    "as_unreachable",
    "is_transport_error",
    "library_request",
    "request_class",
    "response_result",
    "response_view",
]


def request_class(client: Any) -> type[Any]:
    """``httpx.Request`` for httpx clients, ``httpx2.Request`` for httpx2 ones."""
    if isinstance(client, (httpx.Client, httpx.AsyncClient)):
        return httpx.Request
    import httpx2

    return httpx2.Request


def library_request(
    request_class: type[Any],
    request: HttpRequest,
    timeout: Any = None,
    limits: tuple[int, float] | None = None,
    peer_check: PeerCheck | None = None,
    is_async: bool = False,
) -> Any:
    """The flow's request as an ``httpx.Request`` or ``httpx2.Request``; ``timeout`` is a client's ``timeout``
    (applied as ``client.build_request`` would; the client's default headers, cookies and params are not sent);
    ``limits`` bound the reading of its response (:mod:`mcp_oauth_auth.driving.reading`) and the whole request
    (:mod:`mcp_oauth_auth.driving.deadline`, traced as ``is_async`` clients need); ``peer_check`` judges the
    address it comes from (:mod:`mcp_oauth_auth.driving.resolution`)."""
    extensions: dict[str, Any] = {} if timeout is None else {"timeout": timeout.as_dict()}
    if limits is not None:
        from mcp_oauth_auth.driving.deadline import DEADLINE_EXTENSION, Deadline
        from mcp_oauth_auth.driving.reading import LIMITS_EXTENSION

        deadline = Deadline(limits[1], request.url)
        extensions.update({LIMITS_EXTENSION: limits, DEADLINE_EXTENSION: deadline})
        extensions["trace"] = deadline.atrace if is_async else deadline.trace
    if peer_check is not None:
        from mcp_oauth_auth.driving.resolution import PEER_EXTENSION

        extensions[PEER_EXTENSION] = peer_check
    return request_class(
        request.method, request.url, headers=list(request.headers), content=request.body, extensions=extensions
    )


def response_result(response: Any, request: HttpRequest) -> HttpResponse:
    """The flow's view of the (read) response to one of its requests.

    Raises :class:`ConfigurationError` when the caller's client followed a redirect for a request that carries
    credentials (token, registration, revocation: all POSTs).
    """
    sent = response.request  # after a followed redirect: the last request of the chain
    if request.method != "GET" and (sent.method != request.method or sent.url != type(sent.url)(request.url)):
        from mcp_oauth_auth.flow.urls import safe_url

        raise ConfigurationError(
            f"{safe_url(request.url)} answered with a redirect, and the HTTP client followed it to "
            f"{safe_url(str(response.url))} (follow_redirects=True), resending the request with its "
            "credentials there. OAuth endpoints must answer directly: use a client that does not follow "
            "redirects, and check the authorization server's configuration",
            url=safe_url(request.url),
        )
    return response_view(response, request.url)


def response_view(response: Any, url: str) -> HttpResponse:
    """An ``httpx`` / ``httpx2`` response, read, as the flow's :class:`HttpResponse` for ``url``."""
    history = response.history
    redirects = (*(str(hop.url) for hop in history[1:]), str(response.url)) if history else ()
    return HttpResponse(
        status=response.status_code,
        headers=tuple((name.lower(), value) for name, value in response.headers.multi_items()),
        body=response.content,
        url=url,
        redirects=redirects,
    )


def is_transport_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a connection failure or timeout of httpx or httpx2 (httpx2 is never imported for it)."""
    if isinstance(exc, httpx.TransportError):
        return True
    module = type(exc).__module__.split(".")[0]
    if module != "httpx2":
        return False
    import httpx2

    return isinstance(exc, httpx2.TransportError)


def as_unreachable(exc: Exception, request: Any) -> Exception:
    """A transport failure of an OAuth request, as the flow's temporary error, :class:`ConnectionFailedError`, which
    names the cause (thrown into the flow, which decides: e.g. logout still removes the credential). Anything that
    is not a transport error is re-raised as it is.

    (Inside an httpx auth flow, httpx raises transport errors itself; this is for the drivers that send the
    requests themselves.)
    """
    if not is_transport_error(exc):
        raise exc
    from mcp_oauth_auth.driving.failures import classify_connection_failure

    url = str(request.url.copy_with(query=None))
    failure = classify_connection_failure(exc, url)
    return ConnectionFailedError(f"could not reach {url}: {failure.detail}", url=url, reason=failure.kind)
