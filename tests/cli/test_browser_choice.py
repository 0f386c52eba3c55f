"""Which authorizer a plain ``mcp-oauth login`` picks from the environment, through the real entry point: an explicit
``$BROWSER`` (a devcontainer's, Codespaces', Remote-SSH's helper) wins over the container and SSH guesses; CI does
not give way to it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from mcp_oauth_auth.testing import FakeStackConfig, serve_stack

from .runner import problem, run_cli, stored_records

#: A stand-in for the helper VS Code puts in $BROWSER: it opens the page (the fake authorization server approves at
#: once) and follows the redirect to the loopback callback, as the person's browser would with the port forwarded.
BROWSER_SCRIPT = """\
import sys
from pathlib import Path

import httpx

Path(sys.argv[2]).write_text("opened")
httpx.get(sys.argv[1], follow_redirects=True, timeout=30).raise_for_status()
"""


@pytest.fixture
def browser(tmp_path: Path) -> tuple[str, Path]:
    script = tmp_path / "browser.py"
    script.write_text(BROWSER_SCRIPT)
    opened = tmp_path / "opened"
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} %s {shlex.quote(str(opened))}", opened


DEVICE = FakeStackConfig(device_authorization_enabled=True, device_poll_interval=1, device_auto_approve_after_polls=0)
CONTAINER = {"container": "docker"}
SSH = {"SSH_CONNECTION": "10.0.0.1 50000 10.0.0.2 22"}


@pytest.mark.parametrize("where", [CONTAINER, SSH], ids=["container", "ssh"])
def test_browser_set_uses_the_loopback_browser_flow(
    where: dict[str, str], browser: tuple[str, Path], home: Path
) -> None:
    command, opened = browser
    with serve_stack(DEVICE) as stack:
        result = run_cli(home, "login", "work", stack.server_url, env={**where, "BROWSER": command, "DISPLAY": ""})
        assert result.returncode == 0, problem(result)
        assert opened.read_text() == "opened"  # $BROWSER was run with the authorization URL
        assert "Opening your browser" in result.stderr
        assert "No browser can be opened" not in result.stderr
        assert stack.grants_used() == ["authorization_code"]
        assert stack.authorization_requests[0]["redirect_uri"].startswith("http://127.0.0.1:")
    assert stored_records(home)[0].names == ("work",)


@pytest.mark.parametrize(
    ("where", "said"),
    [(CONTAINER, "inside a container ("), (SSH, "an SSH session")],
    ids=["container", "ssh"],
)
def test_without_browser_the_headless_guess_picks_the_device_flow(where: dict[str, str], said: str, home: Path) -> None:
    with serve_stack(DEVICE) as stack:
        result = run_cli(home, "login", "work", stack.server_url, env=where)
        assert result.returncode == 0, problem(result)
        assert f"No browser can be opened here ({said}" in result.stderr
        assert stack.grants_used() == ["urn:ietf:params:oauth:grant-type:device_code"]


def test_ci_keeps_its_veto_over_browser(browser: tuple[str, Path], home: Path) -> None:
    command, opened = browser
    with serve_stack(DEVICE) as stack:
        result = run_cli(home, "login", "work", stack.server_url, env={"CI": "true", "BROWSER": command})
        assert result.returncode == 0, problem(result)
        assert "No browser can be opened here (running in CI" in result.stderr
        assert stack.grants_used() == ["urn:ietf:params:oauth:grant-type:device_code"]
    assert not opened.exists()
