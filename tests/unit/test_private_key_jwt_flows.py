"""``private_key=`` with the flows a person approves: a pre-registered confidential client that authenticates with
``private_key_jwt`` (RFC 7523) at every request to the authorization server — code exchange, refresh, device
authorization, device polling and revocation — each with a fresh assertion, checked by the fake authorization
server (signature, iss/sub/aud, exp, single-use jti).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_oauth_auth import (
    ConfigurationError,
    MCPOAuth,
    MemoryTokenStore,
    PrivateKeyJWT,
    RegistrationError,
    RetryPolicy,
)
from mcp_oauth_auth.testing import DEVICE_CODE_GRANT, FakeMCPStack, FakeStackConfig

from .clients import KIND_PARAMS, ClientKind, send_all

FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.0)
REDIRECT = "http://127.0.0.1:8765/callback"
SYNC = ClientKind("httpx", "sync")
JWT_SERVER = FakeStackConfig(
    registration_enabled=False,
    token_endpoint_auth_methods_supported=["client_secret_basic", "private_key_jwt"],
)


@pytest.fixture(params=KIND_PARAMS)
def kind(request: pytest.FixtureRequest) -> ClientKind:
    assert isinstance(request.param, ClientKind)
    return request.param


@pytest.fixture
def signer() -> PrivateKeyJWT:
    return PrivateKeyJWT(ec.generate_private_key(ec.SECP256R1()), key_id="k1")


def jwt_stack(signer: PrivateKeyJWT, **config: Any) -> FakeMCPStack:
    stack = FakeMCPStack(replace(JWT_SERVER, **config))
    stack.add_client(
        "app",
        token_endpoint_auth_method="private_key_jwt",
        redirect_uris=[REDIRECT],
        grant_types=["authorization_code", "refresh_token", DEVICE_CODE_GRANT],
        public_key=signer.public_jwk(),
    )
    return stack


def jwt_auth(stack: FakeMCPStack, signer: PrivateKeyJWT | None, store: MemoryTokenStore, **options: Any) -> MCPOAuth:
    options.setdefault("authorizer", stack.authorizer)
    return MCPOAuth(
        stack.server_url,
        store=store,
        client_id="app",
        private_key=signer,
        redirect_uri=REDIRECT,
        retry=FAST_RETRY,
        **options,
    )


def expire(store: MemoryTokenStore) -> None:
    [key] = store.list_keys()
    record = store.load(key)
    assert record is not None
    assert record.tokens is not None
    store.save(record.with_tokens(replace(record.tokens, expires_at=time.time() - 1)))


def test_code_flow_refresh_and_revocation_authenticate_with_the_key(kind: ClientKind, signer: PrivateKeyJWT) -> None:
    stack = jwt_stack(signer)
    store = MemoryTokenStore()
    auth = jwt_auth(stack, signer, store)
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    expire(store)
    assert send_all(kind, stack, jwt_auth(stack, signer, store), [("GET", stack.server_url)])[0].status == 200
    assert [(r["grant_type"], r["auth_method"], r["status"]) for r in stack.token_requests] == [
        ("authorization_code", "private_key_jwt", 200),
        ("refresh_token", "private_key_jwt", 200),
    ]
    assert stack.violations == []
    [key] = store.list_keys()
    record = store.load(key)
    assert record is not None
    assert record.client.token_endpoint_auth_method == "private_key_jwt"
    assert record.client.client_secret is None

    outcomes = jwt_auth(stack, signer, store).logout(_client(stack))
    assert [outcome.revoked for outcome in outcomes] == [True, True]
    assert {r["auth_method"] for r in stack.revocation_requests} == {"private_key_jwt"}
    assert store.list_keys() == []


def test_device_flow_authenticates_with_the_key(signer: PrivateKeyJWT) -> None:
    stack = jwt_stack(
        signer, device_authorization_enabled=True, device_poll_interval=1, device_auto_approve_after_polls=1
    )
    store = MemoryTokenStore()
    auth = jwt_auth(stack, signer, store, authorizer=_device_authorizer())
    assert send_all(SYNC, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert [r["auth_method"] for r in stack.device_authorization_requests] == ["private_key_jwt"]
    polls = [r for r in stack.token_requests if r["grant_type"] == DEVICE_CODE_GRANT]
    assert len(polls) == 2  # pending, then approved: each with its own assertion (the jti is single use)
    assert {r["auth_method"] for r in polls} == {"private_key_jwt"}
    assert stack.violations == []


def test_a_restart_without_the_key_is_a_clear_error_and_keeps_the_credential(signer: PrivateKeyJWT) -> None:
    stack = jwt_stack(signer)
    store = MemoryTokenStore()
    assert send_all(SYNC, stack, jwt_auth(stack, signer, store), [("GET", stack.server_url)])[0].status == 200
    expire(store)
    [key] = store.list_keys()
    before = store.load(key)
    with pytest.raises(ConfigurationError, match="private_key_jwt"):
        send_all(SYNC, stack, jwt_auth(stack, None, store), [("GET", stack.server_url)])
    assert store.load(key) == before


def test_a_server_not_accepting_private_key_jwt_is_refused_before_the_person_is_asked(signer: PrivateKeyJWT) -> None:
    stack = jwt_stack(signer, token_endpoint_auth_methods_supported=["client_secret_basic"])
    with pytest.raises(RegistrationError, match="private_key_jwt"):
        send_all(SYNC, stack, jwt_auth(stack, signer, MemoryTokenStore()), [("GET", stack.server_url)])
    assert stack.count("authorize") == 0
    assert stack.count("token") == 0


def test_the_key_is_never_in_reprs(signer: PrivateKeyJWT) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signer = PrivateKeyJWT(key)
    auth = MCPOAuth("https://mcp.test/mcp", store=MemoryTokenStore(), client_id="app", private_key=signer)
    text = repr(auth) + repr(auth._engine.config) + repr(signer)
    assert str(key.private_numbers().private_value) not in text
    assert "PRIVATE KEY" not in text


def _client(stack: FakeMCPStack) -> Any:
    import httpx

    return httpx.Client(transport=stack.httpx_transport())


def _device_authorizer() -> Any:
    from mcp_oauth_auth import DeviceAuthorizer

    return DeviceAuthorizer(on_prompt=lambda device: None)
