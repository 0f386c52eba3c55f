"""Point 4: every OAuth response is read with a size cap and an overall deadline (not per read), through real
loopback sockets: a huge body, a declared huge body, a body trickled byte by byte, headers trickled byte by byte and
a server that never answers each end the flow with ResponseLimitError, the connection closed, while the stored
credentials stay."""

from __future__ import annotations

import importlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pytest

from mcp_oauth_auth import ResponseLimitError, TemporaryOAuthError

from .hostile import make_auth

TRICKLE_BYTES = 200
TRICKLE_PAUSE = 0.05
#: How long the silent server keeps a connection without answering (the client's read timeout is 5 s).
SILENCE = 4.0


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.request.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.request.recv(4096)
            if not data:
                return
            head += data
        path = head.split(b" ", 2)[1].decode()
        port = self.server.server_address[1]
        try:
            if path == "/mcp":
                challenge = f'Bearer resource_metadata="http://127.0.0.1:{port}/prm"'
                self._head("401 Unauthorized", f"WWW-Authenticate: {challenge}", "Content-Length: 0")
            elif self.server.mode == "huge":
                self._head("200 OK", "Content-Type: application/json")
                chunk = b"x" * 65536
                for _ in range(64):  # 4 MiB at most, then stop
                    self.request.sendall(chunk)
                    self.server.sent += len(chunk)
            elif self.server.mode == "declared":
                self._head("200 OK", "Content-Type: application/json", "Content-Length: 67108864")
                self.request.sendall(b"{")
            elif self.server.mode == "headers":  # the status line and headers, a byte at a time, never complete
                for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"x" * TRICKLE_BYTES:
                    self.request.sendall(bytes([byte]))
                    self.server.sent += 1
                    time.sleep(TRICKLE_PAUSE)
            elif self.server.mode == "silent":  # accepts, reads the request, never answers
                time.sleep(SILENCE)
            else:  # trickle
                self._head("200 OK", "Content-Type: application/json", "Content-Length: 1000000")
                for _ in range(TRICKLE_BYTES):
                    self.request.sendall(b" ")
                    self.server.sent += 1
                    time.sleep(TRICKLE_PAUSE)
        except OSError:
            self.server.broken = True

    def _head(self, status: str, *headers: str) -> None:
        """A response head; every connection serves one request (no keep-alive)."""
        lines = [f"HTTP/1.1 {status}", *headers, "Connection: close", "", ""]
        self.request.sendall("\r\n".join(lines).encode())


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.sent = 0
        self.broken = False


@contextmanager
def serving(mode: str) -> Iterator[_Server]:
    server = _Server(mode)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/mcp"


def _real(kind: tuple[str, str], server: _Server, how: str, **options: Any) -> None:
    """Through a real client on the loopback socket: a protected request, or authenticate()."""
    auth = make_auth(_url(server), **options)
    library_name, mode = kind
    library = importlib.import_module(library_name)
    if mode == "sync":
        with library.Client(timeout=5) as client:
            client.get(_url(server), auth=auth) if how == "request" else auth.authenticate(client)
        return

    async def main() -> None:
        async with library.AsyncClient(timeout=5) as client:
            await client.get(_url(server), auth=auth) if how == "request" else await auth.aauthenticate(client)

    anyio.run(main, backend=mode)


@pytest.mark.parametrize("how", ["request", "authenticate"])
def test_a_huge_body_is_cut_at_the_cap(kind: tuple[str, str], how: str) -> None:
    with serving("huge") as server:
        with pytest.raises(ResponseLimitError, match="larger than 262144 bytes") as caught:
            _real(kind, server, how, max_response_size=256 * 1024)
        assert isinstance(caught.value, TemporaryOAuthError)  # stored credentials are kept
        time.sleep(0.2)
        assert server.sent < 4 * 1024 * 1024  # the connection was closed before the server finished
    _assert_no_watchdog_left()


def test_a_declared_huge_body_is_not_read_at_all(kind: tuple[str, str]) -> None:
    with serving("declared") as server, pytest.raises(ResponseLimitError, match="larger than 1048576 bytes"):
        _real(kind, server, "request")


@pytest.mark.parametrize("how", ["request", "authenticate"])
def test_a_trickled_body_meets_the_overall_deadline(kind: tuple[str, str], how: str) -> None:
    with serving("trickle") as server:
        started = time.monotonic()
        with pytest.raises(ResponseLimitError, match=r"longer than 0\.5 s"):
            _real(kind, server, how, response_deadline=0.5)
        elapsed = time.monotonic() - started
        # Each read returns within the client's 5 s read timeout, so only the overall deadline stops it.
        assert elapsed < TRICKLE_BYTES * TRICKLE_PAUSE / 2
        time.sleep(0.3)
        assert server.broken or server.sent < TRICKLE_BYTES


@pytest.mark.parametrize("how", ["request", "authenticate"])
@pytest.mark.parametrize("mode", ["headers", "silent"])
def test_the_deadline_covers_the_wait_for_the_headers(kind: tuple[str, str], how: str, mode: str) -> None:
    """Point 4: the deadline runs from sending the request, not from the first byte of the body: trickled headers
    (every read answered within the client's 5 s read timeout) and a server that never answers both end the flow
    within it, the connection shut down."""
    with serving(mode) as server:
        started = time.monotonic()
        with pytest.raises(ResponseLimitError, match=r"longer than 0\.5 s") as caught:
            _real(kind, server, how, response_deadline=0.5)
        elapsed = time.monotonic() - started
        assert elapsed < 2.5  # the trickle takes 10 s, the silence 4 s, the read timeout 5 s
        assert caught.value.url is not None
        assert caught.value.url.endswith(("/prm", "/.well-known/oauth-protected-resource/mcp"))  # metadata
        if mode == "headers":
            time.sleep(0.3)
            assert server.broken or server.sent < TRICKLE_BYTES  # the client hung up
    _assert_no_watchdog_left()


def _assert_no_watchdog_left() -> None:
    """Every request's deadline timer was cancelled (or fired) once the flow ended."""
    waited = 0.0
    while any(isinstance(thread, threading.Timer) for thread in threading.enumerate()) and waited < 2:
        time.sleep(0.05)
        waited += 0.05
    assert not [thread for thread in threading.enumerate() if isinstance(thread, threading.Timer)]


def test_the_limits_are_validated() -> None:
    from mcp_oauth_auth import ConfigurationError

    with pytest.raises(ConfigurationError, match="max_response_size"):
        make_auth(max_response_size=0)
    with pytest.raises(ConfigurationError, match="response_deadline"):
        make_auth(response_deadline=0)


def test_a_small_socket_answer_is_read_as_usual() -> None:
    """The control: a normal-sized answer passes the same reading path (a closed port is a temporary failure)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(TemporaryOAuthError):
        make_auth(f"http://127.0.0.1:{port}/mcp").authenticate()
