"""Workload identity (RFC 7523 jwt-bearer grant, MCP SEP-1933): MCPOAuth(url, client_id=..., assertion=...) trades
the workload's JWT for tokens at the fake authorization server, through every client kind; the assertion comes from
a string, a file re-read for every token request, or a function (sync or async); a refusal is raised at once,
without a retry or another grant; the assertion is never logged or stored."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore
from mcp_oauth_auth.exceptions import ConfigurationError, TokenExchangeError, WorkloadIdentityError
from mcp_oauth_auth.flow.config import FlowConfig
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.jwt_bearer import JWT_BEARER
from mcp_oauth_auth.flow.registration import ClientSettings
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig, serve_stack

from .clients import KIND_PARAMS, ClientKind, send_all

WORKLOAD_ISSUER = "https://kubernetes.default.svc"
FAST_RETRY = RetryPolicy(attempts=2, base_delay=0)
KEY = ec.generate_private_key(ec.SECP256R1())
ALL_GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", JWT_BEARER)


@pytest.fixture(params=KIND_PARAMS)
def kind(request: pytest.FixtureRequest) -> ClientKind:
    assert isinstance(request.param, ClientKind)
    return request.param


def workload_jwt(
    audience: str, subject: str = "system:serviceaccount:agents:mcp", *, expires_in: int = 600, key: Any = KEY
) -> str:
    now = int(time.time())
    claims = {"iss": WORKLOAD_ISSUER, "sub": subject, "aud": audience, "iat": now, "exp": now + expires_in}
    return jwt.encode({"alg": "ES256", "kid": "k1"}, claims, ECKey.import_key(key))


def workload_stack(**config: Any) -> FakeMCPStack:
    stack = FakeMCPStack(FakeStackConfig(workload_issuers={WORKLOAD_ISSUER: KEY.public_key()}, **config))
    stack.add_client("workload-client", grant_types=[JWT_BEARER])
    return stack


def test_a_workload_gets_tokens_with_its_jwt(kind: ClientKind) -> None:
    stack = workload_stack()
    assertion = workload_jwt(stack.issuer)
    auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), client_id="workload-client", assertion=assertion)
    results = send_all(kind, stack, auth, [("GET", stack.server_url)] * 3)
    assert [result.status for result in results] == [200] * 3
    assert stack.grants_used() == [JWT_BEARER]
    [token_request] = stack.token_requests
    assert token_request["auth_method"] == "none"  # a public client: its client_id in the form
    assert token_request["workload"] == "system:serviceaccount:agents:mcp"
    assert token_request["resource"] == stack.server_url
    assert stack.count("authorize") == 0
    assert stack.count("register") == 0
    assert auth.tokens is not None
    assert auth.tokens.refresh_token is None


def test_an_expiring_token_is_replaced_with_a_fresh_assertion_from_the_file(tmp_path: Path) -> None:
    """Kubernetes rotates a projected service-account token in place: the file is read for every token request."""
    stack = workload_stack()
    token_file = tmp_path / "token"
    token_file.write_text(workload_jwt(stack.issuer, "first") + "\n")
    store = MemoryTokenStore()
    auth = MCPOAuth(stack.server_url, store=store, client_id="workload-client", assertion=token_file)
    kind = ClientKind("httpx", "sync")
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    token_file.write_text(workload_jwt(stack.issuer, "second"))
    [key] = store.list_keys()
    record = store.load(key)
    assert record is not None
    assert record.tokens is not None
    now = time.time()
    store.save(record.with_tokens(replace(record.tokens, expires_at=now + 5, issued_at=now - 3595)))
    metadata_requests = stack.count("as_metadata") + stack.count("prm")
    restarted = MCPOAuth(stack.server_url, store=store, client_id="workload-client", assertion=token_file)
    assert send_all(kind, stack, restarted, [("GET", stack.server_url)])[0].status == 200
    assert [request["workload"] for request in stack.token_requests] == ["first", "second"]
    assert stack.count("as_metadata") + stack.count("prm") == metadata_requests  # the stored token endpoint


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync function", "async function"])
def test_the_assertion_from_a_function(kind: ClientKind, asynchronous: bool) -> None:
    stack = workload_stack()
    calls: list[str] = []

    def fetch() -> str:
        calls.append("called")
        return workload_jwt(stack.issuer)

    async def afetch() -> str:
        return fetch()

    auth = MCPOAuth(
        stack.server_url,
        store=MemoryTokenStore(),
        client_id="workload-client",
        assertion=afetch if asynchronous else fetch,
    )
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert calls == ["called"]
    assert stack.grants_used() == [JWT_BEARER]


@pytest.mark.parametrize(
    ("assertion", "error"),
    [
        (lambda issuer: workload_jwt("https://elsewhere.example"), "aud does not name this authorization server"),
        (lambda issuer: workload_jwt(issuer, expires_in=-60), "expired"),
        (lambda issuer: workload_jwt(issuer, key=ec.generate_private_key(ec.SECP256R1())), "signature"),
    ],
    ids=["wrong audience", "expired", "wrong key"],
)
def test_a_refused_assertion_is_raised_at_once_without_retry_or_other_grant(
    kind: ClientKind, assertion: Any, error: str
) -> None:
    stack = workload_stack(device_authorization_enabled=True)
    jwt_text = assertion(stack.issuer)
    auth = MCPOAuth(
        stack.server_url, store=MemoryTokenStore(), client_id="workload-client", assertion=jwt_text, retry=FAST_RETRY
    )
    with pytest.raises(TokenExchangeError) as caught:
        send_all(kind, stack, auth, [("GET", stack.server_url)])
    assert caught.value.error == "invalid_grant"
    assert caught.value.error_description is not None
    assert error in caught.value.error_description
    assert jwt_text not in str(caught.value)
    assert stack.grants_used() == [JWT_BEARER]  # one request: no retry, no fallback to another grant
    assert stack.count("authorize") == 0
    assert stack.count("device_authorization") == 0
    assert auth.store.list_keys() == []


def test_a_server_refusing_the_scope_is_reported_with_its_description() -> None:
    stack = workload_stack(scopes_supported=["mcp:read"])
    auth = MCPOAuth(
        stack.server_url,
        scopes=["admin"],
        store=MemoryTokenStore(),
        client_id="workload-client",
        assertion=workload_jwt(stack.issuer),
    )
    with pytest.raises(TokenExchangeError) as caught:
        send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    assert caught.value.error == "invalid_scope"
    assert len(stack.token_requests) == 1


def _failing() -> str:
    raise RuntimeError("metadata service down: token=abc.def.ghi")


async def _afailing() -> str:
    return _failing()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (Path("/nonexistent/var/run/secrets/token"), "the workload assertion file /nonexistent/var/run/secrets/token"),
        (_failing, "the function giving the workload assertion failed (RuntimeError"),
        (_afailing, "the function giving the workload assertion failed (RuntimeError"),
        (lambda: "   ", "empty or not a JWT"),
        (lambda: "two\nlines", "empty or not a JWT"),
    ],
    ids=["missing file", "failing function", "failing async function", "blank", "two lines"],
)
def test_an_assertion_that_cannot_be_obtained_is_a_typed_error_and_nothing_is_sent(
    kind: ClientKind, source: Any, message: str
) -> None:
    stack = workload_stack()
    auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), client_id="workload-client", assertion=source)
    with pytest.raises(WorkloadIdentityError) as caught:
        send_all(kind, stack, auth, [("GET", stack.server_url)])
    assert message in str(caught.value)
    assert "abc.def.ghi" not in str(caught.value)
    assert stack.count("token") == 0


def test_the_assertion_is_never_logged_shown_or_stored(caplog: pytest.LogCaptureFixture) -> None:
    stack = workload_stack()
    assertion = workload_jwt(stack.issuer)
    store = MemoryTokenStore()
    with caplog.at_level(logging.DEBUG):
        auth = MCPOAuth(stack.server_url, store=store, client_id="workload-client", assertion=assertion)
        assert send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert assertion not in caplog.text
    assert assertion not in repr(auth)
    assert assertion not in repr(auth._engine.config)
    for key in store.list_keys():
        record = store.load(key)
        assert record is not None
        assert assertion not in repr(record.to_dict())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"assertion": "a.b.c"}, "needs client_id"),
        ({"assertion": "a.b.c", "client_id": "w", "grant_type": "client_credentials"}, "assertion= belongs"),
        ({"assertion": "", "client_id": "w"}, "must not be empty"),
        ({"assertion": 42, "client_id": "w"}, "not int"),
        ({"grant_type": JWT_BEARER, "client_id": "w"}, "needs assertion="),
    ],
)
def test_configuration_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        MCPOAuth("https://mcp.example.com/mcp", **options)


def test_the_engine_configuration_hides_the_assertion() -> None:
    config = FlowConfig(
        "https://mcp.example.com/mcp",
        client=ClientSettings(client_id="w"),
        grant_type=JWT_BEARER,
        assertion="secret.jwt.value",
    )
    assert "secret.jwt.value" not in repr(config)


def test_the_grant_is_advertised_by_the_fake_only_when_it_trusts_an_issuer() -> None:
    def grants(stack: FakeMCPStack) -> list[str]:
        assert stack.as_metadata_url is not None
        document = json.loads(stack.handle("GET", stack.as_metadata_url).body)
        return list(document["grant_types_supported"])

    assert JWT_BEARER in grants(workload_stack())
    assert JWT_BEARER not in grants(FakeMCPStack())


def test_a_new_grant_keeps_the_records_renewal_note() -> None:
    """``renewal`` (what ``mcp-oauth login`` noted about renewing the credential) belongs to the credential, like its
    names: a new grant replacing the record keeps it."""
    note = {"grant": "jwt-bearer", "assertion_file": "/var/run/secrets/tokens/mcp"}
    with serve_stack(FakeStackConfig(workload_issuers={WORKLOAD_ISSUER: KEY.public_key()})) as stack:
        stack.add_client("workload-client", grant_types=[JWT_BEARER])
        store = MemoryTokenStore()
        options: dict[str, Any] = {"store": store, "client_id": "workload-client"}
        MCPOAuth(stack.server_url, assertion=workload_jwt(stack.issuer), **options).authenticate()
        [key] = store.list_keys()
        first = store.load(key)
        assert first is not None
        assert first.renewal is None
        store.save(replace(first, renewal=note, tokens=None))  # nothing to renew: a new grant replaces the record
        tokens = MCPOAuth(stack.server_url, assertion=workload_jwt(stack.issuer), **options).authenticate()
        assert stack.grants_used() == [JWT_BEARER, JWT_BEARER]
    again = store.load(key)
    assert again is not None
    assert again.tokens == tokens
    assert again.renewal == note
