"""The small authorizers' edges: what they refuse and what they print (the flows with them are tested elsewhere)."""

from __future__ import annotations

import io

import pytest

import mcp_oauth_auth.authorizers as authorizers
from mcp_oauth_auth.authorizers import CallableAuthorizer, DeviceAuthorizer, PasteBackAuthorizer, as_authorizer
from mcp_oauth_auth.authorizers.base import Authorizer
from mcp_oauth_auth.authorizers.callback_listener import _is_loopback_peer
from mcp_oauth_auth.exceptions import AuthorizationError, ConfigurationError
from mcp_oauth_auth.flow.device import DeviceAuthorization

REDIRECT = "http://127.0.0.1:8765/callback"


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        (("127.0.0.1", 5000), True),
        (("::ffff:127.0.0.1", 5000, 0, 0), True),
        (("::ffff:10.0.0.1", 5000, 0, 0), False),
        (("fe80::1%eth0", 5000, 0, 2), False),
        (("::1%lo", 5000, 0, 1), True),
        (("localhost", 5000), False),  # a name is not an address the kernel reports
        ((), False),
        ((b"127.0.0.1", 5000), False),
        ("127.0.0.1", False),
        (None, False),
    ],
)
def test_only_loopback_peers_are_served(address: object, loopback: bool) -> None:
    assert _is_loopback_peer(address) is loopback


def test_an_unknown_authorizer_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'BrowserAuthorizer'"):
        _ = authorizers.BrowserAuthorizer


def test_the_base_authorizer_must_be_given_an_authorize() -> None:
    with pytest.raises(NotImplementedError):
        Authorizer().authorize("https://auth.example.com/authorize", REDIRECT)
    assert Authorizer().redirect_uri([REDIRECT]) is None


def test_what_is_not_an_authorizer_is_refused() -> None:
    with pytest.raises(TypeError, match="authorizer must be an Authorizer or a callable, not int"):
        as_authorizer(42)  # type: ignore[arg-type]
    with pytest.raises(AuthorizationError, match="the authorizer returned NoneType, expected the callback URL"):
        CallableAuthorizer(lambda url: None).authorize("https://auth.example.com/authorize", REDIRECT)  # type: ignore[arg-type, return-value]


def test_the_device_authorizer_prints_the_code_and_has_no_redirect() -> None:
    device = DeviceAuthorization("dc", "ABCD-EFGH", "https://auth.example.com/device", None, expires_at=2e9)
    stream = io.StringIO()
    assert DeviceAuthorizer(stream=stream).show_device_code(device) is None
    assert "ABCD-EFGH" in stream.getvalue()
    assert "https://auth.example.com/device" in stream.getvalue()
    with pytest.raises(ConfigurationError, match="approves with the device flow"):
        DeviceAuthorizer().authorize("https://auth.example.com/authorize", REDIRECT)
    assert repr(DeviceAuthorizer()) == "DeviceAuthorizer()"

    def on_prompt(device: DeviceAuthorization) -> None:
        return None

    assert repr(DeviceAuthorizer(on_prompt=on_prompt)).startswith("DeviceAuthorizer(on_prompt=test_the_device")


def test_the_paste_back_authorizer_takes_only_the_expected_redirect() -> None:
    url = "https://auth.example.com/authorize?state=s"
    output = io.StringIO()
    pasted = PasteBackAuthorizer(input_stream=io.StringIO(f"  {REDIRECT}?code=c&state=s \n"), output_stream=output)
    assert pasted.authorize(url, REDIRECT) == f"{REDIRECT}?code=c&state=s"
    assert url in output.getvalue()
    assert output.getvalue().endswith("Redirected URL: ")
    with pytest.raises(AuthorizationError, match="no redirected URL was pasted"):
        PasteBackAuthorizer(input_stream=io.StringIO("\n"), output_stream=io.StringIO()).authorize(url, REDIRECT)
    with pytest.raises(AuthorizationError, match="is not the redirect this authorization expects"):
        PasteBackAuthorizer(
            input_stream=io.StringIO("https://evil.example.com/?code=c\n"), output_stream=io.StringIO()
        ).authorize(url, REDIRECT)
    assert PasteBackAuthorizer().redirect_uri([REDIRECT, "http://localhost/cb"]) == REDIRECT
    assert PasteBackAuthorizer(redirect_uri="http://localhost/cb").redirect_uri([REDIRECT]) == "http://localhost/cb"
    assert PasteBackAuthorizer().redirect_uri([]).startswith("http://")
    assert repr(PasteBackAuthorizer()) == "PasteBackAuthorizer()"
