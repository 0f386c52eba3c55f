"""One worker of a fleet sharing a credential through Redis only: requests until a deadline, then reports.

Usage: python -m tests.integration.redis_fleet_worker SERVER_URL REDIS_URL DEADLINE MODE KILL_AT
(DEADLINE and KILL_AT are wall-clock times, seconds since the epoch). Its home directory (MCP_OAUTH_HOME) is its
host's own; MCP_OAUTH_PASSWORD is the fleet's. MODE ``normal`` works until the deadline; ``die-holding`` kills
itself (SIGKILL) as soon as it holds the record lock after KILL_AT, before any refresh request; ``die-after-save``
kills itself right after its first save after KILL_AT, still holding the lock. Prints one JSON object:
{"statuses": {"200": n}, "late_200": n, "errors": [...], "authorizations": n, "slowest": seconds}.
"""

from __future__ import annotations

import json
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

    def __init__(self, url: str, mode: str, kill_at: float) -> None:
        super().__init__(url, lease=LEASE, retry_for=10.0)
        self.mode = mode
        self.kill_at = kill_at

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


def main(server_url: str, redis_url: str, deadline: float, mode: str, kill_at: float) -> dict[str, Any]:
    authorizations = 0

    def no_browser_here(url: str) -> str:
        nonlocal authorizations
        authorizations += 1
        raise RuntimeError("a fleet worker must never need a new authorization")

    auth = MCPOAuth(
        server_url,
        store=DyingStore(redis_url, mode, kill_at),
        authorizer=no_browser_here,
        retry=RetryPolicy(attempts=1),
    )
    statuses: Counter[str] = Counter()
    errors: list[str] = []
    late = 0
    slowest = 0.0
    late_from = deadline - 3
    with httpx.Client(auth=auth, timeout=30) as client:
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
    server, redis_url, deadline, mode, kill_at = sys.argv[1:6]
    print(json.dumps(main(server, redis_url, float(deadline), mode, float(kill_at))))
