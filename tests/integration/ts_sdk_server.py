"""The authorization server the official MCP TypeScript SDK ships with, and an MCP server it protects, as a real
component on loopback: ``tests/integration/ts_sdk/server.mjs`` (Node.js; the SDK pinned in
``tests/integration/ts_sdk/package-lock.json``).

The server runs as a child process on 127.0.0.1 (a port the system picks); its log (one JSON line per request) goes
to a file in the test's temporary directory, which is printed when the test fails. The process is always ended by
its PID: SIGTERM, then SIGKILL if it has not exited after 10 seconds.

Fixture: ``ts_sdk_server_factory`` (a function starting it with :func:`run_ts_sdk_server`'s options). Import it
into a test module to use it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from .child_process import show_logs, stop, wait_for_ready_line
from .shipped.base import ServerState, ShippedServer

TS_SDK_DIR = Path(__file__).resolve().parent / "ts_sdk"
SERVER_SCRIPT = TS_SDK_DIR / "server.mjs"
INSTALL_HINT = "npm ci --prefix tests/integration/ts_sdk"
LOG_NAME = "ts-sdk-server.log"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node.js is needed for the MCP TypeScript SDK integration tests (tests/integration/ts_sdk): install "
            f"Node.js 20 or later, then run `{INSTALL_HINT}`",
            pytrace=False,
        )
    if not (TS_SDK_DIR / "node_modules" / "@modelcontextprotocol" / "sdk" / "package.json").is_file():
        pytest.fail(
            f"the MCP TypeScript SDK is not installed in {TS_SDK_DIR / 'node_modules'}: run `{INSTALL_HINT}`",
            pytrace=False,
        )
    return node


def _state(base: str) -> ServerState:
    response = httpx.get(f"{base}/_test/state", timeout=10)
    response.raise_for_status()
    document = response.json()
    return ServerState(
        registrations=int(document["registrations"]),
        authorizations=int(document["authorizations"]),
        token_grants=[str(grant) for grant in document["token_grants"]],
        revoked=[str(kind) for kind in document["revoked"]],
    )


def _revoke_grants(base: str) -> None:
    response = httpx.post(f"{base}/_test/revoke-grants", timeout=10)
    response.raise_for_status()


@contextmanager
def run_ts_sdk_server(
    workdir: Path, *, access_token_ttl: float = 300, stock_demo_errors: bool = False
) -> Iterator[ShippedServer]:
    """Start ``node server.mjs`` on 127.0.0.1 and stop it on exit.

    ``access_token_ttl``: the access tokens' lifetime in seconds. ``stock_demo_errors``: keep the SDK demo
    provider's plain errors for a bad code or a dead token (answered 500 ``server_error`` by the SDK's handlers)
    instead of ``invalid_grant`` / ``invalid_token`` (see ``tests/integration/ts_sdk/README.md``).
    """
    node = _node()
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "ts-sdk-server.json"
    config_path.write_text(
        json.dumps({"accessTokenTTL": access_token_ttl, "stockDemoErrors": stock_demo_errors}, indent=2),
        encoding="utf-8",
    )
    log_path = workdir / LOG_NAME
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [node, str(SERVER_SCRIPT), str(config_path)],
            cwd=TS_SDK_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = wait_for_ready_line(process, log_path, "the TypeScript SDK server")
        base = f"http://127.0.0.1:{int(ready['port'])}"
        yield ShippedServer(
            name="ts-sdk",
            url=str(ready["url"]),
            issuer=str(ready["issuer"]),
            access_token_ttl=access_token_ttl,
            supports_revocation=True,
            state=lambda: _state(base),
            revoke_grants=lambda: _revoke_grants(base),
        )
    finally:
        stop(process)


#: Starts the server with :func:`run_ts_sdk_server`'s keyword options.
ServerFactory = Callable[..., ShippedServer]


@pytest.fixture(name="ts_sdk_server_factory")
def ts_sdk_server_factory_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerFactory]:
    """Starts the TypeScript SDK server (``run_ts_sdk_server`` options); stops it after the test, and shows its log
    when the test failed (the log stays in the test's temporary directory)."""
    failed_before = request.session.testsfailed
    logs: list[Path] = []
    with ExitStack() as stack:

        def start(**options: Any) -> ShippedServer:
            workdir = tmp_path / f"ts-sdk-{len(logs)}"
            logs.append(workdir / LOG_NAME)
            return stack.enter_context(run_ts_sdk_server(workdir, **options))

        yield start
    if request.session.testsfailed > failed_before:
        show_logs(request, logs, "TypeScript SDK server")
