"""Point 3: a pre-registered client's secret or private key goes only to the issuer the user named, or to an
authorization server on the MCP server's own origin; any other authorization server the MCP server names is refused
before a request reaches it, for every grant (client credentials too, where no person would notice)."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_oauth_auth import DiscoveryError, IssuerMismatchError

from .hostile import SERVER, HostileServer, make_auth

SECRET = "s3cret-value-never-shown"
FOREIGN = "https://collector.example"


def _machine(**options: Any) -> Any:
    return make_auth(client_id="m2m", client_secret=SECRET, grant_type="client_credentials", **options)


@pytest.mark.parametrize("grant", ["client_credentials", "authorization_code"])
def test_a_secret_is_never_sent_to_an_authorization_server_the_user_did_not_name(
    kind: tuple[str, str], grant: str
) -> None:
    server = HostileServer.protected({"resource": SERVER, "authorization_servers": [FOREIGN]})
    auth = make_auth(client_id="app", client_secret=SECRET, grant_type=grant)
    with pytest.raises(IssuerMismatchError, match=r"pass issuer='https://collector\.example'") as caught:
        server.request(kind, auth)
    assert SECRET not in str(caught.value)
    assert not [url for url in server.urls() if url.startswith(FOREIGN)]  # not even its metadata was fetched
    assert all(authorization is None for _, _, authorization in server.seen)


def test_naming_the_issuer_is_the_consent(kind: tuple[str, str]) -> None:
    server = HostileServer.protected({"resource": SERVER, "authorization_servers": [FOREIGN]})
    with pytest.raises(DiscoveryError, match="publishes metadata"):
        server.request(kind, _machine(issuer=FOREIGN))
    assert f"{FOREIGN}/.well-known/oauth-authorization-server" in server.urls()


def test_an_authorization_server_on_the_servers_own_origin_needs_no_pin(kind: tuple[str, str]) -> None:
    own = "https://mcp.example/oauth"
    server = HostileServer.protected({"resource": SERVER, "authorization_servers": [FOREIGN, own]})
    with pytest.raises(DiscoveryError, match="publishes metadata"):
        server.request(kind, _machine())
    assert not [url for url in server.urls() if url.startswith(FOREIGN)]
    assert "https://mcp.example/.well-known/oauth-authorization-server/oauth" in server.urls()


def test_a_public_client_is_not_restricted(kind: tuple[str, str]) -> None:
    server = HostileServer.protected({"resource": SERVER, "authorization_servers": [FOREIGN]})
    with pytest.raises(DiscoveryError, match="publishes metadata"):
        server.request(kind, make_auth(client_id="public-app"))
    assert f"{FOREIGN}/.well-known/oauth-authorization-server" in server.urls()


def test_a_workload_assertion_is_never_sent_to_an_authorization_server_the_user_did_not_name(
    kind: tuple[str, str],
) -> None:
    """The jwt-bearer grant's JWT proves the workload's identity: a hostile MCP server must not harvest it."""
    assertion = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ3b3JrbG9hZCJ9.c2lnbmF0dXJl"
    server = HostileServer.protected({"resource": SERVER, "authorization_servers": [FOREIGN]})
    auth = make_auth(client_id="workload", assertion=assertion)
    with pytest.raises(IssuerMismatchError, match="workload assertion") as caught:
        server.request(kind, auth)
    assert assertion not in str(caught.value)
    assert not [url for url in server.urls() if url.startswith(FOREIGN)]
