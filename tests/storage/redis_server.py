"""A real ``redis-server`` for tests: Debian's package, started on a free loopback port in a temporary directory.

:class:`RedisServer` starts one with the append-only file on (``appendfsync always``: a write acknowledged is on disk,
so a SIGKILL loses nothing) and no RDB snapshots, waits until it answers PING, and stops it by PID. It can be killed
(SIGKILL) and started again on the same port and directory, which is how the tests check that records survive a
restart. Its log is printed when a test using it fails (the fixture's ``log`` is in the temporary directory).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DEBIAN_PACKAGE = "redis-server"
START_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def require_redis_server() -> str:
    path = shutil.which("redis-server")
    if path is None:
        pytest.fail(
            "redis-server not found on PATH: the Redis store tests need it. On Debian/Ubuntu: "
            f"apt-get install --no-install-recommends {DEBIAN_PACKAGE} (nox -s tests installs it when run as root)",
            pytrace=False,
        )
    return path


class RedisServer:
    """One redis-server process of our own. ``url`` is its ``redis://127.0.0.1:<port>/0``."""

    def __init__(self, root: Path, *, appendonly: bool = True) -> None:
        self.binary = require_redis_server()
        self.root = root
        self.port = free_port()
        self.appendonly = appendonly
        self.log = root / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        arguments = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.root),
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.log),
        ]
        self.process = subprocess.Popen(arguments, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT} s:\n{self.log_text()}")
            time.sleep(0.02)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no shutdown, no final save."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def restart(self) -> None:
        self.kill()
        self.start()

    def _signal(self, number: int) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, number)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def running_redis(root: Path, *, appendonly: bool = True) -> Iterator[RedisServer]:
    server = RedisServer(root, appendonly=appendonly)
    server.start()
    try:
        yield server
    finally:
        server.stop()
