"""``--help`` and ``--version`` load none of the library's dependencies; choosing a store on Linux without a D-Bus
session bus does not import keyring at all (every backend it ships needs that bus there)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .runner import child_env, problem

#: What the commands that do real work need, and ``--help`` must not pay for.
HEAVY = ("httpx", "httpcore", "anyio", "keyring", "cryptography", "mcp_oauth_auth.auth", "mcp_oauth_auth.flow")
#: The flow's text rule for the terminal (flow/printable.py: imports only ``re``) and the package it sits in are light.
LIGHT = frozenset({"mcp_oauth_auth.flow", "mcp_oauth_auth.flow.printable"})


def _heavy(names: set[str]) -> list[str]:
    return sorted(name for name in names if name.startswith(HEAVY) and name not in LIGHT)


def imported_modules(stderr: str) -> set[str]:
    """The modules ``python -X importtime`` reported importing."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def _run(home: Path, args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = child_env(home, env)
    if env is None or "PYTHON_KEYRING_BACKEND" not in env:
        environment.pop("PYTHON_KEYRING_BACKEND", None)
    return subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_and_version_import_nothing_heavy(home: Path, option: str) -> None:
    result = _run(home, ["-m", "mcp_oauth_auth", option])
    assert result.returncode == 0, problem(result)
    assert "mcp-oauth" in result.stdout
    modules = imported_modules(result.stderr)
    assert "mcp_oauth_auth.cli.app" in modules  # (the measurement itself works)
    assert _heavy(modules) == []


def test_a_usage_error_imports_nothing_heavy_either(home: Path) -> None:
    result = _run(home, ["-m", "mcp_oauth_auth", "login"])
    assert result.returncode == 2, problem(result)
    assert not _heavy(imported_modules(result.stderr))


CHOOSE = "from mcp_oauth_auth.storage.auto import default_store; print(type(default_store()).__name__)"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the D-Bus session bus is the Linux keyrings' way")
def test_without_a_session_bus_the_keyring_is_not_even_imported(home: Path, tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}  # no keyringrc.cfg choosing a backend
    result = _run(home, ["-c", CHOOSE], env)
    assert result.returncode == 0, problem(result)
    assert result.stdout.strip() == "EncryptedFileTokenStore"
    assert not [name for name in imported_modules(result.stderr) if name.split(".")[0] == "keyring"]
    # With a bus address (even one where nothing listens), keyring is asked, and answers the same.
    asked = _run(home, ["-c", CHOOSE], {**env, "DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus"})
    assert asked.returncode == 0, problem(asked)
    assert asked.stdout.strip() == "EncryptedFileTokenStore"
    assert "keyring.core" in imported_modules(asked.stderr)
    # A keyringrc.cfg may name any backend: then keyring decides too.
    config = tmp_path / "python_keyring" / "keyringrc.cfg"
    config.parent.mkdir()
    config.write_text("[backend]\ndefault-keyring=keyring.backends.fail.Keyring\n")
    configured = _run(home, ["-c", CHOOSE], env)
    assert configured.returncode == 0, problem(configured)
    assert "keyring.core" in imported_modules(configured.stderr)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the D-Bus session bus is the Linux keyrings' way")
def test_a_keyring_backend_from_another_distribution_is_left_to_keyring(home: Path, tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    info = packages / "keyrings.example-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: keyrings.example\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[keyring.backends]\nexample = keyrings_example\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path), "PYTHONPATH": str(packages)}
    result = _run(home, ["-c", CHOOSE], env)
    assert result.returncode == 0, problem(result)
    assert "keyring.core" in imported_modules(result.stderr)
