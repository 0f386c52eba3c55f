"""A small MCP client over the streamable HTTP transport: initialize, list tools, call a tool.

Just enough of the protocol to check a connection from the command line and to drive the demo, on plain
``httpx`` (so that it works on every Python this package supports, with or without the official SDK). JSON-RPC
messages are POSTed; the answer is either a JSON body or a server-sent event stream carrying it (MCP
"Streamable HTTP" transport). Authorization is the client's ``auth`` — an :class:`~mcp_oauth_auth.MCPOAuth`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["HANDSHAKE_VERSIONS", "MCPClientSession", "MCPError", "MCPHTTPError", "ServerInfo"]

#: The revisions that open with the ``initialize`` handshake, newest first; the first is offered.
HANDSHAKE_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")

_ACCEPT = "application/json, text/event-stream"
_MAX_TOOL_PAGES = 20


class MCPError(Exception):
    """The server answered a request with a JSON-RPC error, or with something that is not MCP."""


class MCPHTTPError(MCPError):
    """The server answered with an HTTP error status."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class ServerInfo:
    """What the server said about itself in its ``initialize`` result."""

    protocol_version: str
    name: str
    version: str
    capabilities: dict[str, Any] = field(default_factory=dict)


class MCPClientSession:
    """One MCP session with the server at ``url`` through ``http`` (an ``httpx.Client``, usually with auth)."""

    def __init__(self, http: httpx.Client, url: str, client_name: str = "mcp-oauth", client_version: str = "0") -> None:
        self._http = http
        self._url = url
        self._client_info = {"name": client_name, "version": client_version}
        self._ids = itertools.count(1)
        self._session_id: str | None = None
        self._protocol_version: str | None = None

    def initialize(self) -> ServerInfo:
        """The ``initialize`` handshake followed by ``notifications/initialized``."""
        result = self.request(
            "initialize",
            {"protocolVersion": HANDSHAKE_VERSIONS[0], "capabilities": {}, "clientInfo": self._client_info},
        )
        version = result.get("protocolVersion")
        if version not in HANDSHAKE_VERSIONS:
            raise MCPError(f"the server speaks MCP revision {version!r}, which this client does not know")
        self._protocol_version = version
        server = _object(result.get("serverInfo"))
        self.notify("notifications/initialized")
        return ServerInfo(
            protocol_version=version,
            name=str(server.get("name", "?")),
            version=str(server.get("version", "?")),
            capabilities=_object(result.get("capabilities")),
        )

    def list_tools(self) -> list[dict[str, Any]]:
        """Every tool the server offers (following ``nextCursor`` pages)."""
        tools: list[dict[str, Any]] = []
        params: dict[str, Any] = {}
        for _ in range(_MAX_TOOL_PAGES):
            result = self.request("tools/list", params)
            page = result.get("tools")
            if not isinstance(page, list):
                raise MCPError("the tools/list result has no list of tools")
            tools.extend(tool for tool in page if isinstance(tool, dict))
            cursor = result.get("nextCursor")
            if not cursor:
                break
            params = {"cursor": cursor}
        return tools

    def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return self.request("tools/call", {"name": name, "arguments": arguments})

    def close(self) -> None:
        """End the session at the server when it gave one (a server may refuse: that is fine)."""
        if self._session_id is None:
            return
        with contextlib.suppress(httpx.HTTPError):
            self._http.delete(self._url, headers=self._headers())
        self._session_id = None

    # -- JSON-RPC over streamable HTTP ---------------------------------------------------------------------

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request; its result (an object), or :class:`MCPError` for a JSON-RPC error."""
        request_id = next(self._ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        with self._http.stream("POST", self._url, json=message, headers=self._headers()) as response:
            self._check_status(response, method)
            session_id = response.headers.get("mcp-session-id")
            if session_id and self._session_id is None:
                self._session_id = session_id
            answer = self._find_answer(response, request_id, method)
        if "error" in answer:
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            raise MCPError(f"{method} failed: {error.get('message', 'error')} (JSON-RPC error {error.get('code')})")
        result = answer.get("result")
        if not isinstance(result, dict):
            raise MCPError(f"the answer to {method} has no result object")
        return result

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        response = self._http.post(self._url, json=message, headers=self._headers())
        self._check_status(response, method)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": _ACCEPT}
        if self._session_id is not None:
            headers["Mcp-Session-Id"] = self._session_id
        if self._protocol_version is not None:
            headers["MCP-Protocol-Version"] = self._protocol_version
        return headers

    def _check_status(self, response: httpx.Response, method: str) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        response.read()
        detail = _error_detail(response)
        raise MCPHTTPError(f"{method}: the server answered HTTP {status}{detail}", status)

    def _find_answer(self, response: httpx.Response, request_id: int, method: str) -> dict[str, Any]:
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "text/event-stream":
            messages: Iterable[Any] = _sse_messages(response.iter_lines())
        elif content_type == "application/json":
            try:
                document = json.loads(response.read())
            except (ValueError, RecursionError):
                raise MCPError(f"{method}: the server's answer is not JSON") from None
            messages = document if isinstance(document, list) else [document]
        else:
            raise MCPError(f"{method}: the server answered {content_type or 'no content type'}, not MCP")
        for message in messages:
            if (
                isinstance(message, dict)
                and message.get("id") == request_id
                and ("result" in message or "error" in message)
            ):
                return message
        raise MCPError(f"{method}: the server's answer does not contain the response")


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _sse_messages(lines: Iterable[str]) -> Iterator[Any]:
    """The JSON payloads of the ``message`` events of a server-sent event stream (WHATWG HTML §9.2); events
    that are not JSON are skipped."""
    data: list[str] = []
    event = "message"
    for line in _with_final_blank(lines):
        if line == "":
            if data and event == "message":
                with contextlib.suppress(ValueError):
                    yield json.loads("\n".join(data))
            data, event = [], "message"
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value or "message"


def _with_final_blank(lines: Iterable[str]) -> Iterator[str]:
    """``lines``, then a blank line: a stream that ends without one still completes its last event."""
    yield from lines
    yield ""


def _error_detail(response: httpx.Response) -> str:
    try:
        document = response.json()
    except ValueError:
        return ""
    if isinstance(document, dict):
        description = document.get("error_description") or document.get("error")
        if isinstance(description, str):
            return f": {description[:200]}"
    return ""
