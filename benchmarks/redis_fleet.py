"""A fleet on one credential through Redis: N independent ``MCPOAuth`` instances (each with its own
``RedisTokenStore``), spread over 4 processes, against the fake authorization server (rotating refresh tokens, reuse
detection) with short-lived access tokens, and a real ``redis-server`` (Debian's package) on loopback.

    python benchmarks/redis_fleet.py [--sizes 10 100 500] [--lifetimes 4 4 16] [--expiries 3]

Per fleet size it reports, per token expiry: the refresh grants the authorization server saw (target: exactly 1),
the Redis commands issued per instance (target: a small constant, independent of N; read from the server's
``total_commands_processed``), and the time from the first instance seeing the new token (the refresher, right
after the authorization server's answer) to the last instance adopting it, next to how often each instance sends a
request (an instance adopts on its first request after the refresh is due). Then the steady state: requests with a
valid token, Redis store against the in-memory store in the same process (ratio), and the Redis commands they
issue (target: none).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore, RetryPolicy  # noqa: E402
from mcp_oauth_auth.storage.redis_store import RedisTokenStore  # noqa: E402
from mcp_oauth_auth.testing import FakeStackConfig, serve_stack  # noqa: E402
from tests.storage.redis_server import running_redis  # noqa: E402

PROCESSES = 4
THREADS = 8  # per process; each thread cycles through its share of the instances
PASSWORD = "benchmark-fleet-password"


# -- one worker process ----------------------------------------------------------------------------------------


def worker(server_url: str, redis_url: str, count: int, seconds: float) -> None:
    """``count`` instances: one warm-up request each, "ready", wait for "go", then requests for ``seconds``."""

    def no_browser(url: str) -> str:
        raise RuntimeError("a fleet instance must never need a new authorization")

    clients = []
    for _ in range(count):
        store = RedisTokenStore(redis_url, password=PASSWORD, lease=5.0, retry_for=10.0)
        auth = MCPOAuth(server_url, store=store, authorizer=no_browser, retry=RetryPolicy(attempts=1))
        clients.append(httpx.Client(auth=auth, timeout=60))
    for client in clients:
        client.get(server_url)
    print("ready", flush=True)
    sys.stdin.readline()
    first_use: dict[str, dict[int, float]] = {}  # token -> instance -> when it first sent it (its adoption)
    intervals: list[float] = []
    errors: list[str] = []
    guard = threading.Lock()
    deadline = time.time() + seconds

    requests = 0

    def run(share: list[tuple[int, httpx.Client]]) -> None:
        nonlocal requests
        last: dict[int, float] = {}
        while time.time() < deadline:
            for index, client in share:
                try:
                    response = client.get(server_url)
                except Exception as exc:
                    with guard:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                now = time.time()
                token = response.request.headers.get("authorization", "")[-16:]
                with guard:
                    first_use.setdefault(token, {}).setdefault(index, now)
                    requests += 1
                    if index in last:
                        intervals.append(now - last[index])
                last[index] = now

    numbered = list(enumerate(clients))
    threads = [threading.Thread(target=run, args=(numbered[n::THREADS],)) for n in range(min(THREADS, count))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = {
        "first": {token: min(uses.values()) for token, uses in first_use.items()},
        "last": {token: max(uses.values()) for token, uses in first_use.items()},
        "adoptions": {token: len(uses) for token, uses in first_use.items()},
        "interval": statistics.median(intervals) if intervals else None,
        "errors": errors[:5],
        "requests": requests,
    }
    print(json.dumps(report), flush=True)


# -- the measurements ------------------------------------------------------------------------------------------


def commands(client: Any) -> int:
    return int(client.info("stats")["total_commands_processed"])


def command_counts(client: Any) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): int(stats["calls"]) for name, stats in client.info("commandstats").items()}


def fleet(stack: Any, redis_url: str, raw: Any, size: int, lifetime: float, expiries: int) -> dict[str, Any]:
    seconds = lifetime / 2 * expiries + lifetime / 4
    shares = [size // PROCESSES + (1 if n < size % PROCESSES else 0) for n in range(PROCESSES)]
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", stack.server_url, redis_url, str(share), str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for share in shares
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    stack.reset_log()
    by_command = command_counts(raw)
    before = commands(raw)
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    reports = [json.loads(process.communicate(timeout=seconds + 600)[0]) for process in processes]
    used = commands(raw) - before - 1
    after = command_counts(raw)
    breakdown = {name: calls - by_command.get(name, 0) for name, calls in after.items()}
    grants = [request for request in stack.token_requests if request["grant_type"] == "refresh_token"]
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    adoptions: dict[str, int] = {}
    for report in reports:
        for token, count in report["adoptions"].items():
            adoptions[token] = adoptions.get(token, 0) + count
        for token, at in report["first"].items():
            first[token] = min(at, first.get(token, at))
        for token, at in report["last"].items():
            last[token] = max(at, last.get(token, at))
    start = min(first.values())
    renewed = sorted((at, token) for token, at in first.items() if at > start)  # tokens minted during the run
    periods = _periods([at for at, _ in renewed], lifetime / 4)
    spread = [last[token] - at for at, token in renewed[:-1]]  # the last one may not have reached everyone yet
    adopted = sum(adoptions[token] for _, token in renewed)
    return {
        "size": size,
        "grants": len(grants),
        "refused": sum(1 for request in stack.token_requests if request.get("error")),
        "periods": periods,
        "commands": used,
        "per_instance_per_expiry": used / size / max(1, periods),
        "adoptions": adopted,
        "per_adoption": used / max(1, adopted),
        "spread": statistics.median(spread) if spread else float("nan"),
        "spread_max": max(spread) if spread else float("nan"),
        "interval": statistics.median(report["interval"] for report in reports if report["interval"]),
        "errors": [error for report in reports for error in report["errors"]],
        "requests": sum(report["requests"] for report in reports),
        "breakdown": {name: calls for name, calls in sorted(breakdown.items(), key=lambda item: -item[1]) if calls},
    }


def _periods(times: list[float], gap: float) -> int:
    """How many token expiries the refreshes at ``times`` answered (refreshes closer than ``gap`` are one)."""
    periods, previous = 0, -1e18
    for at in times:
        if at - previous >= gap:
            periods += 1
        previous = at
    return periods


def steady_state(stack: Any, redis_url: str, raw: Any, requests: int, repetitions: int) -> dict[str, Any]:
    """Requests with a valid token: the Redis store against the in-memory store, interleaved, in this process."""
    redis_auth = MCPOAuth(stack.server_url, store=RedisTokenStore(redis_url, password=PASSWORD))
    memory_auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), authorizer=stack.authorizer)
    times: dict[str, list[float]] = {"redis": [], "memory": []}
    used = 0
    with httpx.Client(auth=redis_auth) as with_redis, httpx.Client(auth=memory_auth) as with_memory:
        with_redis.get(stack.server_url)
        with_memory.get(stack.server_url)
        for repetition in range(repetitions):
            order = [("redis", with_redis), ("memory", with_memory)]
            for name, client in order if repetition % 2 == 0 else reversed(order):
                before = commands(raw) if name == "redis" else 0
                started = time.perf_counter()
                for _ in range(requests):
                    client.get(stack.server_url)
                times[name].append((time.perf_counter() - started) / requests)
                if name == "redis":
                    used += commands(raw) - before - 1
    ratios = [r / m for r, m in zip(times["redis"], times["memory"], strict=True)]
    return {
        "redis": statistics.median(times["redis"]),
        "memory": statistics.median(times["memory"]),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "commands": used,
        "requests": requests * repetitions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument(
        "--lifetimes",
        type=int,
        nargs="+",
        default=[4, 4, 16],
        help="access token lifetime in seconds per size: long enough for every instance to send several requests "
        "per lifetime (this machine's request rate bounds how often each of 500 instances can send one)",
    )
    parser.add_argument("--expiries", type=int, default=3, help="token expiries per fleet size")
    parser.add_argument("--steady-requests", type=int, default=200)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    lifetimes = (args.lifetimes + args.lifetimes[-1:] * len(args.sizes))[: len(args.sizes)]

    print(f"redis_fleet: {PROCESSES} processes x {THREADS} threads, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as scratch, running_redis(Path(scratch)) as server:
        import redis

        raw = redis.Redis.from_url(server.url)
        os.environ["MCP_OAUTH_PASSWORD"] = PASSWORD
        print()
        print(
            "| instances | token lifetime | expiries | refresh grants | grants per expiry | refused | adoptions | "
            "Redis commands per adoption | per instance per expiry | first to last adoption (median, max) | "
            "request interval per instance | errors |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        breakdowns = []
        for size, lifetime in zip(args.sizes, lifetimes, strict=True):
            raw.flushall()
            config = FakeStackConfig(access_token_lifetime=lifetime, rotate_refresh_tokens=True)
            with serve_stack(config) as stack:
                seed = MCPOAuth(stack.server_url, store=RedisTokenStore(server.url), authorizer=stack.authorizer)
                with httpx.Client(auth=seed) as client:
                    client.get(stack.server_url)
                result = fleet(stack, server.url, raw, size, lifetime, args.expiries)
            print(
                f"| {size} | {lifetime} s | {result['periods']} | {result['grants']} | "
                f"{result['grants'] / max(1, result['periods']):.2f} | {result['refused']} | {result['adoptions']} | "
                f"{result['per_adoption']:.1f} | {result['per_instance_per_expiry']:.1f} | "
                f"{result['spread'] * 1000:.0f} ms, {result['spread_max'] * 1000:.0f} ms | "
                f"{result['interval'] * 1000:.0f} ms | {len(result['errors'])} |",
                flush=True,
            )
            breakdowns.append((size, result))
        print()
        for size, result in breakdowns:
            share = ", ".join(
                f"{name} {calls / max(1, result['adoptions']):.2f}" for name, calls in result["breakdown"].items()
            )
            print(f"commands per adoption, N={size} (commands inside scripts included): {share}")
            for error in result["errors"]:
                print(f"    error: {error}")
        raw.flushall()
        long_lived = FakeStackConfig(access_token_lifetime=3600)
        with serve_stack(long_lived) as stack:
            seed = MCPOAuth(stack.server_url, store=RedisTokenStore(server.url), authorizer=stack.authorizer)
            with httpx.Client(auth=seed) as client:
                client.get(stack.server_url)
            steady = steady_state(stack, server.url, raw, args.steady_requests, args.repetitions)
        print()
        print(
            f"steady state ({steady['requests']} requests with a valid token, {args.repetitions} interleaved "
            f"repetitions): Redis store {steady['redis'] * 1e6:.0f} us/request, in-memory store "
            f"{steady['memory'] * 1e6:.0f} us/request, ratio {steady['ratio']:.2f} "
            f"(min {steady['ratio_min']:.2f}, max {steady['ratio_max']:.2f}); Redis commands: {steady['commands']}"
        )
        raw.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        main()
