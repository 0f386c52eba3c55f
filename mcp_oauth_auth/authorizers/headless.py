"""Authorization over plain HTTP, without a browser: for tests, CI and demos.

:class:`HeadlessAuthorizer` plays the person's user agent. It requests the authorization URL with an HTTP
client of its own (never the caller's: it must not see, nor send, the caller's tokens), follows redirects one
hop at a time while keeping cookies, hands any HTML page (a login or consent form) to an optional
``page_handler``, and stops as soon as a redirect points at the redirect URI: that ``Location`` is the
callback URL, returned without being requested.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from mcp_oauth_auth.authorizers.base import Authorizer
from mcp_oauth_auth.exceptions import AuthorizationError, ConfigurationError
from mcp_oauth_auth.flow.urls import is_loopback_host, safe_url

__all__ = ["HeadlessAuthorizer", "PageHandler"]

logger = logging.getLogger("mcp_oauth_auth")

#: Given a page (any 2xx answer), returns the next request to send (e.g. the form POST), or None to give up.
PageHandler = Callable[[httpx.Response], httpx.Request | None]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ACCEPT = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@dataclass(frozen=True)
class _Place:
    """The parts of a URL that identify a redirect URI: scheme, userinfo, host, port and path."""

    scheme: str
    userinfo: tuple[str | None, str | None]
    host: str
    port: int | None
    path: str

    @classmethod
    def of(cls, url: str) -> _Place | None:
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if port is None:
            port = _DEFAULT_PORTS.get(scheme)
        path = parts.path
        if not path and scheme in _DEFAULT_PORTS:
            path = "/"
        return cls(scheme, (parts.username, parts.password), parts.hostname or "", port, path)


class HeadlessAuthorizer(Authorizer):
    """Completes an authorization over HTTP, without a browser.

    :param transport: httpx transport for :meth:`authorize` (e.g. :class:`httpx.MockTransport`, or a WSGI
        transport); default: the network.
    :param async_transport: httpx transport for :meth:`authorize_async`; default: the network.
    :param verify: TLS verification: True, False, a CA bundle file or directory path, or an SSL context.
    :param timeout: seconds for each HTTP request.
    :param max_hops: most requests sent after the first one (redirects followed plus page_handler requests).
    :param page_handler: given a page the server answered with (any 2xx, e.g. a login or consent form),
        returns the next request to send (e.g. the form's POST), or None to give up. Cookies the server set
        are added to that request. A GET to the redirect URI is not sent: its URL is returned as the callback
        URL.

    :meth:`redirect_uri` is inherited: this authorizer takes whatever redirect URI the caller chose. Like a
    browser, it reaches loopback authorization servers directly, never through the environment's proxies.
    """

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        verify: bool | str | ssl.SSLContext = True,
        timeout: float = 30.0,
        max_hops: int = 20,
        page_handler: PageHandler | None = None,
    ) -> None:
        if max_hops < 0:
            raise ConfigurationError(f"HeadlessAuthorizer max_hops must not be negative, not {max_hops}")
        self._transport = transport
        self._async_transport = async_transport
        self._verify = verify
        self.timeout = timeout
        self.max_hops = max_hops
        self.page_handler = page_handler

    def __repr__(self) -> str:
        return f"HeadlessAuthorizer(timeout={self.timeout:g}, max_hops={self.max_hops})"

    def _ssl(self, transport: object) -> bool | ssl.SSLContext:
        if transport is not None:
            return True  # unused: a given transport brings its own TLS settings
        if not isinstance(self._verify, str):
            return self._verify
        if os.path.isdir(self._verify):
            return ssl.create_default_context(capath=self._verify)
        return ssl.create_default_context(cafile=self._verify)

    def authorize(self, authorization_url: str, redirect_uri: str) -> str:
        walk = _Walk(self, redirect_uri)
        with httpx.Client(
            transport=self._transport,
            trust_env=_uses_proxies(authorization_url),
            verify=self._ssl(self._transport),
            timeout=self.timeout,
            follow_redirects=False,
        ) as client:
            request = walk.first(client.build_request, authorization_url)
            for _ in range(self.max_hops + 1):
                try:
                    response = client.send(request)
                except httpx.HTTPError as exc:
                    raise walk.unreachable(request, exc) from exc
                step = walk.next(response, client.build_request, client.cookies)
                if isinstance(step, str):
                    return step
                request = step
        raise walk.too_many_hops()

    async def authorize_async(self, authorization_url: str, redirect_uri: str) -> str:
        walk = _Walk(self, redirect_uri)
        async with httpx.AsyncClient(
            transport=self._async_transport,
            trust_env=_uses_proxies(authorization_url),
            verify=self._ssl(self._async_transport),
            timeout=self.timeout,
            follow_redirects=False,
        ) as client:
            request = walk.first(client.build_request, authorization_url)
            for _ in range(self.max_hops + 1):
                try:
                    response = await client.send(request)
                except httpx.HTTPError as exc:
                    raise walk.unreachable(request, exc) from exc
                step = walk.next(response, client.build_request, client.cookies)
                if isinstance(step, str):
                    return step
                request = step
        raise walk.too_many_hops()


_Build = Callable[..., httpx.Request]


def _uses_proxies(authorization_url: str) -> bool:
    """Like a browser, never send loopback requests through the proxies of the environment (HTTP(S)_PROXY)."""
    return not is_loopback_host(urlsplit(authorization_url).hostname)


class _Walk:
    """The user agent's decisions, shared by the blocking and the async loop."""

    def __init__(self, authorizer: HeadlessAuthorizer, redirect_uri: str) -> None:
        target = _Place.of(redirect_uri)
        if target is None or not target.scheme:
            raise ConfigurationError("the redirect URI is not a valid absolute URL", url=safe_url(redirect_uri))
        self._target = target
        self._redirect_uri = redirect_uri
        self._authorizer = authorizer

    def _is_redirect_uri(self, url: str) -> bool:
        return _Place.of(url) == self._target

    def first(self, build: _Build, authorization_url: str) -> httpx.Request:
        try:
            return build("GET", authorization_url, headers=_ACCEPT)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise AuthorizationError(
                "the authorization URL is not a valid HTTP(S) URL", url=safe_url(authorization_url)
            ) from exc

    def next(self, response: httpx.Response, build: _Build, cookies: httpx.Cookies) -> str | httpx.Request:
        """The callback URL when reached, else the next request to send."""
        request = response.request
        url = str(request.url)
        status = response.status_code
        logger.debug("headless authorization: %s %s -> HTTP %d", request.method, safe_url(url), status)
        if status in _REDIRECTS:
            return self._follow(response, build)
        if 200 <= status < 300:
            return self._page(response, cookies)
        if status >= 400:
            error, description = _oauth_error(response)
            raise AuthorizationError(
                f"the authorization server answered HTTP {status} at {safe_url(url)}",
                url=safe_url(url),
                status_code=status,
                error=error,
                error_description=description,
            )
        raise AuthorizationError(
            f"unexpected HTTP {status} during the authorization at {safe_url(url)}",
            url=safe_url(url),
            status_code=status,
        )

    def _follow(self, response: httpx.Response, build: _Build) -> str | httpx.Request:
        request = response.request
        here = str(request.url)
        location: str = response.headers.get("Location", "").strip()
        if not location:
            raise AuthorizationError(
                f"HTTP {response.status_code} without a Location header at {safe_url(here)}",
                url=safe_url(here),
                status_code=response.status_code,
            )
        try:
            location = urljoin(here, location)
            scheme = urlsplit(location).scheme.lower()
        except ValueError as exc:  # e.g. an unclosed IPv6 bracket
            raise AuthorizationError(
                "the authorization server redirects to an invalid URL", url=safe_url(here)
            ) from exc
        if self._is_redirect_uri(location):
            logger.debug("headless authorization: redirected to the redirect URI %s", safe_url(location))
            return location
        if scheme not in _DEFAULT_PORTS:
            raise AuthorizationError(
                "the authorization server redirects to a non-HTTP URL that is not the redirect URI",
                url=safe_url(here),
            )
        method, content, headers = "GET", None, dict(_ACCEPT)
        if response.status_code in (307, 308):
            # Like a browser: 307 and 308 repeat the request as it was; the others turn it into a GET.
            method, content = request.method, request.content
            if "Content-Type" in request.headers:
                headers["Content-Type"] = request.headers["Content-Type"]
        elif request.method == "HEAD":
            method = "HEAD"
        try:
            return build(method, location, content=content, headers=headers)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise AuthorizationError(
                "the authorization server redirects to an invalid URL", url=safe_url(here)
            ) from exc

    def _page(self, response: httpx.Response, cookies: httpx.Cookies) -> str | httpx.Request:
        url = safe_url(str(response.request.url))
        handler = self._authorizer.page_handler
        following = handler(response) if handler is not None else None
        if following is None:
            raise AuthorizationError(
                f"the authorization server shows an interactive page (HTTP {response.status_code}) at {url}; "
                "HeadlessAuthorizer needs a page_handler that submits it, or use a browser "
                "(LoopbackBrowserAuthorizer)",
                url=url,
                status_code=response.status_code,
            )
        if following.method == "GET" and self._is_redirect_uri(str(following.url)):
            return str(following.url)
        if "Cookie" not in following.headers:
            cookies.set_cookie_header(following)
        return following

    def unreachable(self, request: httpx.Request, exc: Exception) -> AuthorizationError:
        return AuthorizationError(
            f"could not complete the request to {safe_url(str(request.url))} ({type(exc).__name__})",
            url=safe_url(str(request.url)),
        )

    def too_many_hops(self) -> AuthorizationError:
        return AuthorizationError(
            f"the authorization did not reach the redirect URI within {self._authorizer.max_hops} hops "
            "(HeadlessAuthorizer max_hops)",
            url=safe_url(self._redirect_uri),
        )


def _oauth_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """The OAuth ``error`` and ``error_description`` of a JSON error answer, if any."""
    if "json" not in response.headers.get("Content-Type", ""):
        return None, None
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    error, description = body.get("error"), body.get("error_description")
    return (
        error[:200] if isinstance(error, str) else None,
        description[:500] if isinstance(description, str) else None,
    )
