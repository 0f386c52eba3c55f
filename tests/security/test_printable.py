"""Point 5: a hostile server's control sequences never reach the person's terminal: refused in endpoint URLs and
device-flow fields when parsed, escaped in everything the library's default prompts print."""

from __future__ import annotations

import io
import time

import pytest

from mcp_oauth_auth import AuthorizationError, DeviceAuthorizer, DiscoveryError, PasteBackAuthorizer
from mcp_oauth_auth.authorizers.base import device_prompt
from mcp_oauth_auth.authorizers.loopback import _default_prompt
from mcp_oauth_auth.flow.device_authorization import DeviceAuthorization

from .hostile import HostileServer, as_metadata, document, make_auth

PRM = {"resource": "https://mcp.example/mcp", "authorization_servers": ["https://auth.example"]}
AS_METADATA_URL = "https://auth.example/.well-known/oauth-authorization-server"
#: Rewrites the window title (OSC 0), clears the screen (CSI 2J), and a bidi override that reverses what follows.
ESCAPES = ["\x1b]0;pwned\x07", "\x1b[2J", "\u202e", "\x9b31m", "\n"]


@pytest.mark.parametrize("escape", ESCAPES)
@pytest.mark.parametrize("field", ["authorization_endpoint", "token_endpoint", "device_authorization_endpoint"])
def test_an_endpoint_with_control_characters_is_refused_when_parsed(
    kind: tuple[str, str], field: str, escape: str
) -> None:
    server = HostileServer.protected(PRM)
    metadata = as_metadata("https://auth.example")
    metadata[field] = f"https://auth.example/authorize{escape}https://login.example/"
    server.routes[AS_METADATA_URL] = document(metadata)
    prompts: list[str] = []
    with pytest.raises(DiscoveryError, match=f"{field}.*control characters"):
        server.request(kind, make_auth(authorizer=lambda url: prompts.append(url) or url))
    assert prompts == []
    assert not [url for url in server.urls() if url.startswith("https://auth.example/") and ".well-known" not in url]


def test_a_protected_resource_metadata_naming_urls_with_controls_is_refused(kind: tuple[str, str]) -> None:
    server = HostileServer.protected({**PRM, "authorization_servers": ["https://auth.example\x1b[2J"]})
    with pytest.raises(DiscoveryError, match="control characters"):
        server.request(kind, make_auth())
    assert not [url for url in server.urls() if "auth.example" in url]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_code", "WDJB\x1b[2JMJHT"),
        ("verification_uri", "https://auth.example/device\x1b]52;c;cGF5bG9hZA==\x07"),
        ("verification_uri_complete", "https://auth.example/device?code=X\u202e"),
    ],
)
def test_device_fields_with_control_characters_are_refused_before_any_prompt(
    kind: tuple[str, str], field: str, value: str
) -> None:
    server = HostileServer.protected(PRM)
    server.routes[AS_METADATA_URL] = document(
        as_metadata("https://auth.example", device_authorization_endpoint="https://auth.example/device_authorization")
    )
    server.routes["https://auth.example/register"] = document({"client_id": "c-1"}, status=201)
    answer = {
        "device_code": "dc",
        "user_code": "WDJBMJHT",
        "verification_uri": "https://auth.example/device",
        "expires_in": 600,
        "interval": 1,
        field: value,
    }
    server.routes["https://auth.example/device_authorization"] = document(answer)
    shown = io.StringIO()
    with pytest.raises(AuthorizationError, match=field):
        server.request(kind, make_auth(authorizer=DeviceAuthorizer(stream=shown)))
    assert shown.getvalue() == ""
    assert "https://auth.example/token" not in server.urls()


def test_the_default_prompts_escape_what_they_print(capsys: pytest.CaptureFixture[str]) -> None:
    device = DeviceAuthorization(
        device_code="dc",
        user_code="AB\x1b[2JCD",
        verification_uri="https://auth.example/device\x1b]0;title\x07",
        verification_uri_complete="https://auth.example/device?c=\u202eX",
        expires_at=time.time() + 600,
    )
    prompt = device_prompt(device)
    assert "\x1b" not in prompt
    assert "\x07" not in prompt
    assert "\u202e" not in prompt
    assert "\\x1b[2J" in prompt
    assert "\\u202e" in prompt
    _default_prompt("https://auth.example/authorize?x=\x1b[2J")
    assert capsys.readouterr().err == "Open this URL to authorize: https://auth.example/authorize?x=\\x1b[2J\n"
    output = io.StringIO()
    paste = PasteBackAuthorizer(
        input_stream=io.StringIO("http://127.0.0.1:1/cb?code=c&state=s\n"), output_stream=output
    )
    paste.authorize("https://auth.example/authorize?x=\x1b]0;t\x07", "http://127.0.0.1:1/cb")
    assert "\x1b" not in output.getvalue()
    assert "\\x1b]0;t\\x07" in output.getvalue()
