"""Edges of the sans-IO flow functions that the engine tests do not reach."""

from __future__ import annotations

import json

import pytest

from mcp_oauth_auth.exceptions import AuthorizationError, TokenExchangeError, TokenRevocationError
from mcp_oauth_auth.flow.authorization import PendingAuthorization, validate_callback
from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata
from mcp_oauth_auth.flow.effects import HttpRequest, HttpResponse
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.revocation import revoke_tokens
from mcp_oauth_auth.flow.tokens import token_error
from mcp_oauth_auth.records import ClientRegistration, TokenSet

from .flowkit import Harness

ENDPOINT = "https://auth.example.com/token"


def test_without_a_revocation_endpoint_each_token_is_reported_unrevoked_and_nothing_is_sent() -> None:
    harness = Harness()
    tokens = TokenSet("access-token", refresh_token="refresh-token")
    outcomes = harness.run(revoke_tokens(None, ClientRegistration("c", "dynamic"), tokens, RetryPolicy(attempts=1)))
    assert [(outcome.token_type_hint, outcome.revoked) for outcome in outcomes] == [
        ("refresh_token", False),
        ("access_token", False),
    ]
    assert all(isinstance(outcome.error, TokenRevocationError) for outcome in outcomes)
    assert "publishes no revocation_endpoint" in str(outcomes[0].error)
    assert harness.sent == []
    only_access = harness.run(
        revoke_tokens(None, ClientRegistration("c", "dynamic"), TokenSet("access-token"), RetryPolicy(attempts=1))
    )
    assert [outcome.token_type_hint for outcome in only_access] == ["access_token"]


def error_response(description: str, request: HttpRequest | None) -> HttpResponse:
    body = json.dumps({"error": "invalid_grant", "error_description": description}).encode()
    return HttpResponse(400, (("content-type", "application/json"),), body, ENDPOINT, request=request)


def test_an_error_without_its_request_is_reported_as_the_server_said() -> None:
    error = token_error(TokenExchangeError, "refused", error_response("code abcdefgh12345 is bad", None), ENDPOINT)
    assert error.error_description == "code abcdefgh12345 is bad"


def test_a_malformed_basic_header_still_redacts_the_credentials_it_carried() -> None:
    request = HttpRequest("POST", ENDPOINT, (("Authorization", "Basic not*base64!secret"),), b"")
    error = token_error(TokenExchangeError, "refused", error_response("you sent not*base64!secret", request), ENDPOINT)
    assert error.error_description == "you sent [redacted]"


def test_a_callback_url_that_cannot_be_parsed_is_an_authorization_error() -> None:
    pending = PendingAuthorization("u", "http://127.0.0.1:1/cb", "s", "v", ())
    metadata = AuthorizationServerMetadata("https://a.example", "https://a.example/a", "https://a.example/t")
    with pytest.raises(AuthorizationError, match="not a valid URL"):
        validate_callback("http://[::1/cb?code=x&state=s", pending, metadata)


def test_a_revocation_without_a_hint_sends_none() -> None:
    from urllib.parse import parse_qs

    from mcp_oauth_auth.flow.revocation import revoke_token

    revocation = "https://auth.example.com/revoke"
    harness = Harness(routes={revocation: HttpResponse(200, (), b"", revocation)})
    harness.run(revoke_token(revocation, ClientRegistration("c", "dynamic"), "tok", None, RetryPolicy(attempts=1)))
    [sent] = harness.sent
    assert parse_qs(sent.body.decode()) == {"token": ["tok"], "client_id": ["c"]}
