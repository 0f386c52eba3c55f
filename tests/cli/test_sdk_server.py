"""Against the official MCP SDK's streamable HTTP server (server-sent event responses, sessions), which validates
tokens by introspection at the fake authorization server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_oauth_auth.testing import FakeMCPStack

from ..httpx2_support import skip_module_without_httpx2

# The official MCP SDK 2.x server is built on httpx2.
skip_module_without_httpx2()
from ..integration.mcp_sdk_server import RunningMCPServer, serve_mcp_server  # noqa: E402
from .runner import problem, run_cli  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture
def sdk_server(stack: FakeMCPStack) -> Iterator[RunningMCPServer]:
    with serve_mcp_server(stack.issuer, stack.introspection_endpoint) as server:
        stack.config.extra_resources = [server.url]
        yield server


def test_login_doctor_and_test_against_the_sdk_server(sdk_server: RunningMCPServer, home: Path) -> None:
    doctor = run_cli(home, "doctor", sdk_server.url)
    assert doctor.returncode == 0, problem(doctor)
    assert "PKCE S256 advertised" in doctor.stdout

    login = run_cli(home, "login", "sdk", sdk_server.url, "--headless")
    assert login.returncode == 0, problem(login)
    result = run_cli(home, "test", "sdk")
    assert result.returncode == 0, problem(result)
    assert "protected-demo" in result.stdout
    assert ": add" in result.stdout
    assert sdk_server.verifier.checked
    assert all(sdk_server.verifier.checked)
