"""The first request a client makes to an MCP server, without credentials: an MCP ``initialize``. ``doctor``
reports its answer; ``login`` sends it first and stops at an answer that is neither an MCP endpoint's nor a 401
challenge, before anything is registered at an authorization server for a URL that is no MCP server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp_oauth_auth.cli.errors import CLIError
from mcp_oauth_auth.cli.mcp_session import HANDSHAKE_VERSIONS

if TYPE_CHECKING:
    import httpx

__all__ = ["check_endpoint", "not_an_endpoint", "send_probe"]

#: What an MCP endpoint (Streamable HTTP) answers a request with, when it answers with content.
_MCP_CONTENT_TYPES = ("application/json", "text/event-stream")


def send_probe(url: str, http: httpx.Client, client_name: str) -> httpx.Response:
    """POST an ``initialize`` to ``url`` without credentials, as a client's first request."""
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": HANDSHAKE_VERSIONS[0],
            "capabilities": {},
            "clientInfo": {"name": client_name, "version": "0"},
        },
    }
    return http.post(url, json=message, headers={"Accept": "application/json, text/event-stream"})


def _what_came_back(response: httpx.Response) -> str:
    status = f"HTTP {response.status_code}"
    if response.reason_phrase:
        status += f" {response.reason_phrase}"
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "text/html":
        return f"{status} with an HTML page"
    if response.is_redirect:
        return f"{status}, a redirect to {response.headers.get('location', '(nowhere)')}"
    return f"{status} ({content_type})" if content_type else status


def not_an_endpoint(url: str, response: httpx.Response) -> CLIError | None:
    """Why ``response`` to the probe is not what an MCP endpoint answers a client without credentials; None when it
    is: a 401 (the challenge), or a 2xx in JSON or an event stream (a server that needs no authorization)."""
    from mcp_oauth_auth.flow.urls import safe_url

    status = response.status_code
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if status == 401 or (200 <= status < 300 and content_type in _MCP_CONTENT_TYPES):
        return None
    message = f"{safe_url(url)} is not an MCP endpoint: it answered {_what_came_back(response)}"
    if (status >= 500 and status != 501) or status == 429:  # (501: POST is not implemented there: no MCP endpoint)
        message = f"{safe_url(url)} failed: it answered {_what_came_back(response)}"
        hint = "the server has a problem: try again later; nothing was registered anywhere"
    elif response.is_redirect:
        hint = "if it redirects to the MCP endpoint, log in with that URL; nothing was registered anywhere"
    else:
        hint = (
            "check the URL, path included (e.g. https://mcp.example.com/mcp); `mcp-oauth doctor URL` shows what it "
            "publishes; nothing was registered anywhere"
        )
    return CLIError(message, hint)


def check_endpoint(url: str, http: httpx.Client) -> None:
    """Raise :class:`CLIError` unless ``url`` answers the probe as an MCP endpoint (or with a 401 challenge)."""
    problem = not_an_endpoint(url, send_probe(url, http, "mcp-oauth login"))
    if problem is not None:
        raise problem
