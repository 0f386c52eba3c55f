"""mcp-oauth doctor: a report of what a server publishes, and an exit status saying whether clients can log in."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig, serve_stack

from .runner import problem, run_cli


def problem_lines(output: str) -> list[str]:
    lines = output.splitlines()
    start = lines.index("Problems")
    return [line.strip() for line in lines[start + 1 :] if line.strip()][:-1]


def test_a_good_server(stack: FakeMCPStack, home: Path) -> None:
    result = run_cli(home, "doctor", stack.server_url)
    assert result.returncode == 0, problem(result)
    report = result.stdout
    assert f"Authorization server {stack.issuer}" in report
    assert "PKCE S256 advertised" in report
    assert f"dynamic client registration (RFC 7591) at {stack.registration_endpoint}" in report
    assert f"tried {stack.resource_metadata_url}: HTTP 200" in report
    assert f"tried {stack.as_metadata_url}: HTTP 200" in report
    assert "Bearer challenge" in report
    assert "A client can authenticate to this server." in report
    assert "Problems" not in report
    assert stack.count("register") == 0  # it never logs in
    assert stack.count("authorize") == 0


def test_a_server_without_pkce_s256(home: Path) -> None:
    with serve_stack(FakeStackConfig(code_challenge_methods_supported=None)) as stack:
        result = run_cli(home, "doctor", stack.server_url)
    assert result.returncode == 4, problem(result)
    [line] = [line for line in problem_lines(result.stdout) if line.startswith("✗ error:")]
    assert "does not advertise PKCE S256" in line
    assert "cannot authenticate" in result.stdout


def test_a_server_without_protected_resource_metadata(home: Path) -> None:
    """A 2025-03-26 server: the missing metadata is a warning, since this client (like the official SDKs) finds the
    authorization server at the origin, as a login shows."""
    with serve_stack(FakeStackConfig(prm_mode="none")) as stack:
        result = run_cli(home, "doctor", stack.server_url)
        assert result.returncode == 0, problem(result)
        assert not [line for line in problem_lines(result.stdout) if line.startswith("✗ error:")]
        warnings = [
            line for line in problem_lines(result.stdout) if "no protected resource metadata (RFC 9728)" in line
        ]
        assert len(warnings) == 1
        assert run_cli(home, "login", "legacy", stack.server_url, "--headless").returncode == 0
    # It tells what a client following the 2025-03-26 rules finds.
    assert "2025-03-26 fallback" in result.stdout
    assert "PKCE S256 advertised" in result.stdout


def test_a_server_whose_metadata_names_another_resource(home: Path) -> None:
    with serve_stack(FakeStackConfig(prm_resource="http://127.0.0.1:1/other")) as stack:
        result = run_cli(home, "doctor", stack.server_url)
    assert result.returncode == 4, problem(result)
    assert "does not identify the MCP server" in result.stdout
    assert "Authorization server" not in result.stdout  # refused before looking any further


def test_warnings_do_not_fail(home: Path) -> None:
    config = FakeStackConfig(registration_enabled=False, iss_parameter_supported=False)
    with serve_stack(config) as stack:
        result = run_cli(home, "doctor", stack.server_url)
    assert result.returncode == 0, problem(result)
    warnings = [line for line in problem_lines(result.stdout) if line.startswith("! warning:")]
    assert any("pre-registered client_id" in line for line in warnings)
    assert any("RFC 9207" in line for line in warnings)
    assert "A client can authenticate to this server (2 warnings)." in result.stdout


def test_json_report(stack: FakeMCPStack, home: Path) -> None:
    result = run_cli(home, "doctor", stack.server_url, "--json")
    assert result.returncode == 0, problem(result)
    report = json.loads(result.stdout)
    assert report["can_authenticate"] is True
    assert report["probe"]["status"] == 401
    assert report["challenge"]["resource_metadata"] == stack.resource_metadata_url
    assert report["protected_resource_metadata"]["authorization_servers"] == [stack.issuer]
    [server] = report["authorization_servers"]
    assert server["issuer"] == stack.issuer
    assert server["pkce_s256"] is True
    assert server["dynamic_registration"] == stack.registration_endpoint
    assert report["problems"] == []


def test_an_unreachable_server_is_an_error_not_a_report(home: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli(home, "doctor", f"http://127.0.0.1:{port}/mcp")
    assert result.returncode == 1, problem(result)
    assert result.stdout == ""
    error, hint = result.stderr.splitlines()
    assert error.startswith(f"error: could not reach http://127.0.0.1:{port}/mcp")
    assert hint.startswith("hint: ")
