"""Authorization in the person's browser, with the callback caught on a loopback port (RFC 8252 §7.3).

:class:`LoopbackBrowserAuthorizer` binds the redirect URI's loopback address *before* sending the person to
the authorization server, shows the authorization URL (and opens a browser), then serves plain HTTP/1.1 on
that socket until the browser arrives at the callback path. It answers with a small page and returns the
callback URL; the flow validates it (``state``, ``iss``, ``error``).

The listener lives apart: :mod:`~mcp_oauth_auth.authorizers.callback_listener` (the socket and its one I/O loop,
which serves :meth:`~LoopbackBrowserAuthorizer.authorize` and :meth:`~LoopbackBrowserAuthorizer.authorize_async`),
:mod:`~mcp_oauth_auth.authorizers.callback_http` (reading the callback request, the responses) and
:mod:`~mcp_oauth_auth.authorizers.callback_page` (the pages shown).
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Iterator, Sequence
from urllib.parse import urlsplit

from mcp_oauth_auth.authorizers.base import Authorizer
from mcp_oauth_auth.authorizers.callback_http import (
    _TARGET,
    _Endpoint,
    _endpoint,
    _loopback_ip,
    _requested_state,
    _Responder,
    _uri_host,
)
from mcp_oauth_auth.authorizers.callback_listener import (
    _bind_all,
    _free_port,
    _port_is_free,
    _serve,
    _serve_in_thread,
)
from mcp_oauth_auth.authorizers.callback_page import DEFAULT_FAILURE_HTML, DEFAULT_SUCCESS_HTML
from mcp_oauth_auth.exceptions import (
    AuthorizationError,
    AuthorizationTimeoutError,
    ConfigurationError,
)
from mcp_oauth_auth.flow.printable import printable_text

__all__ = ["LoopbackBrowserAuthorizer"]

logger = logging.getLogger("mcp_oauth_auth")


def _default_prompt(authorization_url: str) -> None:
    sys.stderr.write(f"Open this URL to authorize: {printable_text(authorization_url)}\n")
    sys.stderr.flush()


def _open_default_browser(authorization_url: str) -> None:
    try:
        opened = webbrowser.open(authorization_url)
    except Exception as exc:
        logger.info("could not open a web browser (%s); open the URL shown instead", type(exc).__name__)
        return
    if not opened:
        logger.info("no web browser could be opened; open the URL shown instead")


class LoopbackBrowserAuthorizer(Authorizer):
    """Sends the person's browser to the authorization server and catches the redirect on a loopback port.

    :param host: loopback IP literal to listen on (``localhost`` works: both 127.0.0.1 and ::1 are then bound on the
        port, so that no other program can take the one the browser may resolve to; RFC 8252 §8.3 advises IP
        literals).
    :param port: fixed port; 0 reuses a registered redirect URI whose port is free, else picks a free port.
    :param path: callback path of the redirect URI.
    :param timeout: seconds to wait for the callback, counted from binding the port.
    :param open_browser: called with the authorization URL; returns whether a browser opened. It runs in the
        calling thread (the event loop's thread for :meth:`authorize_async`) and must not block. The default,
        :func:`webbrowser.open`, runs in a background thread, as it may start a console browser and wait.
    :param on_prompt: called with the authorization URL before the browser opens, so the person can open it by
        hand; the default writes ``Open this URL to authorize: <url>`` to stderr.
    :param success_html: page shown when the callback carries a code.
    :param failure_html: page shown when it carries an ``error``; ``$error`` and ``$error_description`` are
        replaced by HTML-escaped values. These are shown before the flow has verified where the response comes
        from (``state`` is checked here, RFC 9207 ``iss`` only afterwards): the default page shows neither, as the
        MCP specification asks.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/callback",
        timeout: float = 300.0,
        open_browser: Callable[[str], bool] | None = None,
        on_prompt: Callable[[str], None] | None = None,
        success_html: str | None = None,
        failure_html: str | None = None,
    ) -> None:
        try:
            _loopback_ip(host)
        except ValueError as exc:
            raise ConfigurationError(
                f"LoopbackBrowserAuthorizer host must be a loopback address such as 127.0.0.1 or ::1 ({exc})"
            ) from exc
        if not 0 <= port <= 65535:
            raise ConfigurationError(f"LoopbackBrowserAuthorizer port must be in 0..65535, not {port}")
        if not path.startswith("/") or "?" in path or "#" in path or not _TARGET.fullmatch(path):
            raise ConfigurationError(f"LoopbackBrowserAuthorizer path must be an absolute URL path, not {path!r}")
        if not timeout > 0 or math.isinf(timeout):
            raise ConfigurationError(f"LoopbackBrowserAuthorizer timeout must be a positive number, not {timeout}")
        self.host = host.strip("[]").lower()
        self.port = port
        self.path = path
        self.timeout = float(timeout)
        self._open_browser = open_browser
        self._on_prompt = on_prompt if on_prompt is not None else _default_prompt
        self._success_html = success_html if success_html is not None else DEFAULT_SUCCESS_HTML
        self._failure_html = failure_html if failure_html is not None else DEFAULT_FAILURE_HTML

    def __repr__(self) -> str:
        return (
            f"LoopbackBrowserAuthorizer(host={self.host!r}, port={self.port}, path={self.path!r}, "
            f"timeout={self.timeout:g})"
        )

    # ----------------------------------------------------------------------------------------------------
    # Redirect URI

    def redirect_uri(self, registered: Sequence[str]) -> str:
        if self.port:
            return self._uri(self.port)
        for uri in registered:
            port = self._registered_port(uri)
            if port is not None and _port_is_free(self.host, port):
                logger.debug("reusing the registered redirect URI port %d", port)
                return uri
        return self._uri(_free_port(self.host))

    def _uri(self, port: int) -> str:
        return f"http://{_uri_host(self.host)}:{port}{self.path}"

    def _registered_port(self, uri: str) -> int | None:
        """The port of ``uri`` if it is ``http://{host}:<port>{path}`` exactly, else None."""
        try:
            parts = urlsplit(uri)
            port = parts.port
        except ValueError:
            return None
        if (
            parts.scheme != "http"
            or parts.hostname != self.host
            or not port
            or parts.path != self.path
            or parts.query
            or parts.fragment
            or parts.username is not None
            or parts.password is not None
        ):
            return None
        return port

    # ----------------------------------------------------------------------------------------------------
    # Waiting for the callback: both ways run the one listener of callback_listener

    def authorize(self, authorization_url: str, redirect_uri: str) -> str:
        endpoint = _endpoint(redirect_uri)
        with self._listening(endpoint, authorization_url) as (socks, responder, timeout):
            target = _serve_in_thread(socks, responder, timeout)
        return self._callback_url(endpoint, target)

    async def authorize_async(self, authorization_url: str, redirect_uri: str) -> str:
        endpoint = _endpoint(redirect_uri)
        with self._listening(endpoint, authorization_url) as (socks, responder, timeout):
            target = await _serve(socks, responder, timeout)
        return self._callback_url(endpoint, target)

    @contextlib.contextmanager
    def _listening(
        self, endpoint: _Endpoint, authorization_url: str
    ) -> Iterator[tuple[list[socket.socket], _Responder, float]]:
        """Bind the callback's sockets (two for ``localhost``), show the authorization URL, and yield the sockets,
        the responder and the seconds left to wait; the sockets are closed on exit (the listener closes them
        already, unless it never ran)."""
        socks = _bind_all(endpoint.host if endpoint.host == "localhost" else endpoint.bind_ip, endpoint.port)
        bound = time.monotonic()
        try:
            self._announce(authorization_url, endpoint)
            yield socks, self._responder(endpoint, authorization_url), self.timeout - (time.monotonic() - bound)
        finally:
            for sock in socks:
                sock.close()

    def _callback_url(self, endpoint: _Endpoint, target: str | None) -> str:
        if target is None:
            raise self._timeout_error(endpoint)
        return endpoint.origin + target

    def _responder(self, endpoint: _Endpoint, authorization_url: str) -> _Responder:
        state = _requested_state(authorization_url)
        return _Responder(endpoint, self._success_html, self._failure_html, state)

    def _announce(self, authorization_url: str, endpoint: _Endpoint) -> None:
        logger.info("waiting for the authorization callback on %s%s", endpoint.origin, endpoint.path)
        self._on_prompt(authorization_url)
        if self._open_browser is None:
            threading.Thread(
                target=_open_default_browser,
                args=(authorization_url,),
                name="mcp-oauth-auth-browser",
                daemon=True,
            ).start()
            return
        try:
            opened = self._open_browser(authorization_url)
        except Exception as exc:
            logger.info("could not open a web browser (%s); open the URL shown instead", type(exc).__name__)
            return
        if not opened:
            logger.info("no web browser was opened; open the URL shown instead")

    def _timeout_error(self, endpoint: _Endpoint) -> AuthorizationError:
        return AuthorizationTimeoutError(
            f"no authorization callback arrived within {self.timeout:g} seconds; "
            "approve the request in the browser sooner, or raise LoopbackBrowserAuthorizer(timeout=...)",
            url=endpoint.origin + endpoint.path,
        )
