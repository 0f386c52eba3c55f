from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService, chainer, fail, null

from mcp_oauth_auth.exceptions import ConfigurationError, StoreLockedError, TokenStorageError
from mcp_oauth_auth.records import RecordKey
from mcp_oauth_auth.storage.codec import record_id
from mcp_oauth_auth.storage.files import FileRecordLock
from mcp_oauth_auth.storage.keyring_store import KeyringStatus, KeyringTokenStore, probe_keyring
from tests.storage.contract import ISSUER, RESOURCE, MakeStore, StoreContract, make_record
from tests.storage.secret_service import (
    DAEMON_CRASHES,
    private_secret_service,
    require_binaries,
    secret_service_daemon_fixture,  # noqa: F401 - the fixture secret_service_daemon
    secret_service_fixture,  # noqa: F401 - the fixture secret_service
)
from tests.storage.secret_service import (
    SecretService as PrivateSecretService,
)

KEY = RecordKey(ISSUER, RESOURCE)
MANIFEST = f"record:{record_id(KEY)}"
BIG = {"access_token": "a" * 6000, "id_token": "i" * 6000, "refresh_token": "r" * 2000}


class SimulatedCrash(BaseException):
    """The process dies here: nothing after it runs (no cleanup, no error handling)."""


class MemoryKeyring(KeyringBackend):
    """An OS keyring in a dict shared by several backend objects (as processes share one OS keyring).

    Like Windows Credential Manager, it refuses values longer than ``limit`` characters. ``fail`` decides, per
    operation and username, to raise an exception instead.
    """

    def __init__(
        self,
        entries: dict[tuple[str, str], str] | None = None,
        limit: int = 1200,
        delay: float = 0.0,
    ) -> None:
        super().__init__()
        self.entries = entries if entries is not None else {}
        self.limit = limit
        self.delay = delay
        self.fail: Callable[[str, str], BaseException | None] = lambda operation, username: None
        self._mutex = threading.Lock()

    def _maybe_fail(self, operation: str, username: str) -> None:
        if self.delay:
            time.sleep(self.delay)
        exc = self.fail(operation, username)
        if exc is not None:
            raise exc

    def get_password(self, service: str, username: str) -> str | None:
        self._maybe_fail("get", username)
        with self._mutex:
            return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._maybe_fail("set", username)
        if len(password) > self.limit:
            raise keyring.errors.PasswordSetError(f"the value is longer than {self.limit} characters")
        with self._mutex:
            self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self._maybe_fail("delete", username)
        with self._mutex:
            if self.entries.pop((service, username), None) is None:
                raise keyring.errors.PasswordDeleteError("no such entry")

    def names(self, service: str = "mcp-oauth-auth") -> set[str]:
        return {username for (entry_service, username) in self.entries if entry_service == service}


class FakeAltKeyring(KeyringBackend):
    """Stands for a keyrings.alt backend (plain-text file): it works, but is not an OS keyring."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username))


FakeAltKeyring.__module__ = "keyrings.alt.file"


@pytest.fixture
def entries() -> dict[tuple[str, str], str]:
    return {}


@pytest.fixture
def backend(entries: dict[tuple[str, str], str]) -> MemoryKeyring:
    return MemoryKeyring(entries)


@pytest.fixture
def store(backend: MemoryKeyring, tmp_path: Path) -> KeyringTokenStore:
    return KeyringTokenStore(backend=backend, lock_dir=tmp_path / "locks")


@pytest.fixture
def clean_probe_cache() -> Iterator[None]:
    probe_keyring.cache_clear()
    yield
    probe_keyring.cache_clear()


# -- the contract, with a Windows-like size limit -------------------------------------------------------------------


class TestKeyringStoreWithSizeLimit(StoreContract):
    @pytest.fixture
    def make_store(self, entries: dict[tuple[str, str], str], tmp_path: Path) -> MakeStore:
        return lambda: KeyringTokenStore(backend=MemoryKeyring(entries), lock_dir=tmp_path / "locks")

    def test_large_record_is_chunked_below_the_limit(self, make_store: MakeStore, entries: dict[object, str]) -> None:
        make_store().save(make_record(**BIG))
        assert len(entries) > 10
        assert max(len(value) for value in entries.values()) <= 1000


class TestKeyringStoreInlineOnly(StoreContract):
    """With a keyring of unlimited entries and a chunk size above every record, nothing is chunked."""

    @pytest.fixture
    def make_store(self, entries: dict[tuple[str, str], str], tmp_path: Path) -> MakeStore:
        return lambda: KeyringTokenStore(
            "another-service", backend=MemoryKeyring(entries, limit=10**9), lock_dir=tmp_path, chunk_size=10**6
        )

    def test_nothing_is_chunked(self, make_store: MakeStore, entries: dict[tuple[str, str], str]) -> None:
        make_store().save(make_record(**BIG))
        assert {username for _, username in entries} == {MANIFEST, "index"}
        assert {service for service, _ in entries} == {"another-service"}


# -- chunks -----------------------------------------------------------------------------------------------------------


def chunk_names(backend: MemoryKeyring) -> set[str]:
    return {name for name in backend.names() if name.startswith(f"{MANIFEST}:")}


def generations(backend: MemoryKeyring) -> set[str]:
    return {name.split(":")[2] for name in chunk_names(backend)}


def test_entry_layout(store: KeyringTokenStore, entries: dict[tuple[str, str], str], backend: MemoryKeyring) -> None:
    small = make_record()
    store.save(small)
    assert backend.names() == {MANIFEST, "index"}
    assert json.loads(entries[("mcp-oauth-auth", MANIFEST)]) == {"v": 1, "inline": small.to_dict()}
    assert json.loads(entries[("mcp-oauth-auth", "index")]) == {
        "v": 1,
        "inline": [{"issuer": ISSUER, "resource": RESOURCE}],
    }
    big = make_record(**BIG)
    store.save(big)
    manifest = json.loads(entries[("mcp-oauth-auth", MANIFEST)])
    assert set(manifest) == {"v", "generation", "chunks", "length", "sha256"}
    assert chunk_names(backend) == {f"{MANIFEST}:{manifest['generation']}:{n}" for n in range(manifest["chunks"])}
    text = "".join(
        entries[("mcp-oauth-auth", f"{MANIFEST}:{manifest['generation']}:{n}")] for n in range(manifest["chunks"])
    )
    assert json.loads(text) == big.to_dict()
    assert manifest["length"] == len(text)
    assert manifest["sha256"] == hashlib.sha256(text.encode()).hexdigest()


def test_old_generation_is_deleted_after_a_save(store: KeyringTokenStore, backend: MemoryKeyring) -> None:
    store.save(make_record(**BIG))
    first = generations(backend)
    assert len(first) == 1
    store.save(make_record(**{**BIG, "access_token": "b" * 6000}))
    second = generations(backend)
    assert len(second) == 1
    assert second != first
    store.save(make_record())  # inline: no chunk left at all
    assert chunk_names(backend) == set()
    assert store.load(KEY) == make_record()


def test_delete_removes_every_chunk(store: KeyringTokenStore, backend: MemoryKeyring) -> None:
    store.save(make_record(**BIG))
    store.delete(KEY)
    assert backend.names() == {"index"}
    assert store.list_keys() == []


@pytest.mark.parametrize("first_save", [True, False])
def test_crash_before_the_manifest_keeps_the_old_record(
    store: KeyringTokenStore,
    backend: MemoryKeyring,
    entries: dict[tuple[str, str], str],
    tmp_path: Path,
    first_save: bool,
) -> None:
    old = make_record(**BIG)
    if not first_save:
        store.save(old)
    before = dict(entries)

    def crash_on_manifest(operation: str, username: str) -> BaseException | None:
        return SimulatedCrash() if operation == "set" and username == MANIFEST else None

    backend.fail = crash_on_manifest
    with pytest.raises(SimulatedCrash):
        store.save(make_record(**{**BIG, "access_token": "new" * 2000}))
    backend.fail = lambda operation, username: None
    assert len(generations(backend)) == (1 if first_save else 2)  # the new chunks are orphaned, nothing else changed
    assert {k: v for k, v in entries.items() if k in before} == before

    again = KeyringTokenStore(backend=MemoryKeyring(entries), lock_dir=tmp_path / "locks")
    assert again.load(KEY) == (None if first_save else old)
    assert again.list_keys() == ([] if first_save else [KEY])
    again.save(make_record())  # and the store still works
    assert again.load(KEY) == make_record()
    assert again.list_keys() == [KEY]


def test_failed_manifest_write_cleans_up_the_new_chunks(store: KeyringTokenStore, backend: MemoryKeyring) -> None:
    old = make_record(**BIG)
    store.save(old)
    names = backend.names()
    backend.fail = lambda operation, username: (
        keyring.errors.PasswordSetError("refused") if operation == "set" and username == MANIFEST else None
    )
    with pytest.raises(TokenStorageError, match=re.escape(repr(MANIFEST))):
        store.save(make_record(**{**BIG, "access_token": "new" * 2000}))
    assert backend.names() == names
    backend.fail = lambda operation, username: None
    assert store.load(KEY) == old
    assert store.list_keys() == [KEY]


def test_failed_chunk_write_keeps_the_old_record(store: KeyringTokenStore, backend: MemoryKeyring) -> None:
    old = make_record(**BIG)
    store.save(old)
    names = backend.names()
    writes = 0

    def fail_third_chunk(operation: str, username: str) -> BaseException | None:
        nonlocal writes
        if operation == "set" and username.startswith(f"{MANIFEST}:"):
            writes += 1
            if writes == 3:
                return keyring.errors.PasswordSetError("refused")
        return None

    backend.fail = fail_third_chunk
    with pytest.raises(TokenStorageError, match="the previous record, if any, is unchanged"):
        store.save(make_record(**{**BIG, "access_token": "new" * 2000}))
    assert backend.names() == names
    assert store.load(KEY) == old


def test_missing_chunk_is_reported_and_nothing_deleted(
    store: KeyringTokenStore, entries: dict[tuple[str, str], str], backend: MemoryKeyring
) -> None:
    store.save(make_record(**BIG))
    victim = sorted(chunk_names(backend))[1]
    del entries[("mcp-oauth-auth", victim)]
    before = dict(entries)
    with pytest.raises(TokenStorageError, match="is missing") as caught:
        store.load(KEY)
    assert MANIFEST in str(caught.value)
    assert victim in str(caught.value)
    assert "a" * 20 not in str(caught.value)
    assert entries == before


def test_damaged_chunk_is_reported_and_nothing_deleted(
    store: KeyringTokenStore, entries: dict[tuple[str, str], str], backend: MemoryKeyring
) -> None:
    store.save(make_record(**BIG))
    victim = ("mcp-oauth-auth", sorted(chunk_names(backend))[0])
    entries[victim] = entries[victim][:-1] + "X"
    before = dict(entries)
    with pytest.raises(TokenStorageError, match="do not match the checksum"):
        store.load(KEY)
    assert entries == before


def test_a_concurrent_save_between_manifest_and_chunks_is_read_again(
    store: KeyringTokenStore, backend: MemoryKeyring, entries: dict[tuple[str, str], str], tmp_path: Path
) -> None:
    store.save(make_record(**BIG))
    newer = make_record(**{**BIG, "access_token": "n" * 6000})
    writer = KeyringTokenStore(backend=MemoryKeyring(entries), lock_dir=tmp_path / "locks")
    chunk_reads = 0

    def save_after_the_manifest_was_read(operation: str, username: str) -> BaseException | None:
        nonlocal chunk_reads
        if operation == "get" and username.startswith(f"{MANIFEST}:"):
            chunk_reads += 1
            if chunk_reads == 1:
                backend.fail = lambda operation, username: None
                writer.save(newer)  # replaces the generation being read, and deletes its chunks
        return None

    backend.fail = save_after_the_manifest_was_read
    assert store.load(KEY) == newer


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "not an mcp-oauth-auth entry"),
        ('["a list"]', "not an mcp-oauth-auth entry"),
        ('{"v": 1}', "not a valid mcp-oauth-auth entry"),
        ('{"v": 1, "generation": "../x", "chunks": 2, "length": 3, "sha256": "00"}', "not a valid"),
        ('{"v": 2, "something": "new"}', "upgrade mcp-oauth-auth"),
        ('{"v": 1, "inline": "a string"}', "not a valid mcp-oauth-auth entry"),
        ('{"v": 1, "inline": {"format": 99}}', "upgrade mcp-oauth-auth"),
        ('{"v": 1, "inline": {"format": 1, "issuer": "x"}}', "incomplete or malformed"),
    ],
)
def test_unreadable_record_is_reported_and_kept(
    store: KeyringTokenStore, entries: dict[tuple[str, str], str], value: str, message: str
) -> None:
    entries[("mcp-oauth-auth", MANIFEST)] = value
    with pytest.raises(TokenStorageError, match=message) as caught:
        store.load(KEY)
    assert MANIFEST in str(caught.value)
    assert entries == {("mcp-oauth-auth", MANIFEST): value}


def test_record_of_another_key_is_reported(store: KeyringTokenStore, entries: dict[tuple[str, str], str]) -> None:
    other = make_record(resource="https://elsewhere.example.com/mcp")
    store.save(other)
    entries[("mcp-oauth-auth", MANIFEST)] = entries[("mcp-oauth-auth", f"record:{record_id(other.key)}")]
    with pytest.raises(TokenStorageError, match="belongs to"):
        store.load(KEY)


def test_unreadable_index(store: KeyringTokenStore, entries: dict[tuple[str, str], str]) -> None:
    entries[("mcp-oauth-auth", "index")] = '{"v": 1, "inline": [{"issuer": 1}]}'
    with pytest.raises(TokenStorageError, match="keyring del mcp-oauth-auth index"):
        store.list_keys()
    # Saving new tokens must not fail because of the index (a spent refresh token would be lost); the index is kept.
    store.save(make_record())
    store.delete(make_record(resource="https://elsewhere.example.com/mcp").key)
    assert store.load(KEY) == make_record()
    assert entries[("mcp-oauth-auth", "index")] == '{"v": 1, "inline": [{"issuer": 1}]}'


def test_large_index_is_chunked(store: KeyringTokenStore, backend: MemoryKeyring) -> None:
    records = [make_record(resource=f"https://mcp.example.com/{n}/{'x' * 200}") for n in range(12)]
    for record in records:
        store.save(record)
    assert any(name.startswith("index:") for name in backend.names())
    assert store.list_keys() == [record.key for record in records]
    for record in records[:11]:
        store.delete(record.key)
    assert store.list_keys() == [records[11].key]
    assert not any(name.startswith("index:") for name in backend.names())


def test_concurrent_saves_keep_every_key_in_the_index(entries: dict[tuple[str, str], str], tmp_path: Path) -> None:
    # Each thread has its own store and backend object, like separate processes; the backend is slow, so that
    # unsynchronized read-modify-writes of the index would lose keys.
    records = [make_record(resource=f"https://mcp.example.com/{n}") for n in range(6)]
    errors: list[BaseException] = []

    def save(n: int) -> None:
        try:
            store = KeyringTokenStore(backend=MemoryKeyring(entries, delay=0.002), lock_dir=tmp_path / "locks")
            store.save(records[n])
            if n % 2:
                store.delete(records[n].key)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(len(records))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = KeyringTokenStore(backend=MemoryKeyring(entries), lock_dir=tmp_path / "locks")
    assert sorted(store.list_keys(), key=str) == sorted((r.key for r in records[::2]), key=str)


def test_save_waits_for_the_store_lock_and_gives_up(store: KeyringTokenStore, tmp_path: Path) -> None:
    holder = FileRecordLock(tmp_path / "locks" / "keyring-index.lock")
    store.lock(KEY)  # creates the lock directory
    assert holder.try_acquire()
    store.lock_timeout = 0.2
    try:
        with pytest.raises(StoreLockedError, match=f"held by pid {os.getpid()}"):
            store.save(make_record())
        assert store.load(KEY) is None
    finally:
        holder.release()
    store.save(make_record())
    assert store.load(KEY) == make_record()


# -- errors, configuration, repr ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "remedy"),
    [
        (keyring.errors.KeyringLocked("Failed to unlock the collection!"), "unlock your keyring"),
        (keyring.errors.NoKeyringError("no backend"), "make an OS keyring available"),
        (keyring.errors.InitError("Failed to create the collection"), "make an OS keyring available"),
        (ConnectionRefusedError(111, "Connection refused"), "make an OS keyring available"),
        (RuntimeError("something else"), "check that your OS keyring is running and unlocked"),
    ],
)
@pytest.mark.parametrize("operation", ["load", "save", "delete", "list_keys"])
def test_keyring_errors_become_storage_errors(
    store: KeyringTokenStore, backend: MemoryKeyring, exc: Exception, remedy: str, operation: str
) -> None:
    calls: dict[str, Callable[[], object]] = {
        "load": lambda: store.load(KEY),
        "save": lambda: store.save(make_record()),
        "delete": lambda: store.delete(KEY),
        "list_keys": store.list_keys,
    }
    backend.fail = lambda op, username: exc
    with pytest.raises(TokenStorageError, match=remedy) as caught:
        calls[operation]()
    message = str(caught.value)
    assert "'mcp-oauth-auth'" in message
    assert "'index'" in message or repr(MANIFEST) in message
    assert type(exc).__name__ in message


def test_errors_never_contain_the_value(store: KeyringTokenStore, backend: MemoryKeyring) -> None:
    def echo(operation: str, username: str) -> BaseException | None:
        if operation == "set" and username == MANIFEST:
            return keyring.errors.PasswordSetError(f"cannot store {backend.pending!r}")
        return None

    original_set = backend.set_password

    def remember(service: str, username: str, password: str) -> None:
        backend.pending = password
        original_set(service, username, password)

    backend.pending = ""
    backend.set_password = remember  # type: ignore[method-assign]
    backend.fail = echo
    with pytest.raises(TokenStorageError) as caught:
        store.save(make_record(access_token="SECRET-ACCESS-TOKEN"))
    assert "SECRET-ACCESS-TOKEN" not in str(caught.value)
    assert "PasswordSetError" in str(caught.value)


def test_too_large_for_the_keyring(entries: dict[tuple[str, str], str], tmp_path: Path) -> None:
    store = KeyringTokenStore(backend=MemoryKeyring(entries, limit=500), lock_dir=tmp_path)
    with pytest.raises(TokenStorageError, match="use a smaller chunk_size"):
        store.save(make_record(**BIG))
    assert [name for _, name in entries] == ["index"]


def test_configuration_checks(backend: MemoryKeyring) -> None:
    with pytest.raises(ConfigurationError, match="chunk_size"):
        KeyringTokenStore(backend=backend, chunk_size=100)
    with pytest.raises(ConfigurationError, match="service"):
        KeyringTokenStore("", backend=backend)
    with pytest.raises(TokenStorageError, match="discards every entry"):
        KeyringTokenStore(backend=null.Keyring())


def test_default_backend_and_lock_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, backend: MemoryKeyring) -> None:
    monkeypatch.setenv("MCP_OAUTH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(keyring, "get_keyring", lambda: backend)
    store = KeyringTokenStore()
    assert store.backend is backend
    lock = store.lock(KEY)
    assert isinstance(lock, FileRecordLock)
    assert lock.path == tmp_path / "home" / "locks" / f"{record_id(KEY)}.lock"
    assert (tmp_path / "home" / "locks").stat().st_mode & 0o777 == 0o700
    store.save(make_record())
    assert (tmp_path / "home" / "locks" / "keyring-index.lock").exists()


def test_repr(backend: MemoryKeyring, tmp_path: Path) -> None:
    assert repr(KeyringTokenStore(backend=backend, lock_dir=tmp_path)) == (
        "KeyringTokenStore(service='mcp-oauth-auth', backend='test keyring store MemoryKeyring')"
    )
    assert repr(KeyringTokenStore("svc", backend=SecretService.Keyring(), lock_dir=tmp_path)) == (
        "KeyringTokenStore(service='svc', backend='SecretService Keyring')"
    )


# -- probe_keyring -----------------------------------------------------------------------------------------------------


def test_probe_fail_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    status = probe_keyring(fail.Keyring())
    assert not status.usable
    assert "no OS keyring" in status.reason
    assert status.backend == "fail Keyring"
    if sys.platform.startswith("linux"):
        assert "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset)" in status.reason
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
    assert "'fail' backend" in probe_keyring(fail.Keyring()).reason


def test_probe_null_backend() -> None:
    status = probe_keyring(null.Keyring())
    assert status == KeyringStatus(False, status.reason, "null Keyring")
    assert "discards every entry" in status.reason


def test_probe_keyrings_alt_backend() -> None:
    backend = FakeAltKeyring()
    status = probe_keyring(backend)
    assert not status.usable
    assert "keyrings.alt" in status.reason
    assert backend.entries == {}  # judged without writing anything


def test_probe_chainer(monkeypatch: pytest.MonkeyPatch, backend: MemoryKeyring) -> None:
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [])
    status = probe_keyring(chainer.ChainerBackend())
    assert not status.usable
    assert "no usable backend" in status.reason
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [null.Keyring(), backend])
    assert "discards every entry" in probe_keyring(chainer.ChainerBackend()).reason
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [backend, null.Keyring()])
    assert probe_keyring(chainer.ChainerBackend()).usable


def test_probe_round_trip(backend: MemoryKeyring) -> None:
    status = probe_keyring(backend)
    assert status.usable, status.reason
    assert backend.entries == {}  # the test entry is gone

    backend.fail = lambda operation, username: (
        keyring.errors.KeyringLocked("Failed to unlock the collection!") if operation == "set" else None
    )
    status = probe_keyring(backend)
    assert not status.usable
    assert f"'probe:{os.getpid()}'" in status.reason
    assert "KeyringLocked" in status.reason

    backend.fail = lambda operation, username: RuntimeError("read failed") if operation == "get" else None
    assert not probe_keyring(backend).usable
    assert backend.entries == {}  # cleaned up even then


def test_probe_value_not_returned(backend: MemoryKeyring) -> None:
    backend.get_password = lambda service, username: "something else"  # type: ignore[method-assign]
    status = probe_keyring(backend)
    assert not status.usable
    assert "did not return the test entry" in status.reason


@pytest.mark.usefixtures("clean_probe_cache")
def test_probe_is_cached_for_the_active_keyring(monkeypatch: pytest.MonkeyPatch, backend: MemoryKeyring) -> None:
    calls: list[KeyringBackend] = []

    def get_keyring() -> KeyringBackend:
        calls.append(backend)
        return backend

    monkeypatch.setattr(keyring, "get_keyring", get_keyring)
    first = probe_keyring()
    assert first.usable
    assert probe_keyring() is first
    assert len(calls) == 1
    monkeypatch.setattr(keyring, "get_keyring", null.Keyring)
    assert probe_keyring() is first
    assert not probe_keyring(refresh=True).usable
    probe_keyring.cache_clear()
    monkeypatch.setattr(keyring, "get_keyring", get_keyring)
    assert probe_keyring().usable
    assert len(calls) == 2


@pytest.mark.usefixtures("clean_probe_cache")
def test_probe_when_keyring_cannot_choose(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> KeyringBackend:
        raise RuntimeError("bad keyringrc.cfg")

    monkeypatch.setattr(keyring, "get_keyring", broken)
    status = probe_keyring()
    assert not status.usable
    assert "bad keyringrc.cfg" in status.reason


def test_probe_secret_service_without_a_session_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    status = probe_keyring(SecretService.Keyring())
    assert not status.usable
    assert "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset)" in status.reason
    assert status.backend == "SecretService Keyring"


# -- a real Secret Service (gnome-keyring on a private D-Bus session bus) ----------------------------------------------


def unique_service(request: pytest.FixtureRequest) -> str:
    return f"mcp-oauth-auth-test-{abs(hash(request.node.nodeid)):x}-{os.getpid()}"


@pytest.mark.flaky(reruns=1, only_rerun=DAEMON_CRASHES)
class TestSecretServiceStore(StoreContract):
    @pytest.fixture
    def make_store(
        self, secret_service: PrivateSecretService, request: pytest.FixtureRequest, tmp_path: Path
    ) -> MakeStore:
        service = unique_service(request)
        return lambda: KeyringTokenStore(service, backend=SecretService.Keyring(), lock_dir=tmp_path / "locks")

    def test_entries_are_in_the_private_keyring(
        self, make_store: MakeStore, secret_service: PrivateSecretService
    ) -> None:
        import secretstorage

        store = make_store()
        assert isinstance(store, KeyringTokenStore)
        store.save(make_record(**BIG))
        with secret_service.connection() as connection:
            items = list(secretstorage.Collection(connection).search_items({"service": store.service}))
            names = {item.get_attributes()["username"] for item in items}
        assert MANIFEST in names
        assert "index" in names
        assert len(names) > 10  # chunked


@pytest.mark.flaky(reruns=1, only_rerun=DAEMON_CRASHES)
@pytest.mark.usefixtures("clean_probe_cache")
def test_probe_real_secret_service_is_usable(
    secret_service: PrivateSecretService, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = probe_keyring(SecretService.Keyring())
    assert status == KeyringStatus(True, status.reason, "SecretService Keyring")
    monkeypatch.setattr(keyring, "get_keyring", SecretService.Keyring)
    assert probe_keyring().usable


@pytest.mark.timeout(30)
def test_probe_real_secret_service_locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with private_secret_service(tmp_path / "locked", monkeypatch) as service:
        backend = SecretService.Keyring()
        store = KeyringTokenStore("locked-test", backend=backend, lock_dir=tmp_path / "locks")
        store.save(make_record())
        service.lock_default_collection()
        assert service.default_collection_locked()

        started = time.monotonic()
        status = probe_keyring(backend)
        assert not status.usable
        assert status.reason.startswith("the Secret Service collection 'Login' is locked; unlock it")
        assert service.default_collection_locked()  # the probe neither unlocked it nor wrote to it
        # The store itself asks for an unlock (keyring does); with no prompter on this bus that is refused at once.
        with pytest.raises(TokenStorageError, match="unlock your keyring"):
            store.load(KEY)
        assert time.monotonic() - started < 10


@pytest.mark.timeout(30)
def test_probe_bus_without_secret_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with private_secret_service(tmp_path / "bus", monkeypatch, with_keyring=False):
        status = probe_keyring(SecretService.Keyring())
        assert not status.usable
        assert "no Secret Service runs on the D-Bus session bus" in status.reason


@pytest.mark.timeout(30)
def test_probe_secret_service_without_a_default_collection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with private_secret_service(tmp_path / "empty", monkeypatch, unlock=False) as service:
        assert service.default_collection_locked() is None
        status = probe_keyring(SecretService.Keyring())
        assert not status.usable
        assert "has no collection at /org/freedesktop/secrets/aliases/default" in status.reason


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Secret Service is a Linux service")
def test_missing_daemons_fail_naming_the_packages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        pytest.fail.Exception, match="apt-get install --no-install-recommends dbus-daemon gnome-keyring"
    ):
        require_binaries()
