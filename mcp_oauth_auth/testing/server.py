"""Run a :class:`FakeMCPStack` as a real HTTP server on loopback (uvicorn in a background thread)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

from mcp_oauth_auth.testing.fake import FakeMCPStack
from mcp_oauth_auth.testing.fake_config import FakeStackConfig

__all__ = ["serve_stack"]

_HOST = "127.0.0.1"


@contextlib.contextmanager
def serve_stack(
    config: FakeStackConfig | None = None, *, startup_timeout: float = 10.0, shutdown_timeout: float = 10.0
) -> Iterator[FakeMCPStack]:
    """Serve a fresh stack at ``http://127.0.0.1:<free port>`` for the duration of the ``with`` block.

    The port is bound before the stack is built, so its URLs are right from the start and no other process can
    take the port in between. Resource and authorization server share that one origin: ``as_base_url`` must be
    unset. On exit the server stops and its thread is joined.
    """
    import uvicorn

    if config is not None and config.as_base_url is not None:
        raise ValueError("serve_stack serves a single origin: leave config.as_base_url unset")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((_HOST, 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        stack = FakeMCPStack(config, base_url=f"http://{_HOST}:{port}")
        server = uvicorn.Server(
            uvicorn.Config(
                stack.asgi_app,
                log_config=None,  # leave the process's logging configuration alone
                log_level="warning",
                access_log=False,
                interface="asgi3",
                lifespan="off",
                ws="none",
                timeout_graceful_shutdown=int(shutdown_timeout) or 1,
            )
        )
        failures: list[BaseException] = []

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # reported to the waiting thread
                failures.append(exc)

        thread = threading.Thread(target=run, name=f"fake-mcp-stack-{port}", daemon=True)
        thread.start()
        try:
            _wait_until_started(server, thread, failures, startup_timeout)
            yield stack
        finally:
            server.should_exit = True
            thread.join(shutdown_timeout + 5)
            if thread.is_alive():
                server.force_exit = True
                thread.join(5)
    finally:
        sock.close()


def _wait_until_started(
    server: object, thread: threading.Thread, failures: list[BaseException], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not getattr(server, "started", False):
        if failures:
            raise RuntimeError("the fake MCP stack server failed to start") from failures[0]
        if not thread.is_alive():
            raise RuntimeError("the fake MCP stack server stopped while starting")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the fake MCP stack server did not start within {timeout} s")
        time.sleep(0.01)
