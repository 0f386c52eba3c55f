"""What a connection failure really was, read from the chain of causes httpx and httpx2 keep: every kind, and the
chains that are not what they seem."""

from __future__ import annotations

import errno
import logging
import socket
import ssl

import httpx
import pytest

from mcp_oauth_auth.cli.causes import connection_hint
from mcp_oauth_auth.cli.debug import _RequestLine, expand_debug_all
from mcp_oauth_auth.driving.failures import ConnectionFailure, classify_connection_failure

URL = "https://mcp.example.com:8443/mcp"


def wrapped(cause: BaseException) -> httpx.ConnectError:
    """As httpx raises it: its ConnectError, raised from httpcore's, raised from the socket's own error."""
    try:
        try:
            raise cause
        except BaseException as inner:
            raise RuntimeError("httpcore.ConnectError") from inner
    except RuntimeError as middle:
        error = httpx.ConnectError("connect failed")
        error.__cause__ = middle
        return error


def verification_failure(message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    error.verify_message = message
    return error


@pytest.mark.parametrize(
    ("cause", "kind", "detail"),
    [
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "dns",
            "the host name mcp.example.com was not found (DNS)",
        ),
        (
            socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
            "dns-unavailable",
            "the host name mcp.example.com could not be looked up (Temporary failure in name resolution)",
        ),
        (
            ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
            "refused",
            "mcp.example.com:8443 refused the connection (nothing listens on that port)",
        ),
        (
            OSError(errno.ECONNREFUSED, "Connection refused"),
            "refused",
            "mcp.example.com:8443 refused the connection (nothing listens on that port)",
        ),
        (
            verification_failure("certificate has expired"),
            "tls",
            "TLS certificate verification failed for mcp.example.com:8443: certificate has expired",
        ),
        (
            ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
            "tls",
            "the TLS handshake with mcp.example.com:8443 failed: [SSL: WRONG_VERSION_NUMBER] wrong version number",
        ),
        (TimeoutError("timed out"), "timeout", "mcp.example.com:8443 did not answer in time (ConnectError)"),
    ],
)
def test_each_cause_is_found_under_the_http_librarys_error(cause: BaseException, kind: str, detail: str) -> None:
    failure = classify_connection_failure(wrapped(cause), URL)
    assert failure == ConnectionFailure(kind, "mcp.example.com:8443", detail)


def test_a_timeout_of_the_http_library_itself() -> None:
    failure = classify_connection_failure(httpx.ReadTimeout("read timed out"), "http://127.0.0.1/mcp")
    assert failure.kind == "timeout"
    assert failure.host == "127.0.0.1"


def test_anything_else_is_named_in_the_libraries_words_and_a_cycle_ends() -> None:
    first, second = RuntimeError(), ValueError("odd")
    first.__context__, second.__context__ = second, first
    assert classify_connection_failure(first, URL) == ConnectionFailure(
        "network", "mcp.example.com:8443", "RuntimeError"
    )
    assert classify_connection_failure(httpx.ConnectError("gone"), "not a url").detail == "ConnectError: gone"
    assert classify_connection_failure(httpx.ConnectError("x"), "http://[::1:bad/").host == "http://[::1:bad/"


def test_every_kind_has_its_own_hint() -> None:
    kinds = ("dns", "dns-unavailable", "refused", "tls", "timeout", "network")
    hints = {kind: connection_hint(ConnectionFailure(kind, "h", "d")) for kind in kinds}
    assert len(set(hints.values())) == len(kinds)
    assert "typo" in hints["dns"]
    assert connection_hint(ConnectionFailure("something new", "h", "d")) == hints["network"]


def test_debug_all_is_spelt_for_argparse_up_to_a_double_dash() -> None:
    assert expand_debug_all(["--debug=all", "list", "--", "--debug=all"]) == [
        "--debug-all",
        "list",
        "--",
        "--debug=all",
    ]


def test_the_request_line_leaves_out_the_query_and_other_records_alone() -> None:
    url = httpx.URL("https://as.example/authorize?code=secret&state=s")
    record = logging.LogRecord("httpx", logging.INFO, "", 0, 'HTTP Request: %s %s "%s"', ("GET", url, "200"), None)
    assert _RequestLine().filter(record)
    assert record.getMessage() == 'HTTP Request: GET https://as.example/authorize "200"'
    plain = logging.LogRecord("httpx", logging.INFO, "", 0, "no arguments", None, None)
    assert _RequestLine().filter(plain)
    assert plain.getMessage() == "no arguments"
