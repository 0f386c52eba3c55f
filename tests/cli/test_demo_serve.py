"""``mcp-oauth demo --serve``: the embedded server runs until Ctrl-C, and the other commands work against it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from .runner import child_env, problem, run_cli


def test_demo_serve_serves_until_interrupted_and_the_commands_work_against_it(home: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "mcp_oauth_auth", "demo", "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(home),
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert first.startswith("MCP server:"), first
        url = first.split()[-1]
        assert url.startswith("http://127.0.0.1:")
        issuer = server.stdout.readline().split()[-1]
        also = server.stdout.readline()
        port = url.split(":")[2].split("/")[0]
        assert also == f"Also as:               http://localhost:{port}/mcp\n"
        assert server.stdout.readline() == "\n"
        assert server.stdout.readline() == "Try, in another terminal:\n"
        assert server.stdout.readline() == f"  mcp-oauth doctor {url}\n"
        suggested = server.stdout.readline().split()
        assert suggested == ["mcp-oauth", "login", "demo", url, "--device"]

        # The suggested login, exactly as printed, on a machine where no browser can be opened (CI=1 says so),
        # under the name localhost too.
        headless = {"CI": "1", "DISPLAY": "", "BROWSER": ""}
        for name, login_url in (("demo-localhost", f"http://localhost:{port}/mcp"), ("demo", url)):
            login = run_cli(home, *suggested[1:2], name, login_url, *suggested[4:], env=headless)
            assert login.returncode == 0, problem(login)
            assert "and confirm the code:" in login.stderr
        listed = run_cli(home, "list", "--json")
        assert {item["server_url"] for item in json.loads(listed.stdout)} == {url, f"http://localhost:{port}/mcp"}

        doctor = run_cli(home, "doctor", url, "--json")
        assert doctor.returncode == 0, problem(doctor)
        assert f'"{issuer}"' in doctor.stdout
        connected = run_cli(home, "test", "demo")
        assert connected.returncode == 0, problem(connected)
        assert "tools   2: add, whoami" in connected.stdout
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "Serving on loopback only; Ctrl-C stops." in err
