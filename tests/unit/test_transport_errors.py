"""Which failures count as the network's (temporary: credentials kept) for httpx and httpx2 alike."""

from __future__ import annotations

import httpx
import pytest

from mcp_oauth_auth.compat.http import network_error
from mcp_oauth_auth.driving.http import as_unreachable, is_transport_error
from mcp_oauth_auth.exceptions import TemporaryOAuthError

from ..httpx2_support import skip_module_without_httpx2

skip_module_without_httpx2()
import httpx2  # noqa: E402


@pytest.mark.parametrize(
    ("exc", "transport"),
    [
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (httpx2.ConnectError("refused"), True),
        (httpx2.ReadTimeout("slow"), True),
        (httpx.DecodingError("bad gzip"), False),
        (httpx2.DecodingError("bad gzip"), False),
        (OSError("disk"), False),
        (ValueError("x"), False),
    ],
)
def test_connection_failures_and_timeouts_of_either_library_are_transport_errors(
    exc: BaseException, transport: bool
) -> None:
    assert is_transport_error(exc) is transport


def test_a_transport_error_becomes_a_temporary_error_naming_the_url_without_its_query() -> None:
    request = httpx2.Request("POST", "https://auth.example.com/token?code=secret")
    error = as_unreachable(httpx2.ConnectError("refused", request=request), request)
    assert isinstance(error, TemporaryOAuthError)
    assert (
        str(error)
        == "could not reach https://auth.example.com/token: ConnectError: refused (url=https://auth.example.com/token)"
    )
    with pytest.raises(httpx2.DecodingError):
        as_unreachable(httpx2.DecodingError("bad gzip"), request)


def test_the_seed_api_reports_network_failures_as_temporary_and_the_url_it_knows() -> None:
    failure = httpx.ConnectError("refused")
    error = network_error(failure, "https://mcp.example.com/mcp?x=1")
    assert isinstance(error, TemporaryOAuthError)
    assert error.url == "https://mcp.example.com/mcp"
    assert "credentials were kept" in str(error)
    with pytest.raises(KeyError):
        network_error(KeyError("x"), "https://mcp.example.com/mcp")
