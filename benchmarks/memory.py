"""Scenario 6: memory — retained growth per 1,000 requests, and the cost of each stored credential.

Growth: after a warm-up, ``tracemalloc`` traces a short and a long batch of sequential requests (a collection
before and after each); what is still allocated after the long batch minus what is still allocated after the short
one, per 1,000 extra requests, is the retained growth. Constant leftovers (the last response, caches filled once)
cancel out. Per credential: traced bytes per record kept in a ``MemoryTokenStore``, bytes on disk per record of
the encrypted file store, and traced bytes per authenticated client (credential, auth object and its state, after
its first request), beside the official SDK's provider.
"""

from __future__ import annotations

import gc
import importlib
import tempfile
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from fixtures import (
    BODY,
    REQUEST_HEADERS,
    SERVER_URL,
    TOKEN,
    bearer_transport,
    make_record,
    ours,
    sdk_missing,
    sdk_provider,
)
from harness import Section, Series, Settings, format_bytes

from mcp_oauth_auth import EncryptedFileTokenStore, MemoryTokenStore

#: Growth attributable to the plugin (its growth minus the static header's) that still counts as none: one byte
#: per request is below what tracemalloc can tell apart from the allocator's own bookkeeping.
TOLERANCE = 1024.0
STATIC, OURS, SDK = "static header", "MCPOAuth", "official SDK"


def _options(library: Any, name: str) -> dict[str, Any]:
    options: dict[str, Any] = {"transport": bearer_transport(library, TOKEN)}
    if name == STATIC:
        options["headers"] = {"Authorization": f"Bearer {TOKEN}"}
    elif name == OURS:
        options["auth"] = ours()
    else:
        options["auth"] = sdk_provider()
    return options


def _traced(work: Callable[[], None]) -> int:
    """Bytes allocated by ``work`` and still alive after a collection."""
    gc.collect()
    tracemalloc.start()
    try:
        work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


async def _traced_async(work: Callable[[], Awaitable[None]]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        await work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def _growth(short: list[int], long: list[int], settings: Settings) -> Series:
    extra_thousands = (settings.memory_long - settings.memory_short) / 1000
    return Series.of([(b - a) / extra_thousands for a, b in zip(short, long, strict=True)])


async def _async_growth(library: Any, name: str, settings: Settings) -> Series:
    short: list[int] = []
    long: list[int] = []
    async with library.AsyncClient(**_options(library, name)) as client:

        def send(count: int) -> Callable[[], Awaitable[None]]:
            async def work() -> None:
                for _ in range(count):
                    response = await client.post(SERVER_URL, content=BODY, headers=REQUEST_HEADERS)
                    if response.status_code != 200:
                        raise RuntimeError(f"{name}: request failed")

            return work

        await send(settings.steady_warmup)()
        for _ in range(settings.memory_batches):
            short.append(await _traced_async(send(settings.memory_short)))
            long.append(await _traced_async(send(settings.memory_long)))
    return _growth(short, long, settings)


def _per_record_in_memory(count: int) -> float:
    store = MemoryTokenStore()

    def work() -> None:
        for index in range(count):
            store.save(make_record(f"https://mcp{index}.bench/mcp", token=f"{TOKEN}{index:08d}"))

    return _traced(work) / count


def _per_record_on_disk(count: int) -> float:
    with tempfile.TemporaryDirectory(prefix="mcp-oauth-bench-") as directory:
        store = EncryptedFileTokenStore(Path(directory), use_keyring=False)
        for index in range(count):
            store.save(make_record(f"https://mcp{index}.bench/mcp", token=f"{TOKEN}{index:08d}"))
        files = list((Path(directory) / "records").glob("*.rec"))
        return sum(file.stat().st_size for file in files) / len(files)


async def _per_client(library: Any, name: str, count: int) -> float:
    """Traced bytes per authenticated client: its credential, auth object and state after one request."""
    store = MemoryTokenStore()
    auths: list[Any] = []
    async with library.AsyncClient(transport=bearer_transport(library, None)) as client:
        warm_up = ours() if name == OURS else sdk_provider()  # lazy imports and caches filled once per process
        await client.post(SERVER_URL, content=BODY, headers=REQUEST_HEADERS, auth=warm_up)

        async def work() -> None:
            for index in range(count):
                url = f"https://mcp{index}.bench/mcp"
                if name == OURS:
                    store.save(make_record(url, token=f"{TOKEN}{index:08d}"))
                    auth = ours(store, url)
                else:
                    auth = sdk_provider(url)
                response = await client.post(url, content=BODY, headers=REQUEST_HEADERS, auth=auth)
                if response.status_code != 200:
                    raise RuntimeError(f"{name}: request failed")
                auths.append(auth)

        size = await _traced_async(work)
    return size / count


def run(settings: Settings) -> Section:
    section = Section(
        6,
        "Memory",
        f"Retained growth per 1,000 requests: traced batches of {settings.memory_short:,} and "
        f"{settings.memory_long:,} sequential requests after a warm-up, {settings.memory_batches} times, median "
        "(min\u2013max). Target: no growth attributable to MCPOAuth (its growth minus the static header's ≤ "
        f"{format_bytes(TOLERANCE)} per 1,000 requests, i.e. ≤ 1 byte per request).",
    )
    table = section.table("", ["stack", "variant", "retained per 1,000 requests", "min\u2013max", "target", "met?"])
    missing_sdk = sdk_missing()
    for library_name in ("httpx", "httpx2"):
        try:
            library = importlib.import_module(library_name)
        except ImportError:
            continue
        names = [STATIC, OURS] + ([SDK] if library_name == "httpx2" and not missing_sdk else [])
        growth: dict[str, Series] = {}
        for name in names:
            growth[name] = anyio.run(_async_growth, library, name, settings, backend="asyncio")
        stack = f"{library_name} AsyncClient"
        for name in names:
            series = growth[name]
            target, met = "", ""
            if name == OURS:
                excess = series.median - growth[STATIC].median
                target = f"≤ static + {format_bytes(TOLERANCE)}"
                met = section.target(
                    f"memory growth, {stack}",
                    "none (≤ static + 1 KiB per 1,000 requests)",
                    f"{format_bytes(series.median)} per 1,000 (static: {format_bytes(growth[STATIC].median)})",
                    excess <= TOLERANCE,
                )
            table.add(
                stack,
                name,
                format_bytes(series.median),
                f"{format_bytes(series.low)} \u2013 {format_bytes(series.high)}",
                target,
                met,
            )

    credentials = section.table("Per stored credential:", ["what", "bytes per credential"])
    credentials.add(
        "record in a `MemoryTokenStore` (traced)", format_bytes(_per_record_in_memory(settings.memory_records))
    )
    credentials.add(
        "record file of the encrypted file store (on disk)",
        format_bytes(_per_record_on_disk(min(settings.memory_records, 100))),
    )
    library_name = "httpx2" if missing_sdk is None else "httpx"
    library = importlib.import_module(library_name)
    for name in [OURS] + ([SDK] if missing_sdk is None else []):
        size = anyio.run(_per_client, library, name, settings.memory_clients, backend="asyncio")
        what = "MCPOAuth" if name == OURS else "official SDK OAuthClientProvider"
        credentials.add(
            f"authenticated client: credential + {what}, after its first request ({library_name} AsyncClient)",
            format_bytes(size),
        )
    section.notes.append(
        "A negative growth means the long batch ended with less retained than the short one (allocator and "
        "free-list noise): no growth."
    )
    return section
