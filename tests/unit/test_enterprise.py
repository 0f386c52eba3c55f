"""Enterprise-managed authorization (ID-JAG): MCPOAuth(url, client_id=..., client_secret=...,
identity_assertion=EnterpriseIdP(...)) exchanges the person's ID token at the fake stack's identity provider for an
ID-JAG (RFC 8693) and presents it to the fake authorization server in the jwt-bearer grant; refusals at either leg
are typed and not retried; without an ID token, one single sign-on at the IdP serves every MCP server sharing the
store, renewed with the IdP session's refresh token; secrets never reach a log."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_oauth_auth import DeviceAuthorizer, EnterpriseIdP, MCPOAuth, MemoryTokenStore
from mcp_oauth_auth.exceptions import ConfigurationError, IdentityAssertionError, TokenExchangeError
from mcp_oauth_auth.flow.enterprise import ID_JAG_TOKEN_TYPE, ID_TOKEN_TYPE, SAML2_TOKEN_TYPE, TOKEN_EXCHANGE
from mcp_oauth_auth.flow.jwt_bearer import JWT_BEARER
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig

from .clients import KIND_PARAMS, ClientKind, send_all

IDP = "https://idp.test"
MCP_SECRET = "mcp-client-secret-value"
SYNC = ClientKind("httpx", "sync")


@pytest.fixture(params=KIND_PARAMS)
def kind(request: pytest.FixtureRequest) -> ClientKind:
    assert isinstance(request.param, ClientKind)
    return request.param


def enterprise_stack(base_url: str = "https://mcp.test", **config: Any) -> FakeMCPStack:
    stack = FakeMCPStack(FakeStackConfig(idp_base_url=IDP, **config), base_url=base_url)
    stack.add_client("mcp-client", MCP_SECRET, "client_secret_basic", grant_types=[JWT_BEARER])
    return stack


def id_token(stack: FakeMCPStack, *, audience: str = "idp-client", expires_in: int = 3600) -> str:
    assert stack.idp is not None
    now = int(time.time())
    claims = {"iss": IDP, "sub": "alice", "aud": audience, "iat": now, "exp": now + expires_in}
    return stack.idp.sign(claims)


def enterprise_auth(stack: FakeMCPStack, idp: EnterpriseIdP, **options: Any) -> MCPOAuth:
    options.setdefault("store", MemoryTokenStore())
    return MCPOAuth(
        stack.server_url, client_id="mcp-client", client_secret=MCP_SECRET, identity_assertion=idp, **options
    )


def given_token_idp(stack: FakeMCPStack, **fields: Any) -> EnterpriseIdP:
    fields.setdefault("id_token", id_token(stack))
    return EnterpriseIdP(issuer=IDP, client_id="idp-client", client_secret="idp-secret", **fields)


def test_both_legs_with_a_given_id_token(kind: ClientKind) -> None:
    stack = enterprise_stack()
    auth = enterprise_auth(stack, given_token_idp(stack))
    results = send_all(kind, stack, auth, [("GET", stack.server_url)] * 3)
    assert [result.status for result in results] == [200] * 3
    assert stack.idp is not None
    [exchange] = stack.idp.token_requests
    assert exchange["grant_type"] == TOKEN_EXCHANGE
    assert exchange["requested_token_type"] == ID_JAG_TOKEN_TYPE
    assert exchange["subject_token_type"] == ID_TOKEN_TYPE
    assert exchange["audience"] == stack.issuer  # the MCP authorization server's issuer, as discovered
    assert exchange["resource"] == stack.server_url
    assert exchange["auth_method"] == "client_secret_basic"
    assert exchange["status"] == 200
    [grant] = stack.token_requests
    assert grant["grant_type"] == JWT_BEARER
    assert grant["id_jag"] is True
    assert grant["client_id"] == "mcp-client"
    assert grant["auth_method"] == "client_secret_basic"
    assert grant["resource"] == stack.server_url
    assert grant["status"] == 200
    assert stack.count("authorize") == 0
    assert stack.count("register") == 0


def test_scope_goes_to_both_legs() -> None:
    stack = enterprise_stack(scopes_supported=["mcp:read", "mcp:write"])
    auth = enterprise_auth(stack, given_token_idp(stack), scopes=["mcp:read"])
    assert send_all(SYNC, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert stack.idp is not None
    assert stack.idp.token_requests[0]["scope"] == "mcp:read"
    assert stack.token_requests[0]["scope"] == "mcp:read"


def test_the_token_endpoint_without_discovery_and_a_secret_in_the_form() -> None:
    stack = enterprise_stack()
    idp = EnterpriseIdP(
        token_endpoint=f"{IDP}/token",
        client_id="idp-client",
        client_secret="idp-secret",
        token_endpoint_auth_method="client_secret_post",
        id_token=id_token(stack),
    )
    assert send_all(SYNC, stack, enterprise_auth(stack, idp), [("GET", stack.server_url)])[0].status == 200
    assert stack.idp is not None
    assert [request["auth_method"] for request in stack.idp.token_requests] == ["client_secret_post"]
    assert not any(request["url"].startswith(f"{IDP}/.well-known") for request in stack.request_log)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync function", "async function"])
def test_the_id_token_from_a_function(kind: ClientKind, asynchronous: bool) -> None:
    stack = enterprise_stack()
    calls: list[str] = []

    def fetch() -> str:
        calls.append("called")
        return id_token(stack)

    async def afetch() -> str:
        return fetch()

    auth = enterprise_auth(stack, given_token_idp(stack, id_token=afetch if asynchronous else fetch))
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert calls == ["called"]


def test_an_expiring_token_is_replaced_by_a_new_id_jag_without_the_person() -> None:
    stack = enterprise_stack()
    store = MemoryTokenStore()
    idp = given_token_idp(stack)
    assert send_all(SYNC, stack, enterprise_auth(stack, idp, store=store), [("GET", stack.server_url)])[0].status == 200
    [key] = store.list_keys()
    record = store.load(key)
    assert record is not None
    assert record.tokens is not None
    now = time.time()
    store.save(record.with_tokens(replace(record.tokens, expires_at=now + 5, issued_at=now - 3595)))
    restarted = enterprise_auth(stack, idp, store=store)
    assert send_all(SYNC, stack, restarted, [("GET", stack.server_url)])[0].status == 200
    assert stack.idp is not None
    assert len(stack.idp.token_requests) == 2
    assert [request["id_jag"] for request in stack.token_requests] == [True, True]
    assert len(set(stack.idp.issued_id_jags)) == 2


def test_the_idp_refusing_the_exchange_is_a_typed_error_without_retry() -> None:
    stack = enterprise_stack()
    foreign = ec.generate_private_key(ec.SECP256R1())
    other = FakeMCPStack(FakeStackConfig(idp_base_url=IDP, idp_signing_key=foreign))
    auth = enterprise_auth(stack, given_token_idp(stack, id_token=id_token(other)))
    with pytest.raises(IdentityAssertionError) as caught:
        send_all(SYNC, stack, auth, [("GET", stack.server_url)])
    assert caught.value.error == "invalid_grant"
    assert stack.idp is not None
    assert len(stack.idp.token_requests) == 1
    assert stack.token_requests == []


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        ({"access_token": "a.b.c", "issued_token_type": ID_TOKEN_TYPE, "token_type": "N_A"}, "issued_token_type"),
        ({"access_token": "a.b.c", "issued_token_type": ID_JAG_TOKEN_TYPE, "token_type": "Bearer"}, "token_type"),
        ({"issued_token_type": ID_JAG_TOKEN_TYPE, "token_type": "N_A"}, "no ID-JAG"),
        ({"access_token": "opaque", "issued_token_type": ID_JAG_TOKEN_TYPE, "token_type": "N_A"}, "no ID-JAG"),
    ],
)
def test_an_answer_that_is_not_an_id_jag_is_refused(answer: dict[str, Any], complaint: str) -> None:
    stack = enterprise_stack()
    idp = EnterpriseIdP(token_endpoint=f"{IDP}/token", client_id="idp-client", id_token=id_token(stack))
    stack.fail_next("idp", status=200, json=answer)
    with pytest.raises(IdentityAssertionError, match=complaint):
        send_all(SYNC, stack, enterprise_auth(stack, idp), [("GET", stack.server_url)])
    assert stack.token_requests == []


def test_the_authorization_server_refusing_the_id_jag_is_final() -> None:
    """The IdP stamps another client into the ID-JAG than the one authenticating: invalid_grant, raised once."""
    stack = enterprise_stack(idp_mcp_client_id="someone-else")
    auth = enterprise_auth(stack, given_token_idp(stack))
    with pytest.raises(TokenExchangeError) as caught:
        send_all(SYNC, stack, auth, [("GET", stack.server_url)])
    assert not isinstance(caught.value, IdentityAssertionError)
    assert caught.value.error == "invalid_grant"
    assert stack.idp is not None
    assert len(stack.idp.token_requests) == 1
    assert len(stack.token_requests) == 1
    assert "authorization_code" not in stack.grants_used()


def test_a_server_without_the_id_jag_profile_is_refused_before_the_idp_is_asked() -> None:
    stack = enterprise_stack(authorization_grant_profiles_supported=["urn:example:other-profile"])
    with pytest.raises(IdentityAssertionError, match="grant-profile:id-jag"):
        send_all(SYNC, stack, enterprise_auth(stack, given_token_idp(stack)), [("GET", stack.server_url)])
    assert stack.idp is not None
    assert stack.idp.token_requests == []


def test_the_fake_publishes_the_profile() -> None:
    stack = enterprise_stack()
    document = stack.handle("GET", f"{stack.issuer}/.well-known/oauth-authorization-server").json()
    assert document["authorization_grant_profiles_supported"] == ["urn:ietf:params:oauth:grant-profile:id-jag"]
    assert JWT_BEARER in document["grant_types_supported"]
    plain = FakeMCPStack().handle("GET", "https://mcp.test/.well-known/oauth-authorization-server").json()
    assert "authorization_grant_profiles_supported" not in plain


def test_a_saml_assertion_is_sent_with_its_type() -> None:
    stack = enterprise_stack()
    idp = EnterpriseIdP(issuer=IDP, client_id="idp-client", client_secret="idp-secret", saml_assertion="PHNhbWw-")
    with pytest.raises(IdentityAssertionError):  # the fake IdP takes ID tokens only
        send_all(SYNC, stack, enterprise_auth(stack, idp), [("GET", stack.server_url)])
    assert stack.idp is not None
    assert stack.idp.token_requests[0]["subject_token_type"] == SAML2_TOKEN_TYPE


def test_dpop_with_the_id_jag() -> None:
    stack = enterprise_stack(dpop=True)
    auth = enterprise_auth(stack, given_token_idp(stack), dpop=True)
    results = send_all(SYNC, stack, auth, [("GET", stack.server_url)])
    assert results[0].status == 200
    assert stack.token_requests[0]["dpop_jkt"] is not None
    assert auth.tokens is not None
    assert auth.tokens.token_type == "DPoP"


# -- single sign-on ----------------------------------------------------------------------------------------------


def sso_idp() -> EnterpriseIdP:
    return EnterpriseIdP(issuer=IDP, client_id="idp-client", client_secret="idp-secret", scopes=("openid", "email"))


def test_one_sign_in_serves_two_mcp_servers() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    first = enterprise_stack(idp_signing_key=key)
    second = enterprise_stack("https://other-mcp.test", idp_signing_key=key)
    store = MemoryTokenStore()
    sign_ins: list[str] = []

    def person(url: str) -> str:
        sign_ins.append(url)
        return first.authorizer(url)

    auth = enterprise_auth(first, sso_idp(), store=store, authorizer=person)
    assert send_all(SYNC, first, auth, [("GET", first.server_url)])[0].status == 200
    assert first.idp is not None
    [authorization] = first.idp.authorization_requests
    assert set(authorization["scope"].split()) >= {"openid", "email", "offline_access"}
    assert authorization["nonce"]
    assert authorization["code_challenge_method"] == "S256"
    other = enterprise_auth(second, sso_idp(), store=store, authorizer=lambda url: pytest.fail("asked again"))
    assert send_all(SYNC, second, other, [("GET", second.server_url)])[0].status == 200
    assert len(sign_ins) == 1
    assert second.idp is not None
    assert [request["grant_type"] for request in second.idp.token_requests] == [TOKEN_EXCHANGE]
    assert second.token_requests[0]["id_jag"] is True
    # The IdP session is its own record in the store, next to the two servers' credentials.
    assert len(store.list_keys()) == 3


def test_two_accounts_never_share_an_idp_session() -> None:
    # Each account's MCP credential comes from its own sign-in at the IdP: the IdP session record belongs to the
    # account too, so "work" never presents the ID token the person signed in with as "personal".
    stack = enterprise_stack()
    store = MemoryTokenStore()
    sign_ins: list[str] = []

    def person(url: str) -> str:
        sign_ins.append(url)
        return stack.authorizer(url)

    for account in ("personal", "work", "personal"):
        auth = enterprise_auth(stack, sso_idp(), store=store, authorizer=person, account=account)
        assert send_all(SYNC, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert len(sign_ins) == 2
    keys = store.list_keys()
    assert len(keys) == 4
    assert sorted(str(key.account) for key in keys if key.resource.startswith(IDP)) == ["personal", "work"]


def test_a_providers_parameters_stay_with_the_mcp_authorization_server() -> None:
    # A preset and extra parameters are for the MCP server's authorization server: the sign-in at the enterprise
    # IdP (another provider) gets none of them.
    stack = enterprise_stack()
    auth = enterprise_auth(
        stack,
        sso_idp(),
        authorizer=stack.authorizer,
        preset="auth0",
        extra_authorize_params={"organization": "org_1"},
        extra_token_params={"connection": "corp"},
    )
    assert send_all(SYNC, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert stack.idp is not None
    [authorization] = stack.idp.authorization_requests
    assert "organization" not in authorization
    assert "audience" not in authorization
    sign_in, exchange = stack.idp.token_requests
    assert (sign_in["grant_type"], sign_in["audience"]) == ("authorization_code", None)
    assert (exchange["grant_type"], exchange["audience"]) == (TOKEN_EXCHANGE, stack.issuer)
    [grant] = stack.token_requests
    assert grant["grant_type"] == JWT_BEARER


def test_the_idp_session_is_renewed_with_its_refresh_token_then_signed_in_again_when_ended() -> None:
    stack = enterprise_stack(idp_id_token_lifetime=30)  # within the renewal margin at once
    store = MemoryTokenStore()
    sign_ins: list[str] = []

    def person(url: str) -> str:
        sign_ins.append(url)
        return stack.authorizer(url)

    def fresh_client() -> MCPOAuth:
        auth = enterprise_auth(stack, sso_idp(), store=store, authorizer=person)
        for key in store.list_keys():  # the MCP credential only: force a new grant
            record = store.load(key)
            if record is not None and record.resource == stack.server_url:
                store.delete(key)
        return auth

    assert send_all(SYNC, stack, fresh_client(), [("GET", stack.server_url)])[0].status == 200
    assert send_all(SYNC, stack, fresh_client(), [("GET", stack.server_url)])[0].status == 200
    assert stack.idp is not None
    grants = [request["grant_type"] for request in stack.idp.token_requests]
    assert grants == ["authorization_code", TOKEN_EXCHANGE, "refresh_token", TOKEN_EXCHANGE]
    assert len(sign_ins) == 1
    stack.idp.revoke_sessions()
    assert send_all(SYNC, stack, fresh_client(), [("GET", stack.server_url)])[0].status == 200
    assert len(sign_ins) == 2


def test_a_replayed_id_token_with_another_nonce_is_refused() -> None:
    stack = enterprise_stack()

    def replaying_person(url: str) -> str:
        return stack.authorizer(url.replace("nonce=", "nonce=other"))

    auth = enterprise_auth(stack, sso_idp(), authorizer=replaying_person)
    with pytest.raises(IdentityAssertionError, match="nonce"):
        send_all(SYNC, stack, auth, [("GET", stack.server_url)])


# -- configuration and secrecy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "idp", "complaint"),
    [
        ({"client_secret": None}, {}, "client_secret= or private_key="),
        ({}, {"token_endpoint": f"{IDP}/token"}, "not both"),
        ({}, {"issuer": None}, "issuer= .* or token_endpoint="),
        ({}, {"saml_assertion": "PHNhbWw-"}, "id_token= or saml_assertion="),
        ({}, {"issuer": None, "token_endpoint": f"{IDP}/token", "id_token": None}, "needs issuer="),
        ({}, {"issuer": "http://idp.example.com"}, "https"),
        ({}, {"client_id": ""}, "client_id="),
        ({"assertion": "a.b.c"}, {}, "two different grants"),
        ({"grant_type": "client_credentials"}, {}, "jwt-bearer grant"),
        ({}, {"issuer": 42}, "issuer must be a URL string"),
        ({}, {"client_secret": "s", "private_key": object()}, "client_secret= or private_key=, not both"),
        ({}, {"client_secret": ""}, "client_secret must be a non-empty string"),
        ({}, {"private_key": object()}, "private_key must be a PrivateKeyJWT"),
        ({}, {"scopes": ["openid"]}, "scopes must be a tuple of strings"),
        ({}, {"scopes": ("openid", 7)}, "scopes must be a tuple of strings"),
        ({}, {"token_endpoint_auth_method": "private_key_jwt"}, "token_endpoint_auth_method must be"),
    ],
)
def test_configuration_errors(options: dict[str, Any], idp: dict[str, Any], complaint: str) -> None:
    fields: dict[str, Any] = {"issuer": IDP, "client_id": "idp-client", "id_token": "a.b.c", **idp}
    arguments: dict[str, Any] = {"client_id": "mcp-client", "client_secret": MCP_SECRET, **options}
    with pytest.raises(ConfigurationError, match=complaint):
        MCPOAuth("https://mcp.test/mcp", identity_assertion=EnterpriseIdP(**fields), **arguments)


def test_identity_assertion_must_be_an_enterprise_idp() -> None:
    with pytest.raises(ConfigurationError, match="EnterpriseIdP"):
        MCPOAuth("https://mcp.test/mcp", client_id="c", client_secret="s", identity_assertion="idp")  # type: ignore[arg-type]


def test_secrets_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stack = enterprise_stack()
    token = id_token(stack)
    idp = EnterpriseIdP(issuer=IDP, client_id="idp-client", client_secret="idp-secret-xyz", id_token=token)
    stack.config.idp_client_secret = "idp-secret-xyz"
    auth = enterprise_auth(stack, idp)
    assert send_all(SYNC, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert stack.idp is not None
    [id_jag] = stack.idp.issued_id_jags
    assert auth.tokens is not None
    logged = caplog.text + "".join(repr(record.args) for record in caplog.records)
    for secret in (token, id_jag, "idp-secret-xyz", MCP_SECRET, auth.tokens.access_token):
        assert secret not in logged
    assert token not in repr(idp)
    assert "idp-secret-xyz" not in repr(idp)
    assert any("ID-JAG" in record.getMessage() for record in caplog.records)


def test_the_sign_in_uses_the_device_flow_with_a_device_authorizer() -> None:
    stack = enterprise_stack()
    shown: list[str] = []
    authorizer = DeviceAuthorizer(on_prompt=lambda device: shown.append(device.user_code))
    auth = enterprise_auth(stack, sso_idp(), authorizer=authorizer)
    assert send_all(SYNC, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert shown == ["WDJB-MJHT"]
    assert stack.idp is not None
    assert stack.idp.authorization_requests == []
    grants = [request["grant_type"] for request in stack.idp.token_requests]
    assert grants == ["urn:ietf:params:oauth:grant-type:device_code", TOKEN_EXCHANGE]
