"""The fake authorization server's device authorization grant and client_credentials grant, driven end to end by
the real sans-IO flow functions over the stack's httpx MockTransport, with the stack's clock as the flows' clock."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from mcp_oauth_auth.exceptions import (
    AuthorizationDeniedError,
    AuthorizationError,
    AuthorizationTimeoutError,
    DiscoveryError,
    TokenExchangeError,
)
from mcp_oauth_auth.flow.client_auth import CLIENT_ASSERTION_TYPE
from mcp_oauth_auth.flow.client_credentials import request_client_credentials
from mcp_oauth_auth.flow.device import (
    DEVICE_CODE_GRANT,
    DeviceAuthorization,
    poll_device_token,
    start_device_authorization,
)
from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata, discover_authorization_server
from mcp_oauth_auth.flow.effects import Flow, HttpResponse, SendHttp, Sleep
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.private_key_jwt import PrivateKeyJWT
from mcp_oauth_auth.records import ClientRegistration, TokenSet
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig

POLICY = RetryPolicy(attempts=3, base_delay=0.5)
T0 = 1_800_000_000.0
SCOPES = ("mcp:read", "mcp:write")
DEVICE_CLIENT = ClientRegistration(client_id="tv-app", kind="pre-registered")
DEVICE_GRANTS = (DEVICE_CODE_GRANT, "refresh_token")


@dataclass
class Driver:
    """Runs a flow against the stack: HTTP through its httpx transport, sleeps advance the stack's clock."""

    stack: FakeMCPStack
    time: float = T0
    slept: list[float] = field(default_factory=list)
    #: Called after each sleep with the number of sleeps so far (e.g. to approve in the middle of polling).
    on_sleep: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        self.stack.clock = self.now

    def now(self) -> float:
        return self.time

    def run(self, flow: Flow) -> Any:
        with httpx.Client(transport=self.stack.httpx_transport()) as http:
            result: Any = None
            while True:
                try:
                    effect = flow.send(result)
                except StopIteration as stop:
                    return stop.value
                if isinstance(effect, SendHttp):
                    request = effect.request
                    response = http.request(
                        request.method, request.url, headers=list(request.headers), content=request.body
                    )
                    headers = tuple((name.lower(), value) for name, value in response.headers.multi_items())
                    result = HttpResponse(response.status_code, headers, response.content, request.url)
                elif isinstance(effect, Sleep):
                    self.slept.append(effect.seconds)
                    self.time += effect.seconds
                    if self.on_sleep is not None:
                        self.on_sleep(len(self.slept))
                    result = None
                else:
                    raise AssertionError(f"unexpected effect {effect!r}")

    def metadata(self) -> AuthorizationServerMetadata:
        metadata = self.run(discover_authorization_server(self.stack.issuer, POLICY))
        assert isinstance(metadata, AuthorizationServerMetadata)
        return metadata

    def start(self, client: ClientRegistration = DEVICE_CLIENT, **kwargs: Any) -> DeviceAuthorization:
        scopes = kwargs.pop("scopes", SCOPES)
        flow = start_device_authorization(
            self.metadata(), client, scopes, self.stack.server_url, POLICY, now=self.now, **kwargs
        )
        result: DeviceAuthorization = self.run(flow)
        return result

    def poll(self, device: DeviceAuthorization, client: ClientRegistration = DEVICE_CLIENT, **kwargs: Any) -> TokenSet:
        flow = poll_device_token(
            self.stack.token_endpoint, client, device, self.stack.server_url, POLICY, self.now, **kwargs
        )
        tokens: TokenSet = self.run(flow)
        return tokens

    def client_credentials(self, client: ClientRegistration, **kwargs: Any) -> TokenSet:
        scopes = kwargs.pop("scopes", ("mcp:read",))
        resource = kwargs.pop("resource", self.stack.server_url)
        flow = request_client_credentials(
            self.stack.token_endpoint,
            client,
            scopes,
            resource,
            POLICY,
            issuer=self.stack.issuer,
            now=self.now,
            **kwargs,
        )
        tokens: TokenSet = self.run(flow)
        return tokens


@pytest.fixture
def stack() -> FakeMCPStack:
    config = FakeStackConfig(device_authorization_enabled=True, client_credentials_enabled=True)
    return FakeMCPStack(config, base_url="https://mcp.test")


@pytest.fixture
def driver(stack: FakeMCPStack) -> Driver:
    stack.add_client(DEVICE_CLIENT.client_id, grant_types=DEVICE_GRANTS)
    return Driver(stack)


@pytest.fixture
def http(stack: FakeMCPStack) -> Iterator[httpx.Client]:
    with httpx.Client(transport=stack.httpx_transport()) as client:
        yield client


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def resource_status(stack: FakeMCPStack, tokens: TokenSet) -> int:
    with httpx.Client(transport=stack.httpx_transport()) as http:
        return http.get(stack.server_url, headers={"Authorization": f"Bearer {tokens.access_token}"}).status_code


def errors(stack: FakeMCPStack) -> list[str | None]:
    return [record["error"] for record in stack.token_requests]


# ---------------------------------------------------------------------- metadata


def test_metadata_advertises_only_what_is_enabled(stack: FakeMCPStack, driver: Driver) -> None:
    metadata = driver.metadata()
    assert metadata.device_authorization_endpoint == "https://mcp.test/device_authorization"
    assert metadata.grant_types_supported == (
        "authorization_code",
        "refresh_token",
        DEVICE_CODE_GRANT,
        "client_credentials",
    )
    assert "token_endpoint_auth_signing_alg_values_supported" not in metadata.extra
    stack.config.token_endpoint_auth_methods_supported.append("private_key_jwt")
    assert driver.metadata().extra["token_endpoint_auth_signing_alg_values_supported"] == ["ES256", "RS256"]

    default = Driver(FakeMCPStack(base_url="https://mcp.test"))
    metadata = default.metadata()
    assert metadata.device_authorization_endpoint is None
    assert metadata.grant_types_supported == ("authorization_code", "refresh_token")
    with pytest.raises(DiscoveryError):
        default.start()
    with httpx.Client(transport=default.stack.httpx_transport()) as http:
        assert http.post(default.stack.device_authorization_endpoint, data={"client_id": "x"}).status_code == 404
        assert http.get(default.stack.verification_uri).status_code == 404
        refused = http.post(default.stack.token_endpoint, data={"grant_type": "client_credentials", "client_id": "x"})
        assert refused.json()["error"] == "unsupported_grant_type"


# ---------------------------------------------------------------------- device authorization grant


def test_device_flow_with_automatic_approval(stack: FakeMCPStack, driver: Driver) -> None:
    stack.config.device_auto_approve_after_polls = 2
    device = driver.start()
    assert device.verification_uri == stack.verification_uri
    assert device.verification_uri_complete == f"{stack.verification_uri}?user_code={device.user_code}"
    assert device.expires_at == T0 + 600
    assert device.interval == 5
    assert stack.pending_user_codes() == [device.user_code]
    assert stack.device_authorization_requests[0] | {"user_code": None} == {
        "client_id": "tv-app",
        "auth_method": "none",
        "scope": "mcp:read mcp:write",
        "resource": stack.server_url,
        "user_code": None,
        "status": 200,
        "error": None,
    }

    tokens = driver.poll(device)
    assert driver.slept == [5, 5, 5]
    assert stack.grants_used() == [DEVICE_CODE_GRANT] * 3
    assert errors(stack) == ["authorization_pending", "authorization_pending", None]
    assert all(record["resource"] == stack.server_url for record in stack.token_requests)
    assert tokens.scope == "mcp:read mcp:write"
    assert tokens.refresh_token is not None
    assert resource_status(stack, tokens) == 200
    assert stack.pending_user_codes() == []

    # an approved device code is good for one token response only
    with pytest.raises(TokenExchangeError) as caught:
        driver.poll(device)
    assert caught.value.error == "invalid_grant"


def test_user_approves_with_narrower_scopes(stack: FakeMCPStack, driver: Driver) -> None:
    device = driver.start()

    def approve(sleeps: int) -> None:
        if sleeps == 3:
            stack.approve_device(device.user_code.lower().replace("-", ""), scopes=["mcp:read"])

    driver.on_sleep = approve
    tokens = driver.poll(device)
    assert errors(stack) == ["authorization_pending", "authorization_pending", None]
    assert tokens.scope == "mcp:read"
    with pytest.raises(KeyError):
        stack.approve_device(device.user_code)  # used
    with pytest.raises(KeyError):
        stack.deny_device("BCDF-GHJK")


def test_verification_page_approves_and_denies(stack: FakeMCPStack, driver: Driver, http: httpx.Client) -> None:
    first, second = driver.start(), driver.start()
    assert first.user_code != second.user_code
    assert first.verification_uri_complete is not None
    page = http.get(first.verification_uri_complete)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f'value="{first.user_code}"' in page.text

    assert http.post(stack.verification_uri, data={"user_code": first.user_code}).status_code == 200
    denied = http.post(stack.verification_uri, data={"user_code": second.user_code, "decision": "deny"})
    assert denied.status_code == 200
    assert http.post(stack.verification_uri, data={"user_code": first.user_code}).status_code == 400  # decided
    assert http.post(stack.verification_uri, data={"user_code": "NOPE-NOPE"}).status_code == 400
    assert (
        http.post(stack.verification_uri, data={"user_code": first.user_code, "decision": "maybe"}).status_code == 400
    )
    assert stack.count("device_verification") == 6

    assert driver.poll(first).access_token
    with pytest.raises(AuthorizationDeniedError) as caught:
        driver.poll(second)
    assert caught.value.error == "access_denied"


def test_deny_by_method_and_by_automatic_decision(stack: FakeMCPStack, driver: Driver) -> None:
    device = driver.start()
    stack.deny_device(device.user_code)
    with pytest.raises(ValueError, match="denied"):
        stack.approve_device(device.user_code)
    with pytest.raises(AuthorizationDeniedError):
        driver.poll(device)
    assert errors(stack) == ["access_denied"]

    stack.config.deny_authorization = True
    stack.config.device_auto_approve_after_polls = 0
    with pytest.raises(AuthorizationDeniedError):
        driver.poll(driver.start())


def test_polling_faster_than_the_interval_gets_slow_down(stack: FakeMCPStack, driver: Driver) -> None:
    stack.config.device_auto_approve_after_polls = 2
    device = replace(driver.start(), interval=1.0)  # a client polling faster than the server's 5 s
    driver.poll(device)
    assert errors(stack) == ["authorization_pending", "slow_down", "authorization_pending", None]
    assert driver.slept == [1, 1, 6, 6]  # +5 s after slow_down, and for every later poll


def test_a_client_ignoring_slow_down_never_gets_through(stack: FakeMCPStack, driver: Driver) -> None:
    stack.config.device_auto_approve_after_polls = 1
    stack.config.device_code_lifetime = 30
    device = replace(driver.start(), interval=1.0)
    with httpx.Client(transport=stack.httpx_transport()) as http:
        for _ in range(5):
            driver.time += 1
            response = http.post(
                stack.token_endpoint,
                data={"grant_type": DEVICE_CODE_GRANT, "device_code": device.device_code, "client_id": "tv-app"},
            )
    assert response.json()["error"] == "slow_down"
    assert errors(stack) == ["authorization_pending"] + ["slow_down"] * 4


def test_expiry_on_the_fake_clock(stack: FakeMCPStack, driver: Driver) -> None:
    stack.config.device_code_lifetime = 12
    device = driver.start()
    with pytest.raises(AuthorizationTimeoutError):
        driver.poll(device)
    assert driver.slept == [5, 5, 2]
    assert errors(stack) == ["authorization_pending", "authorization_pending"]

    # the server's own expiry, for a client that believes the code is still valid
    stack.reset_log()
    device = replace(driver.start(), expires_at=driver.time + 3600)
    with pytest.raises(AuthorizationTimeoutError) as caught:
        driver.poll(device)
    assert caught.value.error == "expired_token"
    assert errors(stack) == ["authorization_pending", "authorization_pending", "expired_token"]
    with pytest.raises(KeyError):
        stack.approve_device(device.user_code)


def test_interval_omitted_and_enforced_at_five_seconds(stack: FakeMCPStack, driver: Driver) -> None:
    stack.config.device_poll_interval = None
    stack.config.device_auto_approve_after_polls = 1
    device = driver.start()
    assert device.interval == 5
    driver.poll(device)
    assert errors(stack) == ["authorization_pending", None]


def test_device_authorization_errors(stack: FakeMCPStack, driver: Driver) -> None:
    stack.add_client("web-app", redirect_uris=["http://127.0.0.1:1/cb"])
    with pytest.raises(AuthorizationError) as caught:
        driver.start(ClientRegistration(client_id="web-app", kind="pre-registered"))
    assert caught.value.error == "unauthorized_client"
    with pytest.raises(AuthorizationError) as caught:
        driver.start(scopes=("launch-missiles",))
    assert caught.value.error == "invalid_scope"
    with pytest.raises(AuthorizationError) as caught:
        driver.start(ClientRegistration(client_id="stranger", kind="pre-registered"))
    assert (caught.value.error, caught.value.status_code) == ("invalid_client", 401)
    assert [record["error"] for record in stack.device_authorization_requests] == [
        "unauthorized_client",
        "invalid_scope",
        "invalid_client",
    ]


def test_device_authorization_failure_injection(stack: FakeMCPStack, driver: Driver) -> None:
    stack.fail_next("device_authorization", status=503)
    device = driver.start()
    assert stack.count("device_authorization") == 2
    assert driver.slept == [0.5]
    stack.fail_next("token", status=502, times=2)
    stack.approve_device(device.user_code)
    assert driver.poll(device).access_token
    assert errors(stack) == ["temporarily_unavailable", "temporarily_unavailable", None]


def test_device_grant_for_a_confidential_client_and_via_registration(stack: FakeMCPStack, driver: Driver) -> None:
    stack.add_client("tv-conf", "pw", "client_secret_post", grant_types=DEVICE_GRANTS)
    client = ClientRegistration(
        client_id="tv-conf", kind="pre-registered", client_secret="pw", token_endpoint_auth_method="client_secret_post"
    )
    stack.config.device_auto_approve_after_polls = 0
    assert driver.poll(driver.start(client), client).access_token
    assert [record["auth_method"] for record in stack.token_requests] == ["client_secret_post"]

    with httpx.Client(transport=stack.httpx_transport()) as http:
        registered = http.post(
            stack.registration_endpoint,
            json={"grant_types": [DEVICE_CODE_GRANT], "response_types": [], "token_endpoint_auth_method": "none"},
        )
        stack.config.device_authorization_enabled = False
        refused = http.post(stack.registration_endpoint, json={"grant_types": [DEVICE_CODE_GRANT]})
    assert registered.status_code == 201, registered.text
    assert refused.json()["error"] == "invalid_client_metadata"
    stack.config.device_authorization_enabled = True
    dynamic = ClientRegistration(client_id=registered.json()["client_id"], kind="dynamic")
    assert driver.poll(driver.start(dynamic), dynamic).access_token


# ---------------------------------------------------------------------- client_credentials


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_client_credentials_with_a_secret(stack: FakeMCPStack, method: str) -> None:
    stack.add_client("svc", "s3cr3t", method, grant_types=["client_credentials"])
    client = ClientRegistration(
        client_id="svc", kind="pre-registered", client_secret="s3cr3t", token_endpoint_auth_method=method
    )
    tokens = Driver(stack).client_credentials(client, scopes=("mcp:read", "mcp:write"))
    assert stack.grants_used() == ["client_credentials"]
    assert stack.token_requests[0]["auth_method"] == method
    assert stack.token_requests[0]["resource"] == stack.server_url
    assert tokens.scope == "mcp:read mcp:write"
    assert tokens.refresh_token is None
    assert resource_status(stack, tokens) == 200

    wrong = replace(client, client_secret="guess")
    with pytest.raises(TokenExchangeError) as caught:
        Driver(stack).client_credentials(wrong)
    assert (caught.value.error, caught.value.status_code) == ("invalid_client", 401)
    other = "client_secret_post" if method == "client_secret_basic" else "client_secret_basic"
    with pytest.raises(TokenExchangeError, match="refused") as caught:
        Driver(stack).client_credentials(replace(client, token_endpoint_auth_method=other))
    assert caught.value.error == "invalid_client"
    assert f"registered for {method}" in (caught.value.error_description or "")


def test_a_client_may_be_allowed_several_methods(stack: FakeMCPStack) -> None:
    stack.add_client(
        "svc",
        "pw",
        "client_secret_basic",
        grant_types=["client_credentials", "refresh_token"],
        also_allowed_auth_methods=["client_secret_post"],
    )
    for method in ("client_secret_basic", "client_secret_post"):
        client = ClientRegistration(
            client_id="svc", kind="pre-registered", client_secret="pw", token_endpoint_auth_method=method
        )
        tokens = Driver(stack).client_credentials(client)
        assert tokens.access_token
        assert tokens.refresh_token is None  # RFC 6749 §4.4.3, even for a client allowed to refresh
    assert [record["auth_method"] for record in stack.token_requests] == ["client_secret_basic", "client_secret_post"]
    with pytest.raises(ValueError, match="public client"):
        stack.add_client("bad", None, "none", also_allowed_auth_methods=["client_secret_post"])


@pytest.mark.parametrize(("kind", "form"), [("ec", "pem"), ("ec", "jwk"), ("rsa", "pem"), ("rsa", "jwks")])
def test_client_credentials_with_private_key_jwt(
    stack: FakeMCPStack, ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey, kind: str, form: str
) -> None:
    signer = PrivateKeyJWT(ec_key if kind == "ec" else rsa_key, key_id="k1")
    public_key: Any = {
        "pem": signer.public_key_pem(),
        "jwk": signer.public_jwk(),
        "jwks": {"keys": [signer.public_jwk()]},
    }[form]
    stack.add_client(
        "m2m", token_endpoint_auth_method="private_key_jwt", grant_types=["client_credentials"], public_key=public_key
    )
    client = ClientRegistration(client_id="m2m", kind="pre-registered", token_endpoint_auth_method="private_key_jwt")
    driver = Driver(stack)
    first = driver.client_credentials(client, private_key=signer)
    second = driver.client_credentials(client, private_key=signer)  # a new jti each time
    assert first.access_token != second.access_token
    assert [record["auth_method"] for record in stack.token_requests] == ["private_key_jwt"] * 2
    assert stack.grants_used() == ["client_credentials"] * 2
    assert resource_status(stack, first) == 200


def test_a_bad_assertion_signature_is_rejected(stack: FakeMCPStack, ec_key: ec.EllipticCurvePrivateKey) -> None:
    registered = PrivateKeyJWT(ec.generate_private_key(ec.SECP256R1()))
    stack.add_client(
        "m2m",
        token_endpoint_auth_method="private_key_jwt",
        grant_types=["client_credentials"],
        public_key=registered.public_jwk(),
    )
    client = ClientRegistration(client_id="m2m", kind="pre-registered", token_endpoint_auth_method="private_key_jwt")
    with pytest.raises(TokenExchangeError) as caught:
        Driver(stack).client_credentials(client, private_key=PrivateKeyJWT(ec_key))
    assert (caught.value.error, caught.value.status_code) == ("invalid_client", 401)
    assert "signature" in (caught.value.error_description or "")


def sign(claims: dict[str, Any], key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, alg: str | None = None) -> str:
    """A JWS built here, independently of PrivateKeyJWT, with arbitrary claims."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    is_ec = isinstance(key, ec.EllipticCurvePrivateKey)
    header = {"alg": alg or ("ES256" if is_ec else "RS256"), "typ": "JWT"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}".encode()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{b64(signature)}"


def test_assertion_claims_are_checked(
    stack: FakeMCPStack, http: httpx.Client, ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    signer = PrivateKeyJWT(ec_key)
    stack.add_client(
        "m2m",
        token_endpoint_auth_method="private_key_jwt",
        grant_types=["client_credentials"],
        public_key=signer.public_key_pem(),
    )
    now = 1_900_000_000
    stack.clock = lambda: float(now)
    good = {"iss": "m2m", "sub": "m2m", "aud": stack.issuer, "iat": now, "exp": now + 60}

    def attempt(assertion: str, **extra: str) -> httpx.Response:
        data = {
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        return http.post(stack.token_endpoint, data={**data, **extra})

    def refused(claims: dict[str, Any], alg: str | None = None, key: Any = ec_key) -> str:
        response = attempt(sign(claims, key, alg))
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"
        description: str = response.json()["error_description"]
        return description

    assert "aud" in refused({**good, "jti": "1", "aud": "https://elsewhere.test"})
    assert "iss" in refused({**good, "jti": "2", "iss": "someone-else"})
    assert refused({**good, "jti": "3", "sub": "someone-else"}) == "unknown client"  # sub names the client
    assert "expired" in refused({**good, "jti": "4", "exp": now - 1})
    assert "300" in refused({**good, "jti": "5", "exp": now + 301})
    assert "jti" in refused(dict(good))
    assert "nbf" in refused({**good, "jti": "6", "nbf": now + 30})
    assert "exp" in refused({**good, "jti": "7", "exp": "later"})
    assert "alg" in refused({**good, "jti": "8"}, alg="RS256")
    assert "alg" in refused({**good, "jti": "9"}, key=rsa_key)
    assert "not a compact JWS" in attempt("abc.def").json()["error_description"]

    # the token endpoint as audience (RFC 7523 §3) and an audience list are accepted too
    assert attempt(sign({**good, "jti": "10", "aud": stack.token_endpoint}, ec_key)).status_code == 200
    assert attempt(sign({**good, "jti": "11", "aud": ["x", stack.issuer]}, ec_key)).status_code == 200
    # client_id must agree with the assertion; no mixing with a secret
    assert attempt(sign({**good, "jti": "12"}, ec_key), client_id="other").json()["error"] == "invalid_client"
    assert attempt(sign({**good, "jti": "13"}, ec_key), client_secret="x").json()["error"] == "invalid_request"
    wrong_type = http.post(
        stack.token_endpoint,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "saml",
            "client_assertion": sign({**good, "jti": "14"}, ec_key),
        },
    )
    assert wrong_type.json()["error"] == "invalid_client"


def test_a_reused_jti_is_rejected(stack: FakeMCPStack, http: httpx.Client, ec_key: ec.EllipticCurvePrivateKey) -> None:
    signer = PrivateKeyJWT(ec_key)
    stack.add_client(
        "m2m",
        token_endpoint_auth_method="private_key_jwt",
        grant_types=["client_credentials"],
        public_key=signer.public_key_pem(),
    )
    assertion = signer.assertion("m2m", stack.issuer)
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    assert http.post(stack.token_endpoint, data=data).status_code == 200
    replay = http.post(stack.token_endpoint, data=data)
    assert replay.status_code == 401
    assert replay.json() == {"error": "invalid_client", "error_description": "client_assertion jti was already used"}
    assert errors(stack) == [None, "invalid_client"]


def test_client_credentials_refusals(stack: FakeMCPStack) -> None:
    stack.add_client("svc", "pw", "client_secret_basic", grant_types=["client_credentials"])
    stack.add_client("code-only", "pw", "client_secret_basic")
    stack.add_client("public-cc", grant_types=["client_credentials"])
    client = ClientRegistration(
        client_id="svc", kind="pre-registered", client_secret="pw", token_endpoint_auth_method="client_secret_basic"
    )
    driver = Driver(stack)

    def error_of(registration: ClientRegistration, **kwargs: Any) -> str | None:
        with pytest.raises(TokenExchangeError) as caught:
            driver.client_credentials(registration, **kwargs)
        return caught.value.error

    assert error_of(client, scopes=("root",)) == "invalid_scope"
    assert error_of(client, resource="https://elsewhere.test/mcp") == "invalid_target"
    assert error_of(replace(client, client_id="code-only")) == "unauthorized_client"
    with httpx.Client(transport=stack.httpx_transport()) as http:
        public = http.post(stack.token_endpoint, data={"grant_type": "client_credentials", "client_id": "public-cc"})
    assert public.json()["error"] == "unauthorized_client"
    stack.config.client_credentials_enabled = False
    assert error_of(client) == "unsupported_grant_type"
    stack.config.client_credentials_enabled = True

    # without a resource indicator the token is issued, but this resource refuses it (as for the other grants)
    tokens = driver.client_credentials(client, resource=None, scopes=())
    assert tokens.scope is None
    assert resource_status(stack, tokens) == 401


def test_private_key_jwt_client_via_dynamic_registration(stack: FakeMCPStack, rsa_key: rsa.RSAPrivateKey) -> None:
    stack.config.token_endpoint_auth_methods_supported.append("private_key_jwt")
    signer = PrivateKeyJWT(rsa_key, key_id="r1")
    with httpx.Client(transport=stack.httpx_transport()) as http:
        body = {
            "grant_types": ["client_credentials"],
            "response_types": [],
            "token_endpoint_auth_method": "private_key_jwt",
        }
        without_keys = http.post(stack.registration_endpoint, json=body)
        registered = http.post(stack.registration_endpoint, json={**body, "jwks": {"keys": [signer.public_jwk()]}})
    assert without_keys.json()["error"] == "invalid_client_metadata"
    assert registered.status_code == 201, registered.text
    assert "client_secret" not in registered.json()
    client = ClientRegistration(
        client_id=registered.json()["client_id"], kind="dynamic", token_endpoint_auth_method="private_key_jwt"
    )
    assert Driver(stack).client_credentials(client, private_key=signer).access_token
    wrong_kid = PrivateKeyJWT(rsa_key, key_id="r2")
    with pytest.raises(TokenExchangeError, match="refused") as caught:
        Driver(stack).client_credentials(client, private_key=wrong_kid)
    assert "kid" in (caught.value.error_description or "")


def test_add_client_validation(stack: FakeMCPStack, ec_key: ec.EllipticCurvePrivateKey) -> None:
    pem = PrivateKeyJWT(ec_key).public_key_pem()
    with pytest.raises(ValueError, match="public_key"):
        stack.add_client("a", token_endpoint_auth_method="private_key_jwt")
    with pytest.raises(ValueError, match="only for"):
        stack.add_client("b", "pw", "client_secret_basic", public_key=pem)
    with pytest.raises(ValueError, match="kty"):
        stack.add_client("c", token_endpoint_auth_method="private_key_jwt", public_key={"kty": "oct", "k": "AA"})
    with pytest.raises(ValueError, match="among"):
        stack.add_client("d", token_endpoint_auth_method="tls_client_auth")
    client = stack.add_client(
        "e", "pw", "client_secret_basic", also_allowed_auth_methods=["private_key_jwt"], public_key=pem
    )
    assert client.auth_methods == ["client_secret_basic", "private_key_jwt"]
    assert "pw" not in repr(client)


def test_config_validation() -> None:
    for bad, message in (
        (FakeStackConfig(device_poll_interval=0), "device_poll_interval"),
        (FakeStackConfig(device_code_lifetime=0), "lifetimes"),
        (FakeStackConfig(device_auto_approve_after_polls=-1), "device_auto_approve_after_polls"),
        (FakeStackConfig(client_assertion_max_lifetime=0), "lifetimes"),
    ):
        with pytest.raises(ValueError, match=message):
            bad.validate()
    FakeStackConfig(device_poll_interval=None, device_auto_approve_after_polls=0).validate()
