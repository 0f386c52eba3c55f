"""The demo's MCP server (cli/demo.py) as an MCP client sees it, in-process: JSON-RPC over streamable HTTP behind
the fake authorization server, with an access token from a real MCPOAuth login."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mcp_oauth_auth import HeadlessAuthorizer, MCPOAuth
from mcp_oauth_auth.cli.demo import DemoServer
from mcp_oauth_auth.cli.mcp_session import HANDSHAKE_VERSIONS
from mcp_oauth_auth.storage import MemoryTokenStore


@pytest.fixture(scope="module")
def mcp() -> Iterator[tuple[httpx.Client, str]]:
    with DemoServer.start() as server:
        auth = MCPOAuth(server.url, store=MemoryTokenStore(), authorizer=HeadlessAuthorizer())
        with httpx.Client(auth=auth) as http:
            yield http, server.url


def rpc(mcp: tuple[httpx.Client, str], method: str, params: Any = None, request_id: Any = 1) -> dict[str, Any]:
    http, url = mcp
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    response = http.post(url, json=message)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer["id"] == request_id
    return answer


def test_initialize_answers_the_requested_revision_or_its_latest(mcp: tuple[httpx.Client, str]) -> None:
    older = HANDSHAKE_VERSIONS[-1]
    assert rpc(mcp, "initialize", {"protocolVersion": older})["result"]["protocolVersion"] == older
    result = rpc(mcp, "initialize", {"protocolVersion": "1999-01-01"})["result"]
    assert result["protocolVersion"] == HANDSHAKE_VERSIONS[0]
    assert result["serverInfo"]["name"] == "mcp-oauth demo server"
    assert rpc(mcp, "initialize", "not an object")["result"]["protocolVersion"] == HANDSHAKE_VERSIONS[0]


def test_ping_and_unknown_methods(mcp: tuple[httpx.Client, str]) -> None:
    assert rpc(mcp, "ping", request_id="p")["result"] == {}
    assert rpc(mcp, "resources/list")["error"] == {"code": -32601, "message": "Method not found: resources/list"}


def test_the_tools(mcp: tuple[httpx.Client, str]) -> None:
    assert [tool["name"] for tool in rpc(mcp, "tools/list")["result"]["tools"]] == ["add", "whoami"]
    added = rpc(mcp, "tools/call", {"name": "add", "arguments": {"a": 2, "b": 40}})["result"]
    assert added == {"content": [{"type": "text", "text": "42"}], "isError": False}
    wrong = rpc(mcp, "tools/call", {"name": "add", "arguments": {"a": "2"}})["result"]
    assert wrong == {"content": [{"type": "text", "text": "add needs two integers, a and b"}], "isError": True}
    assert rpc(mcp, "tools/call", {"name": "add", "arguments": "x"})["result"]["isError"] is True
    whoami = rpc(mcp, "tools/call", {"name": "whoami"})["result"]["content"][0]["text"]
    assert whoami.startswith("client ")
    unknown = rpc(mcp, "tools/call", {"name": "rm"})["error"]
    assert unknown == {"code": -32602, "message": "Unknown tool: rm"}


def test_what_is_not_a_json_rpc_request(mcp: tuple[httpx.Client, str]) -> None:
    http, url = mcp
    parse_error = http.post(url, content=b"{nope", headers={"Content-Type": "application/json"})
    assert (parse_error.status_code, parse_error.json()["error"]["code"]) == (400, -32700)
    invalid = http.post(url, json={"jsonrpc": "1.0", "id": 1, "method": "ping"})
    assert (invalid.status_code, invalid.json()["error"]["code"]) == (400, -32600)
    assert http.post(url, json=["batch"]).status_code == 400
    assert http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202
    get = http.get(url)
    assert (get.status_code, get.headers["Allow"]) == (405, "POST")
    assert http.head(url).content == b""
