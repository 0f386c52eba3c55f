"""The two legs of enterprise-managed authorization as sans-IO flows against canned answers: the exact request
bodies (token exchange at the IdP, jwt-bearer grant at the MCP authorization server) with every client
authentication, and what the MCP authorization server's metadata must not rule out."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any
from urllib.parse import parse_qsl

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_oauth_auth import EnterpriseIdP, PrivateKeyJWT
from mcp_oauth_auth.exceptions import IdentityAssertionError, TokenExchangeError
from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata
from mcp_oauth_auth.flow.effects import HttpRequest, HttpResponse, ObtainAssertion
from mcp_oauth_auth.flow.enterprise import (
    ID_JAG_PROFILE,
    ID_JAG_TOKEN_TYPE,
    check_id_jag_support,
    enterprise_grant,
)
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.jwt_bearer import JWT_BEARER
from mcp_oauth_auth.records import ClientRegistration

from .flowkit import Harness, json_response

IDP_TOKEN = "https://idp.example.com/token"
AS_ISSUER = "https://auth.example.com"
AS_TOKEN = "https://auth.example.com/token"
RESOURCE = "https://mcp.example.com/mcp"
ID_TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
ID_JAG = "eyJ0eXAiOiJvYXV0aC1pZC1qYWcrand0In0.eyJzdWIiOiJhbGljZSJ9.c2lnbmVk"
RETRY = RetryPolicy(attempts=3, base_delay=0)


class AssertionHarness(Harness):
    """The flowkit harness, also answering ObtainAssertion with the source itself (a string here)."""

    def execute(self, effect: Any) -> Any:
        if isinstance(effect, ObtainAssertion):
            return effect.source
        return super().execute(effect)


def form(request: HttpRequest) -> dict[str, str]:
    return dict(parse_qsl(request.body.decode()))


def claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    loaded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return loaded


def id_jag_answer() -> HttpResponse:
    return json_response(
        200, {"access_token": ID_JAG, "issued_token_type": ID_JAG_TOKEN_TYPE, "token_type": "N_A", "expires_in": 300}
    )


def access_answer() -> HttpResponse:
    return json_response(200, {"access_token": "mcp-access-token", "token_type": "Bearer", "expires_in": 3600})


def run_grant(harness: Harness, idp: EnterpriseIdP, client: ClientRegistration, private_key: Any = None) -> Any:
    return harness.run(
        enterprise_grant(idp, AS_TOKEN, AS_ISSUER, client, private_key, ("mcp:read", "mcp:write"), RESOURCE, RETRY)
    )


def test_the_request_bodies_of_both_legs_with_secrets() -> None:
    harness = AssertionHarness(routes={IDP_TOKEN: id_jag_answer(), AS_TOKEN: access_answer()})
    idp = EnterpriseIdP(
        token_endpoint=IDP_TOKEN,
        client_id="idp-client",
        client_secret="idp-secret",
        token_endpoint_auth_method="client_secret_post",
        id_token=ID_TOKEN,
    )
    client = ClientRegistration("mcp-client", "pre-registered", "client_secret_basic", client_secret="mcp-secret")
    _, tokens = run_grant(harness, idp, client)
    assert tokens.access_token == "mcp-access-token"
    exchange, grant = harness.sent
    assert exchange.url == IDP_TOKEN
    assert form(exchange) == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "requested_token_type": "urn:ietf:params:oauth:token-type:id-jag",
        "audience": AS_ISSUER,
        "subject_token": ID_TOKEN,
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "scope": "mcp:read mcp:write",
        "resource": RESOURCE,
        "client_id": "idp-client",
        "client_secret": "idp-secret",
    }
    assert grant.url == AS_TOKEN
    assert form(grant) == {
        "grant_type": JWT_BEARER,
        "assertion": ID_JAG,
        "scope": "mcp:read mcp:write",
        "resource": RESOURCE,
        "client_id": "mcp-client",
    }
    basic = dict(grant.headers)["Authorization"]
    assert base64.b64decode(basic.removeprefix("Basic ")) == b"mcp-client:mcp-secret"


def test_private_key_jwt_at_both_servers_with_their_own_audiences() -> None:
    harness = AssertionHarness(routes={IDP_TOKEN: id_jag_answer(), AS_TOKEN: access_answer()})
    idp_key = PrivateKeyJWT(ec.generate_private_key(ec.SECP256R1()))
    idp = EnterpriseIdP(token_endpoint=IDP_TOKEN, client_id="idp-client", private_key=idp_key, id_token=ID_TOKEN)
    client = ClientRegistration("mcp-client", "pre-registered", "private_key_jwt")
    run_grant(harness, idp, client, PrivateKeyJWT(ec.generate_private_key(ec.SECP256R1())))
    exchange, grant = (form(request) for request in harness.sent)
    for sent, client_id, audience in ((exchange, "idp-client", IDP_TOKEN), (grant, "mcp-client", AS_ISSUER)):
        assert sent["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        assertion = claims(sent["client_assertion"])
        assert (assertion["iss"], assertion["sub"], assertion["aud"]) == (client_id, client_id, audience)
    assert "client_secret" not in exchange


def test_the_as_refusal_is_raised_once_with_its_error() -> None:
    refusal = json_response(400, {"error": "invalid_grant", "error_description": "audience mismatch"})
    harness = AssertionHarness(routes={IDP_TOKEN: id_jag_answer(), AS_TOKEN: refusal})
    idp = EnterpriseIdP(token_endpoint=IDP_TOKEN, client_id="idp-client", id_token=ID_TOKEN)
    client = ClientRegistration("mcp-client", "pre-registered", "client_secret_basic", client_secret="mcp-secret")
    with pytest.raises(TokenExchangeError) as caught:
        run_grant(harness, idp, client)
    assert caught.value.error == "invalid_grant"
    assert caught.value.error_description == "audience mismatch"
    assert [request.url for request in harness.sent] == [IDP_TOKEN, AS_TOKEN]


def test_an_idp_echoing_the_subject_token_does_not_leak_it() -> None:
    echo = json_response(400, {"error": "invalid_grant", "error_description": f"bad token {ID_TOKEN}"})
    harness = AssertionHarness(routes={IDP_TOKEN: echo})
    idp = EnterpriseIdP(token_endpoint=IDP_TOKEN, client_id="idp-client", id_token=ID_TOKEN)
    client = ClientRegistration("mcp-client", "pre-registered", "client_secret_basic", client_secret="mcp-secret")
    with pytest.raises(IdentityAssertionError) as caught:
        run_grant(harness, idp, client)
    assert ID_TOKEN not in str(caught.value)
    assert ID_TOKEN not in (caught.value.error_description or "")


def metadata(**fields: Any) -> AuthorizationServerMetadata:
    extra = fields.pop("extra", {})
    return AuthorizationServerMetadata(AS_ISSUER, f"{AS_ISSUER}/authorize", AS_TOKEN, extra=extra, **fields)


def test_metadata_that_rules_out_the_grant_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mcp_oauth_auth")
    with pytest.raises(IdentityAssertionError, match="does not offer the jwt-bearer grant"):
        check_id_jag_support(metadata(grant_types_supported=("authorization_code",)))
    with pytest.raises(IdentityAssertionError, match="lacks"):
        check_id_jag_support(metadata(extra={"authorization_grant_profiles_supported": ["urn:other"]}))
    with pytest.raises(IdentityAssertionError, match="lacks"):
        check_id_jag_support(metadata(extra={"authorization_grant_profiles_supported": "not a list"}))
    check_id_jag_support(metadata(grant_types_supported=(JWT_BEARER,), extra={}))
    assert "does not list authorization_grant_profiles_supported" in caplog.text
    caplog.clear()
    profiles = {"authorization_grant_profiles_supported": [ID_JAG_PROFILE]}
    check_id_jag_support(metadata(grant_types_supported=(JWT_BEARER,), extra=profiles))
    assert caplog.text == ""
