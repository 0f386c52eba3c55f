"""What a connection failure really was: a name not found, a refused connection, a certificate that failed
verification, a timeout. httpx and httpx2 wrap the socket's own error (``socket.gaierror``,
``ConnectionRefusedError``, ``ssl.SSLCertVerificationError``) in their ``ConnectError``; the chain of causes keeps it.
"""

from __future__ import annotations

import errno
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["ConnectionFailure", "classify_connection_failure"]

#: getaddrinfo's answers that mean "this name does not exist" (rather than "the resolver could not be asked").
_NAME_NOT_FOUND = {
    code for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None)) if isinstance(code, int)
}


@dataclass(frozen=True)
class ConnectionFailure:
    """``kind``: ``dns`` (the name does not exist), ``dns-unavailable`` (no resolver answered), ``refused``,
    ``tls``, ``timeout`` or ``network`` (anything else); ``detail`` says it in words, naming ``host``."""

    kind: str
    host: str
    detail: str


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it was raised from or while handling, nearest first."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if any(current is known for known in seen):
            continue
        seen.append(current)
        todo.extend(linked for linked in (current.__cause__, current.__context__) if linked is not None)
    return seen


def _host(url: str) -> tuple[str, str]:
    """``host:port`` (or ``host``) for messages, and the host name alone; ``url`` itself when it cannot be parsed."""
    try:
        parts = urlsplit(url)
        name = parts.hostname or url
        return (f"{name}:{parts.port}" if parts.port else name), name
    except ValueError:
        return url, url


def classify_connection_failure(exc: BaseException, url: str) -> ConnectionFailure:
    """The cause of the transport failure ``exc`` of a request to ``url``."""
    host, name = _host(url)
    chain = _chain(exc)
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            problem = cause.verify_message or cause.reason or "the certificate was not accepted"
            return ConnectionFailure("tls", host, f"TLS certificate verification failed for {host}: {problem}")
        if isinstance(cause, ssl.SSLError):
            problem = cause.strerror or cause.reason or str(cause)
            return ConnectionFailure("tls", host, f"the TLS handshake with {host} failed: {problem}")
        if isinstance(cause, socket.gaierror):
            if cause.errno in _NAME_NOT_FOUND:
                return ConnectionFailure("dns", host, f"the host name {name} was not found (DNS)")
            return ConnectionFailure(
                "dns-unavailable", host, f"the host name {name} could not be looked up ({cause.strerror or cause})"
            )
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return ConnectionFailure("refused", host, f"{host} refused the connection (nothing listens on that port)")
        if isinstance(cause, TimeoutError) or type(cause).__name__.endswith("Timeout"):
            return ConnectionFailure("timeout", host, f"{host} did not answer in time ({type(exc).__name__})")
    # httpx's own timeouts carry no socket error (anyio's and httpcore's are named ...Timeout too)
    text = str(exc).strip()
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return ConnectionFailure("network", host, detail)
