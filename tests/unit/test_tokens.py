from __future__ import annotations

import base64
import time
from urllib.parse import parse_qs, unquote_plus

import pytest

from mcp_oauth_auth.exceptions import InvalidGrantError, TemporaryOAuthError, TokenExchangeError, TokenRefreshError
from mcp_oauth_auth.flow.effects import HttpResponse
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.tokens import client_authentication, exchange_code, keep_omitted, refresh_tokens
from mcp_oauth_auth.records import ClientRegistration, TokenSet

from .flowkit import Harness, json_response

TOKEN = "https://as.example/token"
POLICY = RetryPolicy(attempts=2, base_delay=0)
PUBLIC = ClientRegistration(client_id="pub", kind="dynamic")


def form(harness: Harness, index: int = 0) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(harness.sent[index].body.decode()).items()}


def test_client_secret_basic_is_form_encoded_before_base64() -> None:
    client = ClientRegistration(
        client_id="id:1 +",
        kind="pre-registered",
        client_secret="a b+c%/:",
        token_endpoint_auth_method="client_secret_basic",
    )
    fields, headers = client_authentication(client, {"grant_type": "x"})
    assert "client_secret" not in fields
    # The client identifies itself in the form as well (RFC 6749 §3.2.1): the MCP SDKs' servers need it.
    assert fields == {"grant_type": "x", "client_id": "id:1 +"}
    scheme, encoded = dict(headers)["Authorization"].split(" ")
    assert scheme == "Basic"
    user, password = base64.b64decode(encoded).decode().split(":")
    assert (unquote_plus(user), unquote_plus(password)) == ("id:1 +", "a b+c%/:")
    assert user == "id%3A1+%2B"


def test_client_secret_post_and_none() -> None:
    post = ClientRegistration(
        client_id="c", kind="dynamic", client_secret="s", token_endpoint_auth_method="client_secret_post"
    )
    assert client_authentication(post, {})[0] == {"client_id": "c", "client_secret": "s"}
    assert client_authentication(PUBLIC, {}) == ({"client_id": "pub"}, ())


def test_code_exchange_request_and_response() -> None:
    harness = Harness(
        routes={
            TOKEN: json_response(200, {"access_token": "at", "token_type": "bearer", "expires_in": 3600, "scope": "a"})
        }
    )
    before = time.time()
    tokens = harness.run(
        exchange_code(TOKEN, PUBLIC, "code", "verifier", "http://127.0.0.1:1/cb", "https://h/mcp", POLICY)
    )
    assert form(harness) == {
        "grant_type": "authorization_code",
        "code": "code",
        "redirect_uri": "http://127.0.0.1:1/cb",
        "code_verifier": "verifier",
        "resource": "https://h/mcp",
        "client_id": "pub",
    }
    assert tokens.access_token == "at"
    assert tokens.refresh_token is None
    assert tokens.scope == "a"
    assert tokens.expires_at is not None
    assert before + 3600 <= tokens.expires_at <= time.time() + 3600
    assert "at" not in repr(tokens).replace("expires_at", "")


def test_code_exchange_refusal() -> None:
    harness = Harness(routes={TOKEN: json_response(400, {"error": "invalid_grant", "error_description": "bad"})})
    with pytest.raises(TokenExchangeError) as caught:
        harness.run(exchange_code(TOKEN, PUBLIC, "code", "v", "http://127.0.0.1:1/cb", None, POLICY))
    assert caught.value.error == "invalid_grant"
    assert "resource" not in form(harness)


@pytest.mark.parametrize(
    "document", [{"token_type": "Bearer"}, {"access_token": "x", "token_type": "DPoP"}, ["not", "an", "object"]]
)
def test_malformed_token_responses(document: object) -> None:
    harness = Harness(routes={TOKEN: json_response(200, document)})
    with pytest.raises(TokenExchangeError):
        harness.run(exchange_code(TOKEN, PUBLIC, "c", "v", "http://127.0.0.1:1/cb", None, POLICY))


def test_refresh_keeps_old_refresh_token_when_none_returned() -> None:
    harness = Harness(routes={TOKEN: json_response(200, {"access_token": "new", "token_type": "Bearer"})})
    tokens = harness.run(refresh_tokens(TOKEN, PUBLIC, "old-rt", "https://h/mcp", POLICY))
    assert tokens.refresh_token == "old-rt"
    assert tokens.expires_at is None
    assert form(harness)["resource"] == "https://h/mcp"
    assert form(harness)["refresh_token"] == "old-rt"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({}, ("old-rt", "read write")),  # RFC 6749 §5.1, §6: left out, so unchanged
        ({"refresh_token": ""}, ("old-rt", "read write")),  # an empty refresh token is none
        ({"refresh_token": "rt2", "scope": "read"}, ("rt2", "read")),
        ({"scope": ""}, ("old-rt", "")),  # an empty scope is a scope
    ],
)
def test_what_a_refresh_response_leaves_out_is_kept(answer: dict[str, str], expected: tuple[str, str]) -> None:
    harness = Harness(routes={TOKEN: json_response(200, {"access_token": "new", **answer})})
    tokens = harness.run(refresh_tokens(TOKEN, PUBLIC, "old-rt", None, POLICY, previous_scope="read write"))
    assert (tokens.refresh_token, tokens.scope) == expected


def test_without_a_previous_scope_an_omitted_scope_stays_unknown() -> None:
    harness = Harness(routes={TOKEN: json_response(200, {"access_token": "new"})})
    assert harness.run(refresh_tokens(TOKEN, PUBLIC, "old-rt", None, POLICY)).scope is None


def test_keep_omitted_takes_only_what_is_missing() -> None:
    fresh = TokenSet("at", refresh_token=None, scope=None, issued_at=5.0)
    assert keep_omitted(fresh, refresh_token="rt", scope="s") == TokenSet(
        "at", refresh_token="rt", scope="s", issued_at=5.0
    )
    full = TokenSet("at", refresh_token="new-rt", scope="t", issued_at=5.0)
    assert keep_omitted(full, refresh_token="rt", scope="s") == full
    assert keep_omitted(fresh, refresh_token=None, scope=None) == fresh


def test_refresh_rotation() -> None:
    harness = Harness(routes={TOKEN: json_response(200, {"access_token": "new", "refresh_token": "rt2"})})
    assert harness.run(refresh_tokens(TOKEN, PUBLIC, "rt1", None, POLICY)).refresh_token == "rt2"


def test_refresh_invalid_grant_is_final_other_errors_not() -> None:
    harness = Harness(routes={TOKEN: json_response(400, {"error": "invalid_grant"})})
    with pytest.raises(InvalidGrantError):
        harness.run(refresh_tokens(TOKEN, PUBLIC, "rt", None, POLICY))
    other = Harness(routes={TOKEN: json_response(401, {"error": "invalid_client"})})
    with pytest.raises(TokenRefreshError) as caught:
        other.run(refresh_tokens(TOKEN, PUBLIC, "rt", None, POLICY))
    assert not isinstance(caught.value, InvalidGrantError)


def test_refresh_5xx_is_temporary() -> None:
    harness = Harness(routes={TOKEN: HttpResponse(502)})
    with pytest.raises(TemporaryOAuthError):
        harness.run(refresh_tokens(TOKEN, PUBLIC, "rt", None, POLICY))
    assert len(harness.sent) == 2
