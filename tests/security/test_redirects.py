"""Point 2: a discovery response that came through redirects (a client made with ``follow_redirects=True``, as the
official SDK 1.x makes them) is used only when every hop is https and allowed by the address policy; the flow's own
clients never follow redirects at all."""

from __future__ import annotations

import logging

import pytest

from mcp_oauth_auth import DiscoveryError, RegistrationError, UnsafeURLError
from mcp_oauth_auth.flow import guard

from .hostile import PRM_URL, SERVER, HostileServer, answer, document, make_auth

AS = "https://auth.example"
PRM = {"resource": SERVER, "authorization_servers": [AS]}


@pytest.mark.parametrize(
    "target",
    [
        "https://169.254.169.254/latest/meta-data/prm",
        "http://mcp.example/prm",  # plain http
        "https://[::ffff:10.0.0.1]/prm",
    ],
)
def test_a_redirect_to_a_forbidden_hop_is_not_used(kind: tuple[str, str], target: str) -> None:
    server = HostileServer.protected(PRM)
    server.routes[PRM_URL] = answer(302, {"location": target})
    server.routes[target] = document(PRM)
    with pytest.raises(UnsafeURLError, match="redirected to"):
        server.request(kind, make_auth(), follow_redirects=True)
    assert not [url for url in server.urls() if url.startswith(AS)]  # nothing from the hop was used


def test_a_redirect_through_allowed_hops_is_used(kind: tuple[str, str]) -> None:
    server = HostileServer.protected(PRM)
    server.routes[PRM_URL] = answer(307, {"location": "https://cdn.example/prm"})
    server.routes["https://cdn.example/prm"] = document(PRM)
    with pytest.raises(DiscoveryError, match="publishes metadata"):
        server.request(kind, make_auth(), follow_redirects=True)
    assert f"{AS}/.well-known/oauth-authorization-server" in server.urls()


def test_authenticate_never_follows_a_redirect(kind: tuple[str, str]) -> None:
    """The library's own sends (authenticate, logout) disable redirects: the hop is never requested."""
    server = HostileServer.protected(PRM)
    server.routes[PRM_URL] = answer(302, {"location": "https://169.254.169.254/prm"})
    server.routes[SERVER.replace("/mcp", "/.well-known/oauth-protected-resource")] = answer(404)
    # The refused hop leaves no metadata: the 2025-03-26 fallback is tried, and fails on this fake's origin.
    with pytest.raises((DiscoveryError, RegistrationError)):
        server.authenticate(kind, make_auth(), follow_redirects=True)
    assert not [url for url in server.urls() if "169.254" in url]


def test_following_redirects_is_warned_about_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guard, "_warned_about_redirects", [])
    server = HostileServer.protected(PRM)
    server.routes[PRM_URL] = answer(302, {"location": "https://cdn.example/prm"})
    server.routes["https://cdn.example/prm"] = answer(404)
    with caplog.at_level(logging.WARNING, logger="mcp_oauth_auth"):
        for _ in range(2):
            with pytest.raises((DiscoveryError, RegistrationError)):
                server.request(("httpx", "sync"), make_auth(), follow_redirects=True)
    warnings = [record for record in caplog.records if "follow_redirects=True" in record.getMessage()]
    assert len(warnings) == 1
