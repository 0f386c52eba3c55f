"""A fleet on a real redis-server: 4 "hosts" (separate home directories, no shared file, only Redis in common) x 2
worker processes, against the fake authorization server with single-use refresh tokens and reuse detection (a
refresh token spent twice revokes the whole grant) and 1 s access tokens, for 16 s. Meanwhile one worker is killed
(SIGKILL) while it holds the record lock before its refresh request, another right after it saved the rotated
record (still holding the lock), and Redis itself is killed and restarted (AOF). Every request of the survivors is
answered 200, the authorization server sees no refused token and no new authorization."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from mcp_oauth_auth import MCPOAuth
from mcp_oauth_auth.storage.redis_store import RedisTokenStore
from mcp_oauth_auth.testing import FakeStackConfig, serve_stack
from tests.cli.runner import child_env
from tests.storage.redis_server import running_redis

pytestmark = pytest.mark.integration

HOSTS = 4
WORKERS_PER_HOST = 2
SECONDS = 16.0
PASSWORD = "fleet-password"
ROOT = Path(__file__).resolve().parents[2]
#: (host, worker) -> (mode, seconds into the run when it arms)
DYING = {(0, 0): ("die-holding", 4.0), (1, 0): ("die-after-save", 8.0)}
REDIS_DOWN_AT = 11.0
REDIS_DOWN_FOR = 0.5


@pytest.mark.timeout(120)
def test_a_fleet_shares_one_grant_through_redis_through_worker_and_redis_crashes(tmp_path: Path) -> None:
    config = FakeStackConfig(access_token_lifetime=1, rotate_refresh_tokens=True)
    with serve_stack(config) as stack, running_redis(tmp_path / "redis") as server:
        seed = MCPOAuth(
            stack.server_url,
            store=RedisTokenStore(server.url, password=PASSWORD),
            authorizer=stack.authorizer,
        )
        with httpx.Client(auth=seed) as client:
            assert client.get(stack.server_url).status_code == 200
        stack.reset_log()

        workers: dict[tuple[int, int], subprocess.Popen[str]] = {}
        for host in range(HOSTS):
            home = tmp_path / f"host-{host}"
            home.mkdir()
            env = child_env(home, {"MCP_OAUTH_PASSWORD": PASSWORD})
            for worker in range(WORKERS_PER_HOST):
                mode, arm_after = DYING.get((host, worker), ("normal", 0.0))
                arguments = [stack.server_url, server.url, str(SECONDS), mode, str(arm_after)]
                workers[host, worker] = subprocess.Popen(
                    [sys.executable, "-m", "tests.integration.redis_fleet_worker", *arguments],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )

        for process in workers.values():  # every worker started and signed in from its store: start the clock
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", process.stderr.read() if process.stderr else ""
        start = time.time()
        for process in workers.values():
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()

        time.sleep(max(0.0, start + REDIS_DOWN_AT - time.time()))
        server.kill()
        restart = threading.Timer(REDIS_DOWN_FOR, server.start)
        restart.start()

        reports = {}
        for name, process in workers.items():
            stdout, stderr = process.communicate(timeout=SECONDS + 60)
            if name in DYING:
                assert process.returncode == -signal.SIGKILL, f"{name} was to be killed: {stderr[-2000:]}"
                continue
            assert process.returncode == 0, stderr[-3000:]
            reports[name] = json.loads(stdout)
        restart.join()

        token_requests = list(stack.token_requests)
        resource_statuses = [request["status"] for request in stack.resource_requests]
        assert server.answers()

    for name, report in reports.items():
        assert report["errors"] == [], (name, report)
        assert report["authorizations"] == 0
        assert set(report["statuses"]) == {"200"}, (name, report)
        assert report["statuses"]["200"] > 30, (name, report)  # it worked the whole time
        assert report["late_200"] > 0, (name, report)  # and was still working after the crashes
    refused = [request for request in token_requests if request.get("error")]
    assert refused == []  # no refresh token was ever spent twice: the grant was never revoked
    assert {request["grant_type"] for request in token_requests} == {"refresh_token"}
    # About one refresh per half second of the run for the whole fleet (one per worker would be 16 per second).
    assert SECONDS / 2 <= len(token_requests) <= 8 * SECONDS
    assert stack.count("authorize") == 0
    # A request whose 1 s token expires on its way (a worker descheduled for half a second on a busy machine) is
    # answered 401 and sent again with a renewed token, still answered 200 to the worker: rare, not a pattern.
    assert resource_statuses.count(401) <= len(resource_statuses) / 100, resource_statuses.count(401)
