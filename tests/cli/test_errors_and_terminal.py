"""Failures are one line and a hint with a documented exit status; colour only on a terminal, never with NO_COLOR."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp_oauth_auth.testing import FakeMCPStack

from .runner import child_env, problem, run_cli


def test_an_unknown_name(home: Path) -> None:
    for command in ("token", "logout"):
        # TERM says colours would work, but the output is a pipe: plain text.
        result = run_cli(home, command, "nobody", env={"TERM": "xterm"})
        assert result.returncode == 3, problem(result)
        assert result.stdout == ""
        error, hint = result.stderr.splitlines()
        assert error == "error: no stored credential named 'nobody' in the encrypted_file store"
        assert hint.startswith("hint: `mcp-oauth list`")


def test_debug_adds_the_traceback(home: Path) -> None:
    result = run_cli(home, "--debug", "show", "nobody")
    assert result.returncode == 3
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().endswith(
        "hint: `mcp-oauth list` shows the stored credentials; `mcp-oauth login NAME URL` adds one"
    )


def test_a_usage_error(home: Path) -> None:
    result = run_cli(home, "login", "only-a-name")
    assert result.returncode == 2
    error, hint = result.stderr.splitlines()
    assert error == "error: the following arguments are required: URL"
    assert hint == "hint: see `mcp-oauth login --help`"


def test_a_secret_without_a_client_id(home: Path) -> None:
    result = run_cli(home, "login", "x", "http://127.0.0.1:9/mcp", "--client-secret", "s3cret")
    assert result.returncode == 2, problem(result)
    assert "s3cret" not in result.stderr
    assert result.stderr.startswith("error: --client-secret needs --client-id")


def test_an_unknown_store(home: Path) -> None:
    result = run_cli(home, "list", "--store", "shoebox")
    assert result.returncode == 2, problem(result)
    assert "unknown credential store 'shoebox'" in result.stderr
    assert "encrypted_file" in result.stderr


def test_a_server_that_is_not_mcp(logged_in: FakeMCPStack, home: Path) -> None:
    # The fake resource answers plain JSON, not JSON-RPC: `test` must say so rather than claim success.
    result = run_cli(home, "test", "work")
    assert result.returncode == 1, problem(result)
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 2
    assert "is this URL an MCP endpoint?" in result.stderr


def run_in_terminal(home: Path, *args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run the command with a pseudo-terminal as stdout and stderr; its exit status and everything it wrote."""
    import pty
    import subprocess

    leader, follower = pty.openpty()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "mcp_oauth_auth", *args],
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=follower,
            env=child_env(home, env),
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        return child.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(leader)


def test_colour_on_a_terminal_unless_no_color(stack: FakeMCPStack, home: Path) -> None:
    status, coloured = run_in_terminal(home, "doctor", stack.server_url, env={"TERM": "xterm"})
    assert status == 0
    assert "\x1b[32;1m✓\x1b[0m PKCE S256 advertised" in coloured
    status, plain = run_in_terminal(home, "doctor", stack.server_url, env={"TERM": "xterm", "NO_COLOR": "1"})
    assert status == 0
    assert "\x1b[" not in plain  # no colour, and no spinner either
    assert "✓ PKCE S256 advertised" in plain
