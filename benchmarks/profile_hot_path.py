"""Where MCPOAuth's per-request time goes with a valid token (the steady state of scenario 1).

    python benchmarks/profile_hot_path.py [--library httpx|httpx2] [--requests N]

1. The auth flow step in isolation, through the public ``httpx.Auth`` protocol: one request in, its response
   back, for MCPOAuth, a no-op ``Auth`` (what a client without auth runs) and the official SDK's provider.
2. cProfile of N requests through an ``AsyncClient`` with MCPOAuth: the functions of ``mcp_oauth_auth`` and the
   client's auth machinery, by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import importlib.util
import io
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

if importlib.util.find_spec("mcp_oauth_auth") is None:  # a clone without `pip install -e .`
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import anyio
from fixtures import BODY, REQUEST_HEADERS, SERVER_URL, TOKEN, bearer_transport, ours, sdk_missing, sdk_provider


async def _flow_step(auth: Any, request: Any, response: Any) -> None:
    flow = auth.async_auth_flow(request)
    await flow.__anext__()
    try:
        await flow.asend(response)
    except StopAsyncIteration:
        return
    raise RuntimeError("the auth flow asked for another request")


async def _time_flow_steps(library: Any, rounds: int) -> dict[str, float]:
    request = library.Request("POST", SERVER_URL, content=BODY, headers=REQUEST_HEADERS)
    response = library.Response(200, content=b"{}", request=request)
    auths: dict[str, Any] = {"no-op Auth": library.Auth(), "MCPOAuth": ours()}
    if library.__name__ == "httpx2" and sdk_missing() is None:
        auths["official SDK"] = sdk_provider()
    for auth in auths.values():  # the first step loads the stored credential
        await _flow_step(auth, request, response)
    best: dict[str, float] = {}
    for _ in range(5):
        for name, auth in auths.items():
            start = time.perf_counter()
            for _ in range(rounds):
                await _flow_step(auth, request, response)
            elapsed = (time.perf_counter() - start) / rounds
            best[name] = min(best.get(name, elapsed), elapsed)
    return best


async def _requests(library: Any, count: int) -> None:
    async with library.AsyncClient(auth=ours(), transport=bearer_transport(library, TOKEN)) as client:
        for _ in range(count):
            await client.post(SERVER_URL, content=BODY, headers=REQUEST_HEADERS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", choices=["httpx", "httpx2"], default="httpx")
    parser.add_argument("--requests", type=int, default=20_000)
    arguments = parser.parse_args()
    library = importlib.import_module(arguments.library)

    steps = anyio.run(_time_flow_steps, library, 20_000, backend="asyncio")
    print(f"Auth flow step (request in, response back), best of 5 x 20,000, {arguments.library}:")
    for name, seconds in steps.items():
        print(f"  {name:<14} {seconds * 1e6:6.2f} µs")

    profiler = cProfile.Profile()
    profiler.enable()
    anyio.run(_requests, library, arguments.requests, backend="asyncio")
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).sort_stats("tottime")
    stats.print_stats(f"mcp_oauth_auth|_auth.py|{os.sep}{arguments.library}{os.sep}_client.py", 25)
    print(f"\ncProfile of {arguments.requests:,} requests with MCPOAuth ({arguments.library} AsyncClient):")
    print(text.getvalue())


if __name__ == "__main__":
    main()
