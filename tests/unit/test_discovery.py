from __future__ import annotations

import pytest

from mcp_oauth_auth.exceptions import DiscoveryError, IssuerMismatchError, ResourceMismatchError, TemporaryOAuthError
from mcp_oauth_auth.flow.discovery import (
    discover_authorization_server,
    discover_protected_resource,
    legacy_authorization_server,
)
from mcp_oauth_auth.flow.effects import HttpResponse
from mcp_oauth_auth.flow.fetch import RetryPolicy

from .flowkit import Harness, json_response

POLICY = RetryPolicy(attempts=3, base_delay=0.25, max_delay=5)
SERVER = "https://mcp.example/mcp"
PRM = {"resource": SERVER, "authorization_servers": ["https://as.example"], "scopes_supported": ["a", "b"]}
ASM = {
    "issuer": "https://as.example",
    "authorization_endpoint": "https://as.example/authorize",
    "token_endpoint": "https://as.example/token",
    "code_challenge_methods_supported": ["S256"],
}


def test_prm_from_challenge_url_first() -> None:
    harness = Harness(routes={"https://mcp.example/custom-prm": json_response(200, PRM)})
    prm = harness.run(discover_protected_resource(SERVER, "https://mcp.example/custom-prm", POLICY))
    assert prm.authorization_servers == ("https://as.example",)
    assert prm.scopes_supported == ("a", "b")
    assert harness.urls_sent() == ["https://mcp.example/custom-prm"]


def test_prm_falls_back_path_aware_then_root() -> None:
    harness = Harness(routes={"https://mcp.example/.well-known/oauth-protected-resource": json_response(200, PRM)})
    prm = harness.run(discover_protected_resource(SERVER, "https://mcp.example/gone", POLICY))
    assert prm is not None
    assert harness.urls_sent() == [
        "https://mcp.example/gone",
        "https://mcp.example/.well-known/oauth-protected-resource/mcp",
        "https://mcp.example/.well-known/oauth-protected-resource",
    ]


def test_prm_absent_means_legacy_server() -> None:
    harness = Harness()
    assert harness.run(discover_protected_resource(SERVER, None, POLICY)) is None


@pytest.mark.parametrize("resource", ["https://evil.example/mcp", "https://mcp.example/other", None])
def test_prm_resource_must_identify_server(resource: str | None) -> None:
    document = {**PRM, "resource": resource}
    harness = Harness(
        routes={"https://mcp.example/.well-known/oauth-protected-resource/mcp": json_response(200, document)}
    )
    with pytest.raises((ResourceMismatchError, DiscoveryError)):
        harness.run(discover_protected_resource(SERVER, None, POLICY))
    assert len(harness.sent) == 1  # nothing more is asked of anyone


def test_prm_without_authorization_servers() -> None:
    document = {"resource": SERVER, "authorization_servers": []}
    harness = Harness(
        routes={"https://mcp.example/.well-known/oauth-protected-resource/mcp": json_response(200, document)}
    )
    with pytest.raises(DiscoveryError):
        harness.run(discover_protected_resource(SERVER, None, POLICY))


def test_prm_5xx_is_retried_then_temporary_error() -> None:
    url = "https://mcp.example/.well-known/oauth-protected-resource/mcp"
    harness = Harness(routes={url: HttpResponse(503, (("retry-after", "2"),))})
    with pytest.raises(TemporaryOAuthError) as caught:
        harness.run(discover_protected_resource(SERVER, None, POLICY))
    assert caught.value.status_code == 503
    assert harness.urls_sent() == [url] * 3
    assert harness.slept == [2.0, 2.0]


def test_prm_429_then_success() -> None:
    url = "https://mcp.example/.well-known/oauth-protected-resource/mcp"
    harness = Harness(routes={url: [HttpResponse(429), json_response(200, PRM)]})
    assert harness.run(discover_protected_resource(SERVER, None, POLICY)) is not None
    assert harness.slept == [0.25]


def test_as_metadata_oauth_first() -> None:
    harness = Harness(routes={"https://as.example/.well-known/oauth-authorization-server": json_response(200, ASM)})
    metadata = harness.run(discover_authorization_server("https://as.example", POLICY))
    assert metadata.token_endpoint == "https://as.example/token"
    assert not metadata.is_openid_provider
    assert harness.urls_sent() == ["https://as.example/.well-known/oauth-authorization-server"]


def test_as_metadata_path_order_reaches_oidc_append() -> None:
    issuer = "https://as.example/tenant1"
    document = {**ASM, "issuer": issuer}
    harness = Harness(
        routes={"https://as.example/tenant1/.well-known/openid-configuration": json_response(200, document)}
    )
    metadata = harness.run(discover_authorization_server(issuer, POLICY))
    assert metadata.is_openid_provider
    assert harness.urls_sent() == [
        "https://as.example/.well-known/oauth-authorization-server/tenant1",
        "https://as.example/.well-known/openid-configuration/tenant1",
        "https://as.example/tenant1/.well-known/openid-configuration",
    ]


@pytest.mark.parametrize(
    "issuer", ["https://as.example/x", "https://AS.example", "https://evil.example", "http://as.example"]
)
def test_as_metadata_issuer_must_be_string_identical(issuer: str) -> None:
    """Identical but for the root slash, which RFC 3986 §6.2.3 makes the same URL (see same_issuer)."""
    harness = Harness(
        routes={
            "https://as.example/.well-known/oauth-authorization-server": json_response(200, {**ASM, "issuer": issuer})
        }
    )
    with pytest.raises(IssuerMismatchError):
        harness.run(discover_authorization_server("https://as.example", POLICY))


def test_as_metadata_endpoints_must_be_https() -> None:
    document = {**ASM, "token_endpoint": "http://as.example/token"}
    harness = Harness(
        routes={"https://as.example/.well-known/oauth-authorization-server": json_response(200, document)}
    )
    with pytest.raises(Exception, match="https"):
        harness.run(discover_authorization_server("https://as.example", POLICY))


def test_legacy_server_metadata_at_origin_then_defaults() -> None:
    harness = Harness()
    metadata = harness.run(legacy_authorization_server("https://mcp.example/v1/mcp", POLICY))
    assert metadata.assumed_defaults
    assert metadata.issuer == "https://mcp.example"
    assert (metadata.authorization_endpoint, metadata.token_endpoint, metadata.registration_endpoint) == (
        "https://mcp.example/authorize",
        "https://mcp.example/token",
        "https://mcp.example/register",
    )
    assert harness.urls_sent() == [
        "https://mcp.example/.well-known/oauth-authorization-server",
        "https://mcp.example/.well-known/openid-configuration",
    ]
    with_metadata = Harness(
        routes={
            "https://mcp.example/.well-known/oauth-authorization-server": json_response(
                200, {**ASM, "issuer": "https://mcp.example"}
            )
        }
    )
    assert not with_metadata.run(legacy_authorization_server(SERVER, POLICY)).assumed_defaults


def test_issuer_identity_allows_only_the_root_slash() -> None:
    from mcp_oauth_auth.flow.urls import same_issuer

    assert same_issuer("http://127.0.0.1:8000", "http://127.0.0.1:8000/")  # MCP SDK 1.x's pydantic round trip
    assert same_issuer("https://as.example/", "https://as.example")
    assert same_issuer("https://as.example/tenant", "https://as.example/tenant")
    assert not same_issuer("https://as.example/tenant/", "https://as.example/tenant")  # a path: exact
    assert not same_issuer("https://AS.example", "https://as.example")
    assert not same_issuer("https://as.example/?x", "https://as.example")
    assert not same_issuer(None, "https://as.example")
