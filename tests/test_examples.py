"""Every script in examples/ runs on a machine without network access (each starts the embedded fake MCP stack
on loopback when no server URL is given) and ends with its success line."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

#: Each example and the start of the line it prints when everything worked.
SUCCESS_LINES = {
    "basic_mcp_oauth.py": "OK: authenticated MCP request",
    "oauth_handler_example.py": "OK: high-level handler tour complete",
    "low_level_client.py": "OK: step-by-step flow complete",
    "token_storage_example.py": "OK: credentials stored, reused after a restart",
    "sync_client.py": "OK: synchronous client authenticated",
    "trio_example.py": "OK: trio program authenticated",
    "mcp_sdk_client.py": "OK: MCP SDK client session through MCPOAuth",
}
#: The official MCP SDK 2.x (and its httpx2 transport) exists for Python 3.11+ only.
NEEDS_MCP_SDK = {"mcp_sdk_client.py"}
HAVE_MCP_SDK = importlib.util.find_spec("httpx2") is not None and importlib.util.find_spec("mcp") is not None
RUNNABLE = sorted(name for name in SUCCESS_LINES if HAVE_MCP_SDK or name not in NEEDS_MCP_SDK)


def test_every_example_is_covered() -> None:
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == sorted(SUCCESS_LINES)


@pytest.mark.parametrize("script", RUNNABLE)
def test_example_runs(script: str, credential_home: Path) -> None:
    env = {**os.environ, "MCP_OAUTH_HOME": str(credential_home), "PYTHONUNBUFFERED": "1"}
    # A proxy configured on the machine must not capture the examples' loopback traffic.
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(variable, None)
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert any(line.startswith(SUCCESS_LINES[script]) for line in completed.stdout.splitlines()), output
    # The examples never print a token: only redacted representations.
    assert "Bearer " not in completed.stdout
