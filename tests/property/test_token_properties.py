"""Token responses (flow/tokens.py): hostile bodies, valid responses, and errors that never carry a secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mcp_oauth_auth.exceptions import InvalidGrantError, OAuthError, TokenExchangeError, TokenRefreshError
from mcp_oauth_auth.flow.effects import HttpRequest, HttpResponse
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.tokens import exchange_code, keep_omitted, parse_token_response, refresh_tokens
from mcp_oauth_auth.records import ClientRegistration, TokenSet

from ..unit.flowkit import Harness
from .strategies import MARKER, hostile_bodies, json_values, plain_text, secrets, with_field

ENDPOINT = "https://auth.example.com/token"
NOW = 1_700_000_000.0
visible_ascii = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)


def response(body: bytes, status: int = 200) -> HttpResponse:
    return HttpResponse(status, (("content-type", "application/json"),), body, ENDPOINT)


def parse(body: bytes, previous: str | None = None) -> TokenSet:
    """A refresh response read as the refresh reads it: what it leaves out of the refresh token kept from before."""
    tokens = parse_token_response(response(body), ENDPOINT, TokenRefreshError, now=lambda: NOW)
    return keep_omitted(tokens, refresh_token=previous, scope=None)


@given(hostile_bodies, st.one_of(st.none(), visible_ascii))
@example(b"[" * 100_000, None)
def test_any_token_response_body_is_tokens_or_the_given_error(body: bytes, previous: str | None) -> None:
    try:
        tokens = parse(body, previous)
    except TokenRefreshError:
        return
    assert isinstance(tokens, TokenSet)


@given(
    st.sampled_from(["access_token", "token_type", "expires_in", "refresh_token", "scope", "id_token"]),
    json_values,
    st.one_of(st.none(), visible_ascii),
)
@example("expires_in", 10**400, None)
@example("expires_in", float("nan"), None)
@example("expires_in", "99999999999999999999999999999", None)
@example("expires_in", "١٢", None)
def test_any_field_value_gives_well_typed_tokens_or_the_given_error(
    name: str, value: object, previous: str | None
) -> None:
    document = with_field({"access_token": "at", "token_type": "Bearer"}, name, value)
    try:
        tokens = parse(json.dumps(document).encode(), previous)
    except TokenRefreshError:
        return
    assert TokenSet.from_dict(tokens.to_dict()) == tokens  # what is stored can be read back
    assert tokens.token_type == "Bearer"
    assert tokens.expires_at is None or NOW <= tokens.expires_at <= NOW + 10 * 365 * 86400
    assert tokens.refresh_token is None or isinstance(tokens.refresh_token, str)
    assert tokens.scope is None or isinstance(tokens.scope, str)


@given(st.one_of(st.text(max_size=20), json_values))
@example("tab\there")
@example("é")
def test_an_access_token_is_usable_in_a_header_or_refused(access_token: object) -> None:
    try:
        tokens = parse(json.dumps({"access_token": access_token}).encode())
    except TokenRefreshError:
        return
    assert tokens.access_token == access_token
    assert tokens.access_token.isascii()
    assert tokens.access_token.isprintable()
    assert " " not in tokens.access_token


@given(
    visible_ascii,
    st.sampled_from(["Bearer", "bearer", "BEARER"]),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10 * 365 * 86400)),
    st.one_of(st.none(), visible_ascii),
    st.one_of(st.none(), st.text(max_size=30)),
    st.one_of(st.none(), visible_ascii),
)
def test_a_valid_token_response_parses_to_its_fields(
    access_token: str,
    token_type: str,
    expires_in: int | None,
    refresh_token: str | None,
    scope: str | None,
    previous: str | None,
) -> None:
    document: dict[str, Any] = {"access_token": access_token, "token_type": token_type}
    for name, value in (("expires_in", expires_in), ("refresh_token", refresh_token), ("scope", scope)):
        if value is not None:
            document[name] = value
    assert parse(json.dumps(document).encode(), previous) == TokenSet(
        access_token=access_token,
        expires_at=None if expires_in is None else NOW + expires_in,
        refresh_token=refresh_token or previous,
        scope=scope,
        issued_at=NOW,
    )


@given(secrets, secrets, plain_text)
def test_parsed_tokens_never_show_their_secrets(access_token: str, refresh_token: str, scope: str) -> None:
    document = {"access_token": access_token, "refresh_token": refresh_token, "id_token": refresh_token, "scope": scope}
    tokens = parse(json.dumps(document).encode())
    assert MARKER not in repr(tokens)
    assert MARKER not in str(tokens)


@st.composite
def echoing_bodies(draw: st.DrawFn, sent: list[str]) -> bytes:
    """An error document that quotes the given secrets anywhere in its ``error`` and ``error_description``."""

    def text_with_secrets() -> str:
        parts = draw(st.lists(st.one_of(plain_text, st.sampled_from(sent)), max_size=5))
        return "".join(parts)

    document = {"error": text_with_secrets(), "error_description": text_with_secrets()}
    return json.dumps(document).encode()


def no_secret_in(error: OAuthError) -> None:
    for text in (str(error), repr(error), error.error or "", error.error_description or ""):
        assert MARKER not in text


@given(
    st.sampled_from(["none", "client_secret_post", "client_secret_basic"]),
    secrets,
    secrets,
    secrets,
    st.integers(min_value=400, max_value=599),
    st.data(),
)
def test_a_refused_code_exchange_never_repeats_the_secrets_it_was_sent(
    method: str, code: str, verifier: str, client_secret: str, status: int, data: st.DataObject
) -> None:
    client = ClientRegistration(
        "client-id", "pre-registered", method, client_secret=None if method == "none" else client_secret
    )
    sent = [code, verifier] if method == "none" else [code, verifier, client_secret]
    body = data.draw(echoing_bodies(sent))

    def token_endpoint(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status, (("content-type", "application/json"),), body, ENDPOINT, request=request)

    flow = exchange_code(ENDPOINT, client, code, verifier, "http://127.0.0.1:1/cb", None, RetryPolicy(attempts=1))
    with pytest.raises(OAuthError) as raised:
        Harness(routes={ENDPOINT: token_endpoint}).run(flow)
    if status < 500 and status != 429:
        assert isinstance(raised.value, TokenExchangeError)
    no_secret_in(raised.value)


@given(secrets, secrets, st.sampled_from(["none", "client_secret_post", "client_secret_basic"]), st.data())
def test_a_refused_refresh_never_repeats_the_secrets_it_was_sent(
    refresh_token: str, client_secret: str, method: str, data: st.DataObject
) -> None:
    client = ClientRegistration(
        "client-id", "pre-registered", method, client_secret=None if method == "none" else client_secret
    )
    body = data.draw(echoing_bodies([refresh_token] if method == "none" else [refresh_token, client_secret]))

    def token_endpoint(request: HttpRequest) -> HttpResponse:
        return HttpResponse(400, (("content-type", "application/json"),), body, ENDPOINT, request=request)

    flow = refresh_tokens(ENDPOINT, client, refresh_token, None, RetryPolicy(attempts=1))
    with pytest.raises(TokenRefreshError) as raised:
        Harness(routes={ENDPOINT: token_endpoint}).run(flow)
    no_secret_in(raised.value)


@given(st.sampled_from(["invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope"]), plain_text)
def test_a_final_refresh_refusal_is_an_invalid_grant(error: str, description: str) -> None:
    body = json.dumps({"error": error, "error_description": description}).encode()
    flow = refresh_tokens(ENDPOINT, ClientRegistration("c", "dynamic"), "refresh-token", None, RetryPolicy(attempts=1))
    with pytest.raises(InvalidGrantError) as raised:
        Harness(routes={ENDPOINT: response(body, 400)}).run(flow)
    assert raised.value.error == error
    assert raised.value.error_description == description[:500]
