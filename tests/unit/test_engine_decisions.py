"""The engine's decisions for one protected request (flow.exchange), driven with canned responses: when to refresh
before sending, which 401/403 responses call for credential work, how often, and which scopes a step-up asks for."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mcp_oauth_auth.exceptions import InsufficientScopeError
from mcp_oauth_auth.flow.engine import FlowConfig, FlowEngine
from mcp_oauth_auth.flow.exchange import Exchange, Outcome
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.records import ClientRegistration, CredentialRecord, TokenSet

from .flowkit import Harness, json_response
from .test_engine import PRM_URL, REDIRECT, SERVER, approve, authorization_server

ISSUER = "https://as.example"
NO_CHALLENGE = httpx.Headers()


def challenge(value: str) -> httpx.Headers:
    return httpx.Headers({"WWW-Authenticate": value})


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def stored(
    access_token: str = "at-1", scopes: tuple[str, ...] = (), expires_at: float | None = 1_000.0
) -> CredentialRecord:
    return CredentialRecord(
        issuer=ISSUER,
        resource=SERVER,
        server_url=SERVER,
        client=ClientRegistration(client_id="c", kind="dynamic", redirect_uris=(REDIRECT,)),
        token_endpoint=f"{ISSUER}/token",
        tokens=TokenSet(access_token=access_token, refresh_token="rt-1", expires_at=expires_at, issued_at=0.0),
        requested_scopes=scopes,
    )


def stack(record: CredentialRecord | None = None) -> Harness:
    """An authorization server that issues at-N for every token request, with one stored record (or none)."""
    issued = iter(range(2, 100))

    def token(request: object) -> object:
        return json_response(200, {"access_token": f"at-{next(issued)}", "refresh_token": "rt", "token_type": "Bearer"})

    return Harness(
        routes={  # type: ignore[dict-item]
            PRM_URL: json_response(200, {"resource": SERVER, "authorization_servers": [ISSUER]}),
            f"{ISSUER}/.well-known/oauth-authorization-server": json_response(200, authorization_server(ISSUER)),
            f"{ISSUER}/register": json_response(201, {"client_id": "c", "redirect_uris": [REDIRECT]}),
            f"{ISSUER}/token": token,
        },
        authorizer=approve(ISSUER),
        redirect_uri=REDIRECT,
        records={} if record is None else {record.key: record},
    )


def engine_for(harness: Harness, clock: Clock | None = None, **config: object) -> FlowEngine:
    engine = FlowEngine(
        FlowConfig(server_url=SERVER, retry=RetryPolicy(attempts=1), **config),  # type: ignore[arg-type]
        clock=clock or Clock(500.0),
    )
    harness.run(engine.load())
    return engine


def requested_scopes(harness: Harness) -> list[str]:
    [url] = harness.authorization_urls[-1:]
    return parse_qs(urlsplit(url).query)["scope"][0].split()


# -- before the request --------------------------------------------------------------------------------------


def test_a_valid_token_is_sent_without_any_work() -> None:
    engine = engine_for(stack(stored(expires_at=1_000.0)), Clock(939.0))  # due at 1000 - 60
    assert engine.exchange().before_request() is None


def test_a_token_due_for_refresh_is_refreshed_before_sending() -> None:
    harness = stack(stored(expires_at=1_000.0))
    clock = Clock(939.0)
    engine = engine_for(harness, clock)
    clock.now = 940.0
    work = engine.exchange().before_request()
    assert work is not None
    harness.run(work)
    assert [request.url for request in harness.sent] == [f"{ISSUER}/token"]
    assert engine.access_token == "at-2"


def test_a_token_without_expiry_is_never_refreshed_before_sending() -> None:
    engine = engine_for(stack(stored(expires_at=None)), Clock(10**12))
    assert engine.exchange().before_request() is None


def test_the_store_is_read_once_and_an_empty_one_sends_without_a_token() -> None:
    engine = FlowEngine(FlowConfig(server_url=SERVER), clock=Clock(0.0))
    work = engine.exchange().before_request()
    assert work is not None  # not loaded yet
    stack().run(work)
    assert engine.loaded
    assert engine.access_token is None
    assert engine.exchange().before_request() is None  # the server's 401 will say what to ask for


# -- after the response --------------------------------------------------------------------------------------


class Unread:
    def get_list(self, key: str) -> list[str]:
        raise AssertionError("the headers of a response that needs no work are not read")


@pytest.mark.parametrize("status", [200, 204, 302, 400, 404, 500])
def test_other_statuses_go_to_the_caller_without_reading_headers(status: int) -> None:
    engine = engine_for(stack(stored()))
    assert engine.exchange().after_response(status, Unread(), "at-1") is None


@pytest.mark.parametrize(
    "headers",
    [NO_CHALLENGE, challenge('Bearer error="invalid_token"'), challenge('Basic realm="x"')],
    ids=["no challenge", "invalid_token", "not Bearer"],
)
def test_a_403_without_insufficient_scope_is_the_callers(headers: httpx.Headers) -> None:
    engine = engine_for(stack(stored()))
    assert engine.exchange().after_response(403, headers, "at-1") is None


def test_a_401_without_a_challenge_still_recovers() -> None:
    harness = stack(stored())
    engine = engine_for(harness)
    work = engine.exchange().after_response(401, NO_CHALLENGE, "at-1")
    assert work is not None
    assert harness.run(work) is Outcome.REFRESHED
    assert engine.access_token == "at-2"


def test_two_recoveries_then_the_401_goes_to_the_caller() -> None:
    harness = stack(stored())
    engine = engine_for(harness)
    exchange = Exchange(engine)
    first = exchange.after_response(401, NO_CHALLENGE, "at-1")
    assert first is not None
    assert harness.run(first) is Outcome.REFRESHED
    # Another request renewed the token meanwhile: the second recovery reuses it.
    engine.access_token = "at-peer"
    second = exchange.after_response(401, NO_CHALLENGE, "at-2")
    assert second is not None
    assert harness.run(second) is Outcome.REUSED
    assert exchange.after_response(401, NO_CHALLENGE, "at-peer") is None
    assert harness.authorization_urls == []


def test_a_freshly_authorized_token_that_is_rejected_too_is_not_authorized_again() -> None:
    harness = stack()
    engine = engine_for(harness)
    exchange = engine.exchange()
    work = exchange.after_response(401, challenge('Bearer scope="read"'), None)
    assert work is not None
    assert harness.run(work) is Outcome.AUTHORIZED
    assert exchange.after_response(401, NO_CHALLENGE, engine.access_token) is None
    assert len(harness.authorization_urls) == 1


def test_a_second_recovery_authorizes_instead_of_refreshing_again() -> None:
    harness = stack(stored())
    engine = engine_for(harness)
    exchange = engine.exchange()
    first = exchange.after_response(401, NO_CHALLENGE, "at-1")
    assert first is not None
    assert harness.run(first) is Outcome.REFRESHED
    second = exchange.after_response(401, NO_CHALLENGE, "at-2")
    assert second is not None
    assert harness.run(second) is Outcome.AUTHORIZED
    assert len(harness.authorization_urls) == 1


# -- a 500 from the authentication layer (the MCP TypeScript SDK's requireBearerAuth with its demo provider)

SERVER_ERROR = b'{"error":"server_error","error_description":"Internal Server Error"}'


def json_headers(body: bytes, **extra: str) -> httpx.Headers:
    return httpx.Headers({"Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(body)), **extra})


def test_a_500_server_error_document_to_a_token_counts_as_one_401() -> None:
    harness = stack(stored())
    engine = engine_for(harness)
    exchange = engine.exchange()
    headers = json_headers(SERVER_ERROR)
    assert exchange.needs_body(500, headers, "at-1")
    work = exchange.after_response(500, headers, "at-1", SERVER_ERROR)
    assert work is not None
    assert harness.run(work) is Outcome.REFRESHED
    # The new token meets the same answer: a real server error, handed to the caller.
    assert not exchange.needs_body(500, headers, "at-2")
    assert exchange.after_response(500, headers, "at-2", SERVER_ERROR) is None
    assert harness.authorization_urls == []


class RawHeaders:
    """Headers as a server could send them, which httpx.Headers would refuse to build (non-ASCII values)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get_list(self, key: str) -> list[str]:
        return [self.values[key]] if key in self.values else []


@pytest.mark.parametrize(
    ("headers", "sent_token"),
    [
        (json_headers(SERVER_ERROR), None),  # no token was sent: nothing of ours was refused
        (httpx.Headers({"Content-Type": "application/json"}), "at-1"),  # length not declared
        (json_headers(SERVER_ERROR, **{"Content-Length": "999999"}), "at-1"),
        (RawHeaders({"content-type": "application/json", "content-length": "\u00b2"}), "at-1"),
    ],
    ids=["without a token", "no length", "too long", "not ASCII digits"],
)
def test_the_body_of_other_500s_is_not_read(headers: httpx.Headers | RawHeaders, sent_token: str | None) -> None:
    assert not engine_for(stack(stored())).exchange().needs_body(500, headers, sent_token)


@pytest.mark.parametrize("status", [200, 401, 403, 502])
def test_only_a_500_body_is_read(status: int) -> None:
    assert not engine_for(stack(stored())).exchange().needs_body(status, json_headers(SERVER_ERROR), "at-1")


@pytest.mark.parametrize(
    "body",
    [b'{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"boom"}}', b'{"error":"temporarily_unavailable"}'],
    ids=["JSON-RPC error", "another OAuth error"],
)
def test_other_500_answers_go_to_the_caller(body: bytes) -> None:
    engine = engine_for(stack(stored()))
    assert engine.exchange().after_response(500, json_headers(body), "at-1", body) is None


def test_a_500_after_a_401_recovery_goes_to_the_caller() -> None:
    harness = stack(stored())
    engine = engine_for(harness)
    exchange = engine.exchange()
    first = exchange.after_response(401, NO_CHALLENGE, "at-1")
    assert first is not None
    harness.run(first)
    assert exchange.after_response(500, json_headers(SERVER_ERROR), "at-2", SERVER_ERROR) is None


def test_step_ups_are_counted_apart_from_recoveries_and_limited() -> None:
    harness = stack(stored(scopes=("read",)))
    engine = engine_for(harness, max_step_up=2)
    exchange = engine.exchange()
    first = exchange.after_response(401, NO_CHALLENGE, "at-1")
    assert first is not None
    assert harness.run(first) is Outcome.REFRESHED
    for scope in ["write", "admin"]:
        insufficient = challenge(f'Bearer error="insufficient_scope", scope="{scope}"')
        work = exchange.after_response(403, insufficient, engine.access_token)
        assert work is not None
        assert harness.run(work) is Outcome.AUTHORIZED
    assert exchange.step_ups == 2
    assert exchange.recoveries == 1
    insufficient = challenge('Bearer error="insufficient_scope", scope="delete"')
    third = exchange.after_response(403, insufficient, engine.access_token)
    assert third is not None
    with pytest.raises(InsufficientScopeError, match="after 2 step-up authorizations"):
        harness.run(third)


def test_a_step_up_asks_for_the_union_of_the_scopes_in_order() -> None:
    """RFC 6749 §3.3: scopes are a set; the earlier ones are kept (a step-up must not lose them), no repeats."""
    harness = stack(stored(scopes=("read", "write")))
    engine = engine_for(harness)
    work = engine.exchange().after_response(
        403, challenge('Bearer error="insufficient_scope", scope="write admin"'), "at-1"
    )
    assert work is not None
    assert harness.run(work) is Outcome.AUTHORIZED
    assert requested_scopes(harness) == ["read", "write", "admin"]
    assert engine.record is not None
    assert engine.record.requested_scopes == ("read", "write", "admin")


def test_a_step_up_for_scopes_already_asked_for_is_refused() -> None:
    harness = stack(stored(scopes=("read", "write")))
    engine = engine_for(harness)
    work = engine.exchange().after_response(403, challenge('Bearer error="insufficient_scope", scope="write"'), "at-1")
    assert work is not None
    with pytest.raises(InsufficientScopeError, match="already asked for"):
        harness.run(work)
    assert harness.authorization_urls == []


def test_authenticate_with_new_scopes_asks_for_the_union() -> None:
    harness = stack(stored(scopes=("read",), expires_at=1_000.0))
    engine = engine_for(harness, Clock(100.0))
    harness.run(engine.authenticate(("admin", "read")))
    assert requested_scopes(harness) == ["read", "admin"]


def test_authenticate_reads_the_engines_clock() -> None:
    harness = stack(stored(expires_at=1_000.0))
    engine = engine_for(harness, Clock(2_000.0))  # expired by the engine's clock (not the machine's)
    harness.run(engine.authenticate())
    assert [request.url for request in harness.sent] == [f"{ISSUER}/token"]
    assert engine.access_token == "at-2"


def test_outcomes_compare_equal_to_their_names() -> None:
    assert Outcome.AUTHORIZED == "authorized"
    assert Outcome.REUSED == "reused"
    assert Outcome.REFRESHED == "refreshed"
