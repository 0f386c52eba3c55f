"""The demo from the README's quick start, and the ways the command is started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .runner import child_env, problem, run_cli

NETWORK_GUARD = Path(__file__).parent / "network_guard"


def offline(**extra: str) -> dict[str, str]:
    """A child environment where any non-loopback connection or name lookup fails, and proxies point nowhere."""
    return {
        "PYTHONPATH": str(NETWORK_GUARD),
        "HTTP_PROXY": "http://proxy.invalid:3128",
        "HTTPS_PROXY": "http://proxy.invalid:3128",
        "ALL_PROXY": "http://proxy.invalid:3128",
        **extra,
    }


@pytest.mark.parametrize(
    ("code", "refusal"),
    [
        ("socket.socket().connect(('192.0.2.1', 443))", "connection to ('192.0.2.1', 443) refused"),
        ("socket.getaddrinfo('example.com', 443)", "name lookup of 'example.com' refused"),
    ],
)
def test_the_network_guard_refuses_the_network(home: Path, code: str, refusal: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import socket; {code}"],
        capture_output=True,
        text=True,
        env=child_env(home, offline()),
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert f"network guard: {refusal}" in result.stderr


def test_demo_runs_the_whole_flow_without_network_or_keyring(home: Path) -> None:
    result = run_cli(home, "demo", env=offline())
    assert result.returncode == 0, problem(result)
    steps = [line.split()[1] for line in result.stdout.splitlines() if line[:2] in ("1.", "2.", "3.", "4.", "5.")]
    assert steps == ["Server", "Log", "MCP", "Refresh", "Log"]
    assert "PKCE S256" in result.stdout
    assert "tools/call add(2, 3) = 5" in result.stdout
    assert "refreshed with the refresh token (rotated)" in result.stdout
    assert "tools/call add(20, 22) = 42" in result.stdout
    assert "revoked the refresh token and the access token" in result.stdout
    assert "Demo complete" in result.stdout
    assert result.stderr == ""
    assert list(home.iterdir()) == []  # a temporary store: nothing left in the user's home


def test_the_console_script(home: Path) -> None:
    script = Path(sys.executable).parent / ("mcp-oauth.exe" if sys.platform == "win32" else "mcp-oauth")
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, env=child_env(home), timeout=60, check=False
    )
    assert result.returncode == 0, problem(result)
    assert result.stdout.startswith("mcp-oauth ")


def test_help_lists_every_command(home: Path) -> None:
    result = run_cli(home, "--help")
    assert result.returncode == 0, problem(result)
    for command in ("login", "list", "show", "token", "test", "doctor", "logout", "clear", "demo"):
        assert f"\n    {command}" in result.stdout, command
    assert "exit status" in result.stdout


def test_no_command_is_a_usage_error(home: Path) -> None:
    result = run_cli(home)
    assert result.returncode == 2
    assert "usage: mcp-oauth" in result.stderr
