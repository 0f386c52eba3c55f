"""``issuer=``: a client's credentials stay with the authorization server they belong to.

SPEC-NOTES, "Client identity": pre-registered credentials are pinned to one issuer, and a mismatch is an error.
Without an explicit pin, a client secret is still never sent to an authorization server other than the one it was
first used with for the server.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mcp_oauth_auth import ConfigurationError, IssuerMismatchError, MCPOAuth, MemoryTokenStore, RetryPolicy
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig

from .clients import KIND_PARAMS, ClientKind, send_all

FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.0)
REDIRECT = "http://127.0.0.1:8765/callback"
SECRET = "pre-registered-s3cret"
SYNC = ClientKind("httpx", "sync")


@pytest.fixture(params=KIND_PARAMS)
def kind(request: pytest.FixtureRequest) -> ClientKind:
    assert isinstance(request.param, ClientKind)
    return request.param


def stack_at(as_base_url: str, **config: Any) -> FakeMCPStack:
    """The MCP server https://mcp.test/mcp, its authorization server at ``as_base_url``, client "pre" registered."""
    stack = FakeMCPStack(FakeStackConfig(as_base_url=as_base_url, registration_enabled=False, **config))
    stack.add_client(
        "pre", client_secret=SECRET, token_endpoint_auth_method="client_secret_basic", redirect_uris=[REDIRECT]
    )
    return stack


def pre_registered(stack: FakeMCPStack, store: MemoryTokenStore | None = None, **options: Any) -> MCPOAuth:
    return MCPOAuth(
        stack.server_url,
        store=store if store is not None else MemoryTokenStore(),
        authorizer=stack.authorizer,
        retry=FAST_RETRY,
        client_id="pre",
        client_secret=SECRET,
        redirect_uri=REDIRECT,
        **options,
    )


def hosts_contacted(stack: FakeMCPStack) -> set[str]:
    return {request["url"].split("/")[2] for request in stack.request_log}


def test_the_pinned_authorization_server_is_chosen_among_several(kind: ClientKind) -> None:
    stack = stack_at("https://auth.test")
    stack.config.prm_authorization_servers = ["https://elsewhere.test", "https://auth.test"]
    auth = pre_registered(stack, issuer="https://auth.test")
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert stack.grants_used() == ["authorization_code"]
    assert "elsewhere.test" not in hosts_contacted(stack)  # not even its metadata was fetched
    assert auth.record is not None
    assert auth.record.issuer == "https://auth.test"


def test_without_a_pin_a_confidential_client_goes_to_no_other_origin() -> None:
    """The control for the test above: the same listing, unpinned, is refused for a client with a secret (issue 14,
    point 3: its secret goes only to a named issuer or to the MCP server's own origin), before any request."""
    stack = stack_at("https://auth.test")
    stack.config.prm_authorization_servers = ["https://elsewhere.test", "https://auth.test"]
    auth = pre_registered(stack)
    with pytest.raises(IssuerMismatchError, match=r"pass issuer='https://elsewhere\.test'") as caught:
        send_all(SYNC, stack, auth, [("GET", stack.server_url)])
    assert SECRET not in str(caught.value)
    assert hosts_contacted(stack) == {"mcp.test"}


def test_a_server_naming_only_other_authorization_servers_is_refused(kind: ClientKind) -> None:
    stack = stack_at("https://auth.test")
    stack.config.prm_authorization_servers = ["https://auth.test/tenant2", "https://evil.test"]
    auth = pre_registered(stack, issuer="https://auth.test")
    with pytest.raises(IssuerMismatchError, match=r"pinned to https://auth\.test") as caught:
        send_all(kind, stack, auth, [("GET", stack.server_url)])
    assert SECRET not in str(caught.value)
    assert stack.count("as_metadata") == 0
    assert stack.count("token") == 0
    assert hosts_contacted(stack) == {"mcp.test"}


def test_a_legacy_server_is_checked_against_the_pin_too() -> None:
    """No protected resource metadata (MCP 2025-03-26): the authorization server is the MCP server's origin."""
    stack = stack_at("https://mcp.test", prm_mode="none")
    refused = pre_registered(stack, issuer="https://auth.test")
    with pytest.raises(IssuerMismatchError):
        send_all(SYNC, stack, refused, [("GET", stack.server_url)])
    assert stack.count("token") == 0
    accepted = pre_registered(stack, issuer="https://mcp.test")
    assert send_all(SYNC, stack, accepted, [("GET", stack.server_url)])[0].status == 200


def test_a_root_slash_is_not_a_different_issuer() -> None:
    stack = stack_at("https://auth.test")
    auth = pre_registered(stack, issuer="https://auth.test/")
    assert send_all(SYNC, stack, auth, [("GET", stack.server_url)])[0].status == 200


def test_stored_credentials_of_other_authorization_servers_are_not_used() -> None:
    store = MemoryTokenStore()
    first = stack_at("https://auth.test")
    auth = pre_registered(first, store, issuer="https://auth.test")
    assert send_all(SYNC, first, auth, [("GET", first.server_url)])[0].status == 200
    [stored_key] = store.list_keys()
    assert stored_key.issuer == "https://auth.test"

    # The same server, now behind another authorization server, with the client pinned to that one: the stored
    # token from auth.test is never sent; a new authorization at the pinned server happens straight away.
    second = stack_at("https://login.test")
    auth = pre_registered(second, store, issuer="https://login.test")
    assert send_all(SYNC, second, auth, [("GET", second.server_url)])[0].status == 200
    first_token = store.load(stored_key)
    assert first_token is not None
    assert first_token.tokens is not None
    assert all(
        request.get("authorization") != f"Bearer {first_token.tokens.access_token}"
        for request in second.resource_requests
    )
    assert {key.issuer for key in store.list_keys()} == {"https://auth.test", "https://login.test"}


def test_a_secret_is_not_sent_to_a_new_authorization_server_unasked(kind: ClientKind) -> None:
    store = MemoryTokenStore()
    before = stack_at("https://auth.test")
    first = pre_registered(before, store, issuer="https://auth.test")
    assert send_all(kind, before, first, [("GET", before.server_url)])[0].status == 200
    drop_refresh_token(store)
    [key] = store.list_keys()
    stored = store.load(key)

    # The MCP server now names another authorization server and rejects the old token.
    after = stack_at("https://login.test")
    with pytest.raises(IssuerMismatchError, match=r"issuer='https://login\.test'") as caught:
        send_all(kind, after, pre_registered(after, store), [("GET", after.server_url)])
    assert SECRET not in str(caught.value)
    assert after.count("token") == 0
    assert after.count("authorize") == 0
    assert store.load(key) == stored  # nothing stored was touched

    # Naming the new authorization server is the explicit consent.
    confirmed = pre_registered(after, store, issuer="https://login.test")
    assert send_all(kind, after, confirmed, [("GET", after.server_url)])[0].status == 200
    assert [request["client_id"] for request in after.token_requests] == ["pre"]


def test_a_pre_registered_public_client_is_not_taken_to_a_new_authorization_server_either() -> None:
    store = MemoryTokenStore()
    before = FakeMCPStack(FakeStackConfig(as_base_url="https://auth.test", registration_enabled=False))
    before.add_client("public-app", redirect_uris=[REDIRECT])
    options: dict[str, Any] = {"client_id": "public-app", "redirect_uri": REDIRECT, "retry": FAST_RETRY}
    auth = MCPOAuth(before.server_url, store=store, authorizer=before.authorizer, **options)
    assert send_all(SYNC, before, auth, [("GET", before.server_url)])[0].status == 200
    drop_refresh_token(store)
    after = FakeMCPStack(FakeStackConfig(as_base_url="https://login.test", registration_enabled=False))
    after.add_client("public-app", redirect_uris=[REDIRECT])
    moved = MCPOAuth(after.server_url, store=store, authorizer=after.authorizer, **options)
    with pytest.raises(IssuerMismatchError, match="public-app"):
        send_all(SYNC, after, moved, [("GET", after.server_url)])
    assert after.count("authorize") == 0


def test_a_dynamically_registered_client_follows_the_server_to_a_new_authorization_server() -> None:
    """Only pre-registered clients are held back: a dynamic registration simply happens again at the new server."""
    store = MemoryTokenStore()
    before = FakeMCPStack(FakeStackConfig(as_base_url="https://auth.test"))
    auth = MCPOAuth(before.server_url, store=store, authorizer=before.authorizer, retry=FAST_RETRY)
    assert send_all(SYNC, before, auth, [("GET", before.server_url)])[0].status == 200
    drop_refresh_token(store)
    after = FakeMCPStack(FakeStackConfig(as_base_url="https://login.test"))
    auth = MCPOAuth(after.server_url, store=store, authorizer=after.authorizer, retry=FAST_RETRY)
    assert send_all(SYNC, after, auth, [("GET", after.server_url)])[0].status == 200
    assert after.count("register") == 1


def drop_refresh_token(store: MemoryTokenStore) -> None:
    """Without a refresh token (or once it is refused), a rejected token means a new authorization."""
    [key] = store.list_keys()
    stored = store.load(key)
    assert stored is not None
    assert stored.tokens is not None
    store.save(stored.with_tokens(replace(stored.tokens, refresh_token=None)))


@pytest.mark.parametrize(
    "issuer", ["", "auth.test", "ftp://auth.test", "https://auth.test?tenant=1", "https://auth.test/#x", "https://"]
)
def test_an_unusable_issuer_is_a_configuration_error(issuer: str) -> None:
    with pytest.raises(ConfigurationError, match="issuer"):
        MCPOAuth("https://mcp.test/mcp", store=MemoryTokenStore(), client_id="pre", issuer=issuer)


def test_the_pin_is_in_the_settings_repr_and_the_secret_is_not() -> None:
    auth = MCPOAuth(
        "https://mcp.test/mcp", store=MemoryTokenStore(), client_id="pre", client_secret=SECRET, issuer="https://a.test"
    )
    settings = repr(auth._engine.config.client)
    assert "issuer='https://a.test'" in settings
    assert SECRET not in settings
