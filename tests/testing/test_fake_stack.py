"""Tests of the fake MCP authorization stack (mcp_oauth_auth.testing), driven with plain HTTP requests."""

from __future__ import annotations

import base64
import hashlib
import secrets
import sys
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

import httpx
import pytest
import respx
from respx.models import AllMockedAssertionError

from mcp_oauth_auth.testing import (
    AuthorizationPageError,
    FakeMCPStack,
    FakeStackConfig,
    reserve_loopback_port,
    serve_asgi,
    serve_stack,
)

from ..httpx2_support import needs_httpx2

REDIRECT_URI = "http://127.0.0.1:33418/callback"


# ---------------------------------------------------------------------- helpers


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic_auth(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: form-encode both parts, then Base64."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def auth_params(stack: FakeMCPStack, client_id: str, challenge: str, /, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "state-123",
        "scope": "mcp:read",
        "resource": stack.server_url,
    }
    params.update(overrides)
    return {name: value for name, value in params.items() if value is not None}


def authorize(stack: FakeMCPStack, client_id: str, challenge: str, /, **overrides: str | None) -> dict[str, str]:
    """Run /authorize through stack.authorizer and return the callback query."""
    url = f"{stack.authorization_endpoint}?{urlencode(auth_params(stack, client_id, challenge, **overrides))}"
    callback = stack.authorizer(url)
    assert callback.startswith(overrides.get("redirect_uri") or REDIRECT_URI)
    return query_of(callback)


def exchange(
    http: httpx.Client, stack: FakeMCPStack, client_id: str, code: str, verifier: str, **extra: str | None
) -> httpx.Response:
    form: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "client_id": client_id,
        "resource": stack.server_url,
    }
    form.update(extra)
    return http.post(stack.token_endpoint, data={k: v for k, v in form.items() if v is not None})


def refresh(
    http: httpx.Client, stack: FakeMCPStack, client_id: str, refresh_token: str, **extra: str
) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    form.update(extra)
    return http.post(stack.token_endpoint, data=form)


def login(http: httpx.Client, stack: FakeMCPStack, client_id: str, scope: str = "mcp:read") -> dict[str, Any]:
    verifier, challenge = pkce()
    callback = authorize(stack, client_id, challenge, scope=scope)
    response = exchange(http, stack, client_id, callback["code"], verifier)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def stack() -> FakeMCPStack:
    return FakeMCPStack(base_url="https://mcp.test")


@pytest.fixture
def http(stack: FakeMCPStack) -> Iterator[httpx.Client]:
    with httpx.Client(transport=stack.httpx_transport()) as client:
        yield client


@pytest.fixture
def public_client(stack: FakeMCPStack) -> str:
    stack.add_client("public-app", redirect_uris=[REDIRECT_URI])
    return "public-app"


# ---------------------------------------------------------------------- the whole flow


def test_manual_flow_from_discovery_to_refresh_reuse(stack: FakeMCPStack, http: httpx.Client) -> None:
    # 1. unauthenticated request -> 401 naming the PRM
    first = http.get(stack.server_url)
    assert first.status_code == 401
    challenge_header = first.headers["www-authenticate"]
    prm_url = "https://mcp.test/.well-known/oauth-protected-resource/mcp"
    assert challenge_header == f'Bearer resource_metadata="{prm_url}"'

    # 2. protected resource metadata
    prm = http.get(prm_url).json()
    assert prm["resource"] == "https://mcp.test/mcp"
    assert prm["authorization_servers"] == ["https://mcp.test"]

    # 3. authorization server metadata (RFC 8414)
    metadata = http.get("https://mcp.test/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == "https://mcp.test"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True

    # 4. dynamic client registration
    registration = http.post(
        metadata["registration_endpoint"],
        json={
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "client_name": "test client",
        },
    )
    assert registration.status_code == 201
    client = registration.json()
    assert client["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in client
    assert stack.registration_requests[0]["client_name"] == "test client"
    client_id = client["client_id"]

    # 5. authorization through the in-process authorizer
    verifier, code_challenge = pkce()
    url = f"{metadata['authorization_endpoint']}?" + urlencode(
        auth_params(stack, client_id, code_challenge, scope="mcp:read mcp:write")
    )
    callback = stack.authorizer(url)
    assert callback.startswith(REDIRECT_URI + "?")
    params = query_of(callback)
    assert params["state"] == "state-123"
    assert params["iss"] == "https://mcp.test"
    assert stack.authorization_requests[0]["code_challenge"] == code_challenge

    # 6. code exchange with PKCE and resource
    token_response = exchange(http, stack, client_id, params["code"], verifier)
    assert token_response.status_code == 200, token_response.text
    assert token_response.headers["cache-control"] == "no-store"
    tokens = token_response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["scope"] == "mcp:read mcp:write"
    assert stack.token_requests[0]["resource"] == stack.server_url
    assert stack.token_requests[0]["auth_method"] == "none"

    # 7. the resource accepts the token
    ok = http.post(stack.server_url, headers=bearer(tokens["access_token"]), content=b"12345")
    assert ok.status_code == 200
    assert ok.json() == {
        "ok": True,
        "method": "POST",
        "path": "/mcp",
        "scopes": ["mcp:read", "mcp:write"],
        "client_id": client_id,
        "body_length": 5,
    }
    assert stack.resource_requests[-1]["authorization"] == f"Bearer {tokens['access_token']}"

    # 8. refresh rotates the refresh token
    rotated = refresh(http, stack, client_id, tokens["refresh_token"])
    assert rotated.status_code == 200
    new_tokens = rotated.json()
    assert new_tokens["refresh_token"] != tokens["refresh_token"]
    assert new_tokens["access_token"] != tokens["access_token"]
    assert http.get(stack.server_url, headers=bearer(new_tokens["access_token"])).status_code == 200

    # 9. the rotated-out refresh token is rejected, and that reuse revokes the whole grant
    reused = refresh(http, stack, client_id, tokens["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    after_reuse = refresh(http, stack, client_id, new_tokens["refresh_token"])
    assert after_reuse.json()["error"] == "invalid_grant"
    revoked = http.get(stack.server_url, headers=bearer(new_tokens["access_token"]))
    assert revoked.status_code == 401
    assert 'error="invalid_token"' in revoked.headers["www-authenticate"]

    assert stack.grants_used() == ["authorization_code", "refresh_token", "refresh_token", "refresh_token"]
    assert stack.count("token") == 4
    assert stack.count("refresh") == 3
    assert stack.count("authorize") == 1


@pytest.mark.anyio
async def test_async_client_with_mock_transport(stack: FakeMCPStack, public_client: str) -> None:
    verifier, challenge = pkce()
    callback = authorize(stack, public_client, challenge)
    async with httpx.AsyncClient(transport=stack.httpx_transport()) as client:
        response = await client.post(
            stack.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": callback["code"],
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
                "client_id": public_client,
                "resource": stack.server_url,
            },
        )
        assert response.status_code == 200
        resource = await client.get(stack.server_url, headers=bearer(response.json()["access_token"]))
        assert resource.json()["client_id"] == public_client


# ---------------------------------------------------------------------- discovery variants


@pytest.mark.parametrize(
    ("mode", "path_aware_status", "root_status", "header"),
    [
        (
            "header",
            200,
            404,
            'Bearer resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp"',
        ),
        ("path", 200, 404, "Bearer"),
        ("root", 404, 200, "Bearer"),
        ("none", 404, 404, "Bearer"),
    ],
)
def test_prm_modes(
    stack: FakeMCPStack, http: httpx.Client, mode: str, path_aware_status: int, root_status: int, header: str
) -> None:
    stack.config.prm_mode = mode  # type: ignore[assignment]
    assert http.get(stack.server_url).headers["www-authenticate"] == header
    assert http.get("https://mcp.test/.well-known/oauth-protected-resource/mcp").status_code == path_aware_status
    assert http.get("https://mcp.test/.well-known/oauth-protected-resource").status_code == root_status
    assert stack.count("prm") == 2
    expected_url = {
        "header": "https://mcp.test/.well-known/oauth-protected-resource/mcp",
        "path": "https://mcp.test/.well-known/oauth-protected-resource/mcp",
        "root": "https://mcp.test/.well-known/oauth-protected-resource",
        "none": None,
    }[mode]
    assert stack.resource_metadata_url == expected_url


def test_prm_overrides_and_challenge_scope(stack: FakeMCPStack, http: httpx.Client) -> None:
    stack.config.prm_resource = "https://elsewhere.test/mcp"
    stack.config.prm_scopes_supported = ["files:read"]
    stack.config.challenge_scope = "mcp:read mcp:write"
    prm = http.get(stack.resource_metadata_url or "").json()
    assert prm["resource"] == "https://elsewhere.test/mcp"
    assert prm["scopes_supported"] == ["files:read"]
    header = http.get(stack.server_url).headers["www-authenticate"]
    assert header == (
        'Bearer resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp", '
        'scope="mcp:read mcp:write"'
    )


ISSUER = "https://auth.test/tenant1"


@pytest.mark.parametrize(
    ("mode", "served", "withheld"),
    [
        (
            "oauth",
            ["https://auth.test/.well-known/oauth-authorization-server/tenant1"],
            [
                "https://auth.test/.well-known/openid-configuration/tenant1",
                f"{ISSUER}/.well-known/openid-configuration",
                "https://auth.test/.well-known/oauth-authorization-server",
            ],
        ),
        (
            "oidc",
            [
                "https://auth.test/.well-known/openid-configuration/tenant1",
                f"{ISSUER}/.well-known/openid-configuration",
            ],
            ["https://auth.test/.well-known/oauth-authorization-server/tenant1"],
        ),
        (
            "oidc_append_only",
            [f"{ISSUER}/.well-known/openid-configuration"],
            [
                "https://auth.test/.well-known/oauth-authorization-server/tenant1",
                "https://auth.test/.well-known/openid-configuration/tenant1",
            ],
        ),
    ],
)
def test_as_metadata_modes_on_a_separate_origin(mode: str, served: list[str], withheld: list[str]) -> None:
    config = FakeStackConfig(as_base_url="https://auth.test", issuer_path="/tenant1", as_metadata_mode=mode)  # type: ignore[arg-type]
    stack = FakeMCPStack(config, base_url="https://mcp.test")
    assert stack.issuer == ISSUER
    with httpx.Client(transport=stack.httpx_transport()) as http:
        assert http.get(stack.resource_metadata_url or "").json()["authorization_servers"] == [ISSUER]
        for url in served:
            response = http.get(url)
            assert response.status_code == 200, url
            document = response.json()
            assert document["issuer"] == ISSUER
            assert document["token_endpoint"] == f"{ISSUER}/token"
            assert ("userinfo_endpoint" in document) == mode.startswith("oidc")
            assert ("id_token_signing_alg_values_supported" in document) == mode.startswith("oidc")
        for url in withheld:
            assert http.get(url).status_code == 404, url
        # the AS lives on its own origin only
        assert http.get("https://mcp.test/tenant1/token").status_code == 404
        assert http.post(f"{ISSUER}/token", data={"grant_type": "x"}).json()["error"] == "unsupported_grant_type"
    assert stack.count("as_metadata") == len(served) + len(withheld)


def test_as_metadata_none_serves_legacy_root_endpoints(http: httpx.Client, stack: FakeMCPStack) -> None:
    with pytest.raises(ValueError, match="issuer_path"):
        FakeMCPStack(FakeStackConfig(as_metadata_mode="none", issuer_path="/tenant1"))
    stack.config.as_metadata_mode = "none"
    stack.config.prm_mode = "none"
    assert http.get("https://mcp.test/.well-known/oauth-authorization-server").status_code == 404
    assert http.get("https://mcp.test/.well-known/openid-configuration").status_code == 404
    registration = http.post("https://mcp.test/register", json={"redirect_uris": [REDIRECT_URI]})
    assert registration.status_code == 201
    client_id = registration.json()["client_id"]
    # RFC 7591 default auth method is client_secret_basic
    assert registration.json()["token_endpoint_auth_method"] == "client_secret_basic"
    verifier, challenge = pkce()
    url = "https://mcp.test/authorize?" + urlencode(auth_params(stack, client_id, challenge))
    code = query_of(stack.authorizer(url))["code"]
    response = http.post(
        "https://mcp.test/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "resource": stack.server_url,
        },
        headers={"Authorization": basic_auth(client_id, registration.json()["client_secret"])},
    )
    assert response.status_code == 200


def test_metadata_fields_follow_config(stack: FakeMCPStack, http: httpx.Client) -> None:
    stack.config.metadata_issuer = "https://impostor.test"
    stack.config.code_challenge_methods_supported = None
    stack.config.iss_parameter_supported = False
    stack.config.registration_enabled = False
    stack.config.client_id_metadata_document_supported = True
    document = http.get(stack.as_metadata_url or "").json()
    assert document["issuer"] == "https://impostor.test"
    assert document["authorization_endpoint"] == "https://mcp.test/authorize"
    assert "code_challenge_methods_supported" not in document
    assert "authorization_response_iss_parameter_supported" not in document
    assert "registration_endpoint" not in document
    assert document["client_id_metadata_document_supported"] is True
    assert http.post(stack.registration_endpoint, json={"redirect_uris": [REDIRECT_URI]}).status_code == 404


def test_unknown_paths_and_hosts_are_404(stack: FakeMCPStack, http: httpx.Client) -> None:
    assert http.get("https://mcp.test/nothing").status_code == 404
    assert http.get("https://mcp.test/mcpx").status_code == 404
    assert http.get("https://other.test/mcp").status_code == 404
    assert http.get("http://mcp.test/mcp").status_code == 404  # scheme is part of the origin
    assert http.get("https://mcp.test:8443/mcp").status_code == 404
    assert http.get("https://mcp.test:443/mcp").status_code == 401  # default port normalised
    assert http.get("https://mcp.test/mcp/tools/list").status_code == 401
    assert stack.count("not_found") == 5


# ---------------------------------------------------------------------- client authentication


@pytest.mark.parametrize("secret", ["a b+c%/", "plain", "p:w&=ü"])
def test_client_secret_basic_is_form_encoded_before_base64(
    stack: FakeMCPStack, http: httpx.Client, secret: str
) -> None:
    stack.add_client(
        "conf:app",
        client_secret=secret,
        token_endpoint_auth_method="client_secret_basic",
        redirect_uris=[REDIRECT_URI],
    )

    def attempt(authorization: str) -> httpx.Response:
        verifier, challenge = pkce()
        code = authorize(stack, "conf:app", challenge)["code"]
        return http.post(
            stack.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
                "resource": stack.server_url,
            },
            headers={"Authorization": authorization},
        )

    assert attempt(basic_auth("conf:app", secret)).status_code == 200
    assert stack.token_requests[-1]["auth_method"] == "client_secret_basic"
    assert stack.token_requests[-1]["client_id"] == "conf:app"

    wrong = attempt(basic_auth("conf:app", secret + "x"))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic")

    if quote_plus(secret) != secret or quote_plus("conf:app") != "conf:app":
        # the same credentials without the form-encoding step are refused
        raw = "Basic " + base64.b64encode(f"conf:app:{secret}".encode()).decode()
        assert attempt(raw).status_code == 401


def test_auth_method_must_match_registration(stack: FakeMCPStack, http: httpx.Client) -> None:
    stack.add_client("basic-app", "s3cret", "client_secret_basic", [REDIRECT_URI])
    stack.add_client("post-app", "s3cret", "client_secret_post", [REDIRECT_URI])
    stack.add_client("public-app", None, "none", [REDIRECT_URI])

    def code_for(client_id: str) -> tuple[str, str]:
        verifier, challenge = pkce()
        return authorize(stack, client_id, challenge)["code"], verifier

    code, verifier = code_for("basic-app")
    post_instead = exchange(http, stack, "basic-app", code, verifier, client_secret="s3cret")
    assert post_instead.status_code == 401
    assert post_instead.json()["error"] == "invalid_client"

    code, verifier = code_for("post-app")
    assert exchange(http, stack, "post-app", code, verifier).status_code == 401  # no secret
    code, verifier = code_for("post-app")
    assert exchange(http, stack, "post-app", code, verifier, client_secret="s3cret").status_code == 200
    assert stack.token_requests[-1]["auth_method"] == "client_secret_post"

    code, verifier = code_for("public-app")
    with_secret = exchange(http, stack, "public-app", code, verifier, client_secret="anything")
    assert with_secret.status_code == 401

    # both Basic and form secret at once is a protocol error
    code, verifier = code_for("basic-app")
    both = http.post(
        stack.token_endpoint,
        data={"grant_type": "authorization_code", "code": code, "client_secret": "s3cret"},
        headers={"Authorization": basic_auth("basic-app", "s3cret")},
    )
    assert both.json()["error"] == "invalid_request"


def test_registration_issues_secrets_for_confidential_methods(stack: FakeMCPStack, http: httpx.Client) -> None:
    stack.config.registration_auth_method = "client_secret_post"
    response = http.post(
        stack.registration_endpoint,
        json={"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", "scope": "mcp:read"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["token_endpoint_auth_method"] == "client_secret_post"
    assert body["client_secret"]
    assert body["client_secret_expires_at"] == 0
    assert body["grant_types"] == ["authorization_code"]
    assert body["response_types"] == ["code"]
    assert body["scope"] == "mcp:read"
    assert "client_id_issued_at" in body
    assert stack.clients[body["client_id"]].token_endpoint_auth_method == "client_secret_post"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "invalid_client_metadata"),
        ({"redirect_uris": "http://127.0.0.1/cb"}, "invalid_client_metadata"),
        ({"redirect_uris": []}, "invalid_client_metadata"),
        ({"redirect_uris": ["http://example.com/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["http://127.0.0.1/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": [REDIRECT_URI], "grant_types": ["password"]}, "invalid_client_metadata"),
        (
            {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "private_key_jwt"},
            "invalid_client_metadata",
        ),
        ({"redirect_uris": [REDIRECT_URI], "scope": "root"}, "invalid_client_metadata"),
        ([REDIRECT_URI], "invalid_client_metadata"),
    ],
)
def test_registration_rejects_invalid_metadata(stack: FakeMCPStack, http: httpx.Client, body: Any, error: str) -> None:
    response = http.post(stack.registration_endpoint, json=body)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.json()["error_description"]
    assert stack.registration_requests == [body]
    assert stack.clients == {}


def test_registration_needs_json(stack: FakeMCPStack, http: httpx.Client) -> None:
    response = http.post(stack.registration_endpoint, data={"redirect_uris": REDIRECT_URI})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


# ---------------------------------------------------------------------- /authorize


def test_authorize_errors_before_and_after_trusting_the_redirect(stack: FakeMCPStack, public_client: str) -> None:
    _, challenge = pkce()

    def run(**overrides: str | None) -> str:
        query = urlencode(auth_params(stack, public_client, challenge, **overrides))
        return stack.authorizer(f"{stack.authorization_endpoint}?{query}")

    with pytest.raises(AuthorizationPageError) as unknown:
        run(client_id="nobody")
    assert unknown.value.status == 400
    with pytest.raises(AuthorizationPageError):
        run(redirect_uri="http://127.0.0.1:33418/other")
    with pytest.raises(AuthorizationPageError):
        run(redirect_uri="https://evil.test/callback")
    with pytest.raises(AuthorizationPageError):
        run(redirect_uri=None)

    cases = {
        "unsupported_response_type": {"response_type": "token"},
        "invalid_request": {"code_challenge_method": "plain"},
        "invalid_scope": {"scope": "mcp:read launch-missiles"},
        "invalid_target": {"resource": "https://other.test/mcp"},
    }
    for error, overrides in cases.items():
        callback = query_of(run(**overrides))
        assert callback["error"] == error, overrides
        assert callback["state"] == "state-123"
        assert callback["iss"] == stack.issuer
        assert "code" not in callback
    for missing in ("code_challenge", "code_challenge_method", "state"):
        assert query_of(run(**{missing: None}))["error"] == "invalid_request", missing
    assert len(stack.authorization_requests) == 4 + len(cases) + 3
    assert stack.authorization_requests[0]["client_id"] == "nobody"


def test_loopback_redirect_port_matching(stack: FakeMCPStack, public_client: str) -> None:
    _, challenge = pkce()
    other_port = "http://127.0.0.1:50123/callback"
    assert "code" in authorize(stack, public_client, challenge, redirect_uri=other_port)
    stack.config.loopback_redirect_any_port = False
    with pytest.raises(AuthorizationPageError):
        authorize(stack, public_client, challenge, redirect_uri=other_port)
    with pytest.raises(AuthorizationPageError):  # port may vary, host may not
        authorize(stack, public_client, challenge, redirect_uri="http://localhost:33418/callback")


def test_redirect_uri_must_match_at_token_endpoint(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    verifier, challenge = pkce()
    other_port = "http://127.0.0.1:50123/callback"
    code = authorize(stack, public_client, challenge, redirect_uri=other_port)["code"]
    response = exchange(http, stack, public_client, code, verifier)  # sends REDIRECT_URI
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("callback_iss", "supported", "expected"),
    [
        ("correct", True, "https://mcp.test"),
        ("correct", False, None),
        ("missing", True, None),
        ("wrong", True, "https://wrong-issuer.test"),
    ],
)
def test_callback_iss(
    stack: FakeMCPStack, public_client: str, callback_iss: str, supported: bool, expected: str | None
) -> None:
    stack.config.callback_iss = callback_iss  # type: ignore[assignment]
    stack.config.iss_parameter_supported = supported
    _, challenge = pkce()
    assert authorize(stack, public_client, challenge).get("iss") == expected


def test_deny_authorization(stack: FakeMCPStack, public_client: str) -> None:
    stack.config.deny_authorization = True
    _, challenge = pkce()
    callback = authorize(stack, public_client, challenge)
    assert callback["error"] == "access_denied"
    assert callback["error_description"]
    assert callback["state"] == "state-123"
    assert callback["iss"] == stack.issuer


def test_client_id_metadata_document(stack: FakeMCPStack, http: httpx.Client) -> None:
    client_id = "https://app.example/oauth/client.json"
    verifier, challenge = pkce()
    with pytest.raises(AuthorizationPageError):
        authorize(stack, client_id, challenge)
    stack.config.client_id_metadata_document_supported = True
    code = authorize(stack, client_id, challenge, redirect_uri="http://127.0.0.1:40000/cb")["code"]
    response = exchange(http, stack, client_id, code, verifier, redirect_uri="http://127.0.0.1:40000/cb")
    assert response.status_code == 200
    with pytest.raises(AuthorizationPageError):  # only loopback redirects for CIMD clients here
        authorize(stack, client_id, challenge, redirect_uri="https://evil.test/cb")


# ---------------------------------------------------------------------- /token


def test_wrong_pkce_verifier_is_rejected_and_burns_the_code(
    stack: FakeMCPStack, http: httpx.Client, public_client: str
) -> None:
    verifier, challenge = pkce()
    code = authorize(stack, public_client, challenge)["code"]
    other_verifier, _ = pkce()
    wrong = exchange(http, stack, public_client, code, other_verifier)
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert exchange(http, stack, public_client, code, verifier).json()["error"] == "invalid_grant"

    verifier, challenge = pkce()
    code = authorize(stack, public_client, challenge)["code"]
    missing = exchange(http, stack, public_client, code, "", code_verifier=None)
    assert missing.json()["error"] == "invalid_request"


def test_code_is_single_use_and_reuse_revokes_tokens(
    stack: FakeMCPStack, http: httpx.Client, public_client: str
) -> None:
    verifier, challenge = pkce()
    code = authorize(stack, public_client, challenge)["code"]
    tokens = exchange(http, stack, public_client, code, verifier).json()
    again = exchange(http, stack, public_client, code, verifier)
    assert again.json()["error"] == "invalid_grant"
    assert http.get(stack.server_url, headers=bearer(tokens["access_token"])).status_code == 401


def test_code_expires_after_sixty_seconds(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    now = 1_000_000.0
    stack.clock = lambda: now
    verifier, challenge = pkce()
    code = authorize(stack, public_client, challenge)["code"]
    now += 61
    assert exchange(http, stack, public_client, code, verifier).json()["error"] == "invalid_grant"


def test_resource_must_match_the_authorization(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    verifier, challenge = pkce()
    code = authorize(stack, public_client, challenge)["code"]
    missing = exchange(http, stack, public_client, code, verifier, resource=None)
    assert missing.json()["error"] == "invalid_target"


def test_token_without_resource_indicator(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    verifier, challenge = pkce()
    code = authorize(stack, public_client, challenge, resource=None)["code"]
    tokens = exchange(http, stack, public_client, code, verifier, resource=None).json()
    assert stack.token_requests[-1]["resource"] is None
    assert http.get(stack.server_url, headers=bearer(tokens["access_token"])).status_code == 401
    stack.config.require_resource_indicator = False
    assert http.get(stack.server_url, headers=bearer(tokens["access_token"])).status_code == 200


def test_parent_prm_resource_is_an_accepted_audience(
    stack: FakeMCPStack, http: httpx.Client, public_client: str
) -> None:
    stack.config.prm_resource = "https://mcp.test/"
    verifier, challenge = pkce()
    code = authorize(stack, public_client, challenge, resource="https://mcp.test/")["code"]
    tokens = exchange(http, stack, public_client, code, verifier, resource="https://mcp.test/").json()
    assert http.get(stack.server_url, headers=bearer(tokens["access_token"])).status_code == 200


def test_unsupported_grant_type_and_content_type(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    response = http.post(stack.token_endpoint, data={"grant_type": "password", "client_id": public_client})
    assert response.json()["error"] == "unsupported_grant_type"
    as_json = http.post(stack.token_endpoint, json={"grant_type": "refresh_token", "client_id": public_client})
    assert as_json.json()["error"] == "invalid_request"
    assert http.get(stack.token_endpoint).status_code == 405


def test_refresh_without_rotation(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    stack.config.rotate_refresh_tokens = False
    tokens = login(http, stack, public_client)
    again = refresh(http, stack, public_client, tokens["refresh_token"]).json()
    assert again["refresh_token"] == tokens["refresh_token"]
    stack.config.return_refresh_token_on_refresh = False
    third = refresh(http, stack, public_client, tokens["refresh_token"]).json()
    assert "refresh_token" not in third
    assert refresh(http, stack, public_client, tokens["refresh_token"]).status_code == 200


def test_refresh_scope_narrowing_and_resource(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    tokens = login(http, stack, public_client, scope="mcp:read mcp:write")
    narrowed = refresh(http, stack, public_client, tokens["refresh_token"], scope="mcp:read").json()
    assert narrowed["scope"] == "mcp:read"
    widened = refresh(http, stack, public_client, narrowed["refresh_token"], scope="admin")
    assert widened.json()["error"] == "invalid_scope"
    other = refresh(http, stack, public_client, narrowed["refresh_token"], resource="https://other.test/mcp")
    assert other.json()["error"] == "invalid_target"
    full = refresh(http, stack, public_client, narrowed["refresh_token"], resource=stack.server_url).json()
    assert full["scope"] == "mcp:read mcp:write"  # the grant keeps its original scope
    assert stack.token_requests[-1]["resource"] == stack.server_url


def test_refresh_token_issuance_rules(stack: FakeMCPStack, http: httpx.Client) -> None:
    stack.add_client("no-refresh", redirect_uris=[REDIRECT_URI], grant_types=["authorization_code"])
    assert "refresh_token" not in login(http, stack, "no-refresh")
    stack.add_client("app", redirect_uris=[REDIRECT_URI])
    stack.config.refresh_token_requires_offline_access = True
    assert "refresh_token" not in login(http, stack, "app")
    assert "refresh_token" in login(http, stack, "app", scope="mcp:read offline_access")
    stack.config.issue_refresh_tokens = False
    assert "refresh_token" not in login(http, stack, "app", scope="mcp:read offline_access")


def test_refresh_token_is_bound_to_its_client(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    stack.add_client("other-app", redirect_uris=[REDIRECT_URI])
    tokens = login(http, stack, public_client)
    assert refresh(http, stack, "other-app", tokens["refresh_token"]).json()["error"] == "invalid_grant"


# ---------------------------------------------------------------------- the resource


def test_expired_token_is_rejected(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    now = 1_700_000_000.0
    stack.clock = lambda: now
    stack.config.access_token_lifetime = 300
    tokens = login(http, stack, public_client)
    assert tokens["expires_in"] == 300
    now += 299
    assert http.get(stack.server_url, headers=bearer(tokens["access_token"])).status_code == 200
    now += 1
    expired = http.get(stack.server_url, headers=bearer(tokens["access_token"]))
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token expired", '
        'resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp"'
    )


def test_insufficient_scope(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    stack.config.required_scopes_by_path = {"/mcp/admin": ["admin"]}
    tokens = login(http, stack, public_client, scope="mcp:read mcp:write")
    assert http.get(stack.server_url, headers=bearer(tokens["access_token"])).status_code == 200
    for path in ("/mcp/admin", "/mcp/admin/users"):
        response = http.get(f"https://mcp.test{path}", headers=bearer(tokens["access_token"]))
        assert response.status_code == 403
        assert response.headers["www-authenticate"].startswith(
            'Bearer error="insufficient_scope", scope="mcp:read mcp:write admin", '
            'resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp"'
        )
    assert http.get("https://mcp.test/mcp/administrator", headers=bearer(tokens["access_token"])).status_code == 200
    stepped_up = login(http, stack, public_client, scope="mcp:read mcp:write admin")
    assert http.get("https://mcp.test/mcp/admin", headers=bearer(stepped_up["access_token"])).status_code == 200


def test_resource_rejects_bad_credentials(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    tokens = login(http, stack, public_client)
    unknown = http.get(stack.server_url, headers=bearer("not-a-token"))
    assert unknown.status_code == 401
    assert unknown.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    basic = http.get(stack.server_url, headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert basic.headers["www-authenticate"].startswith("Bearer resource_metadata=")  # no error: no Bearer token

    in_query = http.get(stack.server_url, params={"access_token": tokens["access_token"]})
    assert in_query.status_code == 400
    assert len(stack.violations) == 1
    assert "query string" in stack.violations[0]
    assert [record["status"] for record in stack.resource_requests] == [401, 401, 400]
    assert stack.resource_requests[1]["authorization"] == "Basic Zm9vOmJhcg=="


def test_token_for_another_resource_is_rejected(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    stack.add_client("other", redirect_uris=[REDIRECT_URI])
    seeded = stack.issue_tokens("other", scopes=["mcp:read"], resource="https://other.test/mcp")
    response = http.get(stack.server_url, headers=bearer(seeded["access_token"]))
    assert response.status_code == 401
    assert "another resource" in response.headers["www-authenticate"]
    good = stack.issue_tokens("other", scopes=["mcp:read"])
    assert http.get(stack.server_url, headers=bearer(good["access_token"])).json()["scopes"] == ["mcp:read"]


# ---------------------------------------------------------------------- revocation and introspection


def test_revocation(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    tokens = login(http, stack, public_client)
    response = http.post(
        stack.revocation_endpoint,
        data={
            "token": tokens["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": public_client,
        },
    )
    assert response.status_code == 200
    assert stack.revocation_requests[-1]["token_kind"] == "refresh_token"
    assert stack.revocation_requests[-1]["revoked"] is True
    assert http.get(stack.server_url, headers=bearer(tokens["access_token"])).status_code == 401
    assert refresh(http, stack, public_client, tokens["refresh_token"]).json()["error"] == "invalid_grant"

    unknown = http.post(stack.revocation_endpoint, data={"token": "nope", "client_id": public_client})
    assert unknown.status_code == 200
    assert stack.revocation_requests[-1]["revoked"] is False
    unauthenticated = http.post(stack.revocation_endpoint, data={"token": "nope"})
    assert unauthenticated.status_code == 401

    other = login(http, stack, public_client)
    http.post(stack.revocation_endpoint, data={"token": other["access_token"], "client_id": public_client})
    assert http.get(stack.server_url, headers=bearer(other["access_token"])).status_code == 401
    assert refresh(http, stack, public_client, other["refresh_token"]).status_code == 200


def test_introspection(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    now = 1_700_000_000.0
    stack.clock = lambda: now
    tokens = login(http, stack, public_client, scope="mcp:read mcp:write")
    active = http.post(stack.introspection_endpoint, data={"token": tokens["access_token"]}).json()
    assert active == {
        "active": True,
        "scope": "mcp:read mcp:write",
        "client_id": public_client,
        "exp": int(now) + 3600,
        "iat": int(now),
        "token_type": "Bearer",
        "iss": stack.issuer,
        "sub": "fake-user",
        "aud": stack.server_url,
    }
    now += 3600
    assert http.post(stack.introspection_endpoint, data={"token": tokens["access_token"]}).json() == {"active": False}
    assert http.post(stack.introspection_endpoint, data={"token": tokens["refresh_token"]}).json()["active"]


# ---------------------------------------------------------------------- failure injection and logs


def test_fail_next(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    stack.fail_next("prm")
    failed = http.get(stack.resource_metadata_url or "")
    assert failed.status_code == 503
    assert failed.json()["error"] == "temporarily_unavailable"
    assert http.get(stack.resource_metadata_url or "").status_code == 200

    stack.fail_next("token", status=429, headers={"Retry-After": "1"})
    verifier, challenge = pkce()
    code = authorize(stack, public_client, challenge)["code"]
    limited = exchange(http, stack, public_client, code, verifier)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert stack.token_requests[-1]["status"] == 429
    tokens = exchange(http, stack, public_client, code, verifier).json()  # the code was not consumed

    stack.fail_next("refresh", status=400, json={"error": "invalid_grant"})
    denied = refresh(http, stack, public_client, tokens["refresh_token"])
    assert (denied.status_code, denied.json()) == (400, {"error": "invalid_grant"})
    assert refresh(http, stack, public_client, tokens["refresh_token"]).status_code == 200

    stack.fail_next("resource", status=500, times=2)
    statuses = [http.get(stack.server_url, headers=bearer(tokens["access_token"])).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]  # an access token outlives the rotation of its refresh token
    assert stack.count("resource") == 3

    stack.fail_next("authorize", status=500)
    with pytest.raises(AuthorizationPageError) as page:
        authorize(stack, public_client, challenge)
    assert page.value.status == 500

    # a pending "refresh" failure is used for refresh requests before a pending "token" one
    stack.fail_next("token", status=502)
    stack.fail_next("refresh", status=504)
    assert refresh(http, stack, public_client, tokens["refresh_token"]).status_code == 504
    assert http.post(stack.token_endpoint, data={"grant_type": "x"}).status_code == 502

    with pytest.raises(ValueError, match="unknown endpoint"):
        stack.fail_next("tokens")
    with pytest.raises(ValueError, match="unknown endpoint"):
        stack.count("tokens")


def test_fail_next_register_revoke_and_metadata(stack: FakeMCPStack, http: httpx.Client) -> None:
    stack.fail_next("as_metadata", status=502)
    stack.fail_next("register", status=500, json={"error": "server_error"})
    stack.fail_next("revoke", status=503)
    assert http.get(stack.as_metadata_url or "").status_code == 502
    assert http.get(stack.as_metadata_url or "").status_code == 200
    assert http.post(stack.registration_endpoint, json={"redirect_uris": [REDIRECT_URI]}).json() == {
        "error": "server_error"
    }
    assert stack.clients == {}
    assert http.post(stack.revocation_endpoint, data={"token": "x", "client_id": "y"}).status_code == 503


def test_reset_log(stack: FakeMCPStack, http: httpx.Client, public_client: str) -> None:
    tokens = login(http, stack, public_client)
    stack.reset_log()
    assert stack.count("token") == 0
    assert stack.grants_used() == []
    assert stack.authorization_requests == []
    assert stack.request_log == []
    # state survives a log reset
    assert http.get(stack.server_url, headers=bearer(tokens["access_token"])).status_code == 200
    assert stack.request_log == [{"endpoint": "resource", "method": "GET", "url": stack.server_url, "status": 200}]


def test_repr_does_not_leak_secrets(stack: FakeMCPStack, http: httpx.Client) -> None:
    client = stack.add_client("conf", "super-secret-value", "client_secret_basic", [REDIRECT_URI])
    tokens = stack.issue_tokens("conf", scopes=["mcp:read"])
    texts = [repr(stack), repr(client), repr(stack.clients), repr(stack.log), str(stack)]
    for text in texts:
        assert "super-secret-value" not in text
        assert tokens["access_token"] not in text
        assert tokens["refresh_token"] not in text
    assert "FakeMCPStack(" in repr(stack)


def test_concurrent_requests_are_thread_safe(stack: FakeMCPStack, public_client: str) -> None:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to expose races
    try:
        with httpx.Client(transport=stack.httpx_transport()) as http:
            refresh_tokens = [login(http, stack, public_client)["refresh_token"] for _ in range(20)]
        statuses: list[int] = []
        errors: list[BaseException] = []

        def worker(barrier: threading.Barrier, refresh_token: str) -> None:
            try:
                with httpx.Client(transport=stack.httpx_transport()) as client:
                    barrier.wait()
                    statuses.append(refresh(client, stack, public_client, refresh_token).status_code)
            except BaseException as exc:
                errors.append(exc)

        for refresh_token in refresh_tokens:
            # several threads race to rotate the same refresh token: exactly one may win
            barrier = threading.Barrier(6)
            threads = [threading.Thread(target=worker, args=(barrier, refresh_token)) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        sys.setswitchinterval(previous)
    assert errors == []
    assert statuses.count(200) == len(refresh_tokens)
    assert statuses.count(400) == 5 * len(refresh_tokens)
    assert stack.count("refresh") == 6 * len(refresh_tokens)
    assert len(stack.token_requests) == 7 * len(refresh_tokens)
    assert len(stack.request_log) == 8 * len(refresh_tokens)  # plus one /authorize per login


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="prm_mode"):
        FakeMCPStack(FakeStackConfig(prm_mode="everywhere"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mcp_path"):
        FakeMCPStack(FakeStackConfig(mcp_path="mcp/"))
    with pytest.raises(ValueError, match="base_url"):
        FakeMCPStack(base_url="https://mcp.test/prefix")
    stack = FakeMCPStack()
    stack.config.callback_iss = "sometimes"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="callback_iss"):
        stack.handle("GET", stack.server_url)


def test_handle_accepts_mapping_headers(stack: FakeMCPStack) -> None:
    token = stack.issue_tokens(stack.add_client("c", redirect_uris=[REDIRECT_URI]).client_id)["access_token"]
    response = stack.handle("GET", stack.server_url, {"Authorization": f"Bearer {token}"}, b"")
    assert response.status == 200
    assert response.json()["client_id"] == "c"
    assert response.header("content-type") == "application/json"


# ---------------------------------------------------------------------- adapters


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_asgi_app() -> None:
    stack = FakeMCPStack(FakeStackConfig(as_base_url="https://auth.test"), base_url="https://mcp.test")
    stack.add_client("app", redirect_uris=[REDIRECT_URI])
    transport = httpx.ASGITransport(app=stack.asgi_app)
    async with httpx.AsyncClient(transport=transport) as http:
        first = await http.get("https://mcp.test/mcp")
        assert first.status_code == 401
        assert "resource_metadata=" in first.headers["www-authenticate"]
        prm = (await http.get("https://mcp.test/.well-known/oauth-protected-resource/mcp")).json()
        assert prm["authorization_servers"] == ["https://auth.test"]
        metadata = (await http.get("https://auth.test/.well-known/oauth-authorization-server")).json()
        verifier, challenge = pkce()
        code = authorize(stack, "app", challenge)["code"]
        token = await http.post(
            metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
                "client_id": "app",
                "resource": stack.server_url,
            },
        )
        assert token.status_code == 200
        ok = await http.post("https://mcp.test/mcp?x=1", headers=bearer(token.json()["access_token"]), content=b"abc")
        assert ok.json()["body_length"] == 3
    assert stack.resource_requests[-1]["url"] == "https://mcp.test/mcp?x=1"


def test_serve_stack_over_loopback() -> None:
    with serve_stack(FakeStackConfig(required_scopes_by_path={"/mcp/admin": ["admin"]})) as stack:
        assert stack.base_url.startswith("http://127.0.0.1:")
        stack.add_client("app", redirect_uris=[REDIRECT_URI])
        with httpx.Client() as http:
            first = http.get(stack.server_url)
            assert first.status_code == 401
            prm_url = first.headers["www-authenticate"].split('resource_metadata="')[1].rstrip('"')
            prm = http.get(prm_url).json()
            assert prm["resource"] == stack.server_url
            metadata = http.get(prm["authorization_servers"][0] + "/.well-known/oauth-authorization-server").json()
            assert metadata["issuer"] == stack.issuer
            tokens = login(http, stack, "app")
            ok = http.post(stack.server_url, headers=bearer(tokens["access_token"]), content=b"x" * 10)
            assert ok.json()["body_length"] == 10
            assert http.get(stack.server_url + "/admin", headers=bearer(tokens["access_token"])).status_code == 403
        url = stack.server_url
    with pytest.raises(httpx.ConnectError), httpx.Client() as http:
        http.get(url)


def test_serve_stack_refuses_a_second_origin() -> None:
    with (
        pytest.raises(ValueError, match="single origin"),
        serve_stack(FakeStackConfig(as_base_url="https://a.test")),
    ):
        pass


def _lifespan_app(startup_error: str | None, events: list[str]) -> Any:
    """A bare ASGI app answering every request with its path; its lifespan startup fails when told to."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    if startup_error is not None:
                        await send({"type": "lifespan.startup.failed", "message": startup_error})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = scope["path"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    return app


def test_serve_asgi_serves_on_the_reserved_port_runs_the_lifespan_and_frees_the_port() -> None:
    events: list[str] = []
    sock = reserve_loopback_port()
    port = sock.getsockname()[1]
    with serve_asgi(_lifespan_app(None, events), sock=sock, lifespan="on", name="the echo app") as origin:
        assert origin == f"http://127.0.0.1:{port}"
        assert events == ["lifespan.startup"]  # started before the block runs
        assert httpx.get(f"{origin}/hello").text == "/hello"
    assert events == ["lifespan.startup", "lifespan.shutdown"]
    assert sock.fileno() == -1  # the socket is closed with the server
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{origin}/hello")


def test_serve_asgi_reports_an_app_that_fails_to_start_by_name() -> None:
    sock = reserve_loopback_port()
    with (
        pytest.raises(RuntimeError, match="the broken app failed to start"),
        serve_asgi(_lifespan_app("no database", []), sock=sock, lifespan="on", name="the broken app"),
    ):
        pytest.fail("the block must not run when the app did not start")
    assert sock.fileno() == -1


@needs_httpx2
def test_httpx2_transport(public_client: str, stack: FakeMCPStack) -> None:
    import httpx2

    with httpx2.Client(transport=stack.httpx2_transport()) as http:
        assert http.get(stack.server_url).status_code == 401
        verifier, challenge = pkce()
        code = authorize(stack, public_client, challenge)["code"]
        tokens = http.post(
            stack.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
                "client_id": public_client,
                "resource": stack.server_url,
            },
        ).json()
        assert http.get(stack.server_url, headers=bearer(tokens["access_token"])).json()["ok"] is True


def test_mock_respx_routes_both_origins() -> None:
    stack = FakeMCPStack(FakeStackConfig(as_base_url="https://auth.test:8443"), base_url="https://mcp.test")
    with respx.mock(assert_all_called=False) as router:
        routes = stack.mock_respx(router)
        assert len(routes) == 2
        with httpx.Client() as http:
            assert http.get("https://mcp.test/mcp").status_code == 401
            metadata = http.get("https://auth.test:8443/.well-known/oauth-authorization-server")
            assert metadata.json()["issuer"] == "https://auth.test:8443"
            with pytest.raises(AllMockedAssertionError):
                http.get("https://auth.test/.well-known/oauth-authorization-server")  # other port
    assert routes[0].call_count == 1
    assert routes[1].call_count == 1
