"""Running ``mcp-oauth`` the way people do: its real entry point, in a child process, with a private home."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from mcp_oauth_auth import HeadlessAuthorizer, MCPOAuth
from mcp_oauth_auth.records import CredentialRecord
from mcp_oauth_auth.storage.encrypted_file import EncryptedFileTokenStore

#: Inherited variables that would change what the child does: proxies (the tests talk to loopback only), the
#: developer's credential settings, Vault, the desktop keyring's D-Bus session.
_DROPPED = {
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "mcp_oauth_password",
    "mcp_oauth_store",
    "mcp_oauth_client_secret",
    "dbus_session_bus_address",
    "no_color",
    "columns",
}


def child_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name.lower() not in _DROPPED and not name.startswith("VAULT_")
    }
    env.update(
        MCP_OAUTH_HOME=str(home),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        PYTHONIOENCODING="utf-8",
    )
    env.update(extra or {})
    return env


def run_cli(
    home: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m mcp_oauth_auth ARGS`` with ``home`` as the credential home and no usable OS keyring (run in
    ``cwd`` when given)."""
    return subprocess.run(
        [sys.executable, "-m", "mcp_oauth_auth", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=child_env(home, env),
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


def stored_records(home: Path) -> list[CredentialRecord]:
    """What the CLI stored in ``home`` (the encrypted file store it chooses when no keyring is usable)."""
    store = EncryptedFileTokenStore(home, use_keyring=False)
    return [record for key in store.list_keys() if (record := store.load(key)) is not None]


def file_store(home: Path) -> EncryptedFileTokenStore:
    return EncryptedFileTokenStore(home, use_keyring=False)


def problem(result: subprocess.CompletedProcess[str]) -> str:
    """Everything the child said, for assertion messages."""
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def store_login(home: Path, name: str, server_url: str) -> None:
    """Store a credential as ``mcp-oauth login NAME URL --headless`` does, but in this process (faster; the login
    command itself has tests of its own)."""
    auth = MCPOAuth(server_url, store=file_store(home), authorizer=HeadlessAuthorizer(), name=name)
    with httpx.Client() as http:
        auth.authenticate(http)
