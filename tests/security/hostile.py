"""A hostile MCP server and the authorization servers it names, as an in-process transport that records every
request and answers only the URLs it was given (anything else: 404), through every client kind."""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore, RetryPolicy

HAVE_HTTPX2 = importlib.util.find_spec("httpx2") is not None
FAST_RETRY = RetryPolicy(attempts=1, base_delay=0.0)

SERVER = "https://mcp.example/mcp"
PRM_URL = "https://mcp.example/.well-known/oauth-protected-resource/mcp"

#: (library, mode): every driver the flow runs in (async clients on both anyio backends).
KINDS = [
    pytest.param(
        (library, mode),
        id=f"{library}-{mode}",
        marks=pytest.mark.skipif(library == "httpx2" and not HAVE_HTTPX2, reason="httpx2 needs Python 3.11+"),
    )
    for library in ("httpx", "httpx2")
    for mode in ("sync", "asyncio", "trio")
]

Answer = Callable[[Any], tuple[int, dict[str, str], bytes]]


def document(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    content = json.dumps(body).encode()
    return lambda request: (status, {"content-type": "application/json", **(headers or {})}, content)


def answer(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Answer:
    return lambda request: (status, headers or {}, body)


def as_metadata(issuer: str, **fields: Any) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "registration_endpoint": f"{issuer}/register",
        "code_challenge_methods_supported": ["S256"],
        **fields,
    }


@dataclass
class HostileServer:
    """URL (without query) -> answer; every request is recorded as (method, url, authorization header)."""

    routes: dict[str, Answer] = field(default_factory=dict)
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)

    @classmethod
    def protected(cls, prm: dict[str, Any], challenge: str | None = None) -> HostileServer:
        """An MCP server at :data:`SERVER` answering 401 (with ``challenge``) and publishing ``prm``."""
        server = cls()
        server.routes[SERVER] = answer(401, {"www-authenticate": challenge or "Bearer"})
        server.routes[PRM_URL] = document(prm)
        return server

    def urls(self) -> list[str]:
        return [url for _, url, _ in self.seen]

    def handler(self, library: Any) -> Callable[[Any], Any]:
        def handle(request: Any) -> Any:
            url = str(request.url.copy_with(query=None))
            self.seen.append((request.method, url, request.headers.get("authorization")))
            route = self.routes.get(url)
            if route is None:
                return library.Response(404)
            status, headers, body = route(request)
            return library.Response(status, headers=headers, content=body)

        return handle

    def client(self, library_name: str, mode: str, **options: Any) -> Any:
        library = importlib.import_module(library_name)
        transport = library.MockTransport(self.handler(library))
        factory = library.Client if mode == "sync" else library.AsyncClient
        return factory(transport=transport, **options)

    def request(self, kind: tuple[str, str], auth: MCPOAuth, url: str = SERVER, **options: Any) -> Any:
        """``GET url`` through a client of ``kind`` with ``auth``: the response (or what the flow raised)."""
        library_name, mode = kind
        if mode == "sync":
            with self.client(library_name, mode, **options) as client:
                return client.get(url, auth=auth)

        async def main() -> Any:
            async with self.client(library_name, mode, **options) as client:
                return await client.get(url, auth=auth)

        return anyio.run(main, backend=mode)

    def authenticate(self, kind: tuple[str, str], auth: MCPOAuth, **options: Any) -> Any:
        """``auth.authenticate`` / ``aauthenticate`` through a client of ``kind``."""
        library_name, mode = kind
        if mode == "sync":
            with self.client(library_name, mode, **options) as client:
                return auth.authenticate(client)

        async def main() -> Any:
            async with self.client(library_name, mode, **options) as client:
                return await auth.aauthenticate(client)

        return anyio.run(main, backend=mode)


def make_auth(server_url: str = SERVER, **options: Any) -> MCPOAuth:
    options.setdefault("store", MemoryTokenStore())
    options.setdefault("authorizer", lambda url: "http://127.0.0.1:1/callback?error=access_denied")
    options.setdefault("retry", FAST_RETRY)
    return MCPOAuth(server_url, **options)
