"""One worker of a fleet sharing a credential through Redis only: requests until a deadline, then reports.

Usage: python -m tests.integration.redis_fleet_worker SERVER_URL REDIS_URL SECONDS MODE ARM_AFTER
It sends one request, prints "ready", waits for a line on stdin ("go"), then works for SECONDS. Its home directory
(MCP_OAUTH_HOME) is its host's own; MCP_OAUTH_PASSWORD is the fleet's. MODE ``normal`` works until the end;
``die-holding`` kills itself (SIGKILL) as soon as it holds the record lock ARM_AFTER seconds or more after "go",
before any refresh request; ``die-after-save`` kills itself right after its first save from then on, still holding
the lock (it refreshes earlier than the
others, 0.8 s before expiry instead of 0.5 s, so that it is the one that refreshes). Prints one JSON object:
{"statuses": {"200": n}, "late_200": n, "errors": [...], "authorizations": n, "slowest": seconds}.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from collections import Counter
from typing import Any

import httpx

from mcp_oauth_auth import MCPOAuth, RetryPolicy
from mcp_oauth_auth.records import CredentialRecord, RecordKey
from mcp_oauth_auth.storage.redis_lock import RedisRecordLock
from mcp_oauth_auth.storage.redis_store import RedisTokenStore

LEASE = 2.0


class DyingStore(RedisTokenStore):
    """The worker's store, which ends the process with SIGKILL at the point its mode names."""

    def __init__(self, url: str, mode: str) -> None:
        super().__init__(url, lease=LEASE, retry_for=10.0)
        self.mode = mode
        self.kill_at = math.inf

    def armed(self, mode: str) -> bool:
        return self.mode == mode and time.time() >= self.kill_at

    def save(self, record: CredentialRecord) -> None:
        super().save(record)
        if self.armed("die-after-save"):
            os.kill(os.getpid(), signal.SIGKILL)

    def lock(self, key: RecordKey) -> RedisRecordLock:
        lock = super().lock(key)
        acquire = lock.try_acquire

        def try_acquire() -> bool:
            held = acquire()
            if held and self.armed("die-holding"):
                os.kill(os.getpid(), signal.SIGKILL)
            return held

        lock.try_acquire = try_acquire  # type: ignore[method-assign]
        return lock


def main(server_url: str, redis_url: str, seconds: float, mode: str, arm_after: float) -> dict[str, Any]:
    authorizations = 0

    def no_browser_here(url: str) -> str:
        nonlocal authorizations
        authorizations += 1
        raise RuntimeError("a fleet worker must never need a new authorization")

    store = DyingStore(redis_url, mode)
    auth = MCPOAuth(
        server_url,
        store=store,
        authorizer=no_browser_here,
        retry=RetryPolicy(attempts=1),
        refresh_skew=0.8 if mode == "die-after-save" else None,
    )
    statuses: Counter[str] = Counter()
    errors: list[str] = []
    late = 0
    slowest = 0.0
    with httpx.Client(auth=auth, timeout=30) as client:
        statuses[str(client.get(server_url).status_code)] += 1
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.time()
        store.kill_at = started + arm_after
        deadline = started + seconds
        late_from = deadline - 3
        while time.time() < deadline:
            started = time.monotonic()
            try:
                status = client.get(server_url).status_code
            except Exception as exc:  # reported to the test, which fails on any
                errors.append(f"{type(exc).__name__}: {exc}")
            else:
                statuses[str(status)] += 1
                late += status == 200 and time.time() >= late_from
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.02)
    return {
        "statuses": dict(statuses),
        "late_200": late,
        "errors": errors[:10],
        "authorizations": authorizations,
        "slowest": round(slowest, 3),
    }


if __name__ == "__main__":
    server, redis_url, seconds, mode, arm_after = sys.argv[1:6]
    print(json.dumps(main(server, redis_url, float(seconds), mode, float(arm_after))))
