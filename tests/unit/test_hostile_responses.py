"""Hostile or broken authorization server answers: typed errors, credentials kept, no secret in any message."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

import httpx
import pytest

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore, RetryPolicy
from mcp_oauth_auth.exceptions import (
    AuthorizationError,
    OAuthError,
    TokenExchangeError,
    TokenRefreshError,
    TokenRevocationError,
)
from mcp_oauth_auth.flow.client_credentials import request_client_credentials
from mcp_oauth_auth.flow.device import (
    MAX_INTERVAL,
    DeviceAuthorization,
    poll_device_token,
    start_device_authorization,
)
from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata
from mcp_oauth_auth.flow.effects import Effect, HttpRequest, HttpResponse
from mcp_oauth_auth.flow.revocation import revoke_token
from mcp_oauth_auth.flow.tokens import exchange_code, parse_token_response, refresh_tokens
from mcp_oauth_auth.records import ClientRegistration
from mcp_oauth_auth.testing import FakeMCPStack

from .flowkit import Harness, json_response

TOKEN = "https://as.example/token"
DEVICE_ENDPOINT = "https://as.example/device/code"
POLICY = RetryPolicy(attempts=2, base_delay=0)
PUBLIC = ClientRegistration(client_id="pub", kind="dynamic")
T0 = 1_700_000_000.0
DEVICE_RESPONSE = {
    "device_code": "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS",
    "user_code": "WDJBMJHT",
    "verification_uri": "https://as.example/device",
    "expires_in": 1800,
    "interval": 5,
}


def raw_response(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(status, (("content-type", "application/json"),), body.encode(), TOKEN)


def parse(body: str, error_class: type[OAuthError] = TokenExchangeError) -> Any:
    return parse_token_response(raw_response(body), TOKEN, error_class)


# -- expires_in ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expires_in",
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1" + "0" * 400,
        json.dumps("9" * 400),
        json.dumps("\u00b2"),
        json.dumps("\u0663\u0666\u0660\u0660"),  # Arabic-Indic "3600"
        "true",
        "-100",
        "1e308",
        "400000000",
    ],
)
def test_an_unusable_expires_in_means_an_unknown_lifetime(expires_in: str) -> None:
    tokens = parse(f'{{"access_token": "at", "token_type": "Bearer", "expires_in": {expires_in}}}')
    assert tokens.access_token == "at"
    assert tokens.expires_at is None


# -- the access token's characters --------------------------------------------------------------------------------

BAD_TOKENS = ["SECRET\r\nX-Injected: 1", "SECRET\u20ac", "SECRET TOKEN", "SECRET\tTOKEN", "SECRET\x00", "SECRET\x7f"]


@pytest.mark.parametrize("error_class", [TokenExchangeError, TokenRefreshError])
@pytest.mark.parametrize("token", BAD_TOKENS)
def test_an_access_token_that_cannot_be_a_header_is_refused(token: str, error_class: type[OAuthError]) -> None:
    with pytest.raises(error_class) as caught:
        parse(json.dumps({"access_token": token, "token_type": "Bearer"}), error_class)
    assert "SECRET" not in str(caught.value)
    assert "SECRET" not in repr(caught.value)


def test_any_visible_ascii_access_token_is_accepted() -> None:
    token = "".join(chr(code) for code in range(0x21, 0x7F))
    assert parse(json.dumps({"access_token": token, "token_type": "Bearer"})).access_token == token


def test_a_deeply_nested_body_is_not_a_json_object() -> None:
    deep = HttpResponse(200, (), b"[" * 100_000 + b"]" * 100_000, TOKEN)
    assert deep.json_object() is None
    with pytest.raises(TokenExchangeError, match="no access_token"):
        parse_token_response(deep, TOKEN, TokenExchangeError)


# -- Retry-After --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["\u00b2", "\u00b9\u00b9", "\u0663"])
def test_retry_after_takes_ascii_digits_only(value: str) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=10.0)
    assert policy.delay(1, HttpResponse(503, (("retry-after", value),))) == 1.0


def test_backoff_of_a_late_attempt_stays_at_the_maximum() -> None:
    policy = RetryPolicy(attempts=5000, base_delay=0.5, max_delay=10.0)
    assert policy.delay(4000, HttpResponse(503)) == 10.0


# -- device flow numbers ------------------------------------------------------------------------------------------


def clock(harness: Harness) -> Callable[[], float]:
    return lambda: T0 + sum(harness.slept)


def start(document: dict[str, Any]) -> DeviceAuthorization:
    metadata = AuthorizationServerMetadata(
        issuer="https://as.example",
        authorization_endpoint="https://as.example/authorize",
        token_endpoint=TOKEN,
        device_authorization_endpoint=DEVICE_ENDPOINT,
    )
    harness = Harness(routes={DEVICE_ENDPOINT: json_response(200, document)})
    result: DeviceAuthorization = harness.run(
        start_device_authorization(metadata, PUBLIC, (), None, POLICY, now=clock(harness))
    )
    return result


@pytest.mark.parametrize(
    "changes",
    [{"interval": "\u00b2"}, {"expires_in": "\u00b2"}, {"expires_in": "9" * 400}, {"expires_in": 10**400}],
)
def test_unusable_device_numbers_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(AuthorizationError):
        start({**DEVICE_RESPONSE, **changes})


def test_a_huge_device_interval_is_capped() -> None:
    assert start({**DEVICE_RESPONSE, "interval": 10**6}).interval == MAX_INTERVAL


@pytest.mark.parametrize(("suggested", "slept"), [("9" * 400, 10.0), (10**6, MAX_INTERVAL)])
def test_slow_down_with_a_huge_interval_is_capped(suggested: Any, slept: float) -> None:
    device = DeviceAuthorization("dc", "WDJBMJHT", "https://as.example/device", None, T0 + 600, 5.0)
    slow_down = json_response(400, {"error": "slow_down", "interval": suggested})
    tokens = json_response(200, {"access_token": "at", "token_type": "Bearer"})
    harness = Harness(routes={TOKEN: [slow_down, tokens]})
    harness.run(poll_device_token(TOKEN, PUBLIC, device, None, POLICY, clock(harness)))
    assert harness.slept == [5.0, slept]


# -- secrets a server echoes in its error -------------------------------------------------------------------------

CLIENT_SECRET = "client-secret+with/odd chars:%"
POST = ClientRegistration(
    client_id="conf",
    kind="pre-registered",
    client_secret=CLIENT_SECRET,
    token_endpoint_auth_method="client_secret_post",
)
BASIC = ClientRegistration(
    client_id="conf",
    kind="pre-registered",
    client_secret=CLIENT_SECRET,
    token_endpoint_auth_method="client_secret_basic",
)
CODE = "authorization-code-0123456789"
VERIFIER = "pkce-verifier-" + "v" * 40
REFRESH = "refresh-token-0123456789"
DEVICE_CODE = "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS"
ASSERTION = "eyJhbGciOiJFUzI1NiJ9.assertion-payload.signature"


class FixedSigner:
    def assertion(self, client_id: str, audience: str, now: float | None = None) -> str:
        return ASSERTION


def echo(request: HttpRequest) -> HttpResponse:
    """A server that repeats everything it was sent, in ``error`` and in ``error_description``."""
    sent = [value for _, value in parse_qsl(request.body.decode())]
    for name, value in request.headers:
        if name == "Authorization":
            client_id, _, password = base64.b64decode(value.removeprefix("Basic ")).decode().partition(":")
            sent += [value, unquote_plus(client_id), unquote_plus(password)]
    return json_response(400, {"error": sent[-1], "error_description": f"you sent {' '.join(sent)}"})


def device_authorization() -> DeviceAuthorization:
    return DeviceAuthorization(DEVICE_CODE, "WDJBMJHT", "https://as.example/device", None, time.time() + 600, 1.0)


FLOWS: dict[str, tuple[Callable[[], Generator[Effect, Any, Any]], type[OAuthError], tuple[str, ...]]] = {
    "code exchange, client_secret_post": (
        lambda: exchange_code(TOKEN, POST, CODE, VERIFIER, "http://127.0.0.1:1/cb", None, POLICY),
        TokenExchangeError,
        (CODE, VERIFIER, CLIENT_SECRET),
    ),
    "refresh, client_secret_basic": (
        lambda: refresh_tokens(TOKEN, BASIC, REFRESH, None, POLICY),
        TokenRefreshError,
        (REFRESH, CLIENT_SECRET),
    ),
    "device poll": (
        lambda: poll_device_token(TOKEN, BASIC, device_authorization(), None, POLICY),
        TokenExchangeError,
        (DEVICE_CODE, CLIENT_SECRET),
    ),
    "device authorization": (
        lambda: start_device_authorization(
            AuthorizationServerMetadata(
                issuer="https://as.example",
                authorization_endpoint="https://as.example/authorize",
                token_endpoint=TOKEN,
                device_authorization_endpoint=TOKEN,
            ),
            POST,
            (),
            None,
            POLICY,
        ),
        AuthorizationError,
        (CLIENT_SECRET,),
    ),
    "revocation": (
        lambda: revoke_token(TOKEN, BASIC, REFRESH, "refresh_token", POLICY),
        TokenRevocationError,
        (REFRESH, CLIENT_SECRET),
    ),
    "client credentials, private_key_jwt": (
        lambda: request_client_credentials(
            TOKEN,
            ClientRegistration(client_id="m2m", kind="pre-registered", token_endpoint_auth_method="private_key_jwt"),
            (),
            None,
            POLICY,
            private_key=FixedSigner(),
            issuer="https://as.example",
        ),
        TokenExchangeError,
        (ASSERTION,),
    ),
}


@pytest.mark.parametrize("name", list(FLOWS))
def test_secrets_echoed_by_the_server_are_redacted(name: str) -> None:
    flow, error_class, secrets = FLOWS[name]
    harness = Harness(routes={TOKEN: echo})
    with pytest.raises(error_class) as caught:
        harness.run(flow())
    assert caught.value.error_description is not None
    assert "[redacted]" in caught.value.error_description
    for secret in secrets:
        for text in (str(caught.value), repr(caught.value), caught.value.error, caught.value.error_description):
            assert secret not in (text or "")


# -- through MCPOAuth ---------------------------------------------------------------------------------------------


def patched_token_responses(stack: FakeMCPStack, **changes: Any) -> httpx.MockTransport:
    """The stack's transport, with ``changes`` made to every successful token response."""
    inner = stack.httpx_transport()
    token_path = urlsplit(stack.token_endpoint).path

    def handler(request: httpx.Request) -> httpx.Response:
        response = inner.handle_request(request)
        if request.url.path != token_path or response.status_code != 200:
            return response
        document = {**json.loads(response.read()), **changes}
        return httpx.Response(200, content=json.dumps(document).encode(), headers={"content-type": "application/json"})

    return httpx.MockTransport(handler)


def make_auth(stack: FakeMCPStack, store: MemoryTokenStore, **options: Any) -> MCPOAuth:
    return MCPOAuth(stack.server_url, store=store, authorizer=stack.authorizer, retry=POLICY, **options)


@pytest.mark.parametrize("expires_in", [float("nan"), float("inf"), True, -5, "\u00b2"])
def test_an_unusable_lifetime_causes_no_refresh_storm(expires_in: Any) -> None:
    stack = FakeMCPStack()
    auth = make_auth(stack, MemoryTokenStore())
    with httpx.Client(auth=auth, transport=patched_token_responses(stack, expires_in=expires_in)) as client:
        assert [client.get(stack.server_url).status_code for _ in range(3)] == [200] * 3
    assert stack.grants_used() == ["authorization_code"]
    assert auth.tokens is not None
    assert auth.tokens.expires_at is None


def test_a_refresh_with_an_unusable_lifetime_is_kept_with_an_unknown_lifetime() -> None:
    stack = FakeMCPStack()
    store = MemoryTokenStore()
    auth = make_auth(stack, store, refresh_skew=10_000)
    with httpx.Client(auth=auth, transport=stack.httpx_transport()) as client:
        client.get(stack.server_url)
    assert auth.tokens is not None
    first = auth.tokens.access_token
    with httpx.Client(auth=auth, transport=patched_token_responses(stack, expires_in="9" * 400)) as client:
        assert client.get(stack.server_url).status_code == 200
    assert stack.grants_used() == ["authorization_code", "refresh_token"]
    [key] = store.list_keys()
    record = store.load(key)
    assert record is not None
    assert record.tokens is not None
    assert record.tokens.access_token != first
    assert record.tokens.expires_at is None


@pytest.mark.parametrize("token", ["SECRET-TOKEN\r\nX-Injected: 1", "SECRET-T\u20acKEN"])
def test_a_refresh_answered_with_an_unusable_token_keeps_the_stored_record(token: str) -> None:
    stack = FakeMCPStack()
    store = MemoryTokenStore()
    auth = make_auth(stack, store, refresh_skew=10_000)
    with httpx.Client(auth=auth, transport=stack.httpx_transport()) as client:
        assert client.get(stack.server_url).status_code == 200
        [key] = store.list_keys()
        before = store.load(key)
        body = {"access_token": token, "token_type": "Bearer", "refresh_token": "rotated-refresh-token"}
        stack.fail_next("refresh", status=200, json=body)
        with pytest.raises(TokenRefreshError) as caught:
            client.get(stack.server_url)
    assert store.load(key) == before
    assert "SECRET" not in str(caught.value)
    assert "SECRET" not in repr(caught.value)


def test_a_first_token_that_cannot_be_a_header_is_refused_and_not_stored() -> None:
    stack = FakeMCPStack()
    store = MemoryTokenStore()
    auth = make_auth(stack, store)
    transport = patched_token_responses(stack, access_token="SECRET-T\u20acKEN")
    with httpx.Client(auth=auth, transport=transport) as client, pytest.raises(TokenExchangeError) as caught:
        client.get(stack.server_url)
    assert "SECRET" not in str(caught.value)
    records = [store.load(key) for key in store.list_keys()]
    assert all(record is None or record.tokens is None for record in records)


def test_a_refresh_refusal_echoing_secrets_is_redacted() -> None:
    stack = FakeMCPStack()
    redirect_uri = "http://127.0.0.1:33418/callback"
    stack.add_client("pre-client", CLIENT_SECRET, "client_secret_basic", redirect_uris=[redirect_uri])
    store = MemoryTokenStore()
    auth = make_auth(
        stack,
        store,
        client_id="pre-client",
        client_secret=CLIENT_SECRET,
        redirect_uri=redirect_uri,
        refresh_skew=10_000,
    )
    with httpx.Client(auth=auth, transport=stack.httpx_transport()) as client:
        client.get(stack.server_url)
        assert auth.tokens is not None
        refresh_token = auth.tokens.refresh_token
        assert refresh_token
        description = f"bad refresh_token {refresh_token} for secret {CLIENT_SECRET}"
        stack.fail_next("refresh", status=400, json={"error": "invalid_request", "error_description": description})
        with pytest.raises(TokenRefreshError) as caught:
            client.get(stack.server_url)
    assert caught.value.error == "invalid_request"
    assert caught.value.error_description == "bad refresh_token [redacted] for secret [redacted]"
    assert refresh_token not in str(caught.value)
    assert CLIENT_SECRET not in str(caught.value)
