"""The private-file helpers: record locks across processes, directory permissions, stale temporaries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcp_oauth_auth.storage.files import FileRecordLock, ensure_private_dir, sweep_temporaries

HOLD_LOCK = """
import sys, time
from pathlib import Path
from mcp_oauth_auth.storage.files import FileRecordLock
lock = FileRecordLock(Path(sys.argv[1]))
assert lock.try_acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_lock_held_by_a_killed_process_is_free_again(tmp_path: Path) -> None:
    path = tmp_path / "record.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        waiting = FileRecordLock(path)
        assert not waiting.try_acquire()
        assert f"pid {holder.pid}" in waiting.holder()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 5
        while not waiting.try_acquire():  # the kernel released the dead process's lock
            assert time.monotonic() < deadline, "the lock of a killed process was never released"
            time.sleep(0.01)
        waiting.release()
    finally:
        holder.kill()
        holder.wait(10)


def test_missing_parents_are_created_private(tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        target = ensure_private_dir(tmp_path / "a" / "b" / "c")
    finally:
        os.umask(old_umask)
    for directory in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert directory.stat().st_mode & 0o777 == 0o700, directory


def test_a_file_in_the_way_is_reported(tmp_path: Path) -> None:
    from mcp_oauth_auth.exceptions import TokenStorageError

    (tmp_path / "taken").write_text("x")
    with pytest.raises(TokenStorageError, match="not a directory"):
        ensure_private_dir(tmp_path / "taken")


def test_only_old_temporaries_are_swept(tmp_path: Path) -> None:
    old = tmp_path / ".record.rec.0123abcd.tmp"
    fresh = tmp_path / ".record.rec.4567cdef.tmp"
    record = tmp_path / "record.rec"
    for path in (old, fresh, record):
        path.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    os.utime(record, (time.time() - 7200, time.time() - 7200))
    sweep_temporaries(tmp_path)
    assert not old.exists()
    assert fresh.exists()  # may belong to a writer at work right now
    assert record.exists()
