"""Scenario 3: concurrency without expiry — a herd of concurrent requests with a valid token and high latency.

If a credential lock were held across a request, the herd would be serialised and take ``herd_size`` x latency;
without, it takes about one latency plus the stack's own work. Variants as in scenario 1, on the async clients.
"""

from __future__ import annotations

import importlib
from contextlib import AsyncExitStack
from typing import Any

import anyio
from expiry_herd import herd
from fixtures import BODY, REQUEST_HEADERS, SERVER_URL, TOKEN, bearer_transport, ours, sdk_missing, sdk_provider
from harness import Section, Series, Settings, format_duration_series, format_ratio, ratios, rotated

TARGET_RATIO = 1.1
NONE, STATIC, OURS, SDK = "no auth", "static header", "MCPOAuth", "official SDK"


def _options(library: Any, name: str, latency: float) -> dict[str, Any]:
    if name == NONE:
        return {"transport": bearer_transport(library, None, delay=latency)}
    options: dict[str, Any] = {"transport": bearer_transport(library, TOKEN, delay=latency)}
    if name == STATIC:
        options["headers"] = {"Authorization": f"Bearer {TOKEN}"}
    elif name == OURS:
        options["auth"] = ours()
    else:
        options["auth"] = sdk_provider()
    return options


async def _measure(library: Any, names: list[str], settings: Settings) -> dict[str, list[tuple[float, int]]]:
    results: dict[str, list[tuple[float, int]]] = {name: [] for name in names}
    async with AsyncExitStack() as exits:
        clients = {
            name: await exits.enter_async_context(
                library.AsyncClient(**_options(library, name, settings.concurrency_latency))
            )
            for name in names
        }
        for name, client in clients.items():  # warm-up: the stored credential is loaded, connections "open"
            response = await client.post(SERVER_URL, content=BODY, headers=REQUEST_HEADERS)
            if response.status_code != 200:
                raise RuntimeError(f"{name}: warm-up answered {response.status_code}")
        for repetition in range(settings.repetitions):
            for name in rotated(names, repetition):
                if name == SDK and repetition >= settings.sdk_concurrency_repetitions:
                    continue
                results[name].append(await herd(clients[name], SERVER_URL, settings.herd_size))
    return results


def run(settings: Settings) -> Section:
    latency_ms = settings.concurrency_latency * 1e3
    section = Section(
        3,
        "Concurrency without expiry",
        f"{settings.herd_size} concurrent requests with a valid token, {latency_ms:.0f} ms simulated latency per "
        f"request, in-process bearer-checking transport; {settings.repetitions} repetitions (the official SDK: "
        f"{settings.sdk_concurrency_repetitions}), variants interleaved. Target: MCPOAuth within "
        f"{TARGET_RATIO}\u00d7 the static header (credential locks are never held across a request).",
    )
    table = section.table(
        "", ["stack", "variant", "wall time", "min\u2013max", "\u00d7 static header", "failed", "target", "met?"]
    )
    missing_sdk = sdk_missing()
    for library_name in ("httpx", "httpx2"):
        try:
            library = importlib.import_module(library_name)
        except ImportError:
            section.notes.append(f"{library_name} is not installed: its rows are missing.")
            continue
        names = [NONE, STATIC, OURS]
        if library_name == "httpx2" and missing_sdk is None:
            names.append(SDK)
        results = anyio.run(_measure, library, names, settings, backend="asyncio")
        stack = f"{library_name} AsyncClient"
        static = [wall for wall, _ in results[STATIC]]
        for name in names:
            walls = [wall for wall, _ in results[name]]
            failures = sum(failed for _, failed in results[name])
            median, spread = format_duration_series(Series.of(walls), "ms")
            ratio = ratios(walls, static)
            target, met = "", ""
            if name == OURS:
                target = f"≤ {TARGET_RATIO}\u00d7 static, 0 failed"
                measured = f"{ratio.median:.3f}\u00d7 static, {failures} failed"
                met = section.target(
                    f"concurrency, {stack}", target, measured, ratio.median <= TARGET_RATIO and failures == 0
                )
            table.add(stack, name, median, spread, format_ratio(ratio), str(failures), target, met)
    if missing_sdk:
        section.notes.append(f"Official SDK not measured: {missing_sdk}.")
    section.notes.append(
        "The official SDK's provider holds its anyio lock while the request is in flight (`async with "
        "self.context.lock:` around `yield request` in `OAuthClientProvider._auth_flow`), so its concurrent "
        f"requests go one at a time: about {settings.herd_size} \u00d7 {latency_ms:.0f} ms."
    )
    return section
