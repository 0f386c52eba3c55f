"""The callback request of the loopback listener: where it is expected, how it is read, and what it is answered.

Internal to :mod:`mcp_oauth_auth.authorizers`. No I/O happens here: the listener
(:mod:`~mcp_oauth_auth.authorizers.callback_listener`) feeds the bytes it receives to a :class:`_HeadBuffer`, hands
each complete request head to a :class:`_Responder`, and sends back the response of the :class:`_Outcome`, which
also tells whether the request was the callback.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, urlsplit

from mcp_oauth_auth.authorizers.callback_page import _STALE_CALLBACK_HTML, _failure_page, _plain_page
from mcp_oauth_auth.exceptions import ConfigurationError

__all__ = ["MAX_REQUEST_HEAD"]

logger = logging.getLogger("mcp_oauth_auth")

#: Largest accepted request head (request line plus headers); larger ones get 431.
MAX_REQUEST_HEAD: Final = 16 * 1024

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_NAME = _TOKEN
_TARGET = re.compile(r"/[\x21-\x7e]*")
_VERSION = re.compile(r"HTTP/1\.[01]")

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
# Where the callback is expected


def _loopback_ip(host: str) -> str:
    """The loopback IP literal to bind for ``host`` (``localhost``: 127.0.0.1); ValueError if not loopback."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return "127.0.0.1"
    address = ipaddress.ip_address(host)  # ValueError for non-literals
    if not address.is_loopback:
        raise ValueError(f"{host} is not a loopback address")
    return str(address)


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


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
# Reading the request and answering it


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
            # Not the response to this authorization request: a tab left over from an earlier attempt, say, or a
            # callback without any state, which any web page can send. It must not end the wait (the flow would
            # reject it, and the person's real approval would find nobody listening).
            logger.info("ignored an authorization callback for another authorization request (its state differs)")
            return _Outcome(_response(400, "Bad Request", _STALE_CALLBACK_HTML))
        logger.debug("authorization callback received on %s (parameters: %s)", path, ", ".join(sorted(params)))
        if "error" in params:
            page = _failure_page(self._failure_html, params["error"][0], params.get("error_description", [""])[0])
        elif "code" in params:
            page = self._success_html
        else:
            page = _failure_page(
                self._failure_html,
                "invalid_request",
                "The response carries neither an authorization code nor an error.",
            )
        return _Outcome(_response(200, "OK", page), target)

    def _belongs_elsewhere(self, states: list[str] | None) -> bool:
        if self._state is None:
            return False
        return states is None or len(states) != 1 or not hmac.compare_digest(states[0].encode(), self._state.encode())

    def _host_matches(self, host: str) -> bool:
        host = host.strip().lower()
        expected = {self._endpoint.authority.lower()}
        if self._endpoint.port == 80:
            expected.add(_uri_host(self._endpoint.host).lower())
        return host in expected


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
