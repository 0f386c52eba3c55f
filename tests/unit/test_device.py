from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_oauth_auth.exceptions import (
    AuthorizationDeniedError,
    AuthorizationError,
    AuthorizationTimeoutError,
    DiscoveryError,
    TemporaryOAuthError,
    TokenExchangeError,
)
from mcp_oauth_auth.flow.device import (
    DEVICE_CODE_GRANT,
    DeviceAuthorization,
    poll_device_token,
    start_device_authorization,
)
from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata
from mcp_oauth_auth.flow.effects import HttpRequest, HttpResponse
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.private_key_jwt import PrivateKeyJWT
from mcp_oauth_auth.records import ClientRegistration

from .flowkit import Harness, json_response

ISSUER = "https://as.example"
DEVICE_ENDPOINT = "https://as.example/device/code"
TOKEN = "https://as.example/token"
RESOURCE = "https://mcp.example/mcp"
POLICY = RetryPolicy(attempts=2, base_delay=0)
T0 = 1_700_000_000.0
METADATA = AuthorizationServerMetadata(
    issuer=ISSUER,
    authorization_endpoint=f"{ISSUER}/authorize",
    token_endpoint=TOKEN,
    device_authorization_endpoint=DEVICE_ENDPOINT,
)
PUBLIC = ClientRegistration(client_id="cli", kind="dynamic")
BASIC = ClientRegistration(
    client_id="conf", kind="pre-registered", client_secret="pw", token_endpoint_auth_method="client_secret_basic"
)
DEVICE_RESPONSE = {
    "device_code": "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS",
    "user_code": "WDJBMJHT",
    "verification_uri": "https://as.example/device",
    "verification_uri_complete": "https://as.example/device?user_code=WDJBMJHT",
    "expires_in": 1800,
    "interval": 5,
}
TOKENS = {"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt", "scope": "a"}


def form(request: HttpRequest) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(request.body.decode()).items()}


def clock(harness: Harness) -> Callable[[], float]:
    """Time that passes only when the flow sleeps."""
    return lambda: T0 + sum(harness.slept)


def device(**overrides: Any) -> DeviceAuthorization:
    values: dict[str, Any] = {
        "device_code": "dc",
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://as.example/device",
        "verification_uri_complete": None,
        "expires_at": T0 + 600,
        "interval": 5.0,
    }
    values.update(overrides)
    return DeviceAuthorization(**values)


def start(harness: Harness, client: ClientRegistration = PUBLIC, **kwargs: Any) -> DeviceAuthorization:
    scopes = kwargs.pop("scopes", ("mcp:read", "mcp:write"))
    resource = kwargs.pop("resource", RESOURCE)
    metadata = kwargs.pop("metadata", METADATA)
    flow = start_device_authorization(metadata, client, scopes, resource, POLICY, now=clock(harness), **kwargs)
    result: DeviceAuthorization = harness.run(flow)
    return result


def poll(harness: Harness, authorization: DeviceAuthorization, **kwargs: Any) -> Any:
    client = kwargs.pop("client", PUBLIC)
    resource = kwargs.pop("resource", RESOURCE)
    return harness.run(poll_device_token(TOKEN, client, authorization, resource, POLICY, clock(harness), **kwargs))


def error(name: str, **extra: Any) -> HttpResponse:
    return json_response(400, {"error": name, "error_description": f"about {name}", **extra})


# ---------------------------------------------------------------------- the device authorization request


def test_device_authorization_request_and_response() -> None:
    harness = Harness(routes={DEVICE_ENDPOINT: json_response(200, DEVICE_RESPONSE)})
    result = start(harness)
    request = harness.sent[0]
    assert (request.method, request.url) == ("POST", DEVICE_ENDPOINT)
    assert dict(request.headers)["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(request) == {"client_id": "cli", "scope": "mcp:read mcp:write", "resource": RESOURCE}
    assert result.device_code == DEVICE_RESPONSE["device_code"]
    assert result.user_code == "WDJBMJHT"
    assert result.verification_uri == "https://as.example/device"
    assert result.verification_uri_complete == "https://as.example/device?user_code=WDJBMJHT"
    assert result.expires_at == T0 + 1800
    assert result.interval == 5
    assert result.seconds_left(T0 + 1000) == 800
    assert result.seconds_left(T0 + 5000) == 0
    assert DEVICE_RESPONSE["device_code"] not in repr(result)
    assert "WDJBMJHT" in repr(result)


def test_request_without_scope_and_resource_and_with_client_authentication() -> None:
    harness = Harness(routes={DEVICE_ENDPOINT: json_response(200, DEVICE_RESPONSE)})
    start(harness, BASIC, scopes=(), resource=None)
    assert form(harness.sent[0]) == {"client_id": "conf"}  # beside Basic, as RFC 6749 §3.2.1 allows
    assert dict(harness.sent[0].headers)["Authorization"] == "Basic " + base64.b64encode(b"conf:pw").decode()


def test_private_key_jwt_at_the_device_endpoint_uses_the_issuer_as_audience() -> None:
    harness = Harness(routes={DEVICE_ENDPOINT: json_response(200, DEVICE_RESPONSE)})
    client = ClientRegistration(client_id="jwt", kind="pre-registered", token_endpoint_auth_method="private_key_jwt")
    start(harness, client, private_key=PrivateKeyJWT(ec.generate_private_key(ec.SECP256R1())))
    fields = form(harness.sent[0])
    claims_segment = fields["client_assertion"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(claims_segment + "=" * (-len(claims_segment) % 4)))
    assert (claims["aud"], claims["sub"], fields["client_id"]) == (ISSUER, "jwt", "jwt")


def test_defaults_and_lenient_fields() -> None:
    document = {key: value for key, value in DEVICE_RESPONSE.items() if key not in ("interval", "verification_uri")}
    document.update(verification_url="https://as.example/device", expires_in="600")  # Google's older names
    del document["verification_uri_complete"]
    result = start(Harness(routes={DEVICE_ENDPOINT: json_response(200, document)}))
    assert result.interval == 5
    assert result.verification_uri == "https://as.example/device"
    assert result.verification_uri_complete is None
    assert result.expires_at == T0 + 600
    zero = start(Harness(routes={DEVICE_ENDPOINT: json_response(200, {**DEVICE_RESPONSE, "interval": 0})}))
    assert zero.interval == 1  # never poll without pause


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        ("WDJBMJHT", "WDJB-MJHT"),
        ("WDJB-MJHT", "WDJB-MJHT"),
        ("WDJB MJHT", "WDJB MJHT"),
        ("123456789", "123-456-789"),
        ("ABCDEFGHIJ", "ABCDE-FGHIJ"),
        ("ABCDEFG", "ABCD-EFG"),
        ("ABCDE", "ABCDE"),
    ],
)
def test_display_user_code(code: str, shown: str) -> None:
    authorization = device(user_code=code)
    assert authorization.display_user_code == shown
    assert authorization.user_code == code


@pytest.mark.parametrize(
    ("overrides", "allow_insecure_http", "accepted"),
    [
        ({"verification_uri": "http://as.example/device"}, False, False),
        ({"verification_uri": "http://as.example/device"}, True, True),
        ({"verification_uri": "http://127.0.0.1:8080/device"}, False, True),
        ({"verification_uri": "http://localhost/device"}, False, True),
        ({"verification_uri": "http://127.evil.example/device"}, False, False),
        ({"verification_uri_complete": "http://as.example/device?user_code=X"}, False, False),
        ({"verification_uri": "javascript:alert(1)"}, False, False),
        ({"verification_uri": "/device"}, False, False),
        ({"verification_uri": "https://as.example:99999/device"}, False, False),
    ],
)
def test_verification_uris_must_be_secure(overrides: dict[str, str], allow_insecure_http: bool, accepted: bool) -> None:
    harness = Harness(routes={DEVICE_ENDPOINT: json_response(200, {**DEVICE_RESPONSE, **overrides})})
    if accepted:
        start(harness, allow_insecure_http=allow_insecure_http)
    else:
        with pytest.raises(AuthorizationError, match="verification_uri"):
            start(harness, allow_insecure_http=allow_insecure_http)


@pytest.mark.parametrize(
    "document",
    [
        {**DEVICE_RESPONSE, "device_code": ""},
        {key: value for key, value in DEVICE_RESPONSE.items() if key != "user_code"},
        {key: value for key, value in DEVICE_RESPONSE.items() if key != "verification_uri"},
        {key: value for key, value in DEVICE_RESPONSE.items() if key != "expires_in"},
        {**DEVICE_RESPONSE, "expires_in": 0},
        {**DEVICE_RESPONSE, "expires_in": True},
        {**DEVICE_RESPONSE, "interval": "soon"},
        {**DEVICE_RESPONSE, "interval": -1},
        {**DEVICE_RESPONSE, "user_code": 1234},
        ["not", "an", "object"],
    ],
)
def test_malformed_device_authorization_responses(document: Any) -> None:
    with pytest.raises(AuthorizationError):
        start(Harness(routes={DEVICE_ENDPOINT: json_response(200, document)}))


def test_device_authorization_refused() -> None:
    harness = Harness(
        routes={DEVICE_ENDPOINT: json_response(400, {"error": "invalid_scope", "error_description": "no"})}
    )
    with pytest.raises(AuthorizationError) as caught:
        start(harness)
    assert (caught.value.error, caught.value.error_description, caught.value.status_code) == (
        "invalid_scope",
        "no",
        400,
    )
    assert caught.value.url == DEVICE_ENDPOINT


def test_device_authorization_temporary_failure() -> None:
    harness = Harness(routes={DEVICE_ENDPOINT: HttpResponse(503)})
    with pytest.raises(TemporaryOAuthError):
        start(harness)
    assert len(harness.sent) == 2


def test_no_device_authorization_endpoint() -> None:
    harness = Harness()
    with pytest.raises(DiscoveryError, match="device_authorization_endpoint"):
        start(harness, metadata=replace(METADATA, device_authorization_endpoint=None))
    assert harness.sent == []


# ---------------------------------------------------------------------- polling


def test_pending_then_success() -> None:
    harness = Harness(
        routes={TOKEN: [error("authorization_pending"), error("authorization_pending"), json_response(200, TOKENS)]}
    )
    tokens = poll(harness, device())
    assert harness.slept == [5, 5, 5]
    assert len(harness.sent) == 3
    assert form(harness.sent[0]) == {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": "dc",
        "resource": RESOURCE,
        "client_id": "cli",
    }
    assert DEVICE_CODE_GRANT == "urn:ietf:params:oauth:grant-type:device_code"
    assert (tokens.access_token, tokens.refresh_token, tokens.scope) == ("at", "rt", "a")
    assert tokens.expires_at is not None


def test_tokens_are_issued_at_the_flows_clock() -> None:
    harness = Harness(routes={TOKEN: [error("authorization_pending"), json_response(200, TOKENS)]})
    tokens = poll(harness, device())
    assert tokens.issued_at == T0 + sum(harness.slept)  # the injected clock, not the machine's


def test_poll_without_resource_with_client_secret_basic() -> None:
    harness = Harness(routes={TOKEN: json_response(200, TOKENS)})
    poll(harness, device(), client=BASIC, resource=None)
    assert form(harness.sent[0]) == {"grant_type": DEVICE_CODE_GRANT, "device_code": "dc", "client_id": "conf"}
    assert dict(harness.sent[0].headers)["Authorization"].startswith("Basic ")


def test_errors_in_a_200_response_count_as_errors() -> None:
    # GitHub answers pending polls with HTTP 200 and an error document.
    pending = json_response(200, {"error": "authorization_pending"})
    harness = Harness(
        routes={
            TOKEN: [pending, json_response(200, {"error": "slow_down", "interval": 10}), json_response(200, TOKENS)]
        }
    )
    assert poll(harness, device()).access_token == "at"
    assert harness.slept == [5, 5, 10]


def test_slow_down_adds_five_seconds_for_every_later_poll() -> None:
    harness = Harness(
        routes={
            TOKEN: [
                error("authorization_pending"),
                error("slow_down"),
                error("authorization_pending"),
                error("slow_down"),
                error("authorization_pending"),
                json_response(200, TOKENS),
            ]
        }
    )
    poll(harness, device())
    assert harness.slept == [5, 5, 10, 10, 15, 15]


def test_slow_down_with_a_longer_interval_from_the_server() -> None:
    harness = Harness(routes={TOKEN: [error("slow_down", interval=30), json_response(200, TOKENS)]})
    poll(harness, device())
    assert harness.slept == [5, 30]


def test_access_denied() -> None:
    harness = Harness(routes={TOKEN: [error("authorization_pending"), error("access_denied")]})
    with pytest.raises(AuthorizationDeniedError) as caught:
        poll(harness, device())
    assert (caught.value.error, caught.value.error_description) == ("access_denied", "about access_denied")


def test_expired_token() -> None:
    harness = Harness(routes={TOKEN: [error("expired_token")]})
    with pytest.raises(AuthorizationTimeoutError) as caught:
        poll(harness, device())
    assert caught.value.error == "expired_token"


def test_local_expiry_stops_polling() -> None:
    harness = Harness(routes={TOKEN: lambda request: error("authorization_pending")})
    with pytest.raises(AuthorizationTimeoutError, match="expired"):
        poll(harness, device(expires_at=T0 + 12))
    assert harness.slept == [5, 5, 2]  # never sleeps past the expiry
    assert len(harness.sent) == 2  # and never polls after it


def test_already_expired_device_code_is_not_polled() -> None:
    harness = Harness(routes={TOKEN: json_response(200, TOKENS)})
    with pytest.raises(AuthorizationTimeoutError):
        poll(harness, device(expires_at=T0 - 1))
    assert harness.sent == []
    assert harness.slept == []


def test_temporary_failures_are_retried_then_polling_goes_on() -> None:
    harness = Harness(
        routes={
            TOKEN: [HttpResponse(503), error("authorization_pending"), HttpResponse(429), json_response(200, TOKENS)]
        }
    )
    assert poll(harness, device()).access_token == "at"
    assert harness.slept == [5, 0.0, 5, 0.0]


def test_persistent_temporary_failure() -> None:
    harness = Harness(routes={TOKEN: HttpResponse(502)})
    with pytest.raises(TemporaryOAuthError):
        poll(harness, device())
    assert len(harness.sent) == 2


@pytest.mark.parametrize(
    "response",
    [
        error("invalid_grant"),
        json_response(401, {"error": "invalid_client"}),
        HttpResponse(400, (), b"<html>oops</html>"),
        json_response(200, {"token_type": "Bearer"}),
        json_response(200, {"access_token": "x", "token_type": "DPoP"}),
    ],
)
def test_other_errors_and_malformed_token_responses(response: HttpResponse) -> None:
    with pytest.raises(TokenExchangeError) as caught:
        poll(Harness(routes={TOKEN: response}), device())
    assert not isinstance(caught.value, (AuthorizationDeniedError, AuthorizationTimeoutError))


def test_private_key_jwt_polls_carry_fresh_assertions() -> None:
    signer = PrivateKeyJWT(ec.generate_private_key(ec.SECP256R1()))
    client = ClientRegistration(client_id="jwt", kind="pre-registered", token_endpoint_auth_method="private_key_jwt")
    harness = Harness(routes={TOKEN: [error("authorization_pending"), json_response(200, TOKENS)]})
    poll(harness, device(), client=client, private_key=signer, issuer=ISSUER)
    assertions = [form(request)["client_assertion"] for request in harness.sent]
    assert len(set(assertions)) == 2
