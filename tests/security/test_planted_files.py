"""Point 8: the encrypted file store trusts its ``store.json`` and key file only when they are regular files of the
current user that others cannot write (nor, for the key, read): a planted or loosened file is refused with a
TokenStorageError saying what to do, and nothing is overwritten."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_oauth_auth import EncryptedFileTokenStore, TokenStorageError
from mcp_oauth_auth.records import RecordKey
from mcp_oauth_auth.storage import master_key

from ..storage.contract import ISSUER, RESOURCE, make_record

KEY = RecordKey(ISSUER, RESOURCE)


def forget_keys() -> None:
    with master_key._CACHE_LOCK:
        master_key._MASTER_KEYS.clear()
        master_key._KEY_LOCKS.clear()


@pytest.fixture(autouse=True)
def _new_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every store opened as a new process would: no master key cached, no OS keyring."""
    monkeypatch.setattr(master_key, "_os_keyring", lambda: (None, "the tests do not use the OS keyring"))
    forget_keys()
    yield
    forget_keys()


def _prepared(tmp_path: Path) -> Path:
    directory = tmp_path / "store"
    EncryptedFileTokenStore(directory, use_keyring=False).save(make_record())
    forget_keys()
    return directory


def _open(directory: Path) -> object:
    return EncryptedFileTokenStore(directory, use_keyring=False).load(KEY)


@pytest.mark.parametrize(
    ("name", "mode"), [("store.json", 0o666), ("store.json", 0o620), ("store.key", 0o644), ("store.key", 0o640)]
)
def test_a_loosened_file_is_not_trusted(tmp_path: Path, name: str, mode: int) -> None:
    directory = _prepared(tmp_path)
    target = directory / name
    before = target.read_bytes()
    target.chmod(mode)
    with pytest.raises(TokenStorageError, match=f"mode 0{mode:o}.*not trusted"):
        _open(directory)
    assert target.read_bytes() == before


def test_a_symbolic_link_is_not_trusted(tmp_path: Path) -> None:
    directory = _prepared(tmp_path)
    key = directory / "store.key"
    planted = tmp_path / "planted.key"
    planted.write_bytes(key.read_bytes())
    planted.chmod(0o600)
    key.unlink()
    key.symlink_to(planted)
    with pytest.raises(TokenStorageError, match="symbolic link"):
        _open(directory)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="changing a file's owner needs root")
def test_a_file_of_another_user_is_not_trusted(tmp_path: Path) -> None:
    directory = _prepared(tmp_path)
    os.chown(directory / "store.json", 65534, 65534)
    with pytest.raises(TokenStorageError, match="another user"):
        _open(directory)


def test_the_stores_own_files_are_trusted(tmp_path: Path) -> None:
    directory = _prepared(tmp_path)
    assert _open(directory) is not None
