"""The CLI on the Redis store: ``--store redis`` (or ``MCP_OAUTH_STORE=redis``) with ``MCP_OAUTH_REDIS_URL``, and
``doctor --store redis`` checking the connection and the server's persistence, against a real redis-server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mcp_oauth_auth import MCPOAuth
from mcp_oauth_auth.authorizers import HeadlessAuthorizer
from mcp_oauth_auth.storage import create_store
from mcp_oauth_auth.storage.redis_store import RedisTokenStore
from mcp_oauth_auth.testing import FakeMCPStack
from tests.storage.redis_server import RedisServer, running_redis

from .runner import problem, run_cli

pytestmark = pytest.mark.integration

PASSWORD = "cli-fleet-password"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path / "redis") as server:
        yield server


def fleet_env(server: RedisServer, **extra: str) -> dict[str, str]:
    return {"MCP_OAUTH_REDIS_URL": server.url, "MCP_OAUTH_PASSWORD": PASSWORD, **extra}


def test_list_and_show_read_the_redis_store(
    stack: FakeMCPStack, home: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_OAUTH_REDIS_URL", redis_server.url)
    store = create_store("redis", password=PASSWORD)
    assert isinstance(store, RedisTokenStore)
    auth = MCPOAuth(stack.server_url, store=store, authorizer=HeadlessAuthorizer(), name="fleet")
    with httpx.Client() as http:
        auth.authenticate(http)

    result = run_cli(home, "list", "--store", "redis", "--json", env=fleet_env(redis_server))
    assert result.returncode == 0, problem(result)
    [entry] = json.loads(result.stdout)
    assert entry["names"] == ["fleet"]
    assert entry["store"] == "redis"
    # MCP_OAUTH_STORE chooses it as well; the text output names the server, without credentials.
    result = run_cli(home, "show", "fleet", env=fleet_env(redis_server, MCP_OAUTH_STORE="redis"))
    assert result.returncode == 0, problem(result)
    assert f"redis ({redis_server.url})" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    # Without the key, the CLI says so and the record stays.
    result = run_cli(home, "list", "--store", "redis", env={"MCP_OAUTH_REDIS_URL": redis_server.url})
    assert "protected by a password: set MCP_OAUTH_PASSWORD" in result.stdout + result.stderr
    assert store.list_keys() != []


def test_doctor_checks_the_connection_and_warns_when_aof_is_off(
    stack: FakeMCPStack, home: Path, tmp_path: Path, redis_server: RedisServer
) -> None:
    result = run_cli(home, "doctor", stack.server_url, "--store", "redis", env=fleet_env(redis_server))
    assert result.returncode == 0, problem(result)
    assert f"Credential store: Redis at {redis_server.url}" in result.stdout
    assert "connected (Redis" in result.stdout
    assert "appendfsync always: every saved record survives a crash" in result.stdout
    assert "Problems" not in result.stdout

    with running_redis(tmp_path / "volatile", appendonly=False) as volatile:
        result = run_cli(home, "doctor", stack.server_url, "--store", "redis", "--json", env=fleet_env(volatile))
    report = json.loads(result.stdout)
    assert report["redis"]["aof_enabled"] == "0"
    [warning] = [item for item in report["problems"] if item["severity"] == "warning"]
    assert "AOF is off" in warning["message"]
    assert "a restart could lose a rotated refresh token" in warning["message"]

    redis_server.stop()
    result = run_cli(home, "doctor", stack.server_url, "--store", "redis", env=fleet_env(redis_server), timeout=90)
    assert result.returncode == 4, problem(result)
    assert "stayed unreachable" in result.stdout
