"""One rule for "this stored record serves that MCP server", used alike by the CLI's lookups, the seed-compatible
TokenManager and the flow's store session (storage.names.serves)."""

from __future__ import annotations

import pytest

from mcp_oauth_auth.cli.errors import NotLoggedInError
from mcp_oauth_auth.cli.lookup import find_record
from mcp_oauth_auth.compat.manager import TokenManager
from mcp_oauth_auth.driving.session import StoreSession
from mcp_oauth_auth.flow.effects import LoadRecords
from mcp_oauth_auth.flow.urls import BearerScope, split_url
from mcp_oauth_auth.records import ClientRegistration, CredentialRecord, TokenSet
from mcp_oauth_auth.storage.memory import MemoryTokenStore
from mcp_oauth_auth.storage.names import serves

RESOURCE = "https://mcp.example.com/mcp"

#: (URL, served by a record for RESOURCE)
CASES = [
    ("https://mcp.example.com/mcp", True),
    ("HTTPS://MCP.Example.COM:443/mcp", True),
    ("https://mcp.example.com/mcp/", True),
    ("https://mcp.example.com/mcp/sub", True),  # below the resource: where its token goes too
    ("https://mcp.example.com/mcpx", False),  # not a path segment of it
    ("https://mcp.example.com/", False),  # a parent of the resource
    ("https://mcp.example.com/other/mcp", False),
    ("http://mcp.example.com/mcp", False),
    ("https://mcp.example.com:8443/mcp", False),
    ("https://evil.example.com/mcp", False),
    ("https://mcp.example.com.evil.example/mcp", False),
    ("urn:mcp-oauth-auth:name:work", False),
    ("not a url", False),
    ("", False),
]


def _record(resource: str = RESOURCE, names: tuple[str, ...] = ("work",)) -> CredentialRecord:
    return CredentialRecord(
        issuer="https://as.example.com",
        resource=resource,
        server_url=resource,
        client=ClientRegistration(client_id="c", kind="dynamic"),
        token_endpoint="https://as.example.com/token",
        tokens=TokenSet(access_token="a" * 40),
        names=names,
    )


@pytest.mark.parametrize(("url", "expected"), CASES)
def test_the_rule(url: str, expected: bool) -> None:
    record = _record()
    assert serves(record, url) is expected
    assert serves(record.key, url) is expected  # a key alone decides the same (the store session lists keys)


@pytest.mark.parametrize(("url", "expected"), [(u, e) for u, e in CASES if "://" in u])
def test_it_is_no_wider_than_where_the_token_is_sent(url: str, expected: bool) -> None:
    scheme, host, port, path, _ = split_url(url)
    assert serves(_record(), url) is BearerScope.for_resource(RESOURCE).covers(scheme, host, port, path) is expected


def test_a_record_bound_to_no_server_serves_nothing() -> None:
    unbound = _record(resource="urn:mcp-oauth-auth:name:work")
    assert not serves(unbound, "urn:mcp-oauth-auth:name:work")
    assert not serves(unbound, RESOURCE)


@pytest.mark.parametrize(("url", "expected"), [(u, e) for u, e in CASES if "://" in u])
def test_every_lookup_applies_it(url: str, expected: bool) -> None:
    store = MemoryTokenStore()
    store.save(_record())

    # The CLI (`--url`, and a URL given as the name)
    for name, wanted in (("work", url), (url, None)):
        if expected:
            assert find_record(store, name, wanted).resource == RESOURCE
        else:
            with pytest.raises(NotLoggedInError):
                find_record(store, name, wanted)

    # The seed-compatible TokenManager (server_url=)
    manager = TokenManager(store=store)
    assert (manager.load_tokens("work", server_url=url) is not None) is expected

    # The flow's store session (the records the engine starts from)
    session = StoreSession(store, lock_timeout=1.0)
    try:
        found = session.perform(LoadRecords(url))
    finally:
        session.close()
    assert [record.resource for record in found] == ([RESOURCE] if expected else [])
