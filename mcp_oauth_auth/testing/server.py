"""Serve ASGI apps (a :class:`FakeMCPStack`, or any app a test needs) on a real loopback port, uvicorn in a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

from mcp_oauth_auth.testing.fake import FakeMCPStack
from mcp_oauth_auth.testing.fake_config import FakeStackConfig

__all__ = ["reserve_loopback_port", "serve_asgi", "serve_stack"]

_HOST = "127.0.0.1"


def reserve_loopback_port() -> socket.socket:
    """A listening socket on ``127.0.0.1`` and a free port, for :func:`serve_asgi` to serve on.

    Binding first lets the caller build URLs that name the port before the app exists, with no window in which
    another process could take the port.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((_HOST, 0))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


@contextlib.contextmanager
def serve_asgi(
    app: Any,
    *,
    sock: socket.socket | None = None,
    lifespan: Literal["on", "off", "auto"] = "off",
    ws: Literal["none", "websockets", "wsproto", "auto"] = "none",
    name: str = "ASGI app",
    startup_timeout: float = 10.0,
    shutdown_timeout: float = 10.0,
) -> Iterator[str]:
    """Serve ``app`` on loopback for the duration of the ``with`` block; yields its origin, ``http://127.0.0.1:<port>``.

    ``sock`` is a socket from :func:`reserve_loopback_port` (one is reserved when omitted); it is closed on exit.
    ``lifespan`` and ``ws`` are uvicorn's settings (an app with startup work, such as the official MCP SDK's
    streamable HTTP app, needs ``lifespan="on"``; WebSocket apps need a ``ws`` implementation). ``name`` appears in
    the errors raised when the server does not start. The process's logging configuration is left alone. On exit the
    server is asked to stop gracefully, then forced, and its thread is joined.
    """
    import uvicorn

    sock = sock if sock is not None else reserve_loopback_port()
    try:
        port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_config=None,
                log_level="warning",
                access_log=False,
                interface="asgi3",
                lifespan=lifespan,
                ws=ws,
                timeout_graceful_shutdown=max(1, int(shutdown_timeout)),
            )
        )
        failures: list[BaseException] = []

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # reported to the waiting thread
                failures.append(exc)

        thread = threading.Thread(target=run, name=f"{name} on port {port}", daemon=True)
        thread.start()
        try:
            _wait_until_started(server, thread, failures, name, startup_timeout)
            yield f"http://{_HOST}:{port}"
        finally:
            server.should_exit = True
            thread.join(shutdown_timeout + 5)
            if thread.is_alive():
                server.force_exit = True
                thread.join(5)
    finally:
        sock.close()


@contextlib.contextmanager
def serve_stack(
    config: FakeStackConfig | None = None, *, startup_timeout: float = 10.0, shutdown_timeout: float = 10.0
) -> Iterator[FakeMCPStack]:
    """Serve a fresh stack at ``http://127.0.0.1:<free port>`` for the duration of the ``with`` block.

    The port is bound before the stack is built, so its URLs are right from the start and no other process can
    take the port in between. Resource and authorization server share that one origin: ``as_base_url`` must be
    unset. On exit the server stops and its thread is joined.
    """
    if config is not None and config.as_base_url is not None:
        raise ValueError("serve_stack serves a single origin: leave config.as_base_url unset")
    sock = reserve_loopback_port()
    try:
        stack = FakeMCPStack(config, base_url=f"http://{_HOST}:{sock.getsockname()[1]}")
    except BaseException:
        sock.close()
        raise
    with serve_asgi(
        stack.asgi_app,
        sock=sock,
        name="the fake MCP stack server",
        startup_timeout=startup_timeout,
        shutdown_timeout=shutdown_timeout,
    ):
        yield stack


def _wait_until_started(
    server: Any, thread: threading.Thread, failures: list[BaseException], name: str, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if failures:
            raise RuntimeError(f"{name} failed to start") from failures[0]
        if not thread.is_alive():
            raise RuntimeError(f"{name} stopped while starting")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not start within {timeout} s")
        time.sleep(0.01)
