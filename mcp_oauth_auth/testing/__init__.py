"""Test support for mcp_oauth_auth: a fake MCP server with its OAuth 2.1 authorization server.

:class:`FakeMCPStack` is a sans-IO, thread-safe request handler with adapters for httpx / httpx2 mock
transports, respx, ASGI and an in-process authorizer; :func:`serve_stack` runs one on a real loopback port.
"""

from __future__ import annotations

from mcp_oauth_auth.testing.fake import ASGIApp, AuthorizationPageError, FakeMCPStack
from mcp_oauth_auth.testing.fake_as import FakeClient
from mcp_oauth_auth.testing.fake_config import FakeStackConfig
from mcp_oauth_auth.testing.fake_context import ENDPOINTS
from mcp_oauth_auth.testing.fake_http import FakeResponse
from mcp_oauth_auth.testing.server import serve_stack

__all__ = [
    "ENDPOINTS",
    "ASGIApp",
    "AuthorizationPageError",
    "FakeClient",
    "FakeMCPStack",
    "FakeResponse",
    "FakeStackConfig",
    "serve_stack",
]
