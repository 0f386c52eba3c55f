from __future__ import annotations

import pytest

from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.urls import (
    BearerScope,
    authorization_server_metadata_urls,
    canonical_resource,
    is_loopback_host,
    protected_resource_metadata_urls,
    require_secure_url,
    resource_identifies_server,
    safe_url,
)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://MCP.Example.com/mcp", "https://mcp.example.com/mcp"),
        ("https://mcp.example.com:443/mcp#frag", "https://mcp.example.com/mcp"),
        ("https://mcp.example.com/", "https://mcp.example.com"),
        ("http://127.0.0.1:8080/mcp/", "http://127.0.0.1:8080/mcp/"),
    ],
)
def test_canonical_resource(url: str, canonical: str) -> None:
    assert canonical_resource(url) == canonical


def test_canonical_resource_rejects_non_http() -> None:
    with pytest.raises(ConfigurationError):
        canonical_resource("ftp://x/y")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://[::1", "not a valid URL"),
        ("https://mcp.test:99999/mcp", "invalid port"),
        ("https://mcp.test:port/mcp", "invalid port"),
        (5, "must be a string"),
        (b"https://mcp.test/mcp", "must be a string"),
        (None, "must be a string"),
    ],
)
def test_unusable_urls_are_configuration_errors(url: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        canonical_resource(url)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url", ["https://alice:PW-SECRET@mcp.test:99999/mcp", "https://alice:PW-SECRET@[::1/mcp", "gopher://:PW-SECRET@x/"]
)
def test_a_password_in_a_bad_url_is_not_repeated_in_the_error(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        canonical_resource(url)
    assert "PW-SECRET" not in str(caught.value)
    assert ":***@" in str(caught.value)


def test_prm_urls_order() -> None:
    assert protected_resource_metadata_urls("https://h/public/mcp", "https://h/custom") == [
        "https://h/custom",
        "https://h/.well-known/oauth-protected-resource/public/mcp",
        "https://h/.well-known/oauth-protected-resource",
    ]
    assert protected_resource_metadata_urls("https://h", None) == ["https://h/.well-known/oauth-protected-resource"]


def test_prm_urls_keep_the_query_after_the_path() -> None:
    """RFC 9728 §3.1: the well-known suffix goes between the host and the path and/or query."""
    assert protected_resource_metadata_urls("https://h/mcp?tenant=a", None) == [
        "https://h/.well-known/oauth-protected-resource/mcp?tenant=a",
        "https://h/.well-known/oauth-protected-resource",
    ]
    assert protected_resource_metadata_urls("https://h/?tenant=a", None)[0] == (
        "https://h/.well-known/oauth-protected-resource?tenant=a"
    )


def test_as_metadata_urls_with_and_without_path() -> None:
    assert [u for u, _ in authorization_server_metadata_urls("https://as/tenant1")] == [
        "https://as/.well-known/oauth-authorization-server/tenant1",
        "https://as/.well-known/openid-configuration/tenant1",
        "https://as/tenant1/.well-known/openid-configuration",
    ]
    assert authorization_server_metadata_urls("https://as") == [
        ("https://as/.well-known/oauth-authorization-server", False),
        ("https://as/.well-known/openid-configuration", True),
    ]


@pytest.mark.parametrize(
    ("resource", "server", "ok"),
    [
        ("https://h/mcp", "https://h/mcp", True),
        ("https://H/mcp/", "https://h/mcp", True),
        ("https://h", "https://h/mcp", True),
        ("https://h/mc", "https://h/mcp", False),
        ("https://h/mcp/sub", "https://h/mcp", False),
        ("https://evil/mcp", "https://h/mcp", False),
        ("http://h/mcp", "https://h/mcp", False),
        ("https://h:8443/mcp", "https://h/mcp", False),
        ("not a url", "https://h/mcp", False),
    ],
)
def test_resource_identifies_server(resource: str, server: str, ok: bool) -> None:
    assert resource_identifies_server(resource, server) is ok


def test_bearer_scope() -> None:
    scope = BearerScope.for_resource("https://h/mcp")
    assert scope.covers("https", "h", None, "/mcp")
    assert scope.covers("https", "H", 443, "/mcp/messages")
    assert not scope.covers("https", "h", None, "/mcpx")
    assert not scope.covers("https", "h", None, "/other")
    assert not scope.covers("http", "h", None, "/mcp")
    assert not scope.covers("https", "h", 8443, "/mcp")
    assert not scope.covers("https", "auth.h", None, "/mcp")
    root = BearerScope.for_resource("https://h")
    assert root.covers("https", "h", None, "/anything")


def test_require_secure_url() -> None:
    require_secure_url("https://as/token", "x")
    require_secure_url("http://127.0.0.1:9/token", "x")
    require_secure_url("http://[::1]:9/token", "x")
    with pytest.raises(ConfigurationError):
        require_secure_url("http://as/token", "token endpoint")
    require_secure_url("http://as/token", "x", allow_insecure_http=True)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.10.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("10.0.0.1", False),
        (None, False),
    ],
)
def test_is_loopback_host(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_plain_http_to_a_dns_name_that_looks_like_loopback_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        require_secure_url("http://127.evil.example/token", "token endpoint")


def test_safe_url_drops_userinfo_query_and_fragment() -> None:
    assert safe_url("https://user:pw@h:8443/cb?code=c&state=s#f") == "https://h:8443/cb"
    assert safe_url("http://[::1]:9/x?y") == "http://[::1]:9/x"
    assert safe_url("http://h:notaport/") == "<invalid URL>"


def test_websocket_handshakes_are_covered_like_http() -> None:
    from mcp_oauth_auth.flow.urls import BearerScope

    scope = BearerScope.for_resource("https://mcp.example.com/mcp")
    assert scope.covers("wss", "mcp.example.com", None, "/mcp/ws")
    assert scope.covers("wss", "mcp.example.com", 443, "/mcp")
    assert not scope.covers("ws", "mcp.example.com", None, "/mcp")  # plain ws is not https
    assert not scope.covers("wss", "evil.example.com", None, "/mcp")
    local = BearerScope.for_resource("http://127.0.0.1:8000/mcp")
    assert local.covers("ws", "127.0.0.1", 8000, "/mcp")
