"""URL rules of the MCP authorization spec: canonical resource URIs, well-known URLs, and bearer scoping."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit, urlunsplit

from mcp_oauth_auth.exceptions import ConfigurationError

__all__ = [
    "BearerScope",
    "authorization_server_metadata_urls",
    "canonical_resource",
    "check_redirect_uri",
    "is_loopback_host",
    "origin_of",
    "protected_resource_metadata_urls",
    "require_secure_url",
    "resource_identifies_server",
    "same_issuer",
    "same_resource",
    "shown_url",
    "split_url",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: A URL's scheme and user name, followed by a password in its userinfo.
_USERINFO = re.compile(r"(//[^/?#@:]*):[^/?#@]*@")
_WEBSOCKET_SCHEMES = {"ws": "http", "wss": "https"}


def is_loopback_host(host: str | None) -> bool:
    """``localhost`` or a loopback IP literal (127.0.0.0/8, ::1); a DNS name such as ``127.example`` is not."""
    if host is None:
        return False
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def safe_url(url: str) -> str:
    """``url`` without userinfo, query or fragment, for messages and logs (queries carry codes and state)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    authority = host if port is None else f"{host}:{port}"
    return f"{parts.scheme}://{authority}{parts.path}"


def shown_url(url: object, limit: int = 200) -> str:
    """``url`` for an error message about the URL itself: as given, but without a password in its userinfo and
    cut to ``limit`` characters."""
    text = _USERINFO.sub(r"\1:***@", url if isinstance(url, str) else repr(url))
    return repr(text if len(text) <= limit else text[:limit] + "…")


def split_url(url: str) -> tuple[str, str, int | None, str, str]:
    """Scheme and host (lower-case), port (None for the scheme's default), path and query of an absolute http(s)
    URL; ConfigurationError for anything else."""
    if not isinstance(url, str):
        raise ConfigurationError(f"a URL must be a string, not {type(url).__name__}")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:
        raise ConfigurationError(f"not a valid URL ({exc}): {shown_url(url)}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not hostname:
        raise ConfigurationError(f"not an absolute http(s) URL: {shown_url(url)}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"invalid port in URL {shown_url(url)}") from None
    if port == _DEFAULT_PORTS[scheme]:
        port = None
    return scheme, hostname.lower(), port, parts.path, parts.query


def _netloc(host: str, port: int | None) -> str:
    host = f"[{host}]" if ":" in host else host
    return host if port is None else f"{host}:{port}"


def canonical_resource(url: str) -> str:
    """The canonical URI of an MCP server (MCP spec; RFC 8707 §2): lower-case scheme and host, no default port,
    no fragment, no trailing slash on an empty path."""
    scheme, host, port, path, query = split_url(url)
    if path == "/":
        path = ""
    return urlunsplit((scheme, _netloc(host, port), path, query, ""))


def origin_of(url: str) -> str:
    scheme, host, port, _, _ = split_url(url)
    return f"{scheme}://{_netloc(host, port)}"


def require_secure_url(url: str, what: str, *, allow_insecure_http: bool = False) -> None:
    """OAuth endpoints must use HTTPS (OAuth 2.1 §1.5); plain HTTP is accepted on loopback hosts only."""
    scheme, host, _, _, _ = split_url(url)
    if scheme != "https" and not allow_insecure_http and not is_loopback_host(host):
        raise ConfigurationError(f"{what} must use https, or http on a loopback address: {safe_url(url)}")


def protected_resource_metadata_urls(server_url: str, from_challenge: str | None) -> list[str]:
    """Where to look for protected resource metadata, in order (RFC 9728 §3.1, MCP spec)."""
    scheme, host, port, path, query = split_url(server_url)
    base = f"{scheme}://{_netloc(host, port)}/.well-known/oauth-protected-resource"
    urls = [from_challenge] if from_challenge else []
    if path.strip("/") or query:
        # The well-known suffix goes between the host and the path and query (RFC 9728 §3.1).
        suffix = "/" + path.lstrip("/").rstrip("/") if path.strip("/") else ""
        urls.append(base + suffix + (f"?{query}" if query else ""))
    urls.append(base)
    return list(dict.fromkeys(urls))


def authorization_server_metadata_urls(issuer: str) -> list[tuple[str, bool]]:
    """Metadata URLs for ``issuer``, in the MCP spec's order, each with True when it is OpenID discovery.

    With a path: RFC 8414 path insertion, OpenID path insertion, then OpenID path append; without: RFC 8414,
    then OpenID.
    """
    scheme, host, port, path, _ = split_url(issuer)
    origin = f"{scheme}://{_netloc(host, port)}"
    path = path.rstrip("/")
    if not path:
        return [
            (f"{origin}/.well-known/oauth-authorization-server", False),
            (f"{origin}/.well-known/openid-configuration", True),
        ]
    return [
        (f"{origin}/.well-known/oauth-authorization-server{path}", False),
        (f"{origin}/.well-known/openid-configuration{path}", True),
        (f"{origin}{path}/.well-known/openid-configuration", True),
    ]


def resource_identifies_server(resource: str, server_url: str) -> bool:
    """Whether a PRM ``resource`` identifies the MCP server at ``server_url`` (RFC 9728 §3.3).

    Equal canonical URIs match; so does a resource that is a path-segment prefix of the server URL on the same
    origin (a resource covering several endpoints, e.g. ``https://host/`` for ``https://host/mcp``).
    """
    try:
        r_scheme, r_host, r_port, r_path, _ = split_url(resource)
        s_scheme, s_host, s_port, s_path, _ = split_url(server_url)
    except ConfigurationError:
        return False
    if (r_scheme, r_host, r_port) != (s_scheme, s_host, s_port):
        return False
    r_path, s_path = r_path.rstrip("/"), s_path.rstrip("/")
    return s_path == r_path or s_path.startswith(r_path + "/")


def same_resource(resource: str, server_url: str) -> bool:
    """Whether a PRM ``resource`` is the MCP server's own URL (RFC 9728 §3.3: identical), as canonical URIs and
    up to a trailing slash; never a parent of it (that is :func:`resource_identifies_server`, an opt-in)."""
    try:
        r_scheme, r_host, r_port, r_path, r_query = split_url(resource)
        s_scheme, s_host, s_port, s_path, s_query = split_url(server_url)
    except ConfigurationError:
        return False
    return (r_scheme, r_host, r_port, r_path.rstrip("/"), r_query) == (
        s_scheme,
        s_host,
        s_port,
        s_path.rstrip("/"),
        s_query,
    )


#: A path segment that is a dot segment (RFC 3986 §3.3) once percent-decoded: "." or "..".
_DOT_SEGMENT = re.compile(
    r"(?:^|[/\\]|%(?:25)?(?:2f|5c))(?:\.|%(?:25)?2e){1,2}(?:$|[/\\?#]|%(?:25)?(?:2f|5c))", re.IGNORECASE
)


def has_dot_segment(raw_path: str) -> bool:
    """Whether ``raw_path`` (as sent, percent-encoded) has a ``.`` or ``..`` segment, literal or encoded
    (``%2e``, ``%2E``), including segments ended by an encoded slash or a backslash (``..%2f``, ``..\\``): a server
    that decodes or normalises the path would resolve it elsewhere than the prefix it seems to be under."""
    return _DOT_SEGMENT.search(raw_path) is not None


@dataclass(frozen=True)
class BearerScope:
    """The URLs a bearer token may be sent to: the resource's origin, at or below its path."""

    scheme: str
    host: str
    port: int | None
    path_prefix: str

    @classmethod
    def for_resource(cls, resource: str) -> BearerScope:
        scheme, host, port, path, _ = split_url(resource)
        return cls(scheme, host, port, path.rstrip("/"))

    def covers(self, scheme: str, host: str, port: int | None, path: str, raw_path: str | None = None) -> bool:
        """True for a request URL given as parts (``port`` None for the scheme's default port; ``raw_path`` the
        path as sent, percent-encoded, when known).

        A WebSocket handshake (``ws``/``wss``) is an HTTP request to the same host and port (RFC 6455 §3), so it is
        covered like ``http``/``https``. A path with a dot segment, literal or percent-encoded, is never covered
        (``/mcp/%2e%2e/admin`` decodes to a path under ``/mcp`` but a server resolves it to ``/admin``).
        """
        if has_dot_segment(path) or (raw_path is not None and has_dot_segment(raw_path)):
            return False
        scheme = _WEBSOCKET_SCHEMES.get(scheme, scheme)
        if scheme != self.scheme or host.lower() != self.host:
            return False
        if port is not None and port == _DEFAULT_PORTS.get(scheme):
            port = None
        if port != self.port:
            return False
        prefix = self.path_prefix
        return not prefix or path == prefix or path.startswith(prefix + "/")

    @cached_property
    def as_sent(self) -> tuple[str, str, int | None, str, str] | None:
        """``(scheme, host, port, path_prefix, path_prefix + "/")`` for comparing a request URL's components as
        sent (lower-case scheme, IDNA-encoded lower-case host, port None for the scheme's default, path still
        percent-encoded), or None where equal components would not imply :meth:`covers`.

        A URL whose sent scheme, host and port equal these, and whose sent path equals the prefix or starts with it
        and a slash, is covered: its decoded parts are the same (a host without ``xn--`` labels or ``%`` is not
        decoded, and percent-decoding leaves the part of a path before its first ``%`` as it is). Where the scope's
        host has an ``xn--`` label or a ``%`` (an IPv6 zone), or its path a ``%``, a URL's decoded parts differ from
        the ones it sends: None, and :meth:`covers` decides every URL.
        """
        if "xn--" in self.host or "%" in self.host or "%" in self.path_prefix:
            return None
        return self.scheme, self.host, self.port, self.path_prefix, self.path_prefix + "/"


def same_issuer(named: object, expected: str) -> bool:
    """RFC 8414 §3.3 identity, except that an empty path and "/" are the same URL (RFC 3986 §6.2.3).

    The MCP SDK 1.x writes ``authorization_servers`` through pydantic, which turns ``http://host:port`` into
    ``http://host:port/``; the authorization server names itself without the slash. Nothing else is normalised.
    """
    if not isinstance(named, str):
        return False
    if named == expected:
        return True
    return _root_slash_free(named) == _root_slash_free(expected)


def _root_slash_free(url: str) -> str:
    scheme, separator, rest = url.partition("://")
    if separator and rest.count("/") == 1 and rest.endswith("/") and "?" not in rest and "#" not in rest:
        return f"{scheme}://{rest[:-1]}"
    return url


def check_redirect_uri(uri: object) -> None:
    """Redirect URIs are https, or http on a loopback address (MCP security considerations; RFC 8252 §7.3),
    absolute, without fragment (RFC 6749 §3.1.2)."""
    if not isinstance(uri, str):
        raise ConfigurationError(f"a redirect URI must be a string, not {type(uri).__name__}")
    if "#" in uri:
        raise ConfigurationError(f"a redirect URI must not have a fragment: {shown_url(uri)}")
    require_secure_url(uri, "a redirect URI")
