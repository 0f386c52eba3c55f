"""Point 6: the protected resource metadata must name the server itself (RFC 9728 §3.3), and a bearer token never
goes to a path that leaves the server's prefix through a dot segment, encoded or not."""

from __future__ import annotations

import pytest

from mcp_oauth_auth import DiscoveryError, MemoryTokenStore, ResourceMismatchError
from mcp_oauth_auth.testing import FakeMCPStack

from ..unit.clients import ClientKind, Seen, send_all
from .hostile import HAVE_HTTPX2, SERVER, HostileServer, make_auth

PARENT_PRM = {"resource": "https://mcp.example/", "authorization_servers": ["https://auth.example"]}


def test_a_parent_resource_is_refused_before_any_authorization_server_is_asked(kind: tuple[str, str]) -> None:
    server = HostileServer.protected(PARENT_PRM)
    with pytest.raises(ResourceMismatchError, match="allow_parent_resource=True"):
        server.request(kind, make_auth())
    assert not [url for url in server.urls() if "auth.example" in url]


def test_a_parent_resource_is_accepted_only_when_opted_in(kind: tuple[str, str]) -> None:
    server = HostileServer.protected(PARENT_PRM)
    with pytest.raises(DiscoveryError, match="publishes metadata"):
        server.request(kind, make_auth(allow_parent_resource=True))
    assert "https://auth.example/.well-known/oauth-authorization-server" in server.urls()


def test_an_exact_resource_up_to_a_trailing_slash_is_accepted(kind: tuple[str, str]) -> None:
    server = HostileServer.protected({"resource": SERVER + "/", "authorization_servers": ["https://auth.example"]})
    with pytest.raises(DiscoveryError, match="publishes metadata"):
        server.request(kind, make_auth())


def test_a_stored_parent_resource_record_is_not_used_without_the_opt_in() -> None:
    """A record a gateway's opt-in stored for ``https://mcp.test/`` is not picked up by another server's client,
    and, opted in, its token still goes only below the record's resource."""
    stack = FakeMCPStack()
    stack.config.prm_resource = "https://mcp.test/"
    store = MemoryTokenStore()
    opted = make_auth(stack.server_url, store=store, authorizer=stack.authorizer, allow_parent_resource=True)
    assert send_all(ClientKind("httpx", "sync"), stack, opted, [("GET", stack.server_url)])[0].status == 200
    (record,) = [store.load(key) for key in store.list_keys()]
    assert record is not None
    assert record.resource == "https://mcp.test/"
    strict = make_auth(stack.server_url, store=store, authorizer=stack.authorizer)
    seen = Seen()
    with pytest.raises(ResourceMismatchError):
        send_all(ClientKind("httpx", "sync"), stack, strict, [("GET", stack.server_url)], seen)
    assert seen.requests[0][2] is None  # the stored token was not sent


DOT_PATHS = ["/mcp/%2e%2e/admin", "/mcp/..%2fadmin", "/mcp/%2E%2E%2Fadmin", "/mcp/.%2e/admin", "/mcp/..%5cadmin"]


@pytest.mark.parametrize("path", DOT_PATHS)
def test_a_dot_segment_never_carries_the_bearer(path: str) -> None:
    stack = FakeMCPStack()
    for kind in (
        ClientKind("httpx", "sync"),
        ClientKind("httpx", "trio"),
        *([ClientKind("httpx2", "asyncio"), ClientKind("httpx2", "trio")] if HAVE_HTTPX2 else []),
    ):
        seen = Seen()
        auth = make_auth(stack.server_url, authorizer=stack.authorizer)
        send_all(kind, stack, auth, [("GET", stack.server_url), ("GET", f"https://mcp.test{path}")], seen)
        assert seen.requests[-2][2] is not None  # the server itself got the token
        assert seen.requests[-1][1].endswith(path)
        assert seen.requests[-1][2] is None
