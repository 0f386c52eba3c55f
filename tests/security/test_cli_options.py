"""The CLI names the new options as the library does: ``login --allow-parent-resource --allow-private-networks``
reach MCPOAuth, and a credential stored with a parent resource is used as it was accepted; ``login``, ``doctor`` and
``test`` take ``--max-response-size BYTES --response-deadline SECONDS`` (through the real entry point)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore
from mcp_oauth_auth.cli import app, commands
from mcp_oauth_auth.cli import login as login_command
from mcp_oauth_auth.cli.errors import ExitCode
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig, serve_stack

from ..cli.runner import file_store, problem, run_cli, store_login, stored_records
from ..storage.contract import make_record
from .test_bounded_reads import TRICKLE_BYTES, TRICKLE_PAUSE, serving


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    root, package = logging.getLogger(), logging.getLogger("mcp_oauth_auth")
    saved = (root.level, list(root.handlers), package.level)
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    package.setLevel(saved[2])


@pytest.mark.parametrize("flags", [[], ["--allow-parent-resource", "--allow-private-networks"]])
def test_login_passes_the_options(monkeypatch: pytest.MonkeyPatch, flags: list[str]) -> None:
    seen: list[Any] = []

    def authenticate(self: MCPOAuth, client: Any = None, **_: Any) -> Any:
        seen.append(self._engine.config)
        raise KeyboardInterrupt

    monkeypatch.setattr(MCPOAuth, "authenticate", authenticate)
    monkeypatch.setattr(login_command, "check_endpoint", lambda *args, **kwargs: None)  # no server on port 9
    argv = ["login", "notes", "http://127.0.0.1:9/mcp", "--store", "memory", "--headless", *flags]
    assert app.main(argv) == ExitCode.INTERRUPTED
    (config,) = seen
    assert config.allow_parent_resource is bool(flags)
    assert config.allow_private_networks is bool(flags)


def test_a_stored_parent_resource_credential_is_used_as_accepted() -> None:
    record = make_record()
    parent = replace(record, resource="https://mcp.example.com/", server_url="https://mcp.example.com/mcp")
    assert commands._auth_for(parent, MemoryTokenStore(), "n")._engine.config.allow_parent_resource is True
    assert commands._auth_for(record, MemoryTokenStore(), "n")._engine.config.allow_parent_resource is False


# -- --max-response-size and --response-deadline, through the real entry point ---------------------------------------


@pytest.fixture
def stack() -> Iterator[FakeMCPStack]:
    with serve_stack(FakeStackConfig()) as served:
        yield served


def test_login_reads_within_the_size_given(stack: FakeMCPStack, credential_home: Path) -> None:
    result = run_cli(credential_home, "login", "n", stack.server_url, "--headless", "--max-response-size", "64")
    assert result.returncode != 0, problem(result)
    assert "larger than 64 bytes (max_response_size)" in result.stderr, problem(result)
    assert stored_records(credential_home) == []
    # The control: the default size lets the same login through.
    result = run_cli(credential_home, "login", "n", stack.server_url, "--headless")
    assert result.returncode == 0, problem(result)


def test_login_reads_within_the_deadline_given(credential_home: Path) -> None:
    with serving("trickle") as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/mcp"
        started = time.monotonic()
        result = run_cli(credential_home, "login", "n", url, "--headless", "--response-deadline", "0.5")
        elapsed = time.monotonic() - started
    assert result.returncode != 0, problem(result)
    assert "longer than 0.5 s to arrive (response_deadline)" in result.stderr, problem(result)
    assert elapsed < TRICKLE_BYTES * TRICKLE_PAUSE  # the trickle alone would take 10 s


def test_doctor_reads_within_the_size_given(stack: FakeMCPStack, credential_home: Path) -> None:
    result = run_cli(credential_home, "doctor", stack.server_url, "--json", "--max-response-size", "64")
    assert "larger than 64 bytes (max_response_size)" in result.stdout, problem(result)
    assert result.returncode != 0
    result = run_cli(credential_home, "doctor", stack.server_url, "--json")
    assert "max_response_size" not in result.stdout, problem(result)
    assert result.returncode == 0, problem(result)


def test_test_refreshes_within_the_size_given(stack: FakeMCPStack, credential_home: Path) -> None:
    store_login(credential_home, "work", stack.server_url)

    def expire() -> None:  # so that `test` must refresh first
        (record,) = stored_records(credential_home)
        assert record.tokens is not None
        file_store(credential_home).save(record.with_tokens(replace(record.tokens, expires_at=time.time() - 5)))

    expire()
    result = run_cli(credential_home, "test", "work", "--response-deadline", "30", "--max-response-size", "4096")
    # Refreshed within the limits; then the fake resource, which is not an MCP server, fails the test itself.
    assert "is this URL an MCP endpoint?" in result.stderr, problem(result)
    (record,) = stored_records(credential_home)
    assert record.tokens is not None
    assert record.tokens.expires_at is not None
    assert record.tokens.expires_at > time.time()
    expire()
    result = run_cli(credential_home, "test", "work", "--max-response-size", "64")
    assert result.returncode != 0, problem(result)
    assert "larger than 64 bytes (max_response_size)" in result.stderr, problem(result)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--max-response-size", "0"),
        ("--max-response-size", "1.5"),
        ("--response-deadline", "0"),
        ("--response-deadline", "nan"),
    ],
)
def test_unusable_limits_are_usage_errors(credential_home: Path, flag: str, value: str) -> None:
    result = run_cli(credential_home, "doctor", "https://mcp.example/mcp", flag, value)
    assert result.returncode == ExitCode.USAGE, problem(result)
    assert flag in result.stderr
