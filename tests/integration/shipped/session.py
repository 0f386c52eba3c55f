"""One MCP session (initialize, tools/list, tools/call) through an HTTP client with ``MCPOAuth`` as its auth.

``httpx``: a synchronous ``httpx.Client`` with the package's small streamable-HTTP client
(:class:`~mcp_oauth_auth.cli.mcp_session.MCPClientSession`); ``httpx2``: an ``httpx2.AsyncClient`` with the official
MCP SDK's client (``ClientSession`` over ``streamable_http_client``), as an SDK 2.x application would use it.
Run as a script, it is the "new process" of the shipped-server tests: ``python -m tests.integration.shipped.session
URL STORE_DIR CLIENT`` prints ``{"tools": [...], "texts": [...], "authorizations": N}`` as JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any, cast

import anyio
import httpx

from mcp_oauth_auth import MCPOAuth
from mcp_oauth_auth.cli.mcp_session import MCPClientSession
from mcp_oauth_auth.storage.encrypted_file import EncryptedFileTokenStore

from .base import ADD_TOOL

CLIENTS = ("httpx", "httpx2")


def mcp_session(auth: MCPOAuth, url: str, client: str, a: int, b: int) -> tuple[list[str], str]:
    """The tools the server lists and the text of ``add(a, b)``."""
    if client == "httpx":
        with httpx.Client(auth=auth, timeout=30) as http:
            session = MCPClientSession(http, url)
            try:
                session.initialize()
                names = [str(tool["name"]) for tool in session.list_tools()]
                result = session.call_tool(ADD_TOOL, {"a": a, "b": b})
            finally:
                session.close()
        assert not result.get("isError"), result
        return names, "".join(str(block.get("text", "")) for block in result["content"])
    return anyio.run(_sdk_session, auth, url, a, b)


async def _sdk_session(auth: MCPOAuth, url: str, a: int, b: int) -> tuple[list[str], str]:
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    # MCPOAuth derives from httpx2.Auth at run time (where httpx2 is installed), not in the type system.
    async with (
        httpx2.AsyncClient(auth=cast("httpx2.Auth", auth), timeout=30) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        result = await session.call_tool(ADD_TOOL, {"a": a, "b": b})
        assert not result.is_error, result
        return [tool.name for tool in tools.tools], "".join(getattr(block, "text", "") for block in result.content)


def logout(auth: MCPOAuth, client: str) -> list[Any]:
    """``logout()`` through a client of the given kind (``alogout()`` for httpx2)."""
    if client == "httpx":
        with httpx.Client(timeout=30) as http:
            return auth.logout(http)

    async def alogout() -> list[Any]:
        import httpx2

        async with httpx2.AsyncClient(timeout=30) as http:
            return await auth.alogout(http)

    return anyio.run(alogout)


def _resume(url: str, store_dir: str, client: str) -> dict[str, Any]:
    authorizations = 0

    def no_person_here(authorization_url: str) -> str:
        nonlocal authorizations
        authorizations += 1
        raise RuntimeError("the new process must not need a new authorization")

    auth = MCPOAuth(url, store=EncryptedFileTokenStore(store_dir, use_keyring=False), authorizer=no_person_here)
    tools, text = mcp_session(auth, url, client, 3, 4)
    return {"tools": tools, "texts": [text], "authorizations": authorizations}


if __name__ == "__main__":
    print(json.dumps(_resume(sys.argv[1], sys.argv[2], sys.argv[3])))
