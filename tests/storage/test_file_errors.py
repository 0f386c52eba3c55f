"""What the private-file helpers say and do when the file system refuses: each failure is a TokenStorageError that
names the path and what to do, the previous file is left as it was, and nothing half-written stays behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from mcp_oauth_auth.exceptions import TokenStorageError
from mcp_oauth_auth.storage import files
from mcp_oauth_auth.storage.files import (
    FileRecordLock,
    create_exclusive,
    default_home,
    ensure_private_dir,
    fsync_directory,
    read_optional,
    storage_error,
    sweep_temporaries,
    write_atomic,
)


def test_the_home_is_mcp_oauth_home_then_xdg_data_home_then_the_home_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MCP_OAUTH_HOME", "~/custom")
    assert default_home() == Path.home() / "custom"
    monkeypatch.delenv("MCP_OAUTH_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_home() == tmp_path / "mcp_oauth"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")  # the XDG spec says to ignore a relative path
    assert default_home() == Path.home() / ".mcp_oauth"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_home() == Path.home() / ".mcp_oauth"


@pytest.mark.parametrize(
    ("code", "remedy"),
    [
        (errno.EACCES, "check the ownership and permissions of /some/dir"),
        (errno.EPERM, "check the ownership and permissions of /some/dir"),
        (errno.ENOSPC, "free some disk space"),
        (errno.EROFS, "the file system is read-only; choose another directory (MCP_OAUTH_HOME)"),
        (errno.EIO, "the previous record, if any, is unchanged"),
    ],
)
def test_a_failed_file_operation_says_what_to_do(code: int, remedy: str) -> None:
    error = storage_error("write", Path("/some/dir/record.rec"), OSError(code, os.strerror(code)))
    assert isinstance(error, TokenStorageError)
    assert str(error).startswith(f"could not write /some/dir/record.rec: {os.strerror(code)}; ")
    assert remedy in str(error)


def test_an_error_without_a_reason_is_named_by_its_type() -> None:
    assert "could not read x: TimeoutError;" in str(storage_error("read", Path("x"), TimeoutError()))


def test_reading_a_missing_file_is_none_and_an_unreadable_one_an_error(tmp_path: Path) -> None:
    assert read_optional(tmp_path / "absent", "read the record") is None
    (tmp_path / "record").write_bytes(b"data")
    assert read_optional(tmp_path / "record", "read the record") == b"data"
    with pytest.raises(TokenStorageError, match=f"could not read the record {tmp_path}"):
        read_optional(tmp_path, "read the record")  # a directory


def test_a_directory_of_another_user_open_to_others_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    if os.getuid() == 0:
        os.chown(shared, 65534, 65534)  # nobody
    else:
        pytest.fail("this test changes a directory's owner, which needs root (CI runs as root)")
    with pytest.raises(TokenStorageError, match="readable by others and belongs to another user"):
        ensure_private_dir(shared)
    assert shared.stat().st_mode & 0o777 == 0o755  # left as it was


def test_a_directory_of_ours_open_to_others_is_narrowed(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    mine.chmod(0o755)
    assert ensure_private_dir(mine) == mine
    assert mine.stat().st_mode & 0o777 == 0o700


def test_a_directory_that_cannot_be_created_or_narrowed_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(TokenStorageError, match="could not create the directory"):
        ensure_private_dir(tmp_path / "file" / "sub")
    mine = tmp_path / "mine"
    mine.mkdir()
    mine.chmod(0o750)

    def refuse(self: Path, mode: int) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(Path, "chmod", refuse)
    with pytest.raises(TokenStorageError, match=r"could not restrict the permissions of .*check the ownership"):
        ensure_private_dir(mine)


def test_an_atomic_write_into_a_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(TokenStorageError, match="could not write"):
        write_atomic(tmp_path / "missing" / "record.rec", b"new")


def test_a_failed_atomic_replace_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "record.rec"
    target.write_bytes(b"old")

    def no_space(source: object, destination: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "replace", no_space)
    with pytest.raises(TokenStorageError, match="free some disk space"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["record.rec"]


def test_an_exclusive_create_loses_to_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "key"
    assert create_exclusive(target, b"first")
    assert not create_exclusive(target, b"second")
    assert target.read_bytes() == b"first"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["key"]


@pytest.mark.parametrize("code", [errno.EPERM, errno.EXDEV, errno.EMLINK])
def test_without_hard_links_an_exclusive_create_still_creates_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def no_links(source: object, destination: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "link", no_links)
    target = tmp_path / "key"
    assert create_exclusive(target, b"first")
    assert not create_exclusive(target, b"second")
    assert target.read_bytes() == b"first"
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(path.name for path in tmp_path.iterdir()) == ["key"]


def test_an_exclusive_create_that_fails_otherwise_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(source: object, destination: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(files.os, "link", broken)
    with pytest.raises(TokenStorageError, match=r"could not create .*Input/output error"):
        create_exclusive(tmp_path / "key", b"data")
    assert list(tmp_path.iterdir()) == []


def test_a_write_error_removes_the_partial_new_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(TokenStorageError, match="free some disk space"):
        create_exclusive(tmp_path / "key", b"data")
    assert list(tmp_path.iterdir()) == []


def test_sweeping_a_missing_directory_or_a_vanished_temporary_is_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_temporaries(tmp_path / "missing")
    stale = tmp_path / ".record.rec.0123.tmp"
    stale.write_bytes(b"x")
    os.utime(stale, (0, 0))

    def gone(self: Path) -> None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")

    monkeypatch.setattr(Path, "unlink", gone)
    sweep_temporaries(tmp_path)  # another process removed it first: no error


def test_syncing_a_directory_tolerates_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fsync_directory(tmp_path / "missing")

    def refuse(descriptor: int) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(files.os, "fsync", refuse)
    fsync_directory(tmp_path)


def test_a_lock_that_cannot_be_opened_is_reported_and_its_holder_unknown(tmp_path: Path) -> None:
    lock = FileRecordLock(tmp_path / "missing" / "record.lock")
    with pytest.raises(TokenStorageError, match="could not open the lock file"):
        lock.try_acquire()
    assert lock.holder() == "unknown"
    assert repr(lock) == f"FileRecordLock({str(tmp_path / 'missing' / 'record.lock')!r}, held=False)"


def test_a_lock_is_reentrant_in_one_process_and_notes_its_holder(tmp_path: Path) -> None:
    lock = FileRecordLock(tmp_path / "record.lock")
    assert lock.try_acquire()
    assert lock.try_acquire()
    assert lock.holder().startswith(f"pid {os.getpid()} on ")
    assert "held=True" in repr(lock)
    lock.release()
    lock.release()
    assert "held=False" in repr(lock)


def test_a_file_system_that_refuses_locks_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    def refuse(descriptor: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refuse)
    with pytest.raises(TokenStorageError, match="the file system refused a lock: No locks available"):
        FileRecordLock(tmp_path / "record.lock").try_acquire()
