from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig, serve_stack

from .runner import store_login


@pytest.fixture
def stack() -> Iterator[FakeMCPStack]:
    """The fake MCP resource and its authorization server on a real loopback port."""
    with serve_stack(FakeStackConfig()) as served:
        yield served


@pytest.fixture
def home(credential_home: Path) -> Path:
    """The child's credential home: an empty directory of this test's own."""
    return credential_home


@pytest.fixture
def logged_in(stack: FakeMCPStack, home: Path) -> FakeMCPStack:
    """A credential named ``work`` for the stack is stored in ``home``."""
    store_login(home, "work", stack.server_url)
    return stack
