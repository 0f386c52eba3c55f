from __future__ import annotations

import base64
import contextlib
import errno
import json
import logging
import os
import random
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_oauth_auth.exceptions import TokenStorageError
from mcp_oauth_auth.records import RecordKey
from mcp_oauth_auth.storage import encrypted_file, master_key
from mcp_oauth_auth.storage.codec import record_id
from mcp_oauth_auth.storage.encrypted_file import EncryptedFileTokenStore
from tests.storage import crash_writer
from tests.storage.contract import ISSUER, RESOURCE, MakeStore, StoreContract, make_record

PASSWORD = "correct horse battery staple"
KEY = RecordKey(ISSUER, RESOURCE)
OTHER_RESOURCE = "https://mcp.example.com/other"
CRASH_WRITER = Path(crash_writer.__file__).resolve()
TEST_SCRYPT_N = crash_writer.TEST_SCRYPT_N


class FakeKeyring:
    """An in-memory stand-in for the OS keyring."""

    def __init__(self) -> None:
        self.entries: dict[str, str] = {}

    def get(self, account: str) -> str | None:
        return self.entries.get(account)

    def set(self, account: str, secret: str) -> None:
        self.entries[account] = secret


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Cheap scrypt, no cached keys from other tests, no password from the environment, never the real keyring."""
    monkeypatch.setattr(master_key, "_SCRYPT_N", TEST_SCRYPT_N)
    monkeypatch.delenv(encrypted_file.PASSWORD_ENV, raising=False)
    monkeypatch.setattr(master_key, "_os_keyring", lambda: (None, "the tests do not use the OS keyring"))
    forget_keys()
    yield
    forget_keys()


def forget_keys() -> None:
    """What a new process starts with: no master key in memory."""
    with master_key._CACHE_LOCK:
        master_key._MASTER_KEYS.clear()
        master_key._KEY_LOCKS.clear()


@pytest.fixture
def fake_keyring(monkeypatch: pytest.MonkeyPatch) -> FakeKeyring:
    keyring = FakeKeyring()
    monkeypatch.setattr(master_key, "_os_keyring", lambda: (keyring, ""))
    return keyring


def password_store(directory: Path, password: str | None = PASSWORD) -> EncryptedFileTokenStore:
    return EncryptedFileTokenStore(directory, password, use_keyring=False)


def key_file_store(directory: Path, **options: Any) -> EncryptedFileTokenStore:
    return EncryptedFileTokenStore(directory, use_keyring=False, **options)


def record_path(directory: Path, key: RecordKey = KEY) -> Path:
    return directory / "records" / f"{record_id(key)}.rec"


def store_json(directory: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((directory / "store.json").read_bytes())
    return document


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file's bytes, except the lock files (their holder notes change)."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and "locks" not in path.relative_to(directory).parts
    }


# -- the contract ----------------------------------------------------------------------------------------------------


class TestEncryptedFileStoreContract(StoreContract):
    """Password-protected (scrypt with a low test cost)."""

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> MakeStore:
        return lambda: password_store(tmp_path / "store")


class TestEncryptedFileStoreKeyFileContract(StoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> MakeStore:
        return lambda: key_file_store(tmp_path / "store")


class TestEncryptedFileStoreKeyringContract(StoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path, fake_keyring: FakeKeyring) -> MakeStore:
        return lambda: EncryptedFileTokenStore(tmp_path / "store")


# -- construction, layout, repr --------------------------------------------------------------------------------------


def test_nothing_touches_the_disk_before_a_save(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    store = password_store(directory)
    assert store.load(KEY) is None
    assert store.list_keys() == []
    store.delete(KEY)
    assert not directory.exists()


def test_layout(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    store = password_store(directory)
    record = make_record()
    store.save(record)
    assert record_path(directory).is_file()
    envelope = json.loads(record_path(directory).read_bytes())
    assert set(envelope) == {"format", "issuer", "resource", "salt", "nonce", "ciphertext"}
    assert envelope["format"] == 1
    assert (envelope["issuer"], envelope["resource"]) == (ISSUER, RESOURCE)
    assert len(base64.b64decode(envelope["salt"])) == 32
    assert len(base64.b64decode(envelope["nonce"])) == 12
    info = store_json(directory)
    assert info["key_source"] == "password"
    assert info["kdf"]["name"] == "scrypt"
    assert (info["kdf"]["n"], info["kdf"]["r"], info["kdf"]["p"]) == (TEST_SCRYPT_N, 8, 3)
    assert len(base64.b64decode(info["kdf"]["salt"])) == 32
    # a fresh salt and nonce for every write
    store.save(record)
    again = json.loads(record_path(directory).read_bytes())
    assert again["salt"] != envelope["salt"]
    assert again["nonce"] != envelope["nonce"]
    assert again["ciphertext"] != envelope["ciphertext"]


def test_default_directory_and_password_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_OAUTH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MCP_OAUTH_PASSWORD", PASSWORD)
    store = EncryptedFileTokenStore(use_keyring=False)
    assert store.directory == tmp_path / "home"
    store.save(make_record())
    assert record_path(tmp_path / "home").is_file()
    assert store_json(tmp_path / "home")["key_source"] == "password"
    forget_keys()
    assert password_store(tmp_path / "home").load(KEY) == make_record()


def test_production_scrypt_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real cost, once: OpenSSL must accept it
    assert (master_key._SCRYPT_N, master_key._SCRYPT_R, master_key._SCRYPT_P) == (2**15, 8, 3)
    monkeypatch.setattr(master_key, "_os_keyring", lambda: (None, "not in tests"))
    password_store(tmp_path).save(make_record())
    kdf = store_json(tmp_path)["kdf"]
    assert (kdf["n"], kdf["r"], kdf["p"]) == (2**15, 8, 3)
    assert password_store(tmp_path).load(KEY) == make_record()


def test_repr_names_the_key_source_never_the_secret(tmp_path: Path) -> None:
    store = password_store(tmp_path / "p")
    assert repr(store) == f"EncryptedFileTokenStore({str(tmp_path / 'p')!r}, key=password)"
    store.save(make_record())
    assert PASSWORD not in repr(store)
    key_store = key_file_store(tmp_path / "k")
    key_store.save(make_record())
    assert repr(key_store) == f"EncryptedFileTokenStore({str(tmp_path / 'k')!r}, key=key-file)"
    key = (tmp_path / "k" / "store.key").read_text().strip()
    assert key not in repr(key_store)


def test_empty_password_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TokenStorageError, match="empty"):
        EncryptedFileTokenStore(tmp_path, "")


def test_module_import_does_not_load_cryptography() -> None:
    code = "import sys, mcp_oauth_auth.storage.encrypted_file; print('cryptography' in sys.modules)"
    root = str(Path(__file__).resolve().parents[2])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert result.stdout.strip() == "False"


# -- the master key --------------------------------------------------------------------------------------------------


def count_derivations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    derive = master_key._derive_password_key

    def counting(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        calls.append(n)
        return derive(password, salt, n, r, p)

    monkeypatch.setattr(master_key, "_derive_password_key", counting)
    return calls


def test_the_password_key_is_derived_once_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_derivations(monkeypatch)
    writer = password_store(tmp_path)
    records = [make_record(resource=f"https://mcp.example.com/{n}", access_token=f"token-{n}") for n in range(20)]
    for record in records:
        writer.save(record)
    reader = password_store(tmp_path)
    for record in records:
        assert reader.load(record.key) == record
    assert len(password_store(tmp_path).list_keys()) == 20
    assert calls == [TEST_SCRYPT_N]
    forget_keys()  # a new process pays again, once
    for _ in range(2):
        reopened = password_store(tmp_path)
        for record in records:
            assert reopened.load(record.key) == record
    assert len(calls) == 2


def test_wrong_password(tmp_path: Path) -> None:
    password_store(tmp_path).save(make_record())
    before = snapshot(tmp_path)
    # Same process, the right key is cached: a wrong password must still fail.
    wrong = password_store(tmp_path, "Tr0ub4dor&3")
    with pytest.raises(TokenStorageError, match="wrong password") as caught:
        wrong.load(KEY)
    assert str(tmp_path) in str(caught.value)
    assert "Tr0ub4dor&3" not in str(caught.value)
    with pytest.raises(TokenStorageError, match="wrong password"):
        wrong.save(make_record(access_token="overwritten"))
    forget_keys()
    with pytest.raises(TokenStorageError, match="wrong password"):
        password_store(tmp_path, "Tr0ub4dor&3").load(KEY)
    assert wrong.list_keys() == [KEY]  # listing needs no key
    assert snapshot(tmp_path) == before
    assert password_store(tmp_path).load(KEY) == make_record()


def test_password_store_without_a_password(tmp_path: Path) -> None:
    password_store(tmp_path).save(make_record())
    forget_keys()
    before = snapshot(tmp_path)
    store = EncryptedFileTokenStore(tmp_path)
    with pytest.raises(TokenStorageError, match="protected by a password") as caught:
        store.load(KEY)
    assert "MCP_OAUTH_PASSWORD" in str(caught.value)
    assert "password=" in str(caught.value)
    with pytest.raises(TokenStorageError, match="protected by a password"):
        store.save(make_record())
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "store.key").exists()


def test_key_file_store_with_a_password(tmp_path: Path) -> None:
    key_file_store(tmp_path).save(make_record())
    before = snapshot(tmp_path)
    with pytest.raises(TokenStorageError, match="not protected by a password") as caught:
        password_store(tmp_path).load(KEY)
    assert "MCP_OAUTH_PASSWORD" in str(caught.value)
    assert snapshot(tmp_path) == before


def test_key_file_is_never_replaced_silently(tmp_path: Path) -> None:
    key_file_store(tmp_path).save(make_record())
    (tmp_path / "store.key").unlink()
    forget_keys()
    before = snapshot(tmp_path)
    with pytest.raises(TokenStorageError, match="missing") as caught:
        key_file_store(tmp_path).load(KEY)
    assert str(tmp_path / "store.key") in str(caught.value)
    with pytest.raises(TokenStorageError, match="missing"):
        key_file_store(tmp_path).save(make_record(access_token="new"))
    assert not (tmp_path / "store.key").exists()
    assert snapshot(tmp_path) == before


def test_replaced_key_file(tmp_path: Path) -> None:
    key_file_store(tmp_path).save(make_record())
    (tmp_path / "store.key").write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    forget_keys()
    with pytest.raises(TokenStorageError, match="does not open the credential store"):
        key_file_store(tmp_path).load(KEY)
    (tmp_path / "store.key").write_text("not a key\n")
    forget_keys()
    with pytest.raises(TokenStorageError, match=r"key file .* is damaged"):
        key_file_store(tmp_path).load(KEY)


def test_key_file_elsewhere(tmp_path: Path) -> None:
    key_file = tmp_path / "secrets" / "mcp.key"
    store = key_file_store(tmp_path / "store", key_file=key_file)
    store.save(make_record())
    assert key_file.is_file()
    assert not (tmp_path / "store" / "store.key").exists()
    forget_keys()
    assert key_file_store(tmp_path / "store", key_file=key_file).load(KEY) == make_record()
    forget_keys()
    with pytest.raises(TokenStorageError, match="missing") as caught:
        key_file_store(tmp_path / "store").load(KEY)
    assert str(key_file) in str(caught.value)  # the hint from store.json


def test_records_without_store_json(tmp_path: Path) -> None:
    key_file_store(tmp_path).save(make_record())
    (tmp_path / "store.json").unlink()
    forget_keys()
    before = snapshot(tmp_path)
    for store in (key_file_store(tmp_path), password_store(tmp_path)):
        with pytest.raises(TokenStorageError, match=r"no store\.json"):
            store.save(make_record(access_token="new"))
        with pytest.raises(TokenStorageError, match=r"no store\.json"):
            store.load(KEY)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "damaged"),
        (b'{"format": 1, "key_source": "magic"}', "damaged"),
        (json.dumps({"format": 7, "key_source": "password"}).encode(), "upgrade"),
    ],
)
def test_damaged_or_newer_store_json(tmp_path: Path, content: bytes, message: str) -> None:
    password_store(tmp_path).save(make_record())
    (tmp_path / "store.json").write_bytes(content)
    forget_keys()
    with pytest.raises(TokenStorageError, match=message):
        password_store(tmp_path).load(KEY)
    assert (tmp_path / "store.json").read_bytes() == content


def test_invalid_scrypt_parameters_are_refused(tmp_path: Path) -> None:
    password_store(tmp_path).save(make_record())
    info = store_json(tmp_path)
    info["kdf"]["n"] = 2**40  # would need terabytes
    (tmp_path / "store.json").write_text(json.dumps(info))
    forget_keys()
    with pytest.raises(TokenStorageError, match="invalid scrypt parameters"):
        password_store(tmp_path).load(KEY)


# -- the keyring key source (in-memory stand-in) ---------------------------------------------------------------------


def test_keyring_key_source(tmp_path: Path, fake_keyring: FakeKeyring) -> None:
    store = EncryptedFileTokenStore(tmp_path)
    store.save(make_record())
    assert repr(store).endswith("key=keyring)")
    assert store_json(tmp_path)["key_source"] == "keyring"
    assert not (tmp_path / "store.key").exists()
    account = f"file-store-key:{tmp_path.resolve()}"
    assert list(fake_keyring.entries) == [account]
    assert len(base64.b64decode(fake_keyring.entries[account])) == 32
    forget_keys()
    assert EncryptedFileTokenStore(tmp_path).load(KEY) == make_record()


def test_key_missing_from_keyring(tmp_path: Path, fake_keyring: FakeKeyring) -> None:
    EncryptedFileTokenStore(tmp_path).save(make_record())
    fake_keyring.entries.clear()
    forget_keys()
    before = snapshot(tmp_path)
    store = EncryptedFileTokenStore(tmp_path)
    with pytest.raises(TokenStorageError, match="keyring") as caught:
        store.load(KEY)
    assert "no such entry" in str(caught.value)
    assert "no new key" in str(caught.value)
    with pytest.raises(TokenStorageError, match="keyring"):
        store.save(make_record(access_token="new"))
    assert fake_keyring.entries == {}
    assert not (tmp_path / "store.key").exists()
    assert snapshot(tmp_path) == before


def test_keyring_unusable_later(tmp_path: Path, fake_keyring: FakeKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    EncryptedFileTokenStore(tmp_path).save(make_record())
    forget_keys()
    monkeypatch.setattr(master_key, "_os_keyring", lambda: (None, "no D-Bus session"))
    with pytest.raises(TokenStorageError, match="no D-Bus session"):
        EncryptedFileTokenStore(tmp_path).load(KEY)
    with pytest.raises(TokenStorageError, match="use_keyring=False"):
        EncryptedFileTokenStore(tmp_path, use_keyring=False).load(KEY)
    with pytest.raises(TokenStorageError, match="not protected by a password"):
        password_store(tmp_path).load(KEY)
    assert not (tmp_path / "store.key").exists()


def test_replaced_keyring_key(tmp_path: Path, fake_keyring: FakeKeyring) -> None:
    EncryptedFileTokenStore(tmp_path).save(make_record())
    (account,) = fake_keyring.entries
    fake_keyring.entries[account] = base64.b64encode(os.urandom(32)).decode()
    forget_keys()
    with pytest.raises(TokenStorageError, match="not the one this store was set up with"):
        EncryptedFileTokenStore(tmp_path).load(KEY)


def test_keyring_failure_while_setting_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class BrokenKeyring(FakeKeyring):
        def set(self, account: str, secret: str) -> None:
            raise RuntimeError(f"backend exploded with {secret}")

    monkeypatch.setattr(master_key, "_os_keyring", lambda: (BrokenKeyring(), ""))
    with pytest.raises(TokenStorageError, match="RuntimeError") as caught:
        EncryptedFileTokenStore(tmp_path).save(make_record())
    assert "exploded" not in str(caught.value)  # the exception text could hold the secret
    assert not (tmp_path / "store.json").exists()


def test_without_a_usable_keyring_the_key_goes_to_a_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    EncryptedFileTokenStore(tmp_path).save(make_record())  # the autouse fixture makes the keyring unusable
    assert store_json(tmp_path)["key_source"] == "key-file"
    assert (tmp_path / "store.key").is_file()
    keyring = FakeKeyring()
    monkeypatch.setattr(master_key, "_os_keyring", lambda: (keyring, ""))
    forget_keys()
    assert EncryptedFileTokenStore(tmp_path).load(KEY) == make_record()  # the recorded source wins
    assert keyring.entries == {}


def test_keyring_probe_of_the_keyring_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real _os_keyring; it only probes here, never reads or writes a key
    import importlib

    class Status:
        usable = False
        reason = "no backend in this test"

    class Module:
        @staticmethod
        def probe_keyring() -> Status:
            return Status()

    real_import = importlib.import_module

    def fake_import(name: str, package: str | None = None) -> Any:
        if name == "mcp_oauth_auth.storage.keyring_store":
            return Module
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    # (a session bus address: else, on Linux, the keyring is known out of reach without asking the probe)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    assert master_key._os_keyring() == (None, "no backend in this test")
    Status.usable = True
    slot, _ = master_key._os_keyring()
    assert isinstance(slot, master_key._SystemKeyring)

    def missing(name: str, package: str | None = None) -> Any:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(importlib, "import_module", missing)
    slot, reason = master_key._os_keyring()
    assert slot is None
    assert "not installed" in reason


def test_no_session_bus_means_no_keyring_without_asking_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real _os_keyring
    import importlib

    asked: list[str] = []
    real_import = importlib.import_module

    def watched(name: str, package: str | None = None) -> Any:
        asked.append(name)
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", watched)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent/config")
    slot, reason = master_key._os_keyring()
    assert slot is None
    assert "no D-Bus session bus" in reason
    assert "mcp_oauth_auth.storage.keyring_store" not in asked


# -- damaged records ---------------------------------------------------------------------------------------------


def _rewrite(path: Path, **changes: Any) -> None:
    document = json.loads(path.read_bytes())
    document.update(changes)
    path.write_bytes(json.dumps(document).encode())


def flip_ciphertext_bit(path: Path, other: Path) -> None:
    ciphertext = bytearray(base64.b64decode(json.loads(path.read_bytes())["ciphertext"]))
    ciphertext[len(ciphertext) // 3] ^= 0x01
    _rewrite(path, ciphertext=base64.b64encode(bytes(ciphertext)).decode())


def flip_tag_bit(path: Path, other: Path) -> None:
    ciphertext = bytearray(base64.b64decode(json.loads(path.read_bytes())["ciphertext"]))
    ciphertext[-1] ^= 0x80
    _rewrite(path, ciphertext=base64.b64encode(bytes(ciphertext)).decode())


def truncate(path: Path, other: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garbage(path: Path, other: Path) -> None:
    path.write_bytes(b"\x00\xff\x80 this is not a credential record " * 8)


def empty(path: Path, other: Path) -> None:
    path.write_bytes(b"")


def swap_salt(path: Path, other: Path) -> None:
    _rewrite(path, salt=json.loads(other.read_bytes())["salt"])


def newer_format(path: Path, other: Path) -> None:
    _rewrite(path, format=2)


def renamed_from_other(path: Path, other: Path) -> None:
    """Another record's file under this record's name."""
    path.write_bytes(other.read_bytes())


def other_relabelled(path: Path, other: Path) -> None:
    """Another record's file under this record's name, with the clear issuer/resource edited to match: AAD fails."""
    path.write_bytes(other.read_bytes())
    _rewrite(path, issuer=ISSUER, resource=RESOURCE)


DAMAGES: list[Callable[[Path, Path], None]] = [
    flip_ciphertext_bit,
    flip_tag_bit,
    truncate,
    garbage,
    empty,
    swap_salt,
    newer_format,
    renamed_from_other,
    other_relabelled,
]


@pytest.fixture(params=["password", "key-file"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], EncryptedFileTokenStore]:
    if request.param == "password":
        return lambda: password_store(tmp_path)
    return lambda: key_file_store(tmp_path)


def damaged_store(
    tmp_path: Path, make: Callable[[], EncryptedFileTokenStore], damage: Callable[[Path, Path], None]
) -> Path:
    store = make()
    store.save(make_record())
    store.save(make_record(resource=OTHER_RESOURCE, access_token="other-token"))
    path = record_path(tmp_path)
    damage(path, record_path(tmp_path, RecordKey(ISSUER, OTHER_RESOURCE)))
    forget_keys()
    return path


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda damage: damage.__name__)
def test_damaged_record_is_reported_and_left_alone(
    tmp_path: Path, make: Callable[[], EncryptedFileTokenStore], damage: Callable[[Path, Path], None]
) -> None:
    path = damaged_store(tmp_path, make, damage)
    damaged = path.read_bytes()
    store = make()
    with pytest.raises(TokenStorageError) as caught:
        store.load(KEY)
    message = str(caught.value)
    assert str(path) in message
    if damage is newer_format:
        assert "upgrade" in message
    else:
        assert "remove it" in message
    assert path.read_bytes() == damaged
    other = RecordKey(ISSUER, OTHER_RESOURCE)
    assert other in store.list_keys()
    assert store.load(other) == make_record(resource=OTHER_RESOURCE, access_token="other-token")
    assert path.read_bytes() == damaged


@pytest.mark.parametrize("damage", [d for d in DAMAGES if d is not newer_format], ids=lambda damage: damage.__name__)
def test_save_over_a_damaged_record_keeps_a_copy(
    tmp_path: Path,
    make: Callable[[], EncryptedFileTokenStore],
    damage: Callable[[Path, Path], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = damaged_store(tmp_path, make, damage)
    damaged = path.read_bytes()
    store = make()
    caplog.set_level(logging.WARNING, logger="mcp_oauth_auth")
    store.save(make_record(access_token="fresh"))
    (copy,) = path.parent.glob(f"{path.name}.corrupt-*")
    assert copy.read_bytes() == damaged
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert any(str(copy) in record.getMessage() for record in caplog.records)
    assert store.load(KEY) == make_record(access_token="fresh")
    assert sorted(store.list_keys(), key=str) == sorted([KEY, RecordKey(ISSUER, OTHER_RESOURCE)], key=str)
    store.save(make_record(access_token="fresher"))  # a readable record is simply replaced
    assert len(list(path.parent.glob(f"{path.name}.corrupt-*"))) == 1


def test_save_never_overwrites_a_newer_format(tmp_path: Path, make: Callable[[], EncryptedFileTokenStore]) -> None:
    path = damaged_store(tmp_path, make, newer_format)
    newer = path.read_bytes()
    with pytest.raises(TokenStorageError, match="upgrade") as caught:
        make().save(make_record(access_token="older"))
    assert str(path) in str(caught.value)
    assert path.read_bytes() == newer
    assert list(path.parent.glob("*.corrupt-*")) == []


def test_newer_record_format_inside_the_envelope(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = password_store(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(encrypted_file, "encode_record", lambda record: json.dumps({"format": 9, "new": 1}).encode())
        store.save(make_record())
    newer = record_path(tmp_path).read_bytes()
    with pytest.raises(TokenStorageError, match="upgrade"):
        store.load(KEY)
    with pytest.raises(TokenStorageError, match="Refusing to overwrite"):
        store.save(make_record())
    assert record_path(tmp_path).read_bytes() == newer


def test_list_keys_skips_what_it_cannot_parse(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = key_file_store(tmp_path)
    store.save(make_record())
    other = RecordKey(ISSUER, OTHER_RESOURCE)
    store.save(make_record(resource=OTHER_RESOURCE))
    records = tmp_path / "records"
    garbage_path = records / f"{record_id(RecordKey(ISSUER, 'https://mcp.example.com/garbage'))}.rec"
    garbage_path.write_bytes(b"\x00garbage")
    renamed = records / f"{record_id(RecordKey(ISSUER, 'https://mcp.example.com/renamed'))}.rec"
    renamed.write_bytes(record_path(tmp_path).read_bytes())
    (records / f".{record_path(tmp_path).name}.0123.tmp").write_bytes(b"{partial")
    (records / f"{record_path(tmp_path).name}.corrupt-1700000000").write_bytes(b"old")
    (records / "notes.txt").write_text("not a record")
    caplog.set_level(logging.WARNING, logger="mcp_oauth_auth")
    caplog.clear()
    assert sorted(store.list_keys(), key=str) == sorted([KEY, other], key=str)
    warned = "\n".join(record.getMessage() for record in caplog.records)
    assert str(garbage_path) in warned
    assert str(renamed) in warned
    assert len(caplog.records) == 2


def test_list_keys_quietly_ignores_temporary_files_and_kept_copies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = key_file_store(tmp_path)
    store.save(make_record())
    path = record_path(tmp_path)
    path.with_name(f".{path.name}.0123abcd.tmp").write_bytes(path.read_bytes()[:10])
    path.with_name(f"{path.name}.corrupt-1700000000").write_bytes(b"\x00damaged")
    path.with_name(f"{path.name}.corrupt-1700000001").write_bytes(path.read_bytes())
    caplog.set_level(logging.WARNING, logger="mcp_oauth_auth")
    caplog.clear()
    assert store.list_keys() == [KEY]
    assert caplog.records == []


# -- permissions and plaintext ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize("kind", ["password", "key-file", "keyring"])
def test_private_permissions_even_with_umask_0(tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "store"
    if kind == "keyring":
        keyring = FakeKeyring()
        monkeypatch.setattr(master_key, "_os_keyring", lambda: (keyring, ""))
    with umask(0):
        store = password_store(directory) if kind == "password" else EncryptedFileTokenStore(directory)
        store.save(make_record())
        store.save(make_record())
        store.save(make_record(resource=OTHER_RESOURCE))
        lock = store.lock(KEY)
        assert lock.try_acquire()
        lock.release()
        record_path(directory).write_bytes(b"damaged")
        store.save(make_record())  # keeps a .corrupt copy
    files = [path for path in directory.rglob("*") if path.is_file()]
    names = {path.name for path in files}
    assert {"store.json", f"{record_id(KEY)}.rec", f"{record_id(KEY)}.lock", "store.lock"} <= names
    assert any(".corrupt-" in name for name in names)
    assert ("store.key" in names) == (kind == "key-file")
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in [directory, *(path for path in directory.rglob("*") if path.is_dir())]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_existing_open_directories_are_narrowed(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    (directory / "records").mkdir(parents=True)
    directory.chmod(0o755)
    (directory / "records").chmod(0o755)
    key_file_store(directory).save(make_record())
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "records").stat().st_mode) == 0o700


SECRETS = [
    "ACCESS-c0ffee-7f3a9",
    "REFRESH-deadbeef-41d2",
    "IDTOKEN-feedface-99aa",
    "client-secret-VALUE",
    "registration-token-VALUE",
]


@pytest.mark.parametrize("kind", ["password", "key-file"])
def test_no_plaintext_on_disk(tmp_path: Path, kind: str) -> None:
    store = password_store(tmp_path) if kind == "password" else key_file_store(tmp_path)
    record = make_record(access_token=SECRETS[0], refresh_token=SECRETS[1], id_token=SECRETS[2])
    assert record.client.client_secret == SECRETS[3]
    assert record.client.registration_access_token == SECRETS[4]
    store.save(record)
    lock = store.lock(KEY)
    assert lock.try_acquire()
    lock.release()
    assert store.load(KEY) == record
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(files) >= 3
    for path in files:
        data = path.read_bytes()
        for secret in [*SECRETS, PASSWORD]:
            assert secret.encode() not in data, (path, secret)


# -- OS errors ---------------------------------------------------------------------------------------------------


def _fail_when(name: str, failure: OSError, condition: Callable[[str], bool]) -> Callable[..., Any]:
    real = getattr(os, name)

    def failing(*args: Any, **kwargs: Any) -> Any:
        if condition(str(args[0])):
            raise failure
        return real(*args, **kwargs)

    return failing


OS_FAILURES = [
    ("open", errno.EACCES, "permissions"),
    ("open", errno.EROFS, "read-only"),
    ("write", errno.ENOSPC, "free some disk space"),
    ("replace", errno.ENOSPC, "free some disk space"),
    ("replace", errno.EACCES, "permissions"),
]


@pytest.mark.parametrize(("function", "code", "remedy"), OS_FAILURES)
def test_os_errors_on_save_keep_the_old_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, function: str, code: int, remedy: str
) -> None:
    store = password_store(tmp_path)
    store.save(make_record(access_token="old"))
    failure = OSError(code, os.strerror(code))
    # os.write takes a descriptor: fail every write; the others fail on the record's temporary file only.
    condition: Callable[[str], bool] = (lambda target: True) if function == "write" else (lambda t: t.endswith(".tmp"))
    with monkeypatch.context() as patch:
        patch.setattr(os, function, _fail_when(function, failure, condition))
        with pytest.raises(TokenStorageError, match=remedy) as caught:
            store.save(make_record(access_token="new"))
    assert str(record_path(tmp_path)) in str(caught.value)
    forget_keys()
    assert password_store(tmp_path).load(KEY) == make_record(access_token="old")
    assert [path.name for path in (tmp_path / "records").iterdir()] == [record_path(tmp_path).name]


def test_permission_denied_on_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = password_store(tmp_path)
    store.save(make_record())
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.suffix == ".rec":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(TokenStorageError, match="permissions") as caught:
        store.load(KEY)
    assert str(record_path(tmp_path)) in str(caught.value)


@pytest.mark.parametrize("function", ["open", "link"])
def test_os_errors_while_setting_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, function: str) -> None:
    failure = PermissionError(errno.EACCES, "Permission denied")
    with monkeypatch.context() as patch:
        patch.setattr(os, function, _fail_when(function, failure, lambda target: "store.json" in target))
        with pytest.raises(TokenStorageError, match="permissions") as caught:
            password_store(tmp_path).save(make_record())
    assert "store.json" in str(caught.value)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["locks"]
    forget_keys()
    password_store(tmp_path).save(make_record())
    assert password_store(tmp_path).load(KEY) == make_record()


def test_file_systems_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "link", _fail_when("link", OSError(errno.EPERM, "Operation not permitted"), bool))
    store = key_file_store(tmp_path)
    store.save(make_record())
    record_path(tmp_path).write_bytes(b"damaged")
    store.save(make_record())
    forget_keys()
    assert key_file_store(tmp_path).load(KEY) == make_record()
    assert len(list((tmp_path / "records").glob("*.corrupt-*"))) == 1
    assert not list(tmp_path.rglob("*.tmp"))


# -- races and crashes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["password", "key-file"])
@pytest.mark.parametrize("with_init_lock", [True, False], ids=["init-lock", "hard-link-only"])
def test_threads_racing_to_set_up_the_store_agree_on_one_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, with_init_lock: bool
) -> None:
    if not with_init_lock:  # the hard-link creation of store.json and store.key alone must pick one winner
        monkeypatch.setattr(master_key.MasterKey, "_init_lock", lambda self: contextlib.nullcontext())
    calls = count_derivations(monkeypatch)
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def set_up(index: int) -> None:
        try:
            store = password_store(tmp_path) if kind == "password" else key_file_store(tmp_path)
            barrier.wait()
            store.save(crash_writer.race_record(index))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=set_up, args=(index,)) for index in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    forget_keys()
    store = password_store(tmp_path) if kind == "password" else key_file_store(tmp_path)
    for index in range(threads_count):
        assert store.load(crash_writer.race_record(index).key) == crash_writer.race_record(index)
    assert not list(tmp_path.rglob("*.tmp"))
    if with_init_lock and kind == "password":
        assert len(calls) == 2  # the set-up, then the check above in a "new process"


def test_processes_racing_to_set_up_the_store(tmp_path: Path) -> None:
    start = time.time() + 1.0
    children = [
        subprocess.Popen(
            [sys.executable, str(CRASH_WRITER), "once", str(tmp_path), str(start), str(index), PASSWORD],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for index in range(4)
    ]
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err.decode()
        assert out.decode().strip() == "saved"
    store = password_store(tmp_path)
    for index in range(4):
        assert store.load(crash_writer.race_record(index).key) == crash_writer.race_record(index)


def check_after_crash(directory: Path) -> int:
    """Every record file is one complete version; returns the highest version found."""
    store = key_file_store(directory)
    keys = store.list_keys()
    expected = {crash_writer.record_version(n, 0).key for n in range(crash_writer.RECORDS)}
    assert set(keys) <= expected
    records = directory / "records"
    on_disk = sorted(path.name for path in records.glob("*.rec")) if records.exists() else []
    assert on_disk == sorted(f"{record_id(key)}.rec" for key in keys)  # nothing partial, nothing unlisted
    assert not list(directory.rglob("*.corrupt-*"))  # no save ever found an unreadable record
    highest = -1
    for key in keys:
        loaded = store.load(key)
        assert loaded is not None
        assert loaded.tokens is not None
        version = int(loaded.tokens.access_token.removeprefix("version-"))
        n = int(key.resource.rsplit("/", 1)[1])
        assert loaded == crash_writer.record_version(n, version)
        highest = max(highest, version)
    return highest


def test_killed_writers_leave_complete_records(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    delays = [0.0, random.uniform(0.0, 0.05), random.uniform(0.05, 0.15), random.uniform(0.0, 0.3), 0.4]
    highest = -1
    for delay in delays:
        child = subprocess.Popen(
            [sys.executable, str(CRASH_WRITER), "loop", str(directory)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == b"ready"
            time.sleep(delay)
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        finally:
            child.kill()  # SIGKILL: no cleanup, no finally blocks
            child.communicate(timeout=30)
        assert child.returncode == -9
        forget_keys()
        highest = max(highest, check_after_crash(directory))
    assert highest > 0, "the writers never got to save: the test proved nothing"


def keyring_account(directory: Path) -> str:
    return f"file-store-key:{directory.resolve()}"


def test_a_key_left_in_the_keyring_by_an_interrupted_setup_is_reused(tmp_path: Path, fake_keyring: FakeKeyring) -> None:
    left = os.urandom(32)
    fake_keyring.entries[keyring_account(tmp_path)] = base64.b64encode(left).decode()
    EncryptedFileTokenStore(tmp_path).save(make_record())
    assert store_json(tmp_path)["key_source"] == "keyring"
    assert fake_keyring.entries == {keyring_account(tmp_path): base64.b64encode(left).decode()}
    forget_keys()
    assert EncryptedFileTokenStore(tmp_path).load(KEY) == make_record()


def test_a_keyring_that_does_not_keep_the_key_is_not_trusted_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class ForgetfulKeyring(FakeKeyring):
        def set(self, account: str, secret: str) -> None:
            pass  # accepted, not kept (some backends without a collection do this)

    monkeypatch.setattr(master_key, "_os_keyring", lambda: (ForgetfulKeyring(), ""))
    EncryptedFileTokenStore(tmp_path).save(make_record())
    assert store_json(tmp_path)["key_source"] == "key-file"
    assert (tmp_path / "store.key").is_file()


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (None, "the keyring has no such entry (it was deleted)"),
        ("not base64 of 32 bytes", "the keyring entry is not a key of this library"),
        (RuntimeError("backend exploded"), "reading it failed (RuntimeError)"),
    ],
)
def test_a_keyring_key_that_cannot_be_read_is_reported_and_nothing_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_keyring: FakeKeyring, entry: object, problem: str
) -> None:
    EncryptedFileTokenStore(tmp_path).save(make_record())
    forget_keys()

    class Changed(FakeKeyring):
        def get(self, account: str) -> str | None:
            if isinstance(entry, Exception):
                raise entry
            return entry  # type: ignore[return-value]

    monkeypatch.setattr(master_key, "_os_keyring", lambda: (Changed(), ""))
    with pytest.raises(TokenStorageError) as raised:
        EncryptedFileTokenStore(tmp_path).load(KEY)
    assert problem in str(raised.value)
    assert "exploded" not in str(raised.value)
    assert store_json(tmp_path)["key_source"] == "keyring"
