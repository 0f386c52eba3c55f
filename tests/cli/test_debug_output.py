"""``--debug`` shows the library's log and one line per HTTP request, never the HTTP stack's internals nor a
query or a token; ``--debug=all`` adds those internals (still without tokens in the library's own lines)."""

from __future__ import annotations

from pathlib import Path

from mcp_oauth_auth.testing import FakeMCPStack

from .runner import problem, run_cli, stored_records


def test_debug_is_the_librarys_log_and_one_line_per_request(stack: FakeMCPStack, home: Path) -> None:
    result = run_cli(home, "login", "work", stack.server_url, "--headless", "--debug")
    assert result.returncode == 0, problem(result)
    lines = result.stderr.splitlines()
    request_lines = [line for line in lines if " httpx INFO: HTTP Request: " in line]
    # Every request the CLI sent through httpx (the probe, discovery, registration, the token request; the
    # headless authorizer's own walk through /authorize too), each exactly once.
    assert len(request_lines) == len(stack.request_log), "\n".join(request_lines)
    assert any(f"HTTP Request: POST {stack.server_url} " in line for line in request_lines)
    assert not [line for line in request_lines if "?" in line.split("HTTP Request: ", 1)[1].split('"')[0]]
    assert any(" mcp_oauth_auth DEBUG: " in line for line in lines)
    assert not [line for line in lines if " httpcore" in line]
    [record] = stored_records(home)
    assert record.tokens is not None
    assert record.tokens.access_token not in result.stderr


def test_debug_all_adds_the_http_stacks_internals(stack: FakeMCPStack, home: Path) -> None:
    result = run_cli(home, "--debug=all", "login", "work", stack.server_url, "--headless")
    assert result.returncode == 0, problem(result)
    assert [line for line in result.stderr.splitlines() if " httpcore." in line]
    after_the_command = run_cli(home, "list", "--debug=all")
    assert after_the_command.returncode == 0, problem(after_the_command)
    assert " mcp_oauth_auth INFO: storing credentials in " in after_the_command.stderr


def test_debug_before_the_command_still_takes_no_value(home: Path) -> None:
    result = run_cli(home, "--debug", "show", "nobody")
    assert result.returncode == 3, problem(result)
    assert "Traceback (most recent call last)" in result.stderr
