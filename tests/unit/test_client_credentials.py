from __future__ import annotations

import base64
import json
import pickle
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from mcp_oauth_auth.exceptions import ConfigurationError, TemporaryOAuthError, TokenExchangeError
from mcp_oauth_auth.flow.client_auth import CLIENT_ASSERTION_TYPE
from mcp_oauth_auth.flow.client_credentials import request_client_credentials
from mcp_oauth_auth.flow.effects import HttpRequest, HttpResponse
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.private_key_jwt import PrivateKeyJWT
from mcp_oauth_auth.flow.tokens import client_authentication
from mcp_oauth_auth.records import ClientRegistration

from .flowkit import Harness, json_response

ISSUER = "https://as.example"
TOKEN = "https://as.example/oauth/token"
RESOURCE = "https://mcp.example/mcp"
POLICY = RetryPolicy(attempts=3, base_delay=0)
OK = {"access_token": "at", "token_type": "Bearer", "expires_in": 300, "scope": "mcp:read"}

BASIC = ClientRegistration(
    client_id="svc:1", kind="pre-registered", client_secret="s e+c/r", token_endpoint_auth_method="client_secret_basic"
)
POST = ClientRegistration(
    client_id="svc", kind="pre-registered", client_secret="secret", token_endpoint_auth_method="client_secret_post"
)
JWT_CLIENT = ClientRegistration(
    client_id="svc-jwt", kind="pre-registered", token_endpoint_auth_method="private_key_jwt"
)
PUBLIC = ClientRegistration(client_id="pub", kind="dynamic")


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def form(request: HttpRequest) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(request.body.decode()).items()}


def b64url_json(segment: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return document


def verify_independently(token: str, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> dict[str, Any]:
    """Check the JWS signature with plain cryptography (no code of ours); return the claims."""
    header_b64, claims_b64, signature_b64 = token.split(".")
    signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
    signing_input = f"{header_b64}.{claims_b64}".encode()
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        assert len(signature) == 64, "a JWS ES256 signature is raw r||s, 64 bytes, not DER"
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    else:
        public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    return b64url_json(claims_b64)


def run(harness: Harness, client: ClientRegistration, **kwargs: Any) -> Any:
    scopes = kwargs.pop("scopes", ("mcp:read",))
    resource = kwargs.pop("resource", RESOURCE)
    return harness.run(request_client_credentials(TOKEN, client, scopes, resource, POLICY, **kwargs))


# ---------------------------------------------------------------------- request shapes


def test_client_secret_basic_request() -> None:
    harness = Harness(routes={TOKEN: json_response(200, OK)})
    tokens = run(harness, BASIC, scopes=("mcp:read", "mcp:write"))
    request = harness.sent[0]
    assert request.method == "POST"
    assert form(request) == {
        "grant_type": "client_credentials",
        "scope": "mcp:read mcp:write",
        "resource": RESOURCE,
        "client_id": "svc:1",
    }
    scheme, encoded = dict(request.headers)["Authorization"].split(" ")
    user, password = base64.b64decode(encoded).decode().split(":")
    assert scheme == "Basic"
    assert (unquote_plus(user), unquote_plus(password)) == ("svc:1", "s e+c/r")
    assert tokens.access_token == "at"
    assert tokens.scope == "mcp:read"
    assert tokens.refresh_token is None


def test_client_secret_post_request_without_scope_and_resource() -> None:
    harness = Harness(routes={TOKEN: json_response(200, OK)})
    run(harness, POST, scopes=(), resource=None)
    request = harness.sent[0]
    assert form(request) == {"grant_type": "client_credentials", "client_id": "svc", "client_secret": "secret"}
    assert "Authorization" not in dict(request.headers)


def test_a_returned_refresh_token_is_kept() -> None:
    harness = Harness(routes={TOKEN: json_response(200, {**OK, "refresh_token": "rt"})})
    assert run(harness, POST).refresh_token == "rt"


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_private_key_jwt_request_and_assertion(
    kind: str, ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = ec_key if kind == "ec" else rsa_key
    signer = PrivateKeyJWT(key, key_id="key-1")
    harness = Harness(routes={TOKEN: json_response(200, OK)})
    tokens = run(harness, JWT_CLIENT, private_key=signer, issuer=ISSUER, now=lambda: 1_000_000.0)
    assert tokens.issued_at == 1_000_000.0  # the injected clock, not the machine's
    run(harness, JWT_CLIENT, private_key=signer, issuer=ISSUER, now=lambda: 1_000_030.0)
    first, second = form(harness.sent[0]), form(harness.sent[1])
    assert set(first) == {"grant_type", "scope", "resource", "client_id", "client_assertion_type", "client_assertion"}
    assert (
        first["client_assertion_type"]
        == CLIENT_ASSERTION_TYPE
        == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    )
    assert first["client_id"] == "svc-jwt"
    assert "Authorization" not in dict(harness.sent[0].headers)

    header = b64url_json(first["client_assertion"].split(".")[0])
    assert header == {"alg": "ES256" if kind == "ec" else "RS256", "typ": "JWT", "kid": "key-1"}
    claims = verify_independently(first["client_assertion"], key)
    assert claims["iss"] == claims["sub"] == "svc-jwt"
    assert claims["aud"] == ISSUER
    assert claims["iat"] == 1_000_000
    assert 0 < claims["exp"] - claims["iat"] <= 60
    assert len(base64.urlsafe_b64decode(claims["jti"] + "==")) >= 16  # at least 128 random bits
    second_claims = verify_independently(second["client_assertion"], key)
    assert second_claims["iat"] == 1_000_030
    assert second_claims["jti"] != claims["jti"]


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_assertion_verifies_with_a_standard_jose_library(
    kind: str, ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    signer = PrivateKeyJWT(ec_key if kind == "ec" else rsa_key)
    key_class = ECKey if kind == "ec" else RSAKey
    token = signer.assertion("svc-jwt", ISSUER)
    jwk: dict[str, Any] = dict(signer.public_jwk())
    for public in (key_class.import_key(signer.public_key_pem()), key_class.import_key(jwk)):
        decoded = jwt.decode(token, public, algorithms=[signer.algorithm])
        assert decoded.claims["sub"] == "svc-jwt"
        assert "kid" not in decoded.header
    assert signer.public_jwk()["alg"] == signer.algorithm


def test_a_tampered_assertion_fails_independent_verification(ec_key: ec.EllipticCurvePrivateKey) -> None:
    token = PrivateKeyJWT(ec_key).assertion("svc-jwt", ISSUER)
    header, _, signature = token.split(".")
    forged_claims = base64.urlsafe_b64encode(json.dumps({"sub": "admin"}).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        verify_independently(f"{header}.{forged_claims}.{signature}", ec_key)


def test_each_retry_carries_a_fresh_assertion(ec_key: ec.EllipticCurvePrivateKey) -> None:
    harness = Harness(
        routes={TOKEN: [HttpResponse(503), HttpResponse(429, (("retry-after", "2"),)), json_response(200, OK)]}
    )
    run(harness, JWT_CLIENT, private_key=PrivateKeyJWT(ec_key), issuer=ISSUER)
    jtis = [verify_independently(form(request)["client_assertion"], ec_key)["jti"] for request in harness.sent]
    assert len(set(jtis)) == 3
    assert harness.slept == [0.0, 2.0]


def test_temporary_failures_persist() -> None:
    harness = Harness(routes={TOKEN: HttpResponse(502)})
    with pytest.raises(TemporaryOAuthError):
        run(harness, BASIC)
    assert len(harness.sent) == 3


def test_refusal_carries_the_servers_error() -> None:
    harness = Harness(
        routes={TOKEN: json_response(401, {"error": "invalid_client", "error_description": "bad secret"})}
    )
    with pytest.raises(TokenExchangeError) as caught:
        run(harness, POST)
    assert caught.value.error == "invalid_client"
    assert caught.value.error_description == "bad secret"
    assert caught.value.status_code == 401
    assert "secret" not in str(caught.value).replace("bad secret", "")


@pytest.mark.parametrize("document", [{"token_type": "Bearer"}, {"access_token": "x", "token_type": "mac"}, []])
def test_malformed_token_response(document: Any) -> None:
    with pytest.raises(TokenExchangeError):
        run(Harness(routes={TOKEN: json_response(200, document)}), POST)


def test_misconfigurations_are_refused_before_any_request(ec_key: ec.EllipticCurvePrivateKey) -> None:
    harness = Harness(routes={TOKEN: json_response(200, OK)})
    signer = PrivateKeyJWT(ec_key)
    with pytest.raises(ConfigurationError, match="confidential"):
        run(harness, PUBLIC)
    with pytest.raises(ConfigurationError, match="no signing key"):
        run(harness, JWT_CLIENT, issuer=ISSUER)
    with pytest.raises(ConfigurationError, match="issuer"):
        run(harness, JWT_CLIENT, private_key=signer)
    with pytest.raises(ConfigurationError, match="not private_key_jwt"):
        run(harness, POST, private_key=signer, issuer=ISSUER)
    secretless = ClientRegistration(
        client_id="c", kind="pre-registered", token_endpoint_auth_method="client_secret_post"
    )
    with pytest.raises(ConfigurationError, match="no client_secret"):
        run(harness, secretless)
    assert harness.sent == []


def test_client_authentication_private_key_jwt_needs_an_assertion() -> None:
    with pytest.raises(ConfigurationError):
        client_authentication(JWT_CLIENT, {"grant_type": "x"})
    fields, headers = client_authentication(JWT_CLIENT, {"grant_type": "x"}, client_assertion="a.b.c")
    assert fields == {
        "grant_type": "x",
        "client_id": "svc-jwt",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": "a.b.c",
    }
    assert headers == ()


# ---------------------------------------------------------------------- PrivateKeyJWT


def test_keys_load_from_pem_and_algorithm_is_inferred(
    ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    ec_pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    rsa_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"pw"),
    )
    from_str = PrivateKeyJWT(ec_pem.decode())
    from_bytes = PrivateKeyJWT(rsa_pem, password=b"pw", algorithm="RS256")
    assert (from_str.algorithm, from_bytes.algorithm) == ("ES256", "RS256")
    verify_independently(from_str.assertion("c", ISSUER), ec_key)
    verify_independently(from_bytes.assertion("c", ISSUER), rsa_key)
    with pytest.raises(ConfigurationError):
        PrivateKeyJWT(rsa_pem)  # encrypted, no password


def test_unusable_keys_are_refused(ec_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(ConfigurationError, match="does not fit"):
        PrivateKeyJWT(ec_key, algorithm="RS256")
    with pytest.raises(ConfigurationError, match="P-256"):
        PrivateKeyJWT(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ConfigurationError, match="2048"):
        PrivateKeyJWT(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(ConfigurationError, match="PEM"):
        PrivateKeyJWT("not a key")
    with pytest.raises(ConfigurationError):
        PrivateKeyJWT(ec_key, key_id="")


def test_the_key_never_shows(ec_key: ec.EllipticCurvePrivateKey) -> None:
    signer = PrivateKeyJWT(ec_key, key_id="k")
    private_number = str(ec_key.private_numbers().private_value)
    pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    assert repr(signer) == "PrivateKeyJWT(algorithm='ES256', key_id='k')"
    assert private_number not in repr(signer)
    assert "PRIVATE" not in repr(PrivateKeyJWT(pem))
    assert not hasattr(signer, "__dict__")
    with pytest.raises(TypeError):
        pickle.dumps(signer)
