"""MCPOAuth with DPoP (RFC 9449) against the fake stack, through httpx and httpx2, sync and async: proofs on every
token request of every grant and on every protected request, nonces, bound tokens, the key stored with the record."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from mcp_oauth_auth import DeviceAuthorizer, DPoPKey, MCPOAuth, MemoryTokenStore, RetryPolicy
from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.device import DEVICE_CODE_GRANT, DeviceAuthorization
from mcp_oauth_auth.records import CredentialRecord
from mcp_oauth_auth.storage.codec import decode_record, encode_record
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig

from .clients import KIND_PARAMS, ClientKind, Seen, send_all

FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.0)


@pytest.fixture(params=KIND_PARAMS)
def kind(request: pytest.FixtureRequest) -> ClientKind:
    assert isinstance(request.param, ClientKind)
    return request.param


def make_auth(stack: FakeMCPStack, **options: Any) -> MCPOAuth:
    options.setdefault("store", MemoryTokenStore())
    options.setdefault("authorizer", stack.authorizer)
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("dpop", True)
    return MCPOAuth(stack.server_url, **options)


def only_record(auth: MCPOAuth) -> CredentialRecord:
    [key] = auth.store.list_keys()
    record = auth.store.load(key)
    assert record is not None
    return record


def test_code_flow_binds_the_tokens_and_proves_every_request(kind: ClientKind) -> None:
    stack = FakeMCPStack(FakeStackConfig(dpop=True, dpop_nonce=True))
    auth = make_auth(stack)
    results = send_all(kind, stack, auth, [("POST", stack.server_url, {"json": {"jsonrpc": "2.0"}})] * 3)
    assert [r.status for r in results] == [200, 200, 200]
    record = only_record(auth)
    key = DPoPKey.from_pem(record.dpop_key or "")
    assert record.tokens is not None
    assert record.tokens.token_type == "DPoP"
    # The token request paid one use_dpop_nonce round trip, then carried the nonce; the token is bound to the key.
    assert [(r["grant_type"], r["status"], r["error"]) for r in stack.token_requests] == [
        ("authorization_code", 400, "use_dpop_nonce"),
        ("authorization_code", 200, None),
    ]
    assert stack.token_requests[-1]["dpop_jkt"] == key.thumbprint
    # The resource: the first request had no token (401), the second a DPoP token without the resource's nonce
    # (401 use_dpop_nonce, retried once), every later one went through at once with the nonce kept from answers.
    statuses = [r["status"] for r in stack.resource_requests]
    assert statuses == [401, 401, 200, 200, 200]
    for request in stack.resource_requests[1:]:
        assert request["authorization"].startswith("DPoP ")
        assert request["dpop"] is not None
    assert stack.violations == []


def test_refresh_keeps_the_key_and_a_restarted_process_uses_the_stored_one(kind: ClientKind) -> None:
    stack = FakeMCPStack(FakeStackConfig(dpop=True))
    auth = make_auth(stack)
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    record = only_record(auth)
    assert record.tokens is not None
    assert record.tokens.refresh_token is not None
    # A new process (no dpop option: the stored record's binding turns DPoP on), tokens near expiry.
    now = time.time()
    auth.store.save(record.with_tokens(replace(record.tokens, expires_at=now + 5, issued_at=now - 3595)))
    restarted = MCPOAuth(stack.server_url, store=auth.store, authorizer=stack.authorizer, retry=FAST_RETRY)
    assert send_all(kind, stack, restarted, [("GET", stack.server_url)])[0].status == 200
    assert stack.grants_used() == ["authorization_code", "refresh_token"]
    refreshed = only_record(restarted)
    assert refreshed.dpop_key == record.dpop_key
    assert stack.token_requests[-1]["dpop_jkt"] == DPoPKey.from_pem(record.dpop_key or "").thumbprint
    assert stack.count("authorize") == 1


def test_a_record_whose_key_is_gone_is_authorized_anew(kind: ClientKind) -> None:
    stack = FakeMCPStack(FakeStackConfig(dpop=True))
    auth = make_auth(stack)
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    record = only_record(auth)
    auth.store.save(replace(record, dpop_key=None))
    restarted = make_auth(stack, store=auth.store)
    assert send_all(kind, stack, restarted, [("GET", stack.server_url)])[0].status == 200
    assert stack.count("authorize") == 2
    assert only_record(restarted).dpop_key is not None


def test_client_credentials_with_the_callers_key(kind: ClientKind) -> None:
    stack = FakeMCPStack(FakeStackConfig(dpop=True, dpop_nonce=True, client_credentials_enabled=True))
    stack.add_client("svc", "svc-secret", "client_secret_basic", grant_types=["client_credentials"])
    key = DPoPKey(ed25519.Ed25519PrivateKey.generate())
    auth = MCPOAuth(
        stack.server_url,
        store=MemoryTokenStore(),
        client_id="svc",
        client_secret="svc-secret",
        grant_type="client_credentials",
        retry=FAST_RETRY,
        dpop=key,
    )
    results = send_all(kind, stack, auth, [("GET", stack.server_url)] * 2)
    assert [r.status for r in results] == [200, 200]
    assert stack.token_requests[-1]["dpop_jkt"] == key.thumbprint
    assert DPoPKey.from_pem(only_record(auth).dpop_key or "") == key


def test_device_flow_polls_with_proofs(kind: ClientKind) -> None:
    stack = FakeMCPStack(
        FakeStackConfig(dpop=True, device_authorization_enabled=True, device_poll_interval=1, dpop_required=True)
    )
    stack.clock = time.time

    def approve(device: DeviceAuthorization) -> None:
        stack.approve_device(device.user_code)

    auth = make_auth(stack, authorizer=DeviceAuthorizer(on_prompt=approve))
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert stack.grants_used() == [DEVICE_CODE_GRANT]
    assert all(r["dpop_jkt"] is not None for r in stack.token_requests)


def test_a_resource_that_requires_dpop_gets_it_unasked(kind: ClientKind, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mcp_oauth_auth")
    stack = FakeMCPStack(FakeStackConfig(dpop=True, dpop_required=True))
    auth = make_auth(stack, dpop=False)
    seen = Seen()
    assert send_all(kind, stack, auth, [("GET", stack.server_url)], seen)[0].status == 200
    assert only_record(auth).tokens.token_type == "DPoP"  # type: ignore[union-attr]
    assert "accepts DPoP-bound tokens only" in caplog.text


def test_a_bearer_answer_to_a_dpop_request_is_used_as_bearer(
    kind: ClientKind, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mcp_oauth_auth")
    stack = FakeMCPStack(FakeStackConfig(dpop=False))  # ignores DPoP headers, issues Bearer tokens
    auth = make_auth(stack)
    results = send_all(kind, stack, auth, [("GET", stack.server_url)] * 2)
    assert [r.status for r in results] == [200, 200]
    record = only_record(auth)
    assert record.tokens is not None
    assert record.tokens.token_type == "Bearer"
    assert record.dpop_key is None
    assert stack.resource_requests[-1]["authorization"].startswith("Bearer ")
    assert "issued a Bearer token to a DPoP request" in caplog.text


def test_the_fake_resource_refuses_what_a_dpop_server_must() -> None:
    stack = FakeMCPStack(FakeStackConfig(dpop=True))
    auth = make_auth(stack)
    send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    token = auth.tokens.access_token  # type: ignore[union-attr]
    key = DPoPKey.from_pem(only_record(auth).dpop_key or "")
    url = stack.server_url
    as_bearer = stack.handle("GET", url, {"Authorization": f"Bearer {token}"})
    assert as_bearer.status == 401
    assert "DPoP-bound" in as_bearer.text
    no_proof = stack.handle("GET", url, {"Authorization": f"DPoP {token}"})
    assert no_proof.status == 401
    other_key = DPoPKey().proof("GET", url, time.time(), access_token=token)
    assert stack.handle("GET", url, {"Authorization": f"DPoP {token}", "DPoP": other_key}).status == 401
    proof = key.proof("GET", url, time.time(), access_token=token)
    assert stack.handle("GET", url, {"Authorization": f"DPoP {token}", "DPoP": proof}).status == 200
    replayed = stack.handle("GET", url, {"Authorization": f"DPoP {token}", "DPoP": proof})
    assert replayed.status == 401
    assert 'error="invalid_dpop_proof"' in " ".join(replayed.header_values("www-authenticate"))
    # Introspection tells a resource server the binding (cnf.jkt).
    stack.add_client("rs", "rs-secret", "client_secret_post", grant_types=["client_credentials"])
    body = f"token={token}&client_id=rs&client_secret=rs-secret".encode()
    introspected = stack.handle(
        "POST", stack.introspection_endpoint, {"Content-Type": "application/x-www-form-urlencoded"}, body
    ).json()
    assert introspected["cnf"] == {"jkt": key.thumbprint}
    assert introspected["token_type"] == "DPoP"


def test_the_fake_authorization_server_refuses_bad_proofs() -> None:
    stack = FakeMCPStack(FakeStackConfig(dpop=True, dpop_required=True, client_credentials_enabled=True))
    stack.add_client("svc", "svc-secret", "client_secret_post", grant_types=["client_credentials"])
    body = b"grant_type=client_credentials&client_id=svc&client_secret=svc-secret"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    endpoint = stack.token_endpoint
    assert stack.handle("POST", endpoint, form, body).json()["error"] == "invalid_dpop_proof"  # none
    stale = DPoPKey().proof("POST", endpoint, time.time() - 3600)
    assert stack.handle("POST", endpoint, {**form, "DPoP": stale}, body).json()["error"] == "invalid_dpop_proof"
    wrong_url = DPoPKey().proof("POST", endpoint + "x", time.time())
    assert stack.handle("POST", endpoint, {**form, "DPoP": wrong_url}, body).status == 400
    good = DPoPKey().proof("POST", endpoint, time.time())
    answer = stack.handle("POST", endpoint, {**form, "DPoP": good}, body)
    assert answer.json()["token_type"] == "DPoP"
    assert stack.handle("POST", endpoint, {**form, "DPoP": good}, body).json()["error"] == "invalid_dpop_proof"


def test_the_algorithm_follows_the_authorization_server() -> None:
    stack = FakeMCPStack(FakeStackConfig(dpop=True, dpop_signing_alg_values_supported=["EdDSA"]))
    auth = make_auth(stack)
    assert send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert DPoPKey.from_pem(only_record(auth).dpop_key or "").algorithm == "EdDSA"
    only_rsa = FakeMCPStack(FakeStackConfig(dpop=True, dpop_signing_alg_values_supported=["RS256"]))
    with pytest.raises(ConfigurationError, match="signs ES256"):
        send_all(
            ClientKind("httpx", "sync"), only_rsa, make_auth(only_rsa, dpop=DPoPKey()), [("GET", only_rsa.server_url)]
        )


def test_records_keep_the_key_encoded_and_old_records_load() -> None:
    stack = FakeMCPStack(FakeStackConfig(dpop=True))
    auth = make_auth(stack)
    send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    record = only_record(auth)
    assert decode_record(encode_record(record), "test").dpop_key == record.dpop_key
    assert "PRIVATE" not in repr(record)
    old = record.to_dict()
    del old["dpop_key"]
    assert CredentialRecord.from_dict(old).dpop_key is None
    assert "dpop_key" not in replace(record, dpop_key=None).to_dict()


def test_dpop_must_be_a_flag_or_a_key() -> None:
    with pytest.raises(ConfigurationError, match="dpop must be"):
        MCPOAuth("https://mcp.test/mcp", dpop="yes")  # type: ignore[arg-type]


def test_metadata_that_requires_dpop_turns_it_on(kind: ClientKind) -> None:
    # The 401 challenge offers Bearer, but the protected resource metadata says DPoP-bound tokens only.
    stack = FakeMCPStack(FakeStackConfig(dpop=True))
    resource = stack._resource
    document = resource.prm_document
    resource.prm_document = lambda: {**document(), "dpop_bound_access_tokens_required": True}  # type: ignore[method-assign]
    auth = make_auth(stack, dpop=False)
    assert "Bearer" in stack.handle("GET", stack.server_url).header_values("www-authenticate")[0]
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert only_record(auth).tokens.token_type == "DPoP"  # type: ignore[union-attr]


def test_nonces_of_the_authorization_server_and_the_resource_on_one_origin_are_kept_apart(kind: ClientKind) -> None:
    stack = FakeMCPStack(FakeStackConfig(dpop=True, dpop_nonce=True))  # both on https://mcp.test
    auth = make_auth(stack)
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    record = only_record(auth)
    assert record.tokens is not None
    auth.store.save(
        record.with_tokens(replace(record.tokens, expires_at=time.time() + 5, issued_at=time.time() - 3595))
    )
    engine = auth._engine
    engine.loaded, engine.refresh_due_at = False, 0.0  # read the store again (as a restart would), nonces kept
    stack.reset_log()
    assert send_all(kind, stack, auth, [("GET", stack.server_url)] * 2)[0].status == 200
    # The refresh carried the authorization server's nonce, the requests the resource's: no use_dpop_nonce at all.
    assert [(r["grant_type"], r["status"]) for r in stack.token_requests] == [("refresh_token", 200)]
    assert [r["status"] for r in stack.resource_requests] == [200, 200]
