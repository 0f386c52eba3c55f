"""Scenario 5: the full flow from an empty store against the fake MCP authorization stack.

One MCP request from a client that has nothing stored: 401, discovery, dynamic registration, authorization (the
stack's in-process authorizer plays the person's browser), token exchange, and the request again. Counted: the
HTTP round trips through the client (event hooks) and the browser's visit to the authorization endpoint, and
whether any discovery URL was fetched twice. Timed: without latency (the flow's own cost) and with simulated
latency on every round trip.
"""

from __future__ import annotations

import importlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
from expiry_herd import stack_transport
from fixtures import BODY, REQUEST_HEADERS, RETRY, delayed, sdk_missing, sdk_provider
from harness import Section, Series, Settings, format_count, format_duration_series, format_ratio, ratios, rotated

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore
from mcp_oauth_auth.testing import FakeMCPStack

OURS_HTTPX = "MCPOAuth, httpx AsyncClient"
OURS_HTTPX2 = "MCPOAuth, httpx2 AsyncClient"
SDK = "official SDK, httpx2 AsyncClient"
DISCOVERY_PATHS = ("/.well-known/",)


@dataclass
class FlowRuns:
    walls: list[float] = field(default_factory=list)
    latency_walls: list[float] = field(default_factory=list)
    round_trips: list[int] = field(default_factory=list)
    browser_visits: list[int] = field(default_factory=list)
    repeated_discovery: list[int] = field(default_factory=list)
    sequence: list[str] = field(default_factory=list)


async def _one_flow(name: str, latency: float) -> tuple[float, list[tuple[str, str, int]], int]:
    """A new stack and an empty client; (wall time, requests sent through the client, browser visits)."""
    library = importlib.import_module("httpx" if name == OURS_HTTPX else "httpx2")
    stack = FakeMCPStack()
    if name == SDK:
        auth: Any = sdk_provider(stack.server_url, seeded=False, authorizer=stack.authorizer)
    else:
        auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), authorizer=stack.authorizer, retry=RETRY)
    sent: list[tuple[str, str, int]] = []

    async def on_response(response: Any) -> None:
        sent.append((response.request.method, str(response.request.url), response.status_code))

    transport = stack_transport(library, stack)
    if latency:
        transport = delayed(library, transport, latency)
    async with library.AsyncClient(auth=auth, transport=transport, event_hooks={"response": [on_response]}) as client:
        start = time.perf_counter()
        response = await client.post(stack.server_url, content=BODY, headers=REQUEST_HEADERS)
        wall = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"{name}: the flow ended with {response.status_code}")
    return wall, sent, stack.count("authorize")


def _describe(sent: list[tuple[str, str, int]]) -> str:
    steps = []
    for method, url, status in sent:
        parts = urlsplit(url)
        steps.append(f"{method} {parts.path}{'?…' if parts.query else ''} → {status}")
    return "; ".join(steps)


async def _measure(names: list[str], settings: Settings) -> dict[str, FlowRuns]:
    runs = {name: FlowRuns() for name in names}
    for name in names:  # warm-up: lazy imports and first-use caches
        await _one_flow(name, 0.0)
    for run_index in range(settings.flow_runs):
        for name in rotated(names, run_index):
            wall, sent, visits = await _one_flow(name, 0.0)
            outcome = runs[name]
            outcome.walls.append(wall)
            outcome.round_trips.append(len(sent))
            outcome.browser_visits.append(visits)
            discovery = Counter(url for _, url, _ in sent if any(p in url for p in DISCOVERY_PATHS))
            outcome.repeated_discovery.append(sum(count - 1 for count in discovery.values()))
            outcome.sequence = [_describe(sent)]
    for run_index in range(settings.flow_latency_runs):
        for name in rotated(names, run_index):
            wall, _, _ = await _one_flow(name, settings.flow_latency)
            runs[name].latency_walls.append(wall)
    return runs


def run(settings: Settings) -> Section:
    latency_ms = settings.flow_latency * 1e3
    section = Section(
        5,
        "Full flow from an empty store",
        f"One MCP request from a client with an empty store against the fake MCP authorization stack (MCP "
        f"2025-06-18 layout: resource metadata named in the 401, RFC 8414 metadata, dynamic registration); "
        f"{settings.flow_runs} runs per variant without latency and {settings.flow_latency_runs} with "
        f"{latency_ms:.0f} ms per round trip, variants interleaved. Target: no redundant discovery request.",
    )
    table = section.table(
        "",
        [
            "variant",
            "round trips",
            "browser visits",
            "repeated discovery requests",
            "wall time, no latency",
            "min\u2013max",
            "\u00d7 SDK",
            f"wall time, {latency_ms:.0f} ms/round trip",
            "target",
            "met?",
        ],
    )
    missing_sdk = sdk_missing()
    names = [OURS_HTTPX, OURS_HTTPX2] if missing_sdk is None else [OURS_HTTPX]
    if missing_sdk is None:
        names.append(SDK)
    else:
        section.notes.append(f"Official SDK not measured: {missing_sdk}.")
    results = anyio.run(_measure, names, settings, backend="asyncio")
    for name in names:
        outcome = results[name]
        median, spread = format_duration_series(Series.of(outcome.walls), "ms")
        versus_sdk = format_ratio(ratios(outcome.walls, results[SDK].walls)) if SDK in results else "n/a"
        target, met = "", ""
        if name != SDK:
            target = "0 repeated discovery requests"
            measured = (
                f"{format_count(outcome.repeated_discovery)} repeated, {format_count(outcome.round_trips)} round trips"
            )
            met = section.target(f"full flow, {name}", target, measured, set(outcome.repeated_discovery) == {0})
        table.add(
            name,
            format_count(outcome.round_trips),
            format_count(outcome.browser_visits),
            format_count(outcome.repeated_discovery),
            median,
            spread,
            versus_sdk,
            format_duration_series(Series.of(outcome.latency_walls), "ms")[0],
            target,
            met,
        )
    for name in names:
        section.notes.append(f"{name}: {results[name].sequence[0]}.")
    section.notes.append(
        "Browser visits: the authorization endpoint, requested by the person's browser (here the stack's "
        "in-process authorizer), not through the client."
    )
    return section
