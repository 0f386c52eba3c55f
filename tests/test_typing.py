"""What a type-checking user sees: MCPOAuth is accepted by httpx and httpx2 clients alike under mypy --strict."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

USER_CODE = """
import httpx
import httpx2
from mcp_oauth_auth import MCPOAuth

auth = MCPOAuth("https://mcp.example.com/mcp")
clients = [httpx.Client(auth=auth), httpx.AsyncClient(auth=auth)]
clients2 = [httpx2.Client(auth=auth), httpx2.AsyncClient(auth=auth)]
"""


@pytest.mark.timeout(300)
def test_users_type_checks_accept_mcpoauth_for_both_libraries(tmp_path: Path) -> None:
    if importlib.util.find_spec("httpx2") is None:
        pytest.fail("the dev extra installs httpx2 on Python 3.11+")
    program = tmp_path / "user_program.py"
    program.write_text(USER_CODE)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(program)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
