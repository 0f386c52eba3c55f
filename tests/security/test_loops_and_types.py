"""Point 8: a server that rejects every token gets one authorization, then typed errors during a cool-down; URLs
httpx cannot send and overlong server texts surface as OAuthError subclasses, cut to size."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from mcp_oauth_auth import AuthorizationError, OAuthError, UnsafeURLError
from mcp_oauth_auth.exceptions import MAX_MESSAGE, MAX_SERVER_TEXT

from .hostile import SERVER, HostileServer, as_metadata, document, make_auth

AS = "https://auth.example"


def _storm_server() -> HostileServer:
    server = HostileServer.protected({"resource": SERVER, "authorization_servers": [AS]})
    server.routes[f"{AS}/.well-known/oauth-authorization-server"] = document(as_metadata(AS))
    server.routes[f"{AS}/register"] = document({"client_id": "c-1"}, status=201)
    token = {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-1"}
    server.routes[f"{AS}/token"] = document(token)
    return server


def test_a_server_rejecting_every_token_gets_one_authorization(kind: tuple[str, str]) -> None:
    server = _storm_server()
    approvals: list[str] = []

    def approve(url: str) -> str:
        approvals.append(url)
        query = parse_qs(urlsplit(url).query)
        return f"{query['redirect_uri'][0]}?{urlencode({'code': 'c', 'state': query['state'][0]})}"

    auth = make_auth(authorizer=approve)
    assert server.request(kind, auth).status_code == 401  # authorized, the new token rejected too: given up
    assert len(approvals) == 1
    for _ in range(3):
        with pytest.raises(AuthorizationError, match="not authorizing again within 60 s"):
            server.request(kind, auth)
    assert len(approvals) == 1


def test_a_url_httpx_cannot_send_is_a_typed_error(kind: tuple[str, str]) -> None:
    server = HostileServer.protected({"resource": SERVER, "authorization_servers": ["https://xn--/"]})
    with pytest.raises(OAuthError) as caught:  # httpx refuses the IDNA label; httpx2 sends it and gets a 404
        server.request(kind, make_auth())
    if kind[0] == "httpx":
        assert isinstance(caught.value, UnsafeURLError)
        assert "cannot send" in caught.value.message


def test_long_server_texts_are_cut(kind: tuple[str, str]) -> None:
    description = "x" * 100_000
    challenge = f'Bearer error="insufficient_scope", scope="a", error_description="{description}"'
    server = HostileServer.protected({"resource": SERVER * 1000, "authorization_servers": [AS]}, challenge)
    with pytest.raises(OAuthError) as caught:
        server.request(kind, make_auth())
    assert len(caught.value.message) <= MAX_MESSAGE + 40
    assert "more characters" in caught.value.message


def test_server_fields_of_errors_are_cut() -> None:
    error: Any = OAuthError("m", error="e" * 10_000, error_description="d" * 10_000)
    assert len(error.error) <= MAX_SERVER_TEXT + 40
    assert len(error.error_description) <= MAX_SERVER_TEXT + 40
    assert len(str(error)) < 3 * MAX_SERVER_TEXT
