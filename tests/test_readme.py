"""The README's MCP SDK snippet runs as pasted: in a fresh process, with the default store and the default (browser)
authorizer, against a real MCP SDK server and the fake authorization server on loopback. Only its URL is replaced;
a stand-in for the person's browser follows the authorization redirect, as the $BROWSER helper of a devcontainer
would."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_URL = "https://mcp.example.com/mcp"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("httpx2") is None or importlib.util.find_spec("mcp") is None,
    reason="the README's snippet uses the official MCP SDK 2.x and httpx2 (Python 3.11+)",
)

BROWSER = """\
import sys

import httpx

httpx.get(sys.argv[1], follow_redirects=True, timeout=30).raise_for_status()
"""


def sdk_snippet() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## With the official MCP SDK") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the README has no Python snippet under 'With the official MCP SDK'"
    return match.group(1)


def test_the_snippet_is_a_whole_program() -> None:
    snippet = sdk_snippet()
    assert README_URL in snippet
    compile(snippet, "README.md", "exec")
    assert "anyio.run(main)" in snippet


def test_the_sdk_snippet_runs_as_pasted(tmp_path: Path, credential_home: Path) -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from mcp_sdk_client import sdk_server  # the example's real MCP SDK server
    finally:
        sys.path.remove(str(ROOT / "examples"))
    from mcp_oauth_auth.testing import serve_stack

    browser = tmp_path / "browser.py"
    browser.write_text(BROWSER)
    with (
        serve_stack() as authorization_server,
        sdk_server(authorization_server.issuer, authorization_server.introspection_endpoint) as server_url,
    ):
        authorization_server.config.extra_resources = [server_url]
        program = tmp_path / "snippet.py"
        program.write_text(sdk_snippet().replace(README_URL, server_url))
        env = {
            "PATH": "/usr/bin:/bin",
            "MCP_OAUTH_HOME": str(credential_home),
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            "BROWSER": f"{shlex.quote(sys.executable)} {shlex.quote(str(browser))} %s",
        }
        result = subprocess.run(
            [sys.executable, str(program)], capture_output=True, text=True, env=env, timeout=120, check=False
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip() == "['add']"
        assert authorization_server.count("authorize") == 1

        # The next run starts authenticated from the default store: no new authorization.
        again = subprocess.run(
            [sys.executable, str(program)], capture_output=True, text=True, env=env, timeout=120, check=False
        )
        assert again.returncode == 0, again.stderr[-3000:]
        assert authorization_server.count("authorize") == 1
