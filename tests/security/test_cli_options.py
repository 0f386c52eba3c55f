"""The CLI names the new options as the library does: ``login --allow-parent-resource --allow-private-networks``
reach MCPOAuth, and a credential stored with a parent resource is used as it was accepted."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore
from mcp_oauth_auth.cli import app, commands
from mcp_oauth_auth.cli import login as login_command
from mcp_oauth_auth.cli.errors import ExitCode

from ..storage.contract import make_record


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
