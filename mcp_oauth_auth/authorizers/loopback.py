"""Authorization in the person's browser, with the callback caught on a loopback port (RFC 8252 §7.3).

:class:`LoopbackBrowserAuthorizer` binds the redirect URI's loopback address *before* sending the person to
the authorization server, shows the authorization URL (and opens a browser), then serves plain HTTP/1.1 on
that socket until the browser arrives at the callback path. It answers with a small page and returns the
callback URL; the flow validates it (``state``, ``iss``, ``error``).

One request parser and response builder serve two I/O loops: a blocking one (``selectors``) for
:meth:`~LoopbackBrowserAuthorizer.authorize` and a native AnyIO one (asyncio and trio) for
:meth:`~LoopbackBrowserAuthorizer.authorize_async`. Both multiplex connections, so an idle or slow connection
(browsers open speculative ones) never delays the real callback.
"""

from __future__ import annotations

import contextlib
import hmac
import html
import ipaddress
import logging
import math
import re
import selectors
import socket
import string
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, urlsplit

import anyio
from anyio.abc import SocketAttribute, SocketListener, SocketStream

from mcp_oauth_auth.authorizers.base import Authorizer
from mcp_oauth_auth.exceptions import (
    AuthorizationError,
    AuthorizationTimeoutError,
    CallbackPortInUseError,
    ConfigurationError,
)

__all__ = ["LoopbackBrowserAuthorizer"]

logger = logging.getLogger("mcp_oauth_auth")

#: Largest accepted request head (request line plus headers); larger ones get 431.
MAX_REQUEST_HEAD: Final = 16 * 1024
#: Seconds a single connection may take to deliver its request head (and to take the answer).
CONNECTION_TIMEOUT: Final = 10.0
#: Connections served at once; further ones are closed straight away.
MAX_CONNECTIONS: Final = 32
#: Longest ``error_description`` shown on the failure page.
_MAX_SHOWN_DESCRIPTION: Final = 500

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_NAME = _TOKEN
_TARGET = re.compile(r"/[\x21-\x7e]*")
_VERSION = re.compile(r"HTTP/1\.[01]")

_PAGE_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:36rem;margin:4rem auto;"
    "padding:0 1rem;color:#222;line-height:1.5}h1{font-size:1.4rem}code{background:#f2f2f2;padding:0 .25rem}"
)

DEFAULT_SUCCESS_HTML: Final = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Authorization received</title>'
    f"<style>{_PAGE_STYLE}</style></head><body><h1>Authorization received</h1>"
    "<p>You can close this window and return to the application.</p></body></html>"
)

#: Shows none of the callback's error texts: when the page is served, nobody has checked yet that the response
#: comes from the authorization server (RFC 9207 ``iss``), and the MCP specification forbids displaying the error
#: of a response that fails that check. The application reports the error once it has been verified.
DEFAULT_FAILURE_HTML: Final = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Authorization not completed</title>'
    f"<style>{_PAGE_STYLE}</style></head><body><h1>Authorization not completed</h1>"
    "<p>The authorization was not granted. Return to the application, which shows the reason.</p>"
    "<p>You can close this window.</p></body></html>"
)

_STALE_CALLBACK_HTML: Final = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not the current authorization</title>'
    f"<style>{_PAGE_STYLE}</style></head><body><h1>Not the current authorization</h1>"
    "<p>This page answers an earlier authorization request, not the one the application is waiting for now. "
    "Use the newest authorization page (the application shows its address), or close this window.</p>"
    "</body></html>"
)

_SECURITY_HEADERS: Final = (
    "Cache-Control: no-store",
    "Pragma: no-cache",
    "Connection: close",
    "X-Content-Type-Options: nosniff",
    "X-Frame-Options: DENY",
    # The page's own URL carries the authorization code: never send it anywhere as a referrer.
    "Referrer-Policy: no-referrer",
    "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
)


# ----------------------------------------------------------------------------------------------------
# Addresses and sockets (shared by both I/O loops and by redirect_uri())


def _loopback_ip(host: str) -> str:
    """The loopback IP literal to bind for ``host`` (``localhost``: 127.0.0.1); ValueError if not loopback."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return "127.0.0.1"
    address = ipaddress.ip_address(host)  # ValueError for non-literals
    if not address.is_loopback:
        raise ValueError(f"{host} is not a loopback address")
    return str(address)


def _is_loopback_peer(address: object) -> bool:
    if not isinstance(address, tuple) or not address or not isinstance(address[0], str):
        return False
    try:
        ip = ipaddress.ip_address(address[0].split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on loopback ``host``:``port``; CallbackPortInUseError if it cannot be bound."""
    ip = _loopback_ip(host)
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if sys.platform == "win32":
            # SO_REUSEADDR on Windows lets another process steal a bound port; ask for exclusivity instead.
            exclusive = getattr(socket, "SO_EXCLUSIVEADDRUSE", None)
            if exclusive is not None:
                sock.setsockopt(socket.SOL_SOCKET, exclusive, 1)
        else:
            # Lets a port whose previous connections linger in TIME_WAIT be bound again at once.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((ip, port))
        sock.listen(MAX_CONNECTIONS)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or type(exc).__name__
        raise CallbackPortInUseError(
            f"cannot listen on {_uri_host(ip)}:{port} for the authorization callback ({reason}). "
            f"Stop the program using port {port}, or give LoopbackBrowserAuthorizer another port "
            "(port=0 picks a free one; the redirect URI then changes and may need a new client registration)"
        ) from exc
    return sock


def _port_is_free(host: str, port: int) -> bool:
    try:
        _bind(host, port).close()
    except CallbackPortInUseError:
        return False
    return True


def _free_port(host: str) -> int:
    sock = _bind(host, 0)
    try:
        port: int = sock.getsockname()[1]
    finally:
        sock.close()
    return port


@dataclass(frozen=True)
class _Endpoint:
    """Where the callback is expected, from a redirect URI."""

    origin: str  # scheme://host[:port] exactly as the redirect URI writes it
    host: str  # without brackets, lower-case
    bind_ip: str
    port: int
    path: str

    @property
    def authority(self) -> str:
        return f"{_uri_host(self.host)}:{self.port}"


_REDIRECT_URI_FORM = "LoopbackBrowserAuthorizer needs an http://<loopback address>:<port>/<path> redirect URI"


def _endpoint(redirect_uri: str) -> _Endpoint:
    try:
        parts = urlsplit(redirect_uri)
        port = parts.port
        host = parts.hostname or ""
        bind_ip = _loopback_ip(host)
    except ValueError as exc:
        raise ConfigurationError(f"{_REDIRECT_URI_FORM} ({exc})", url=redirect_uri) from exc
    if parts.scheme != "http" or parts.query or parts.fragment or port == 0 or "@" in parts.netloc:
        raise ConfigurationError(f"{_REDIRECT_URI_FORM}, without query or fragment", url=redirect_uri)
    port = 80 if port is None else port
    return _Endpoint(f"http://{parts.netloc}", host, bind_ip, port, parts.path or "/")


# ----------------------------------------------------------------------------------------------------
# HTTP: one parser and response builder for both I/O loops


class _HeadTooLarge(Exception):
    pass


class _HeadBuffer:
    """Accumulates bytes until a complete request head arrives (bounded by MAX_REQUEST_HEAD)."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, chunk: bytes) -> bytes | None:
        """Add ``chunk``; return the head once complete. Raises _HeadTooLarge past the limit."""
        self._data += chunk
        end = self._data.find(b"\r\n\r\n")
        if end >= 0:
            size = end + 4
        else:
            end = self._data.find(b"\n\n")  # tolerate bare LF line ends (RFC 9112 §2.2)
            size = end + 2
        if end < 0:
            if len(self._data) > MAX_REQUEST_HEAD:
                raise _HeadTooLarge
            return None
        if size > MAX_REQUEST_HEAD:
            raise _HeadTooLarge
        return bytes(self._data[:size])


@dataclass(frozen=True)
class _Outcome:
    response: bytes
    #: The request target (path and query, exactly as received) when this was the callback, else None.
    target: str | None = None


class _Responder:
    """Turns one request head into a response, and recognises the callback request."""

    def __init__(self, endpoint: _Endpoint, success_html: str, failure_html: str, state: str | None) -> None:
        self._endpoint = endpoint
        self._success_html = success_html
        self._failure_html = string.Template(failure_html)
        #: The ``state`` of the authorization request being waited for, when it has one.
        self._state = state

    def too_large(self) -> _Outcome:
        return _Outcome(_response(431, "Request Header Fields Too Large", _plain_page("Request too large")))

    def respond(self, head: bytes) -> _Outcome:
        try:
            method, target, headers = _parse_head(head)
        except ValueError:
            logger.debug("loopback callback server: malformed request")
            return _Outcome(_response(400, "Bad Request", _plain_page("Bad request")))
        path, _, query = target.partition("?")
        if path != self._endpoint.path:
            logger.debug("loopback callback server: %s %s -> 404", method, path)
            return _Outcome(_response(404, "Not Found", _plain_page("Not found")))
        if method != "GET":
            logger.debug("loopback callback server: %s %s -> 405", method, path)
            return _Outcome(_response(405, "Method Not Allowed", _plain_page("Method not allowed"), ("Allow: GET",)))
        host = headers.get("host")
        if host is not None and not self._host_matches(host):
            # A browser always names the authority it connected to; anything else is not our redirect (e.g. a
            # DNS-rebinding page).
            logger.debug("loopback callback server: callback with an unexpected Host header -> 400")
            return _Outcome(_response(400, "Bad Request", _plain_page("Bad request")))
        params = parse_qs(query, keep_blank_values=True)
        if self._belongs_elsewhere(params.get("state")):
            # Not the response to this authorization request: a tab left over from an earlier attempt, say. It
            # must not end the wait (the flow would reject it, and the person's real approval would find nobody
            # listening); a callback without any state still ends it, for the flow to report.
            logger.info("ignored an authorization callback for another authorization request (its state differs)")
            return _Outcome(_response(400, "Bad Request", _STALE_CALLBACK_HTML))
        logger.debug("authorization callback received on %s (parameters: %s)", path, ", ".join(sorted(params)))
        if "error" in params:
            page = self._failure_page(params["error"][0], params.get("error_description", [""])[0])
        elif "code" in params:
            page = self._success_html
        else:
            page = self._failure_page(
                "invalid_request", "The response carries neither an authorization code nor an error."
            )
        return _Outcome(_response(200, "OK", page), target)

    def _belongs_elsewhere(self, states: list[str] | None) -> bool:
        if self._state is None or states is None:
            return False
        return len(states) != 1 or not hmac.compare_digest(states[0].encode(), self._state.encode())

    def _host_matches(self, host: str) -> bool:
        host = host.strip().lower()
        expected = {self._endpoint.authority.lower()}
        if self._endpoint.port == 80:
            expected.add(_uri_host(self._endpoint.host).lower())
        return host in expected

    def _failure_page(self, error: str, description: str) -> str:
        if len(description) > _MAX_SHOWN_DESCRIPTION:
            description = description[:_MAX_SHOWN_DESCRIPTION] + "…"
        return self._failure_html.safe_substitute(
            error=html.escape(error[:100], quote=True), error_description=html.escape(description, quote=True)
        )


def _requested_state(authorization_url: str) -> str | None:
    """The ``state`` the authorization request carries, if exactly one."""
    states = parse_qs(urlsplit(authorization_url).query, keep_blank_values=True).get("state", [])
    return states[0] if len(states) == 1 else None


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Method, origin-form target and headers (lower-case names) of a request head; ValueError if bad."""
    text = head.decode("ascii")  # UnicodeDecodeError is a ValueError
    lines = text.replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise ValueError("bad request line")
    method, target, version = parts
    if not _TOKEN.fullmatch(method) or not _TARGET.fullmatch(target) or not _VERSION.fullmatch(version):
        raise ValueError("bad request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not _HEADER_NAME.fullmatch(name):
            raise ValueError("bad header line")
        name = name.lower()
        if name == "host" and name in headers:
            raise ValueError("duplicate Host header")
        headers[name] = value.strip(" \t")
    return method, target, headers


def _plain_page(title: str) -> str:
    title = html.escape(title)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body><h1>{title}</h1></body></html>"
    )


def _response(status: int, reason: str, page: str, extra_headers: Sequence[str] = ()) -> bytes:
    body = page.encode("utf-8")
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: text/html; charset=utf-8",
        f"Content-Length: {len(body)}",
        *_SECURITY_HEADERS,
        *extra_headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


# ----------------------------------------------------------------------------------------------------
# The authorizer


def _default_prompt(authorization_url: str) -> None:
    sys.stderr.write(f"Open this URL to authorize: {authorization_url}\n")
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

    :param host: loopback IP literal to listen on (``localhost`` works, but RFC 8252 §8.3 advises against it).
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
    # Blocking

    def authorize(self, authorization_url: str, redirect_uri: str) -> str:
        endpoint = _endpoint(redirect_uri)
        sock = _bind(endpoint.bind_ip, endpoint.port)
        deadline = time.monotonic() + self.timeout
        try:
            self._announce(authorization_url, endpoint)
            target = _serve_blocking(sock, self._responder(endpoint, authorization_url), deadline)
        finally:
            sock.close()
        if target is None:
            raise self._timeout_error(endpoint)
        return endpoint.origin + target

    # ----------------------------------------------------------------------------------------------------
    # Async (native AnyIO: asyncio and trio)

    async def authorize_async(self, authorization_url: str, redirect_uri: str) -> str:
        endpoint = _endpoint(redirect_uri)
        sock = _bind(endpoint.bind_ip, endpoint.port)
        deadline = anyio.current_time() + self.timeout
        try:
            sock.setblocking(False)
            listener = await SocketListener.from_socket(sock)  # takes ownership of the socket
        except BaseException:
            sock.close()
            raise
        try:
            self._announce(authorization_url, endpoint)
            received: list[str] = []
            with anyio.CancelScope(deadline=deadline):
                await _serve_async(listener, self._responder(endpoint, authorization_url), received)
        finally:
            with anyio.CancelScope(shield=True):
                await listener.aclose()
            sock.close()  # idempotent; the listener has closed it already
        if not received:
            raise self._timeout_error(endpoint)
        return endpoint.origin + received[0]

    # ----------------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------------
# Blocking I/O loop


@dataclass
class _Connection:
    sock: socket.socket
    deadline: float
    buffer: _HeadBuffer


def _serve_blocking(listener: socket.socket, responder: _Responder, deadline: float) -> str | None:
    """Serve until the callback arrives (its target) or ``deadline`` passes (None)."""
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    connections: dict[socket.socket, _Connection] = {}
    try:
        selector.register(listener, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None
            for expired in [c for c in connections.values() if c.deadline <= now]:
                _drop(selector, connections, expired.sock)
            wake = min([deadline, *(c.deadline for c in connections.values())])
            for key, _ in selector.select(max(wake - now, 0.0)):
                if key.fileobj is listener:
                    _accept_blocking(listener, selector, connections)
                    continue
                connection = connections.get(key.fileobj)  # type: ignore[call-overload]
                if connection is None:
                    continue
                target = _read_blocking(connection, responder, selector, connections)
                if target is not None:
                    return target
    finally:
        for sock in list(connections):
            _drop(selector, connections, sock)
        selector.close()


def _accept_blocking(
    listener: socket.socket, selector: selectors.BaseSelector, connections: dict[socket.socket, _Connection]
) -> None:
    while True:
        try:
            sock, address = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # e.g. ECONNABORTED: the client gave up before we accepted
        if not _is_loopback_peer(address) or len(connections) >= MAX_CONNECTIONS:
            sock.close()
            continue
        sock.setblocking(False)
        connections[sock] = _Connection(sock, time.monotonic() + CONNECTION_TIMEOUT, _HeadBuffer())
        selector.register(sock, selectors.EVENT_READ)


def _read_blocking(
    connection: _Connection,
    responder: _Responder,
    selector: selectors.BaseSelector,
    connections: dict[socket.socket, _Connection],
) -> str | None:
    sock = connection.sock
    try:
        chunk = sock.recv(4096)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        chunk = b""
    if not chunk:
        _drop(selector, connections, sock)
        return None
    try:
        head = connection.buffer.feed(chunk)
    except _HeadTooLarge:
        outcome: _Outcome | None = responder.too_large()
    else:
        outcome = None if head is None else responder.respond(head)
    if outcome is None:
        return None
    selector.unregister(sock)
    del connections[sock]
    try:
        sock.settimeout(max(0.1, min(CONNECTION_TIMEOUT, connection.deadline - time.monotonic())))
        sock.sendall(outcome.response)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        if outcome.target is None:
            return None
        # The browser went away before reading the page; the callback itself did arrive.
    finally:
        sock.close()
    return outcome.target


def _drop(selector: selectors.BaseSelector, connections: dict[socket.socket, _Connection], sock: socket.socket) -> None:
    connections.pop(sock, None)
    with contextlib.suppress(KeyError, ValueError):
        selector.unregister(sock)
    sock.close()


# ----------------------------------------------------------------------------------------------------
# Async I/O loop


async def _serve_async(listener: SocketListener, responder: _Responder, result: list[str]) -> None:
    """Serve until the callback arrives; append its target to ``result``. The caller sets the deadline."""
    active = 0

    async def handle(stream: SocketStream) -> None:
        nonlocal active
        is_callback = False
        try:
            with anyio.move_on_after(CONNECTION_TIMEOUT):
                outcome = await _read_async(stream, responder)
                if outcome is None:
                    return
                if outcome.target is not None and not result:
                    # Record the callback first: it has arrived even if the browser leaves before the page.
                    result.append(outcome.target)
                    is_callback = True
                try:
                    await stream.send(outcome.response)
                    await stream.send_eof()
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    pass
        finally:
            active -= 1
            await anyio.aclose_forcefully(stream)
            if is_callback:
                task_group.cancel_scope.cancel()

    async with anyio.create_task_group() as task_group:
        while True:
            try:
                stream = await listener.accept()
            except OSError:  # e.g. out of file descriptors: do not spin
                await anyio.sleep(0.05)
                continue
            peer = stream.extra(SocketAttribute.remote_address, None)  # noqa: S610 - not Django
            if not _is_loopback_peer(peer) or active >= MAX_CONNECTIONS:
                await anyio.aclose_forcefully(stream)
                continue
            active += 1
            task_group.start_soon(handle, stream)


async def _read_async(stream: SocketStream, responder: _Responder) -> _Outcome | None:
    buffer = _HeadBuffer()
    while True:
        try:
            chunk = await stream.receive(4096)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return None
        try:
            head = buffer.feed(chunk)
        except _HeadTooLarge:
            return responder.too_large()
        if head is not None:
            return responder.respond(head)
