"""Wrong arguments to MCPOAuth fail at construction with ConfigurationError, not later and not raw."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_oauth_auth import ConfigurationError, MCPOAuth, MemoryTokenStore, RetryPolicy
from mcp_oauth_auth.testing import FakeMCPStack

from .clients import ClientKind, send_all

URL = "https://mcp.test/mcp"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scopes": 5}, "scopes must be"),
        ({"scopes": b"a b"}, "scopes must be"),
        ({"scopes": [1]}, "scope token"),
        ({"scopes": ["mcp:read", ""]}, "scope token"),
        ({"scopes": ['say "hi"']}, "scope token"),
        ({"scopes": ["a\tb"]}, "scope token"),
        ({"refresh_skew": "60"}, "refresh_skew"),
        ({"refresh_skew": -1}, "refresh_skew"),
        ({"refresh_skew": float("nan")}, "refresh_skew"),
        ({"refresh_skew": True}, "refresh_skew"),
        ({"retry": 3}, "RetryPolicy"),
        ({"max_step_up": "2"}, "max_step_up"),
        ({"max_step_up": -1}, "max_step_up"),
        ({"send_resource_indicator": "no"}, "send_resource"),
        ({"allow_insecure_http": 1}, "allow_insecure_http"),
        ({"name": ""}, "name"),
        ({"name": 7}, "name"),
        ({"redirect_uri": 5}, "redirect URI must be a string"),
        ({"redirect_uri": "http://app.example.com/callback"}, "https, or http on a loopback"),
        ({"redirect_uri": "myapp://callback"}, "absolute http"),
        ({"redirect_uri": "https://app.example.com/cb#x"}, "fragment"),
        ({"resource_metadata_url": "http://mcp.test/.well-known/oauth-protected-resource"}, "https"),
        ({"lock_timeout": "soon"}, "lock_timeout"),
        ({"lock_timeout": float("inf")}, "lock_timeout"),
    ],
)
def test_wrong_arguments_are_refused_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        MCPOAuth(URL, store=MemoryTokenStore(), **options)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8765/callback",
        "http://[::1]:8765/callback",
        "http://localhost:8765/callback",
        "https://app.example.com/oauth/callback",
    ],
)
def test_usable_redirect_uris_are_accepted(redirect_uri: str) -> None:
    MCPOAuth(URL, store=MemoryTokenStore(), redirect_uri=redirect_uri, retry=RetryPolicy(attempts=1))


def test_a_custom_authorizers_redirect_uri_is_checked_before_anything_is_registered() -> None:
    class WebAuthorizer:
        """Chooses a plain-http redirect URI on a public host: codes would travel unencrypted."""

        interaction = "redirect"

        def redirect_uri(self, registered: Any) -> str:
            return "http://app.example.com/oauth/callback"

        def authorize(self, authorization_url: str, redirect_uri: str) -> str:
            raise AssertionError("never reached")

    from mcp_oauth_auth.authorizers.base import Authorizer

    class Checked(WebAuthorizer, Authorizer):
        pass

    stack = FakeMCPStack()
    auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), authorizer=Checked())
    with pytest.raises(ConfigurationError, match="http on a loopback"):
        send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    assert stack.count("register") == 0
    assert stack.count("authorize") == 0


@pytest.mark.parametrize(
    "options",
    [
        {"attempts": 0},
        {"attempts": True},
        {"attempts": 2.5},
        {"base_delay": -1},
        {"base_delay": "5"},
        {"max_delay": float("inf")},
    ],
)
def test_an_unusable_retry_policy_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="RetryPolicy"):
        RetryPolicy(**options)
