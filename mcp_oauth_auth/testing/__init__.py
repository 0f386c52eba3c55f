"""Test support for mcp_oauth_auth: a fake MCP server with its OAuth 2.1 authorization server.

:class:`FakeMCPStack` is a sans-IO, thread-safe request handler with adapters for httpx / httpx2 mock
transports, respx, ASGI and an in-process authorizer; :func:`serve_stack` runs one on a real loopback port
(:func:`serve_asgi` any other ASGI app a test needs).
The ``assert_*`` helpers check what a stack saw; the pytest plugin (:mod:`mcp_oauth_auth.testing.pytest_plugin`,
see the testing guide, testing.md in the documentation) provides all of it as fixtures.

The names are imported on first use: the pytest plugin lives in this package and loads in every pytest run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_oauth_auth.testing.assertions import (
        DEVICE_CODE_GRANT,
        assert_counts,
        assert_grants,
        assert_no_violations,
        assert_scopes_requested,
        assert_token_requests,
        describe_traffic,
    )
    from mcp_oauth_auth.testing.fake import ASGIApp, AuthorizationPageError, FakeMCPStack
    from mcp_oauth_auth.testing.fake_as.records import FakeClient
    from mcp_oauth_auth.testing.fake_config import FakeStackConfig
    from mcp_oauth_auth.testing.fake_context import ENDPOINTS
    from mcp_oauth_auth.testing.fake_http import FakeResponse
    from mcp_oauth_auth.testing.fake_provider import ProviderQuirks, like_provider
    from mcp_oauth_auth.testing.pytest_plugin import StackClock
    from mcp_oauth_auth.testing.server import reserve_loopback_port, serve_asgi, serve_stack

_MODULES = {
    "ASGIApp": "fake",
    "AuthorizationPageError": "fake",
    "DEVICE_CODE_GRANT": "assertions",
    "ENDPOINTS": "fake_context",
    "FakeClient": "fake_as.records",
    "FakeMCPStack": "fake",
    "FakeResponse": "fake_http",
    "FakeStackConfig": "fake_config",
    "ProviderQuirks": "fake_provider",
    "like_provider": "fake_provider",
    "StackClock": "pytest_plugin",
    "assert_counts": "assertions",
    "assert_grants": "assertions",
    "assert_no_violations": "assertions",
    "assert_scopes_requested": "assertions",
    "assert_token_requests": "assertions",
    "describe_traffic": "assertions",
    "reserve_loopback_port": "server",
    "serve_asgi": "server",
    "serve_stack": "server",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})


__all__ = [
    "DEVICE_CODE_GRANT",
    "ENDPOINTS",
    "ASGIApp",
    "AuthorizationPageError",
    "FakeClient",
    "FakeMCPStack",
    "FakeResponse",
    "FakeStackConfig",
    "ProviderQuirks",
    "StackClock",
    "assert_counts",
    "assert_grants",
    "assert_no_violations",
    "assert_scopes_requested",
    "assert_token_requests",
    "describe_traffic",
    "like_provider",
    "reserve_loopback_port",
    "serve_asgi",
    "serve_stack",
]
