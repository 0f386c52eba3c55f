"""Private files for the stores that keep state on this machine: where, with which permissions, written how.

* :func:`default_home` — ``$MCP_OAUTH_HOME``, else ``$XDG_DATA_HOME/mcp_oauth``, else ``~/.mcp_oauth``.
* :func:`ensure_private_dir` — a 0700 directory (an existing one with wider permissions is narrowed).
* :func:`write_atomic` — 0600 from creation (``O_CREAT|O_EXCL`` with mode 0600, no chmod-after window), written to
  a temporary file, fsynced, renamed over the target, directory fsynced: a crash leaves the old or the new content.
* :func:`create_exclusive` — a new 0600 file, created only if it does not exist yet: racing writers agree on one.
* :func:`read_optional` — a file's bytes, or None when it does not exist.
* :func:`read_trusted` — the same, for a file that must be ours and not writable (or readable) by others.
* :class:`FileRecordLock` — an OS advisory lock on a lock file (``flock`` on POSIX, ``msvcrt.locking`` on Windows):
  exclusive across processes and across lock objects of one process, released by the kernel when its holder dies.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import sys
import threading
import uuid
from pathlib import Path

from mcp_oauth_auth.exceptions import TokenStorageError

__all__ = [
    "FileRecordLock",
    "create_exclusive",
    "default_home",
    "ensure_private_dir",
    "fsync_directory",
    "read_optional",
    "read_trusted",
    "storage_error",
    "sweep_temporaries",
    "write_atomic",
]

_POSIX = os.name == "posix"
_NO_HARD_LINKS = frozenset(
    code
    for code in (
        errno.EPERM,
        errno.EXDEV,
        errno.EMLINK,
        getattr(errno, "ENOTSUP", None),
        getattr(errno, "EOPNOTSUPP", None),
        getattr(errno, "ENOSYS", None),
    )
    if code is not None
)


def default_home() -> Path:
    """The directory for this library's local state (records, keys, locks)."""
    explicit = os.environ.get("MCP_OAUTH_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg_data = os.environ.get("XDG_DATA_HOME")
    if xdg_data and Path(xdg_data).is_absolute():
        return Path(xdg_data) / "mcp_oauth"
    return Path.home() / ".mcp_oauth"


def storage_error(action: str, path: Path, exc: OSError) -> TokenStorageError:
    """A :class:`TokenStorageError` for a failed file operation, saying what to do about it."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.EACCES, errno.EPERM):
        remedy = f"check the ownership and permissions of {path.parent} (it should be yours, mode 0700)"
    elif exc.errno == errno.ENOSPC:
        remedy = "free some disk space; the previous record is unchanged"
    elif exc.errno == errno.EROFS:
        remedy = "the file system is read-only; choose another directory (MCP_OAUTH_HOME)"
    else:
        remedy = "the previous record, if any, is unchanged"
    return TokenStorageError(f"could not {action} {path}: {reason}; {remedy}")


def read_optional(path: Path, action: str) -> bytes | None:
    """The bytes of ``path``, or None when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise storage_error(action, path, exc) from None


def read_trusted(path: Path, action: str, *, secret: bool = False) -> bytes | None:
    """The bytes of ``path`` (None when it does not exist), once it is known to be a regular file of ours (not a
    symbolic link) that nobody else can write, nor read when it is a ``secret``: a file planted or loosened by
    someone else is refused, not trusted (:class:`TokenStorageError`)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise TokenStorageError(f"{path} is a symbolic link; not trusted: remove it") from None
        raise storage_error(action, path, exc) from None
    with os.fdopen(descriptor, "rb") as file:
        info = os.fstat(file.fileno())
        loose = 0o077 if secret else 0o022
        problem = None
        if not stat.S_ISREG(info.st_mode):
            problem = "is not a regular file"
        elif _POSIX and info.st_uid != os.getuid():
            problem = "belongs to another user"
        elif _POSIX and info.st_mode & loose:
            problem = (
                f"has mode {stat.S_IMODE(info.st_mode):04o} ({'readable or ' if secret else ''}writable by others)"
            )
        if problem is not None:
            raise TokenStorageError(
                f"{path} {problem}; not trusted: if it is yours, restore its mode (chmod 600), else remove it"
            )
        try:
            return file.read()
        except OSError as exc:
            raise storage_error(action, path, exc) from None


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and any missing parents) as 0700, or narrow an existing directory of ours to 0700."""
    try:
        missing = [directory for directory in (path, *path.parents) if not directory.exists()]
        for directory in reversed(missing):
            directory.mkdir(mode=0o700, exist_ok=True)
        info = path.stat()
    except OSError as exc:
        raise storage_error("create the directory", path, exc) from None
    if not stat.S_ISDIR(info.st_mode):
        raise TokenStorageError(f"{path} exists and is not a directory; choose another location (MCP_OAUTH_HOME)")
    if _POSIX and info.st_mode & 0o077:
        if info.st_uid != os.getuid():
            raise TokenStorageError(
                f"{path} is readable by others and belongs to another user; choose a directory of your own"
            )
        try:
            path.chmod(0o700)
        except OSError as exc:
            raise storage_error("restrict the permissions of", path, exc) from None
    return path


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash at any instant leaves either the old or the new file."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(temporary, flags, 0o600)
    except OSError as exc:
        raise storage_error("write", path, exc) from None
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(descriptor, view)
                view = view[written:]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise storage_error("write", path, exc) from None
    fsync_directory(path.parent)


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` (0600) holding ``data`` unless it exists; False when another writer created it first.

    The data goes to a temporary file that is fsynced, then hard-linked to ``path``: the link fails if ``path``
    exists, so racing processes agree on one file, and nobody ever sees it incomplete. File systems without hard
    links get an ``O_EXCL`` create instead (the caller's lock must keep its readers away from a partial file, as the
    encrypted file store's initialisation lock does).
    """
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        try:
            _write_new(temporary, data)
            os.link(temporary, path)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            try:
                _write_new(path, data)
            except FileExistsError:
                return False
    except OSError as exc:
        raise storage_error("create", path, exc) from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
    fsync_directory(path.parent)
    return True


def _write_new(path: Path, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def sweep_temporaries(directory: Path, older_than: float = 3600.0) -> None:
    """Remove temporary files that a crashed writer left behind (``.<name>.<hex>.tmp``), once they are old."""
    import time

    cutoff = time.time() - older_than
    try:
        candidates = list(directory.glob(".*.tmp"))
    except OSError:
        return
    for candidate in candidates:
        try:
            if candidate.lstat().st_mtime < cutoff:
                candidate.unlink()
        except OSError:
            continue  # another process removed it, or it is not ours to remove: leave it


def fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); Windows has no directory handles to sync."""
    if not _POSIX:
        return
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems refuse fsync on directories; the rename itself is still atomic
    finally:
        os.close(descriptor)


class FileRecordLock:
    """A non-blocking exclusive lock on ``path`` (created 0600, never deleted: deleting lock files races)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._descriptor: int | None = None
        self._mutex = threading.Lock()

    def try_acquire(self) -> bool:
        with self._mutex:
            if self._descriptor is not None:
                return True
            try:
                descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
            except OSError as exc:
                raise storage_error("open the lock file", self.path, exc) from None
            if not _lock_descriptor(descriptor):
                os.close(descriptor)
                return False
            _write_holder(descriptor)
            self._descriptor = descriptor
            return True

    def release(self) -> None:
        with self._mutex:
            descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            _unlock_descriptor(descriptor)
            os.close(descriptor)

    def holder(self) -> str:
        """Who holds the lock, as written by the holder (for error messages)."""
        try:
            return self.path.read_text(encoding="utf-8").strip() or "unknown"
        except OSError:
            return "unknown"

    def __repr__(self) -> str:
        return f"FileRecordLock({str(self.path)!r}, held={self._descriptor is not None})"


def _write_holder(descriptor: int) -> None:
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    except OSError:
        pass  # the note is for diagnostics only


if sys.platform == "win32":
    import msvcrt

    def _lock_descriptor(descriptor: int) -> bool:
        try:
            os.lseek(descriptor, 0, os.SEEK_SET)
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock_descriptor(descriptor: int) -> None:
        try:
            os.lseek(descriptor, 0, os.SEEK_SET)
            msvcrt.locking(descriptor, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass

else:
    import fcntl

    def _lock_descriptor(descriptor: int) -> bool:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as exc:
            raise TokenStorageError(f"the file system refused a lock: {exc.strerror}") from None
        return True

    def _unlock_descriptor(descriptor: int) -> None:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
