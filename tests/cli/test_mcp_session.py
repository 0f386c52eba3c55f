"""The CLI's small MCP client (cli/mcp_session.py) against canned streamable-HTTP answers: what it accepts as an
answer, and the MCPError it raises for anything that is not MCP."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mcp_oauth_auth.cli.mcp_session import HANDSHAKE_VERSIONS, MCPClientSession, MCPError, MCPHTTPError

URL = "https://mcp.example.com/mcp"


def session(answer: Callable[[dict[str, Any], httpx.Request], httpx.Response], seen: list[httpx.Request]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        message = json.loads(request.content) if request.content else {}
        return answer(message, request)

    return MCPClientSession(httpx.Client(transport=httpx.MockTransport(handler)), URL)


def result(message: dict[str, Any], value: Any, **headers: str) -> httpx.Response:
    return httpx.Response(200, json={"jsonrpc": "2.0", "id": message.get("id"), "result": value}, headers=headers)


def sse(*events: str) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content="".join(events).encode())


def test_the_handshake_keeps_the_session_and_revision_for_later_requests() -> None:
    seen: list[httpx.Request] = []

    def answer(message: dict[str, Any], request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(405)
        if message.get("method") == "initialize":
            info = {"protocolVersion": HANDSHAKE_VERSIONS[0], "serverInfo": {"name": "demo", "version": "1.2"}}
            return result(message, info, **{"mcp-session-id": "s-1"})
        if "id" not in message:
            return httpx.Response(202)
        return result(message, {"tools": [{"name": "echo"}, "not a tool"], "nextCursor": None})

    client = session(answer, seen)
    info = client.initialize()
    assert (info.protocol_version, info.name, info.version, info.capabilities) == (
        HANDSHAKE_VERSIONS[0],
        "demo",
        "1.2",
        {},
    )
    assert client.list_tools() == [{"name": "echo"}]
    client.close()
    client.close()  # once only
    assert [request.method for request in seen] == ["POST", "POST", "POST", "DELETE"]
    assert "mcp-session-id" not in seen[0].headers
    for request in seen[1:]:
        assert request.headers["mcp-session-id"] == "s-1"
        assert request.headers["mcp-protocol-version"] == HANDSHAKE_VERSIONS[0]


def test_an_unknown_protocol_revision_is_refused() -> None:
    client = session(lambda message, _: result(message, {"protocolVersion": "1999-01-01"}), [])
    with pytest.raises(MCPError, match="MCP revision '1999-01-01', which this client does not know"):
        client.initialize()


def test_tool_pages_are_followed_by_cursor() -> None:
    pages = {None: ([{"name": "a"}], "p2"), "p2": ([{"name": "b"}], "p3"), "p3": ([{"name": "c"}], "")}

    def answer(message: dict[str, Any], _: httpx.Request) -> httpx.Response:
        tools, cursor = pages[message["params"].get("cursor")]
        return result(message, {"tools": tools, "nextCursor": cursor})

    assert [tool["name"] for tool in session(answer, []).list_tools()] == ["a", "b", "c"]


def test_a_tools_list_without_tools_is_an_error() -> None:
    with pytest.raises(MCPError, match="no list of tools"):
        session(lambda message, _: result(message, {"tools": "none"}), []).list_tools()


def test_a_json_rpc_error_and_a_missing_result_are_errors() -> None:
    def error(message: dict[str, Any], _: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": "no such tool"}}
        )

    with pytest.raises(MCPError, match=r"tools/call failed: no such tool \(JSON-RPC error -32601\)"):
        session(error, []).call_tool("missing", {})
    with pytest.raises(MCPError, match=r"tools/call failed: error \(JSON-RPC error None\)"):
        session(lambda m, _: httpx.Response(200, json={"id": m["id"], "error": "bad"}), []).call_tool("x", {})
    with pytest.raises(MCPError, match="the answer to tools/call has no result object"):
        session(lambda m, _: result(m, ["not", "an", "object"]), []).call_tool("x", {})


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"error": "invalid_token", "error_description": "expired"}, ": expired"),
        ({"error": "invalid_token"}, ": invalid_token"),
        (["not", "an", "object"], ""),
        (None, ""),
    ],
)
def test_an_http_error_names_the_status_and_what_the_server_said(body: Any, detail: str) -> None:
    def answer(message: dict[str, Any], _: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json=body) if body is not None else httpx.Response(401, text="<html>")

    with pytest.raises(MCPHTTPError) as raised:
        session(answer, []).request("ping")
    assert str(raised.value) == f"ping: the server answered HTTP 401{detail}"
    assert raised.value.status_code == 401


def test_an_answer_that_is_not_mcp_is_an_error() -> None:
    with pytest.raises(MCPError, match="ping: the server answered text/html, not MCP"):
        session(lambda *_: httpx.Response(200, html="<html></html>"), []).request("ping")
    with pytest.raises(MCPError, match="ping: the server answered no content type, not MCP"):
        session(lambda *_: httpx.Response(200, content=b"x"), []).request("ping")
    with pytest.raises(MCPError, match="does not contain the response"):
        session(lambda *_: httpx.Response(200, json={"jsonrpc": "2.0", "id": 99, "result": {}}), []).request("ping")


def test_a_json_answer_that_is_not_json_is_an_error_not_a_crash() -> None:
    def answer(*_: Any) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, content=b"<html>oops</html>")

    with pytest.raises(MCPError, match="ping: the server's answer is not JSON"):
        session(answer, []).request("ping")


def test_a_batch_answer_is_searched_for_the_response() -> None:
    def answer(message: dict[str, Any], _: httpx.Request) -> httpx.Response:
        notification = {"jsonrpc": "2.0", "method": "notifications/message"}
        return httpx.Response(200, json=[notification, {"jsonrpc": "2.0", "id": message["id"], "result": {"ok": 1}}])

    assert session(answer, []).request("ping") == {"ok": 1}


def test_an_event_stream_answer_skips_comments_other_events_and_non_json() -> None:
    def answer(message: dict[str, Any], _: httpx.Request) -> httpx.Response:
        response = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {"ok": True}})
        return sse(
            ": keep-alive\n\n",
            "event: ping\ndata: {}\n\n",
            "data: not json\n\n",
            'event:\ndata: {"jsonrpc": "2.0", "method": "notifications/progress"}\n\n',
            f"id: 7\nevent: message\ndata:{response}",  # no final blank line: the stream's end completes it
        )

    assert session(answer, []).request("ping") == {"ok": True}


def test_a_multi_line_event_is_joined() -> None:
    def answer(message: dict[str, Any], _: httpx.Request) -> httpx.Response:
        return sse(f'data: {{"jsonrpc": "2.0", "id": {message["id"]},\ndata: "result": {{"lines": 2}}}}\n\n')

    assert session(answer, []).request("ping") == {"lines": 2}


def test_a_failed_notification_is_an_http_error() -> None:
    with pytest.raises(MCPHTTPError, match="notifications/initialized: the server answered HTTP 500"):
        session(lambda *_: httpx.Response(500), []).notify("notifications/initialized", {"x": 1})


def test_tool_pages_stop_at_a_limit_when_the_server_never_stops_paging() -> None:
    seen: list[httpx.Request] = []

    def endless(message: dict[str, Any], _: httpx.Request) -> httpx.Response:
        page = len(seen)
        return result(message, {"tools": [{"name": f"t{page}"}], "nextCursor": f"p{page + 1}"})

    tools = session(endless, seen).list_tools()
    assert len(seen) == 20
    assert [tool["name"] for tool in tools] == [f"t{n}" for n in range(1, 21)]


def test_an_event_stream_without_the_response_is_an_error() -> None:
    with pytest.raises(MCPError, match="does not contain the response"):
        session(lambda *_: sse('data: {"jsonrpc": "2.0", "method": "notifications/message"}\n\n'), []).request("ping")


def test_an_http_error_whose_error_field_is_not_text_shows_no_detail() -> None:
    with pytest.raises(MCPHTTPError) as raised:
        session(lambda *_: httpx.Response(500, json={"error": 5}), []).request("ping")
    assert str(raised.value) == "ping: the server answered HTTP 500"
