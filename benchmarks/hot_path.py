"""The hot path: MCPOAuth with a valid token against the floor of any auth plugin, per request, in one process.

    python benchmarks/hot_path.py [--repetitions N] [--requests N] [--block N] [--stack STACK ...]

The floor is a minimal ``Auth`` that only sets the same ``Authorization: Bearer <token>`` header
(:func:`fixtures.minimal_auth`), on the same client library and the same in-process transport (it answers 200 to
the right token and costs little, so that the auth layer's cost shows). Per stack (httpx / httpx2, AsyncClient /
Client) both variants run interleaved: blocks of ``--block`` sequential requests, taking turns in a rotating order;
each repetition's ratio is the median over its rounds of (MCPOAuth's block / the floor's block of the same round).
Printed: the median ratio over repetitions with its min-max, and the difference per request.

Then one auth flow step in isolation (request in, 200 response back, through the public ``Auth`` protocol), the two
variants interleaved, best of the repetitions: what each plugin itself costs, without the client around it.
Target (issue 12, point 8): ≤ 1.03x the floor on every stack.

With ``--instructions``, instead of timing: instructions per request under ``valgrind --tool=callgrind`` (installed
separately), a figure that does not depend on the machine's load. Per stack three child processes set up and warm
up both variants alike, then send no request, ``--requests`` requests with the floor, or as many with MCPOAuth;
the differences divided by the request count are each variant's instructions per request.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

if importlib.util.find_spec("mcp_oauth_auth") is None:  # a clone without `pip install -e .`
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import anyio
from fixtures import BODY, REQUEST_HEADERS, SERVER_URL, TOKEN, bearer_transport, minimal_auth, ours
from harness import Settings, Table, format_ratio
from steady_state import Variant, _measure_async, _measure_sync, _paired_difference, _paired_ratio

TARGET_RATIO = 1.03
STACKS = ("httpx-async", "httpx2-async", "httpx-sync", "httpx2-sync")
FLOOR = "minimal Auth"


def _variants() -> list[Variant]:
    return [
        Variant(FLOOR, lambda lib: {"transport": bearer_transport(lib, TOKEN), "auth": minimal_auth(lib)}),
        Variant("MCPOAuth", lambda lib: {"transport": bearer_transport(lib, TOKEN), "auth": ours()}),
    ]


def _flow_step_sync(auth: Any, request: Any, response: Any) -> None:
    flow = auth.sync_auth_flow(request)
    next(flow)
    try:
        flow.send(response)
    except StopIteration:
        return
    raise RuntimeError("the auth flow asked for another request")


async def _flow_step_async(auth: Any, request: Any, response: Any) -> None:
    flow = auth.async_auth_flow(request)
    await flow.__anext__()
    try:
        await flow.asend(response)
    except StopAsyncIteration:
        return
    raise RuntimeError("the auth flow asked for another request")


async def _time_flow_steps(library: Any, mode: str, rounds: int, repetitions: int) -> dict[str, float]:
    """Best time per flow step of each variant, the variants interleaved."""
    request = library.Request("POST", SERVER_URL, content=BODY, headers=REQUEST_HEADERS)
    response = library.Response(200, content=b"{}", request=request)
    auths = {FLOOR: minimal_auth(library), "MCPOAuth": ours()}
    for auth in auths.values():  # the first step loads the stored credential
        if mode == "sync":
            _flow_step_sync(auth, request, response)
        else:
            await _flow_step_async(auth, request, response)
    best: dict[str, float] = {}
    for _ in range(repetitions):
        for name, auth in auths.items():
            start = time.perf_counter()
            if mode == "sync":
                for _ in range(rounds):
                    _flow_step_sync(auth, request, response)
            else:
                for _ in range(rounds):
                    await _flow_step_async(auth, request, response)
            elapsed = (time.perf_counter() - start) / rounds
            best[name] = min(best.get(name, elapsed), elapsed)
    return best


def _child(stack: str, variant: str, count: int) -> None:
    """Set up and warm up both variants on ``stack``, then send ``count`` requests with ``variant``."""
    library_name, mode = stack.split("-")
    library = importlib.import_module(library_name)
    options = {v.name: v.options(library) for v in _variants()}

    async def run_async() -> None:
        clients = {name: library.AsyncClient(**kwargs) for name, kwargs in options.items()}
        for client in clients.values():
            for _ in range(50):
                await client.post(SERVER_URL, content=BODY, headers=REQUEST_HEADERS)
        client = clients[variant]
        for _ in range(count):
            await client.post(SERVER_URL, content=BODY, headers=REQUEST_HEADERS)

    if mode == "async":
        anyio.run(run_async, backend="asyncio")
        return
    clients = {name: library.Client(**kwargs) for name, kwargs in options.items()}
    for client in clients.values():
        for _ in range(50):
            client.post(SERVER_URL, content=BODY, headers=REQUEST_HEADERS)
    client = clients[variant]
    for _ in range(count):
        client.post(SERVER_URL, content=BODY, headers=REQUEST_HEADERS)


def _instructions(stack: str, variant: str, count: int) -> int:
    with tempfile.TemporaryDirectory() as directory:
        output = os.path.join(directory, "callgrind.out")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={output}"]
        command += [sys.executable, __file__, "--child", stack, variant, str(count)]
        environment = {**os.environ, "PYTHONHASHSEED": "0"}
        completed = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
        found = re.search(r"Collected : (\d+)", completed.stderr)
        if completed.returncode != 0 or found is None:
            raise RuntimeError(f"callgrind failed for {stack} {variant}: {completed.stderr[-2000:]}")
        return int(found.group(1))


def _count_instructions(stacks: list[str], count: int) -> None:
    print(f"Instructions per request under callgrind ({count:,} requests per variant, differences of runs):\n")
    table = Table(["stack", "floor", "MCPOAuth", "Δ", "MCPOAuth \u00d7 floor"])
    for stack in stacks:
        base = _instructions(stack, FLOOR, 0)
        floor = (_instructions(stack, FLOOR, count) - base) / count
        mine = (_instructions(stack, "MCPOAuth", count) - base) / count
        library_name, mode = stack.split("-")
        label = f"{library_name} {'AsyncClient' if mode == 'async' else 'Client'}"
        table.add(label, f"{floor:,.0f}", f"{mine:,.0f}", f"{mine - floor:+,.0f}", f"{mine / floor:.4f}\u00d7")
        print(f"({label} done)", file=sys.stderr, flush=True)
    print(table.render())


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20_000, help="per variant and repetition")
    parser.add_argument("--block", type=int, default=1_000)
    parser.add_argument("--stack", choices=STACKS, nargs="+", default=list(STACKS))
    parser.add_argument("--instructions", action="store_true", help="count instructions under callgrind instead")
    arguments = parser.parse_args()
    if arguments.instructions:
        _count_instructions(arguments.stack, arguments.requests)
        return
    settings = replace(
        Settings.full(),
        repetitions=arguments.repetitions,
        sync_repetitions=arguments.repetitions,
        steady_requests=arguments.requests,
        steady_block=arguments.block,
    )
    print(
        f"MCPOAuth against a minimal Auth setting the same header: {arguments.requests:,} requests per variant and "
        f"repetition in interleaved blocks of {arguments.block:,}, {arguments.repetitions} repetitions. Ratio: "
        "median (min\u2013max) over repetitions of the median paired block ratio.\n"
    )
    table = Table(["stack", "per request (floor)", "MCPOAuth \u00d7 floor", "Δ per request", "target", "met?"])
    steps = Table(["stack", "flow step, floor", "flow step, MCPOAuth", "Δ"])
    for stack in arguments.stack:
        library_name, mode = stack.split("-")
        library = importlib.import_module(library_name)
        variants = _variants()
        if mode == "sync":
            times = _measure_sync(library, variants, settings)
        else:
            times = anyio.run(_measure_async, library, variants, settings, backend="asyncio")
        floor, mine = times[FLOOR], times["MCPOAuth"]
        ratio = _paired_ratio(mine, floor)
        delta = _paired_difference(mine, floor, settings.steady_block)
        per_request = statistics.median(sum(blocks) / (len(blocks) * settings.steady_block) for blocks in floor)
        label = f"{library_name} {'AsyncClient' if mode == 'async' else 'Client'}"
        table.add(
            label,
            f"{per_request * 1e6:.1f} µs",
            format_ratio(ratio),
            f"{delta.median * 1e6:+.2f} µs",
            f"≤ {TARGET_RATIO}\u00d7",
            "yes" if ratio.median <= TARGET_RATIO else "**NO**",
        )
        best = anyio.run(_time_flow_steps, library, mode, 20_000, arguments.repetitions, backend="asyncio")
        steps.add(
            label,
            f"{best[FLOOR] * 1e6:.2f} µs",
            f"{best['MCPOAuth'] * 1e6:.2f} µs",
            f"{(best['MCPOAuth'] - best[FLOOR]) * 1e6:+.2f} µs",
        )
        print(f"({label} done)", file=sys.stderr, flush=True)
    print(table.render())
    print("\nOne auth flow step in isolation (request in, 200 back), best of the repetitions x 20,000:\n")
    print(steps.render())


if __name__ == "__main__":
    main()
