"""HTTP plumbing shared by the fake stack's parts: request and response values, parsing, URL helpers.

Nothing here performs I/O. The fake stack works on :class:`FakeRequest` values and answers with
:class:`FakeResponse` values; adapters (ASGI, httpx transports, respx) translate to and from real HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = [
    "LOOPBACK_HOSTS",
    "FakeRequest",
    "FakeResponse",
    "HeadersInput",
    "add_query",
    "bearer_challenge",
    "is_loopback_http",
    "json_response",
    "oauth_error",
    "origin_of",
    "parse_params",
]

#: Either a list of (name, value) pairs (repeated names allowed) or a mapping.
HeadersInput = Sequence[tuple[str, str]] | Mapping[str, str]

#: Host names that RFC 8252 §7.3 treats as loopback (``localhost`` included, as most servers do).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class FakeResponse:
    """One HTTP response of the fake stack. ``headers`` keeps order and repeated names."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass(frozen=True)
class FakeRequest:
    """A parsed request: ``origin`` is normalised (see :func:`origin_of`), header names are lower case."""

    method: str
    url: str
    origin: str
    path: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: bytes = field(repr=False)

    @classmethod
    def build(cls, method: str, url: str, headers: HeadersInput, body: bytes) -> FakeRequest:
        parts = urlsplit(url)
        items = headers.items() if isinstance(headers, Mapping) else headers
        return cls(
            method=method.upper(),
            url=url,
            origin=origin_of(url),
            path=parts.path or "/",
            query=parse_qsl(parts.query, keep_blank_values=True),
            headers=[(str(key).lower(), str(value)) for key, value in items],
            body=bytes(body),
        )

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self.headers if key == lowered]

    @property
    def content_type(self) -> str:
        """The media type of the body, lower case, without parameters ("" when absent)."""
        value = self.header("content-type") or ""
        return value.split(";", 1)[0].strip().lower()


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lower case, without a default port; ValueError if malformed."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    port = parts.port  # raises ValueError for a malformed port
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def is_loopback_http(uri: str) -> bool:
    """True for an ``http`` URI whose host is a loopback name or address."""
    parts = urlsplit(uri)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


def parse_params(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """OAuth parameters, empty values counting as omitted (RFC 6749 §3.1); returns (params, repeated)."""
    params: dict[str, str] = {}
    repeated: list[str] = []
    for name, value in pairs:
        if value == "":
            continue
        if name in params:
            if name not in repeated:
                repeated.append(name)
            continue
        params[name] = value
    return params, repeated


def add_query(url: str, params: Sequence[tuple[str, str]]) -> str:
    """``url`` with ``params`` appended to its query (keeping an existing query, dropping any fragment)."""
    base = url.split("#", 1)[0]
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}{urlencode(list(params))}"


def json_response(
    status: int, document: Any, headers: Sequence[tuple[str, str]] = (), *, no_store: bool = False
) -> FakeResponse:
    body = json.dumps(document).encode("utf-8")
    all_headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if no_store:
        all_headers += [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
    all_headers += list(headers)
    return FakeResponse(status, all_headers, body)


def oauth_error(status: int, error: str, description: str, headers: Sequence[tuple[str, str]] = ()) -> FakeResponse:
    """A JSON OAuth error response (RFC 6749 §5.2 shape)."""
    return json_response(status, {"error": error, "error_description": description}, headers, no_store=True)


def bearer_challenge(params: Sequence[tuple[str, str]]) -> str:
    """A ``WWW-Authenticate`` value for the Bearer scheme with quoted auth-params (RFC 6750 §3)."""
    if not params:
        return "Bearer"
    quoted = ", ".join(f'{name}="{_quote(value)}"' for name, value in params)
    return f"Bearer {quoted}"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
