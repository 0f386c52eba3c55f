"""When the credentials end up in the key-file fallback (no OS keyring, no MCP_OAUTH_PASSWORD), ``login`` and
``list`` say plainly that they are as good as plain text, with the remedy; a password-protected store says nothing."""

from __future__ import annotations

from pathlib import Path

from mcp_oauth_auth.testing import FakeMCPStack

from .runner import problem, run_cli

WARNING = "warning: credentials are stored as good as in plain text"
REMEDY = "remedy: to protect them, set MCP_OAUTH_PASSWORD and log in again into a new store"


def _lines(text: str, start: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(start)]


def test_the_key_file_fallback_is_called_plain_text_by_login_and_list(stack: FakeMCPStack, home: Path) -> None:
    login = run_cli(home, "login", "work", stack.server_url, "--headless")
    assert login.returncode == 0, problem(login)
    [warning] = _lines(login.stderr, WARNING)
    assert f"the key file {home / 'store.key'} beside them" in warning
    assert len(_lines(login.stderr, REMEDY)) == 1
    listed = run_cli(home, "list")
    assert listed.returncode == 0, problem(listed)
    assert len(_lines(listed.stderr, WARNING)) == 1
    assert len(_lines(listed.stderr, REMEDY)) == 1
    assert WARNING not in listed.stdout  # stdout stays the table, for scripts


def test_a_password_protected_store_gets_no_such_warning(stack: FakeMCPStack, home: Path) -> None:
    env = {"MCP_OAUTH_PASSWORD": "correct horse"}
    login = run_cli(home, "login", "work", stack.server_url, "--headless", env=env)
    assert login.returncode == 0, problem(login)
    assert "plain text" not in login.stderr
    listed = run_cli(home, "list", env=env)
    assert listed.returncode == 0, problem(listed)
    assert "plain text" not in listed.stderr
    assert "work" in listed.stdout


def test_an_empty_store_warns_about_nothing(home: Path) -> None:
    listed = run_cli(home, "list")
    assert listed.returncode == 0, problem(listed)
    assert "plain text" not in listed.stderr
