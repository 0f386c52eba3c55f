"""The flow engine driven directly with canned responses: what only a sans-IO test can set up."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

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
