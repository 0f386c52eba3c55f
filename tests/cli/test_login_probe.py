"""``login`` sends the probe ``doctor`` sends before anything else: a URL that is no MCP endpoint stops it with one
line naming the URL and what came back, and nothing is registered at any authorization server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mcp_oauth_auth.testing import FakeMCPStack

from .runner import problem, run_cli, stored_records

#: path -> (status, content type, body) of a web server that is not an MCP server.
_PAGES = {
    "/": (200, "text/html; charset=utf-8", b"<!doctype html><title>Welcome</title>"),
    "/api": (501, "text/plain", b"not implemented"),
    "/old": (302, "text/plain", b""),
    "/broken": (503, "text/plain", b"down for maintenance"),
}


class _Website(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]]

    def _answer(self) -> None:
        self.seen.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, content_type, body = _PAGES.get(self.path, (404, "text/html", b"<h1>Not Found</h1>"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 302:
            self.send_header("Location", "https://login.example.com/")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def website() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """The origin of a loopback web server that is not an MCP server, and the requests it received."""
    seen: list[tuple[str, str]] = []
    handler = type("Handler", (_Website,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("path", "came_back"),
    [
        ("/", "HTTP 200 OK with an HTML page"),
        ("/mcp", "HTTP 404 Not Found with an HTML page"),
        ("/api", "HTTP 501 Not Implemented (text/plain)"),
        ("/old", "HTTP 302 Found, a redirect to https://login.example.com/"),
    ],
)
def test_login_stops_at_a_url_that_is_not_an_mcp_endpoint(
    home: Path, website: tuple[str, list[tuple[str, str]]], path: str, came_back: str
) -> None:
    origin, seen = website
    url = origin + path
    result = run_cli(home, "login", "site", url, "--headless")
    assert result.returncode == 1, problem(result)
    error, hint = result.stderr.splitlines()[-2:]
    assert error == f"error: {url} is not an MCP endpoint: it answered {came_back}"
    assert hint.startswith("hint: ")
    assert "nothing was registered anywhere" in hint
    assert seen == [("POST", path)]  # the probe only: no metadata, no registration, nothing else
    assert stored_records(home) == []


def test_a_server_error_is_named_as_such(home: Path, website: tuple[str, list[tuple[str, str]]]) -> None:
    origin, seen = website
    result = run_cli(home, "login", "site", origin + "/broken", "--headless")
    assert result.returncode == 1, problem(result)
    assert f"error: {origin}/broken failed: it answered HTTP 503 Service Unavailable (text/plain)" in result.stderr
    assert seen == [("POST", "/broken")]


def test_a_wrong_path_on_a_real_mcp_server_registers_nothing(stack: FakeMCPStack, home: Path) -> None:
    wrong = stack.server_url.rsplit("/", 1)[0] + "/not-mcp"
    result = run_cli(home, "login", "x", wrong, "--headless")
    assert result.returncode == 1, problem(result)
    assert f"error: {wrong} is not an MCP endpoint: it answered HTTP 404" in result.stderr
    assert stack.count("register") == 0
    assert stack.count("authorize") == 0


def test_an_mcp_endpoint_passes_the_probe(stack: FakeMCPStack, home: Path) -> None:
    result = run_cli(home, "login", "x", stack.server_url, "--headless")
    assert result.returncode == 0, problem(result)
    assert stack.count("register") == 1


def test_the_library_registers_nothing_for_a_website_either(website: tuple[str, list[tuple[str, str]]]) -> None:
    """MCPOAuth.authenticate() sends no request to the endpoint itself while discovery finds metadata; where it finds
    none at all (the 2025-03-26 default endpoints would follow), it first checks that the endpoint answers 401, so
    nothing is ever POSTed to a website's /register."""
    import httpx

    from mcp_oauth_auth import DiscoveryError, HeadlessAuthorizer, MCPOAuth

    origin, seen = website
    auth = MCPOAuth(origin + "/", authorizer=HeadlessAuthorizer())
    with pytest.raises(DiscoveryError, match="not an OAuth-protected MCP endpoint"), httpx.Client() as http:
        auth.authenticate(http)
    assert seen
    assert all(method == "GET" for method, _ in seen), seen
    assert ("GET", "/") in seen
