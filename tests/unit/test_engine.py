"""The flow engine driven directly with canned responses: what only a sans-IO test can set up."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from mcp_oauth_auth.exceptions import TemporaryOAuthError
from mcp_oauth_auth.flow.challenge import BearerChallenge
from mcp_oauth_auth.flow.engine import FlowConfig, FlowEngine
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.records import ClientRegistration, CredentialRecord, TokenSet

from .flowkit import Harness, json_response

SERVER = "https://mcp.example/mcp"
PRM_URL = "https://mcp.example/.well-known/oauth-protected-resource/mcp"
REDIRECT = "http://127.0.0.1:9999/callback"


def authorization_server(issuer: str) -> dict[str, object]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "registration_endpoint": f"{issuer}/register",
        "code_challenge_methods_supported": ["S256"],
    }


def approve(issuer: str):  # type: ignore[no-untyped-def]
    def authorizer(url: str, redirect_uri: str) -> str:
        state = parse_qs(urlsplit(url).query)["state"][0]
        return f"{redirect_uri}?code=c0de&state={state}&iss={issuer}"

    return authorizer


def test_a_new_authorization_server_means_a_new_registration() -> None:
    old = CredentialRecord(
        issuer="https://old-as.example",
        resource=SERVER,
        server_url=SERVER,
        client=ClientRegistration(client_id="old-client", kind="dynamic", redirect_uris=(REDIRECT,)),
        token_endpoint="https://old-as.example/token",
        tokens=TokenSet(access_token="old-at"),
    )
    new_issuer = "https://new-as.example"
    harness = Harness(
        routes={
            PRM_URL: json_response(200, {"resource": SERVER, "authorization_servers": [new_issuer]}),
            f"{new_issuer}/.well-known/oauth-authorization-server": json_response(
                200, authorization_server(new_issuer)
            ),
            f"{new_issuer}/register": json_response(201, {"client_id": "new-client"}),
            f"{new_issuer}/token": json_response(200, {"access_token": "new-at", "token_type": "Bearer"}),
        },
        authorizer=approve(new_issuer),
        redirect_uri=REDIRECT,
        records={old.key: old},
    )
    engine = FlowEngine(FlowConfig(server_url=SERVER, retry=RetryPolicy(attempts=1)))
    outcome = harness.run(engine.recover(401, BearerChallenge(), "old-at", 0))
    assert outcome == "authorized"
    assert f"{new_issuer}/register" in harness.urls_sent()
    assert "https://old-as.example/token" not in harness.urls_sent()
    assert engine.record is not None
    assert (engine.record.issuer, engine.record.client.client_id) == (new_issuer, "new-client")
    assert "client_id=new-client" in harness.authorization_urls[0]
    token_request = next(r for r in harness.sent if r.url == f"{new_issuer}/token")
    assert parse_qs(token_request.body.decode())["client_id"] == ["new-client"]
    assert json.loads(next(r for r in harness.sent if r.url.endswith("/register")).body)["redirect_uris"] == [REDIRECT]


def test_another_request_already_renewed_the_token() -> None:
    current = CredentialRecord(
        issuer="https://as.example",
        resource=SERVER,
        server_url=SERVER,
        client=ClientRegistration(client_id="c", kind="dynamic"),
        token_endpoint="https://as.example/token",
        tokens=TokenSet(access_token="fresh", refresh_token="rt"),
    )
    harness = Harness(records={current.key: current})
    engine = FlowEngine(FlowConfig(server_url=SERVER))
    assert harness.run(engine.recover(401, BearerChallenge(), "stale", 0)) == "reused"
    assert harness.sent == []


# -- coordination with other processes through the store ----------------------------------------------------

ISSUER = "https://as.example"


def stored(access_token: str, refresh_token: str | None = "rt-1", expires_at: float = 1_000.0) -> CredentialRecord:
    return CredentialRecord(
        issuer=ISSUER,
        resource=SERVER,
        server_url=SERVER,
        client=ClientRegistration(client_id="c", kind="dynamic"),
        token_endpoint=f"{ISSUER}/token",
        tokens=TokenSet(access_token=access_token, refresh_token=refresh_token, expires_at=expires_at, issued_at=1.0),
    )


def refreshing_harness(record: CredentialRecord) -> Harness:
    def token(request: object) -> object:
        return json_response(
            200, {"access_token": "at-2", "refresh_token": "rt-2", "token_type": "Bearer", "expires_in": 3600}
        )

    return Harness(routes={f"{ISSUER}/token": token}, records={record.key: record})  # type: ignore[dict-item]


def loaded_engine(harness: Harness) -> FlowEngine:
    engine = FlowEngine(FlowConfig(server_url=SERVER, retry=RetryPolicy(attempts=1)))
    harness.run(engine.load())
    return engine


def test_refresh_runs_under_the_record_lock_and_saves_before_unlocking() -> None:
    record = stored("at-1")
    harness = refreshing_harness(record)
    engine = loaded_engine(harness)
    saved_while_locked: list[bool] = []
    original = harness.execute

    def execute(effect: object) -> object:
        from mcp_oauth_auth.flow.effects import SaveRecord

        if isinstance(effect, SaveRecord):
            saved_while_locked.append(record.key in harness.held)
        return original(effect)

    harness.execute = execute  # type: ignore[method-assign]
    harness.run(engine.ensure_fresh(now=990.0))
    assert harness.lock_events == [f"lock {record.key}", f"unlock {record.key}"]
    assert saved_while_locked == [True]
    assert harness.held == set()
    saved = harness.records[record.key].tokens
    assert saved is not None
    assert (saved.access_token, saved.refresh_token) == ("at-2", "rt-2")
    assert engine.access_token == "at-2"


def test_a_refresh_that_names_no_scope_keeps_the_stored_scope() -> None:
    record = stored("at-1").with_tokens(
        TokenSet("at-1", refresh_token="rt-1", expires_at=1_000.0, scope="read", issued_at=1.0)
    )
    harness = refreshing_harness(record)  # answers without "scope"
    harness.run(loaded_engine(harness).ensure_fresh(now=990.0))
    saved = harness.records[record.key].tokens
    assert saved is not None
    assert (saved.access_token, saved.refresh_token, saved.scope) == ("at-2", "rt-2", "read")


def test_a_peer_process_already_refreshed_so_its_token_is_adopted() -> None:
    harness = refreshing_harness(stored("at-1"))
    engine = loaded_engine(harness)
    # Meanwhile another process refreshed and rotated the refresh token in the shared store.
    peer = stored("at-peer", refresh_token="rt-peer", expires_at=5_000.0)
    harness.records[peer.key] = peer
    harness.run(engine.ensure_fresh(now=990.0))
    assert harness.sent == []  # our stale refresh token rt-1 was never spent
    assert engine.access_token == "at-peer"
    assert harness.held == set()


def test_a_peer_token_that_is_itself_due_is_refreshed_with_the_peer_refresh_token() -> None:
    harness = refreshing_harness(stored("at-1"))
    engine = loaded_engine(harness)
    peer = stored("at-peer", refresh_token="rt-peer", expires_at=995.0)
    harness.records[peer.key] = peer
    harness.run(engine.ensure_fresh(now=990.0))
    [request] = harness.sent
    assert parse_qs(request.body.decode())["refresh_token"] == ["rt-peer"]
    assert engine.access_token == "at-2"


def test_a_record_removed_by_a_peer_is_not_refreshed() -> None:
    record = stored("at-1")
    harness = refreshing_harness(record)
    engine = loaded_engine(harness)
    del harness.records[record.key]  # logged out elsewhere
    harness.run(engine.ensure_fresh(now=990.0))
    assert harness.sent == []
    assert engine.access_token is None
    assert harness.records == {}  # nothing written back
    assert harness.held == set()


def test_401_after_a_peer_refreshed_reuses_the_stored_token() -> None:
    harness = refreshing_harness(stored("at-1"))
    engine = loaded_engine(harness)
    harness.records[engine.record.key] = stored("at-peer", refresh_token="rt-peer")  # type: ignore[union-attr]
    assert harness.run(engine.recover(401, BearerChallenge(), "at-1", 0)) == "reused"
    assert harness.sent == []
    assert engine.access_token == "at-peer"


def test_invalid_grant_releases_the_lock_before_a_new_authorization() -> None:
    record = stored("at-1")
    harness = Harness(
        routes={
            f"{ISSUER}/token": json_response(400, {"error": "invalid_grant"}),
            PRM_URL: json_response(503, {}),
        },
        records={record.key: record},
    )
    engine = loaded_engine(harness)
    # Discovery then fails on purpose (503): what is checked is the lock discipline before it.
    with pytest.raises(TemporaryOAuthError):
        harness.run(engine.recover(401, BearerChallenge(), "at-1", 0))
    assert harness.lock_events[:2] == [f"lock {record.key}", f"unlock {record.key}"]
    assert harness.sent[-1].url == PRM_URL  # the authorization attempt started after the unlock
    assert harness.records[record.key].tokens is None  # the spent refresh token is gone, the registration kept
    assert harness.records[record.key].client.client_id == "c"


def test_default_refresh_margin_is_capped_at_half_the_lifetime() -> None:
    short = stored("at-1", expires_at=31.0)  # issued at 1.0: a 30 s token
    harness = Harness(records={short.key: short})
    engine = loaded_engine(harness)
    assert engine.refresh_due_at == 16.0
    explicit = FlowEngine(FlowConfig(server_url=SERVER, refresh_skew=60.0))
    harness.run(explicit.load())
    assert explicit.refresh_due_at == -29.0


def test_a_refresh_that_fails_temporarily_keeps_using_a_token_that_is_still_valid(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = stored("at-1", expires_at=1_000.0)
    harness = Harness(routes={f"{ISSUER}/token": json_response(503, {})}, records={record.key: record})
    engine = loaded_engine(harness)
    due = engine.refresh_due_at
    assert due < 1_000.0
    with caplog.at_level("WARNING", logger="mcp_oauth_auth"):
        harness.run(engine.ensure_fresh(now=due + 1))  # due for a refresh, not expired yet
    assert engine.access_token == "at-1"
    assert harness.records[record.key] == record  # nothing stored changed
    assert "the current token is still valid, using it" in caplog.text
    harness.held.clear()  # what the flow left locked, the driver releases when the work ends (driving/session.py)
    with pytest.raises(TemporaryOAuthError):  # once it has expired, the failure is the caller's to see
        harness.run(engine.ensure_fresh(now=1_000.0))
    assert harness.records[record.key] == record
