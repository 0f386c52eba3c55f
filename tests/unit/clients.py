"""Send requests through every supported client kind: httpx / httpx2, sync / asyncio / trio."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest

from mcp_oauth_auth import MCPOAuth
from mcp_oauth_auth.testing import FakeMCPStack

from ..httpx2_support import needs_httpx2


@dataclass(frozen=True)
class ClientKind:
    library: str  # "httpx" or "httpx2"
    mode: str  # "sync", "asyncio" or "trio"

    def __str__(self) -> str:
        return f"{self.library}-{self.mode}"


ALL_KINDS = [ClientKind(lib, mode) for lib in ("httpx", "httpx2") for mode in ("sync", "asyncio", "trio")]
KIND_PARAMS = [
    pytest.param(
        kind,
        id=str(kind),
        marks=[needs_httpx2] if kind.library == "httpx2" else [],
    )
    for kind in ALL_KINDS
]


@dataclass
class Seen:
    """Every request the client sent (OAuth ones included), as (method, url, authorization header)."""

    requests: list[tuple[str, str, str | None]] = field(default_factory=list)

    def hook(self, request: Any) -> None:
        self.requests.append((request.method, str(request.url), request.headers.get("authorization")))

    async def ahook(self, request: Any) -> None:
        self.hook(request)


@dataclass(frozen=True)
class Result:
    status: int
    body: Any
    request_headers: dict[str, str]


def send_all(
    kind: ClientKind,
    stack: FakeMCPStack,
    auth: MCPOAuth,
    calls: list[tuple[str, str] | tuple[str, str, dict[str, Any]]],
    seen: Seen | None = None,
) -> list[Result]:
    """Send ``calls`` ((method, url[, request kwargs])) one after another on one client of ``kind``."""
    library = importlib.import_module(kind.library)
    transport = stack.httpx_transport() if kind.library == "httpx" else stack.httpx2_transport()
    seen = seen or Seen()

    def result(response: Any) -> Result:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return Result(response.status_code, body, dict(response.request.headers))

    def unpack(call: tuple[Any, ...]) -> tuple[str, str, dict[str, Any]]:
        return call[0], call[1], call[2] if len(call) > 2 else {}

    if kind.mode == "sync":
        with library.Client(auth=auth, transport=transport, event_hooks={"request": [seen.hook]}) as client:
            return [result(client.request(m, u, **kw)) for m, u, kw in map(unpack, calls)]

    async def main() -> list[Result]:
        async with library.AsyncClient(auth=auth, transport=transport, event_hooks={"request": [seen.ahook]}) as client:
            return [result(await client.request(m, u, **kw)) for m, u, kw in map(unpack, calls)]

    return anyio.run(main, backend=kind.mode)


class DelayedTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Wraps an httpx transport with latency, so that concurrent requests really interleave."""

    def __init__(self, inner: Any, delay: float = 0.01) -> None:
        self._inner = inner
        self._delay = delay

    def handle_request(self, request: Any) -> Any:
        import time

        time.sleep(self._delay)
        return self._inner.handle_request(request)

    async def handle_async_request(self, request: Any) -> Any:
        await anyio.sleep(self._delay)
        return await self._inner.handle_async_request(request)

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()
