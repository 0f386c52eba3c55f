"""Server processes the integration tests start (Node.js servers): waiting for their ready line, stopping them by
PID, and showing their logs when a test failed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def wait_for_ready_line(process: subprocess.Popen[bytes], log_path: Path, what: str) -> dict[str, Any]:
    """The JSON line with ``"event":"ready"`` that the server writes to its log once it listens."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith('{"') and '"event":"ready"' in line:
                ready: dict[str, Any] = json.loads(line)
                return ready
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} before it was ready")
        time.sleep(0.05)
    raise RuntimeError(f"{what} was not ready within {START_TIMEOUT:g} seconds")


def stop(process: subprocess.Popen[bytes]) -> None:
    """End the process by its PID: SIGTERM, then SIGKILL when it has not exited in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def show_logs(request: pytest.FixtureRequest, logs: Iterable[Path], what: str) -> None:
    """Write the logs to the terminal past pytest's capture (for a failed test)."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
        for path in logs:
            text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else "(no log)\n"
            sys.stderr.write(f"\n----- {what} log ({path}) -----\n{text}----- end of {path.name} -----\n")
        sys.stderr.flush()
