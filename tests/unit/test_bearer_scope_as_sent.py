"""MCPOAuth decides bearer scoping on a request URL's components as sent (the hot path) exactly as
``BearerScope.covers`` does on its decoded parts, on httpx and httpx2 URLs alike."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore
from mcp_oauth_auth.flow.urls import BearerScope

from ..httpx2_support import needs_httpx2

LIBRARIES = [
    "httpx",
    pytest.param("httpx2", marks=needs_httpx2),
]

RESOURCES = [
    "https://mcp.example.com/mcp",
    "https://mcp.example.com/mcp/",
    "https://mcp.example.com",
    "https://MCP.Example.com:443/Mcp",
    "https://mcp.example.com:8443/mcp",
    "http://127.0.0.1:8000/mcp",
    "http://[::1]:8000/mcp",
    "https://中国.example/mcp",
    "https://xn--fiqs8s.example/mcp",
    "https://sub.xn--fiqs8s.example/mcp",
    "https://mcp.example.com/a%20b",
    "https://mcp.example.com/a b",
    "https://mcp.example.com/t%C3%A9",
    "http://[fe80::1%25en0]:8000/mcp",
]

REQUESTS = [
    "https://mcp.example.com/mcp",
    "https://mcp.example.com/mcp/",
    "https://mcp.example.com/mcp/tools?x=1#f",
    "https://mcp.example.com/mcpx",
    "https://mcp.example.com/MCP",
    "https://mcp.example.com/Mcp",
    "https://mcp.example.com/Mcp/x",
    "https://mcp.example.com",
    "https://mcp.example.com/",
    "https://mcp.example.com/other",
    "https://mcp.example.com/mcp%2Ftools",
    "https://mcp.example.com/%6Dcp",
    "https://mcp.example.com/mcp/%2e%2e/admin",
    "https://mcp.example.com/mcp/%2E%2e/admin",
    "https://mcp.example.com/mcp/..%2fadmin",
    "https://mcp.example.com/mcp/.%2E%5Cadmin",
    "https://mcp.example.com/mcp/x/%252e%252e/%252e%252e/admin",
    "https://mcp.example.com/mcp/.well-known/x",
    "https://MCP.EXAMPLE.COM:443/mcp",
    "https://mcp.example.com:8443/mcp",
    "https://mcp.example.com:443/mcp",
    "http://mcp.example.com/mcp",
    "http://mcp.example.com:443/mcp",
    "wss://mcp.example.com/mcp",
    "ws://mcp.example.com/mcp",
    "https://user:pass@mcp.example.com/mcp",
    "https://evil.example/mcp",
    "https://mcp.example.com.evil.example/mcp",
    "http://127.0.0.1:8000/mcp",
    "http://127.0.0.1/mcp",
    "http://localhost:8000/mcp",
    "ws://127.0.0.1:8000/mcp/ws",
    "http://[::1]:8000/mcp/x",
    "https://中国.example/mcp",
    "https://xn--fiqs8s.example/mcp",
    "https://XN--FIQS8S.example/mcp/sub",
    "https://sub.xn--fiqs8s.example/mcp",
    "https://mcp.example.com/a%20b",
    "https://mcp.example.com/a%20b/c",
    "https://mcp.example.com/a b/c",
    "https://mcp.example.com/a%2520b",
    "https://mcp.example.com/té",
    "https://mcp.example.com/t%C3%A9/x",
    "http://[fe80::1%25en0]:8000/mcp",
    "http://[FE80::1%25en0]:8000/mcp",
]


def _auth(resource: str) -> MCPOAuth:
    auth = MCPOAuth(resource, store=MemoryTokenStore(), authorizer=lambda url: url)
    auth._engine.bearer_scope = BearerScope.for_resource(resource)  # as a stored record's resource sets it
    return auth


@pytest.mark.parametrize("library_name", LIBRARIES)
@pytest.mark.parametrize("resource", RESOURCES)
def test_covers_matches_the_decoded_rule(library_name: str, resource: str) -> None:
    library: ModuleType = importlib.import_module(library_name)
    auth = _auth(resource)
    scope = auth._engine.bearer_scope
    for target in REQUESTS:
        request = library.Request("GET", target)
        url = request.url
        raw_path = url.raw_path.decode("ascii").partition("?")[0]
        expected = scope.covers(url.scheme, url.host, url.port, url.path, raw_path)
        assert auth._covers(request) is expected, (resource, target)


@pytest.mark.parametrize("library_name", LIBRARIES)
def test_covers_on_the_common_cases(library_name: str) -> None:
    library: ModuleType = importlib.import_module(library_name)
    auth = _auth("https://mcp.example.com/mcp")
    covered = {target for target in REQUESTS if auth._covers(library.Request("GET", target))}
    assert covered == {
        "https://mcp.example.com/mcp",
        "https://mcp.example.com/mcp/",
        "https://mcp.example.com/mcp/tools?x=1#f",
        "https://mcp.example.com/mcp%2Ftools",
        "https://mcp.example.com/%6Dcp",
        "https://MCP.EXAMPLE.COM:443/mcp",
        "https://mcp.example.com:443/mcp",
        "wss://mcp.example.com/mcp",
        "https://user:pass@mcp.example.com/mcp",
        "https://mcp.example.com/mcp/.well-known/x",
    }


@pytest.mark.parametrize("library_name", LIBRARIES)
@pytest.mark.parametrize(
    "target",
    [
        "https://mcp.example.com/mcp/%2e%2e/admin",
        "https://mcp.example.com/mcp/..%2fadmin",
        "https://mcp.example.com/mcp/..%2Fadmin",
        "https://mcp.example.com/mcp/%2E./admin",
        "https://mcp.example.com/mcp/x%2f..%2f..%2fadmin",
        "https://mcp.example.com/mcp/%252e%252e/admin",
        "https://mcp.example.com/mcp/..%5cadmin",
    ],
)
def test_a_dot_segment_encoded_or_not_is_never_covered(library_name: str, target: str) -> None:
    library: ModuleType = importlib.import_module(library_name)
    assert not _auth("https://mcp.example.com/mcp")._covers(library.Request("GET", target))
    assert not _auth("https://mcp.example.com")._covers(library.Request("GET", target))


def test_a_url_without_parsed_components_is_decided_by_its_properties() -> None:
    class URL:
        scheme, host, port, path = "https", "mcp.example.com", None, "/mcp/x"

    class Request:
        url = URL()

    assert _auth("https://mcp.example.com/mcp")._covers(Request())
    URL.path = "/other"
    assert not _auth("https://mcp.example.com/mcp")._covers(Request())
