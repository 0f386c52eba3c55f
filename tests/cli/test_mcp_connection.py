"""mcp-oauth test: an MCP session (initialize, tools/list) with the stored credential, against the demo's MCP
server run here on loopback."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from mcp_oauth_auth.cli.demo import DemoServer

from .runner import file_store, problem, run_cli, store_login, stored_records


def test_test_connects_and_lists_the_tools(home: Path) -> None:
    with DemoServer.start() as server:
        store_login(home, "demo", server.url)
        result = run_cli(home, "test", "demo")
        assert result.returncode == 0, problem(result)
        assert f"Connected to {server.url} as demo" in result.stdout
        assert "mcp-oauth demo server" in result.stdout
        assert "MCP 2025-11-25" in result.stdout
        assert "tools   2: add, whoami" in result.stdout
        methods = [request["method"] for request in server.stack.resource_requests if request["status"] == 200]
        assert methods == ["POST", "POST", "POST"]  # initialize, notifications/initialized, tools/list


def test_test_refreshes_on_a_401_and_reports_json(home: Path) -> None:
    with DemoServer.start() as server:
        store_login(home, "demo", server.url)
        server.stack.clock = lambda: time.time() + 7200  # the server now sees the token as expired
        result = run_cli(home, "test", "demo", "--json")
        assert result.returncode == 0, problem(result)
        report = json.loads(result.stdout)
        assert report["ok"] is True
        assert report["tools"] == ["add", "whoami"]
        assert report["server"]["name"] == "mcp-oauth demo server"
        assert server.stack.grants_used() == ["authorization_code", "refresh_token"]


def test_test_with_a_credential_the_server_no_longer_accepts(home: Path) -> None:
    with DemoServer.start() as server:
        store_login(home, "demo", server.url)
        [record] = stored_records(home)
        assert record.tokens is not None
        file_store(home).save(record.with_tokens(replace(record.tokens, refresh_token=None)))
        server.stack.clock = lambda: time.time() + 7200
        result = run_cli(home, "test", "demo")
        assert result.returncode == 3, problem(result)
        assert f"mcp-oauth login demo {server.url}" in result.stderr
        assert server.stack.count("authorize") == 1  # it never starts a login on its own
