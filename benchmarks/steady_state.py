"""Scenario 1: steady state — sequential requests with a valid cached token, time per request.

Per stack (httpx / httpx2, async / sync) the variants are: no auth, a static ``Authorization: Bearer`` header
(the physical limit of a bearer plugin), MCPOAuth, and for httpx2's async client the official SDK's
``OAuthClientProvider``. Each client is created and warmed up once; every repetition then sends
``steady_requests`` requests per variant in blocks, the variants taking turns block by block in a rotating order.
"""

from __future__ import annotations

import gc
import importlib
import statistics
import time
from collections.abc import Callable
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from operator import truediv
from typing import Any

import anyio
from fixtures import BODY, REQUEST_HEADERS, SERVER_URL, TOKEN, bearer_transport, ours, sdk_missing, sdk_provider
from harness import Section, Series, Settings, format_duration_series, format_ratio, rotated

TARGET_RATIO = 1.05


@dataclass(frozen=True)
class Variant:
    name: str
    #: Client keyword arguments (auth or headers), given the library module.
    options: Callable[[Any], dict[str, Any]]


def _variants(library: str, mode: str) -> list[Variant]:
    variants = [
        Variant("no auth", lambda lib: {"transport": bearer_transport(lib, None)}),
        Variant(
            "static header",
            lambda lib: {"transport": bearer_transport(lib, TOKEN), "headers": {"Authorization": f"Bearer {TOKEN}"}},
        ),
        Variant("MCPOAuth", lambda lib: {"transport": bearer_transport(lib, TOKEN), "auth": ours()}),
    ]
    if library == "httpx2" and mode == "async" and sdk_missing() is None:
        variants.append(
            Variant("official SDK", lambda lib: {"transport": bearer_transport(lib, TOKEN), "auth": sdk_provider()})
        )
    return variants


def _check(response: Any, variant: str) -> None:
    if response.status_code != 200:
        raise RuntimeError(f"{variant}: unexpected status {response.status_code}")


#: Per variant, per repetition, the seconds each block of requests took.
BlockTimes = dict[str, list[list[float]]]


def _measure_sync(library: Any, variants: list[Variant], settings: Settings) -> BlockTimes:
    times: BlockTimes = {variant.name: [] for variant in variants}
    with ExitStack() as exits:
        clients = {v.name: exits.enter_context(library.Client(**v.options(library))) for v in variants}
        for name, client in clients.items():
            for _ in range(settings.steady_warmup):
                _check(client.post(SERVER_URL, content=BODY, headers=REQUEST_HEADERS), name)
        for repetition in range(settings.sync_repetitions):
            gc.collect()
            for series in times.values():
                series.append([])
            for block in range(settings.steady_requests // settings.steady_block):
                for name in rotated(list(clients), repetition + block):
                    client = clients[name]
                    start = time.perf_counter()
                    for _ in range(settings.steady_block):
                        response = client.post(SERVER_URL, content=BODY, headers=REQUEST_HEADERS)
                    times[name][-1].append(time.perf_counter() - start)
                    _check(response, name)
    return times


async def _measure_async(library: Any, variants: list[Variant], settings: Settings) -> BlockTimes:
    times: BlockTimes = {variant.name: [] for variant in variants}
    async with AsyncExitStack() as exits:
        clients = {v.name: await exits.enter_async_context(library.AsyncClient(**v.options(library))) for v in variants}
        for name, client in clients.items():
            for _ in range(settings.steady_warmup):
                _check(await client.post(SERVER_URL, content=BODY, headers=REQUEST_HEADERS), name)
        for repetition in range(settings.repetitions):
            gc.collect()
            for series in times.values():
                series.append([])
            for block in range(settings.steady_requests // settings.steady_block):
                for name in rotated(list(clients), repetition + block):
                    client = clients[name]
                    start = time.perf_counter()
                    for _ in range(settings.steady_block):
                        response = await client.post(SERVER_URL, content=BODY, headers=REQUEST_HEADERS)
                    times[name][-1].append(time.perf_counter() - start)
                    _check(response, name)
    return times


def _per_request(times: list[list[float]], block: int) -> Series:
    """Mean time per request of each repetition."""
    return Series.of([sum(blocks) / (len(blocks) * block) for blocks in times])


def _paired_ratio(times: list[list[float]], baseline: list[list[float]]) -> Series:
    """Per repetition, the median over its rounds of (this variant's block / the baseline's block of the same
    round): each ratio pairs two blocks run back to back, so that a burst of machine noise spoils one pair only."""
    return Series.of(
        [statistics.median(map(truediv, mine, theirs)) for mine, theirs in zip(times, baseline, strict=True)]
    )


def _paired_difference(times: list[list[float]], baseline: list[list[float]], block: int) -> Series:
    """Per repetition, the median over its rounds of the difference per request against the baseline's block."""
    return Series.of(
        [
            statistics.median((a - b) / block for a, b in zip(mine, theirs, strict=True))
            for mine, theirs in zip(times, baseline, strict=True)
        ]
    )


def _judge(ratio: Series, versus_sdk: Series | None) -> tuple[str, str, bool]:
    """(target, measured, met) of MCPOAuth's row: ≤ 1.05x static, and below the SDK where it was measured."""
    target = f"≤ {TARGET_RATIO}\u00d7 static"
    measured = f"{ratio.median:.3f}\u00d7 static"
    met = ratio.median <= TARGET_RATIO
    if versus_sdk is not None:
        target += ", < SDK"
        measured += f", {format_ratio(versus_sdk)} SDK"
        met = met and versus_sdk.median < 1.0
    return target, measured, met


def run(settings: Settings) -> Section:
    section = Section(
        1,
        "Steady state: sequential requests with a valid cached token",
        f"{settings.steady_requests:,} sequential MCP requests (a JSON-RPC ping POST) per variant and repetition, "
        f"in interleaved blocks of {settings.steady_block:,}, {settings.repetitions} repetitions on the async "
        f"clients and {settings.sync_repetitions} on the sync ones, against an "
        "in-process transport that checks the bearer token. Time per request: median (min\u2013max) over "
        "repetitions. Ratios and differences pair the blocks of one round (run back to back): per repetition the "
        "median over its rounds, then median (min\u2013max) over repetitions. Target: MCPOAuth ≤ 1.05\u00d7 the "
        "static header on the same stack, and below the official SDK.",
    )
    table = section.table(
        "",
        ["stack", "variant", "per request", "min\u2013max", "\u00d7 static header", "Δ vs static", "target", "met?"],
    )
    missing_sdk = sdk_missing()
    for library_name, mode in (("httpx", "async"), ("httpx2", "async"), ("httpx", "sync"), ("httpx2", "sync")):
        try:
            library = importlib.import_module(library_name)
        except ImportError:
            section.notes.append(f"{library_name} is not installed: its rows are missing.")
            continue
        variants = _variants(library_name, mode)
        if mode == "sync":
            times = _measure_sync(library, variants, settings)
        else:
            times = anyio.run(_measure_async, library, variants, settings, backend="asyncio")
        stack = f"{library_name} {'AsyncClient (asyncio)' if mode == 'async' else 'Client'}"
        static = times["static header"]
        for variant in variants:
            mine = times[variant.name]
            median, spread = format_duration_series(_per_request(mine, settings.steady_block), "µs")
            ratio = _paired_ratio(mine, static)
            delta = _paired_difference(mine, static, settings.steady_block)
            target, met = "", ""
            if variant.name == "MCPOAuth":
                versus_sdk = _paired_ratio(mine, times["official SDK"]) if "official SDK" in times else None
                target, measured, met_all = _judge(ratio, versus_sdk)
                met = section.target(f"steady state, {stack}", target, measured, met_all)
                if versus_sdk is not None:
                    target += f" (ours / SDK: {format_ratio(versus_sdk)})"
            table.add(
                stack,
                variant.name,
                median,
                spread,
                format_ratio(ratio),
                f"{delta.median * 1e6:+.1f} µs",
                target,
                met,
            )
    if missing_sdk:
        section.notes.append(f"Official SDK not measured: {missing_sdk}.")
    section.notes.append(
        "The official SDK's OAuthClientProvider is an httpx2.Auth for async clients only, so it appears in the "
        "httpx2 AsyncClient rows; its storage holds a valid token and client registration, so only its "
        "per-request cost is measured."
    )
    return section
