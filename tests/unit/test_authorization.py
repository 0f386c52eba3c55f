from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from mcp_oauth_auth.exceptions import (
    AuthorizationDeniedError,
    AuthorizationError,
    IssuerMismatchError,
    PKCENotSupportedError,
    StateMismatchError,
)
from mcp_oauth_auth.flow.authorization import (
    check_pkce_support,
    code_challenge_s256,
    start_authorization,
    validate_callback,
)
from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata
from mcp_oauth_auth.records import ClientRegistration

REDIRECT = "http://127.0.0.1:9999/callback"


def metadata(**overrides: object) -> AuthorizationServerMetadata:
    fields: dict[str, object] = {
        "issuer": "https://as.example",
        "authorization_endpoint": "https://as.example/authorize",
        "token_endpoint": "https://as.example/token",
        "code_challenge_methods_supported": ("S256",),
        "authorization_response_iss_parameter_supported": True,
    }
    fields.update(overrides)
    return AuthorizationServerMetadata(**fields)  # type: ignore[arg-type]


CLIENT = ClientRegistration(client_id="client-1", kind="dynamic", redirect_uris=(REDIRECT,))


def test_pkce_s256_rfc7636_appendix_b_vector() -> None:
    assert code_challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_authorization_url_parameters() -> None:
    pending = start_authorization(metadata(), CLIENT, REDIRECT, ("mcp:read", "offline_access"), "https://h/mcp")
    query = {k: v[0] for k, v in parse_qs(urlsplit(pending.url).query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == "client-1"
    assert query["redirect_uri"] == REDIRECT
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == code_challenge_s256(pending.code_verifier)
    assert query["state"] == pending.state
    assert query["resource"] == "https://h/mcp"
    assert query["scope"] == "mcp:read offline_access"
    assert "prompt" not in query  # not an OpenID provider
    assert 43 <= len(pending.code_verifier) <= 128


def test_fresh_verifier_and_state_per_attempt() -> None:
    first = start_authorization(metadata(), CLIENT, REDIRECT, (), None)
    second = start_authorization(metadata(), CLIENT, REDIRECT, (), None)
    assert first.state != second.state
    assert first.code_verifier != second.code_verifier
    assert "scope=" not in first.url
    assert "resource=" not in first.url


def test_openid_provider_gets_prompt_consent_with_offline_access() -> None:
    oidc = metadata(is_openid_provider=True)
    with_offline = start_authorization(oidc, CLIENT, REDIRECT, ("openid", "offline_access"), None)
    without = start_authorization(oidc, CLIENT, REDIRECT, ("openid",), None)
    assert "prompt=consent" in with_offline.url
    assert "prompt=" not in without.url


def test_endpoint_with_query_keeps_it() -> None:
    pending = start_authorization(
        metadata(authorization_endpoint="https://as/authorize?tenant=x"), CLIENT, REDIRECT, (), None
    )
    assert pending.url.startswith("https://as/authorize?tenant=x&response_type=code")


def callback(pending_state: str, **params: str) -> str:
    return f"{REDIRECT}?{urlencode({'state': pending_state, **params})}"


def test_valid_callback_returns_code() -> None:
    pending = start_authorization(metadata(), CLIENT, REDIRECT, (), None)
    url = callback(pending.state, code="the-code", iss="https://as.example")
    assert validate_callback(url, pending, metadata()) == "the-code"


def test_state_mismatch_and_missing() -> None:
    pending = start_authorization(metadata(), CLIENT, REDIRECT, (), None)
    with pytest.raises(StateMismatchError):
        validate_callback(callback("other", code="c", iss="https://as.example"), pending, metadata())
    with pytest.raises(StateMismatchError):
        validate_callback(f"{REDIRECT}?code=c&iss=https://as.example", pending, metadata())


def test_iss_required_when_advertised() -> None:
    pending = start_authorization(metadata(), CLIENT, REDIRECT, (), None)
    with pytest.raises(IssuerMismatchError):
        validate_callback(callback(pending.state, code="c"), pending, metadata())


def test_iss_absent_and_not_advertised_is_accepted() -> None:
    server = metadata(authorization_response_iss_parameter_supported=False)
    pending = start_authorization(server, CLIENT, REDIRECT, (), None)
    assert validate_callback(callback(pending.state, code="c"), pending, server) == "c"


@pytest.mark.parametrize("advertised", [True, False])
@pytest.mark.parametrize("iss", ["https://evil.example", "https://as.example/", "HTTPS://as.example"])
def test_iss_exact_comparison(advertised: bool, iss: str) -> None:
    server = metadata(authorization_response_iss_parameter_supported=advertised)
    pending = start_authorization(server, CLIENT, REDIRECT, (), None)
    with pytest.raises(IssuerMismatchError):
        validate_callback(callback(pending.state, code="c", iss=iss), pending, server)


def test_error_text_of_mismatched_issuer_is_never_shown() -> None:
    pending = start_authorization(metadata(), CLIENT, REDIRECT, (), None)
    url = callback(pending.state, error="access_denied", error_description="call 555-EVIL", iss="https://evil")
    with pytest.raises(IssuerMismatchError) as caught:
        validate_callback(url, pending, metadata())
    assert "555-EVIL" not in str(caught.value)
    assert caught.value.error_description is None


def test_error_callback_from_right_issuer() -> None:
    pending = start_authorization(metadata(), CLIENT, REDIRECT, (), None)
    url = callback(pending.state, error="access_denied", error_description="no", iss="https://as.example")
    with pytest.raises(AuthorizationDeniedError) as caught:
        validate_callback(url, pending, metadata())
    assert caught.value.error == "access_denied"


def test_callback_to_another_uri_or_without_code() -> None:
    pending = start_authorization(metadata(), CLIENT, REDIRECT, (), None)
    with pytest.raises(AuthorizationError):
        validate_callback(f"http://127.0.0.1:1/other?state={pending.state}&code=c", pending, metadata())
    with pytest.raises(AuthorizationError):
        validate_callback(callback(pending.state, iss="https://as.example"), pending, metadata())


def test_duplicated_parameters_are_refused() -> None:
    pending = start_authorization(metadata(), CLIENT, REDIRECT, (), None)
    url = callback(pending.state, code="c", iss="https://as.example") + "&code=d"
    with pytest.raises(AuthorizationError):
        validate_callback(url, pending, metadata())


def test_pkce_support_checks() -> None:
    check_pkce_support(metadata(), trust_unadvertised=False)
    with pytest.raises(PKCENotSupportedError):
        check_pkce_support(metadata(code_challenge_methods_supported=("plain",)), trust_unadvertised=True)
    with pytest.raises(PKCENotSupportedError):
        check_pkce_support(metadata(code_challenge_methods_supported=None), trust_unadvertised=False)
    check_pkce_support(metadata(code_challenge_methods_supported=None), trust_unadvertised=True)
    # No metadata at all (MCP 2025-03-26 default endpoints): that revision made PKCE mandatory, so no opt-out is needed.
    defaults = metadata(code_challenge_methods_supported=None, assumed_defaults=True)
    check_pkce_support(defaults, trust_unadvertised=False)
    check_pkce_support(defaults, trust_unadvertised=True)


def test_only_access_denied_is_a_denial() -> None:
    from mcp_oauth_auth.exceptions import AuthorizationDeniedError, AuthorizationError
    from mcp_oauth_auth.flow.authorization import start_authorization, validate_callback
    from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata
    from mcp_oauth_auth.records import ClientRegistration

    metadata = AuthorizationServerMetadata(
        issuer="https://as.example",
        authorization_endpoint="https://as.example/authorize",
        token_endpoint="https://as.example/token",
    )
    client = ClientRegistration(client_id="c", kind="dynamic")
    redirect = "http://127.0.0.1:9999/callback"
    pending = start_authorization(metadata, client, redirect, ("mcp:read",), None)
    base = f"{redirect}?state={pending.state}&iss=https%3A%2F%2Fas.example"
    with pytest.raises(AuthorizationDeniedError):
        validate_callback(f"{base}&error=access_denied", pending, metadata)
    with pytest.raises(AuthorizationError) as caught:
        validate_callback(f"{base}&error=invalid_scope&error_description=not+allowed", pending, metadata)
    assert not isinstance(caught.value, AuthorizationDeniedError)
    assert caught.value.error == "invalid_scope"
