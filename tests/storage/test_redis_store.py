"""The Redis store against a real redis-server (Debian's package) on a free loopback port: the store contract,
compare-and-set, encryption on the client, the lease lock with its wake-ups, and the faults (unreachable, restarted,
wrong key)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from mcp_oauth_auth.exceptions import (
    RecordConflictError,
    StoreUnavailableError,
    TemporaryOAuthError,
    TokenStorageError,
)
from mcp_oauth_auth.records import RecordKey
from mcp_oauth_auth.storage import redis_key
from mcp_oauth_auth.storage.codec import encode_record, record_id
from mcp_oauth_auth.storage.encrypted_format import seal_record
from mcp_oauth_auth.storage.redis_lock import RedisRecordLock
from mcp_oauth_auth.storage.redis_store import RedisTokenStore
from tests.storage.contract import ISSUER, RESOURCE, MakeStore, StoreContract, make_record
from tests.storage.redis_server import RedisServer, free_port, running_redis

pytestmark = pytest.mark.integration

KEY = RecordKey(ISSUER, RESOURCE)
PASSWORD = "fleet-password-DISTINCTIVE-7d1e"
TEST_SCRYPT_N = 2**10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as running:
        yield running


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_key, "_SCRYPT_N", TEST_SCRYPT_N)


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def new_store(server: RedisServer, prefix: str) -> Callable[..., RedisTokenStore]:
    def make(**options: object) -> RedisTokenStore:
        options.setdefault("password", PASSWORD)
        options.setdefault("prefix", prefix)
        options.setdefault("lease", 2.0)
        options.setdefault("retry_for", 1.0)
        return RedisTokenStore(server.url, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def raw(server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()


class TestRedisStoreContract(StoreContract):
    @pytest.fixture
    def make_store(self, new_store: Callable[..., RedisTokenStore]) -> MakeStore:
        return new_store


# -- compare-and-set ---------------------------------------------------------------------------------------------


def test_a_conflicting_write_is_refused_and_overwrites_nothing(new_store: Callable[..., RedisTokenStore]) -> None:
    first, second = new_store(), new_store()
    first.save(make_record(access_token="original"))
    assert first.load(KEY) is not None
    assert second.load(KEY) is not None
    first.save(make_record(access_token="first-host"))
    with pytest.raises(RecordConflictError, match="changed by another host"):
        second.save(make_record(access_token="second-host"))
    loaded = new_store().load(KEY)
    assert loaded is not None
    assert loaded.tokens is not None
    assert loaded.tokens.access_token == "first-host"
    assert second.load(KEY) == loaded  # after reading again, the write goes through
    second.save(make_record(access_token="second-host"))
    assert first.load(KEY) == make_record(access_token="second-host")


def test_a_record_deleted_meanwhile_still_conflicts(new_store: Callable[..., RedisTokenStore]) -> None:
    first, second = new_store(), new_store()
    first.save(make_record())
    second.load(KEY)
    first.delete(KEY)
    with pytest.raises(RecordConflictError):
        second.save(make_record(access_token="resurrected"))
    assert first.load(KEY) is None


# -- what Redis sees ---------------------------------------------------------------------------------------------


def test_records_reach_redis_encrypted_and_bound_to_their_identity(
    new_store: Callable[..., RedisTokenStore], raw: redis.Redis, prefix: str
) -> None:
    store = new_store()
    store.save(make_record(id_token="id-token-VALUE"))
    dump = b"".join(
        value
        for name in raw.keys(f"{prefix}:*")
        if raw.type(name) == b"hash"
        for value in raw.hgetall(name).values()  # type: ignore[union-attr]
    ) + (raw.get(f"{prefix}:store") or b"")
    for secret in (b"VALUE", PASSWORD.encode(), b"client-secret"):
        assert secret not in dump
    envelope = json.loads(raw.hget(f"{prefix}:record:{record_id(KEY)}", "data"))  # type: ignore[arg-type]
    assert (envelope["issuer"], envelope["resource"]) == (ISSUER, RESOURCE)
    # The same ciphertext under another record's name does not decrypt: the identity is associated data.
    other = RecordKey(ISSUER, "https://mcp.example.com/other")
    raw.hset(f"{prefix}:record:{record_id(other)}", mapping={"v": 1, "data": json.dumps(envelope)})
    with pytest.raises(TokenStorageError, match=f"record:{record_id(other)}.*left untouched"):
        store.load(other)


def test_every_change_is_published_on_the_records_channel(
    new_store: Callable[..., RedisTokenStore], raw: redis.Redis, prefix: str
) -> None:
    pubsub = raw.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"{prefix}:changed:{record_id(KEY)}")
    assert pubsub.get_message(timeout=1) is None  # (the confirmation, ignored)
    store = new_store()
    store.save(make_record())
    store.save(make_record(access_token="rotated"))
    store.delete(KEY)
    messages = []
    deadline = time.monotonic() + 5
    while len(messages) < 3 and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
        if message is not None:
            messages.append(message["data"])
    pubsub.close()
    assert messages == [b"saved 1", b"saved 2", b"deleted 3"]


# -- the key -----------------------------------------------------------------------------------------------------


def test_a_wrong_password_is_a_typed_error_naming_the_record_and_touches_nothing(
    new_store: Callable[..., RedisTokenStore], raw: redis.Redis, prefix: str
) -> None:
    new_store().save(make_record())
    name = f"{prefix}:record:{record_id(KEY)}"
    before = raw.hgetall(name)
    intruder = new_store(password="not-the-fleet-password")
    with pytest.raises(TokenStorageError, match=f"{name}: wrong password") as caught:
        intruder.load(KEY)
    assert "not-the-fleet-password" not in str(caught.value)
    with pytest.raises(TokenStorageError, match="wrong password"):
        intruder.save(make_record(access_token="overwrite"))
    with pytest.raises(TokenStorageError, match=f"{name}: .* is protected by a password: set MCP_OAUTH_PASSWORD"):
        new_store(password=None).load(KEY)  # (MCP_OAUTH_PASSWORD is unset by the test fixtures)
    assert raw.hgetall(name) == before
    assert new_store().load(KEY) == make_record()


def test_a_record_sealed_with_another_key_is_reported_and_left_alone(
    new_store: Callable[..., RedisTokenStore], raw: redis.Redis, prefix: str
) -> None:
    new_store().save(make_record())
    name = f"{prefix}:record:{record_id(KEY)}"
    foreign = seal_record(encode_record(make_record()), RecordKey(ISSUER, RESOURCE), b"k" * 32)
    raw.hset(name, "data", foreign)
    with pytest.raises(TokenStorageError, match=f"{name} on Redis.*cannot be decrypted.*left untouched"):
        new_store().load(KEY)
    assert raw.hget(name, "data") == foreign


def test_a_key_file_store(new_store: Callable[..., RedisTokenStore], tmp_path: Path, raw: redis.Redis) -> None:
    key_file = tmp_path / "fleet.key"
    store = new_store(password=None, key_file=key_file)
    store.save(make_record())
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert new_store(password=None, key_file=key_file).load(KEY) == make_record()
    with pytest.raises(TokenStorageError, match="keeps its key in a key file"):
        new_store(password=None).load(KEY)
    with pytest.raises(TokenStorageError, match="not protected by a password"):
        new_store().load(KEY)
    damaged = tmp_path / "damaged.key"
    damaged.write_text("c2hvcnQ=\n")
    with pytest.raises(TokenStorageError, match="not a base64 32-byte key"):
        new_store(password=None, key_file=damaged).load(KEY)
    other = tmp_path / "other.key"
    new_store(password=None, key_file=other, prefix="another-deployment").save(make_record())
    with pytest.raises(TokenStorageError, match=f"key file {other} does not match"):
        new_store(password=None, key_file=other).load(KEY)
    with pytest.raises(TokenStorageError, match="is missing; copy it"):
        new_store(password=None, key_file=tmp_path / "absent.key").load(KEY)


def test_no_key_source_is_named(new_store: Callable[..., RedisTokenStore]) -> None:
    with pytest.raises(TokenStorageError, match="needs an encryption key: set MCP_OAUTH_PASSWORD"):
        new_store(password=None).save(make_record())


# -- faults --------------------------------------------------------------------------------------------------------


def test_unreachable_redis_is_a_temporary_error_within_the_bound() -> None:
    store = RedisTokenStore(f"redis://127.0.0.1:{free_port()}/0", password=PASSWORD, retry_for=0.5, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="stayed unreachable") as caught:
        store.load(KEY)
    assert isinstance(caught.value, TemporaryOAuthError)
    assert time.monotonic() - started < 5
    with pytest.raises(StoreUnavailableError):
        store.lock(KEY).try_acquire()


def test_records_survive_a_killed_redis_with_aof(tmp_path: Path) -> None:
    with running_redis(tmp_path) as server:
        store = RedisTokenStore(server.url, password=PASSWORD, retry_for=5)
        store.save(make_record(access_token="before-the-crash"))
        store.save(make_record(access_token="rotated-just-before-the-crash"))
        server.kill()
        server.start()
        assert RedisTokenStore(server.url, password=PASSWORD).load(KEY) == make_record(
            access_token="rotated-just-before-the-crash"
        )
        assert store.list_keys() == [KEY]  # the old object reconnects by itself


def test_without_aof_a_restart_loses_the_records(tmp_path: Path) -> None:
    """Why doctor warns when AOF is off (and why the test above can fail)."""
    with running_redis(tmp_path, appendonly=False) as server:
        store = RedisTokenStore(server.url, password=PASSWORD)
        store.save(make_record())
        assert store.persistence()["aof_enabled"] == "0"
        server.kill()
        server.start()
        assert store.list_keys() == []


def test_a_write_waits_for_a_restarting_redis(tmp_path: Path) -> None:
    with running_redis(tmp_path) as server:
        store = RedisTokenStore(server.url, password=PASSWORD, retry_for=10)
        store.save(make_record())
        server.kill()
        restarter = threading.Timer(0.5, server.start)
        restarter.start()
        store.save(make_record(access_token="saved-after-the-restart"))
        restarter.join()
        assert RedisTokenStore(server.url, password=PASSWORD).load(KEY) == make_record(
            access_token="saved-after-the-restart"
        )


def test_redis_credentials_are_checked_and_never_shown(server: RedisServer, raw: redis.Redis, prefix: str) -> None:
    raw.acl_setuser(
        "fleet", enabled=True, passwords=["+redis-secret-DISTINCTIVE"], keys=[f"{prefix}:*"], commands=["+@all"]
    )
    wrong = RedisTokenStore(f"redis://fleet:wrong-DISTINCTIVE@127.0.0.1:{server.port}/0", password=PASSWORD)
    with pytest.raises(TokenStorageError, match="refused the credentials") as caught:
        wrong.load(KEY)
    assert "DISTINCTIVE" not in str(caught.value) + repr(wrong)
    # This user may not use channels: the lock falls back to polling and still works.
    store = RedisTokenStore(
        f"redis://127.0.0.1:{server.port}/0",
        username="fleet",
        redis_password="redis-secret-DISTINCTIVE",
        password=PASSWORD,
        prefix=prefix,
        lease=5,
    )
    store.save(make_record())
    assert store.load(KEY) == make_record()
    assert "DISTINCTIVE" not in repr(store)
    holder, waiter = store.lock(KEY), store.lock(KEY)
    assert holder.try_acquire()
    assert not waiter.try_acquire()
    holder.release()
    assert waiter.try_acquire()
    waiter.release()
    raw.acl_deluser("fleet")


# -- the lease lock ------------------------------------------------------------------------------------------------


def test_a_dead_holder_blocks_the_others_for_at_most_the_lease(
    new_store: Callable[..., RedisTokenStore], raw: redis.Redis, prefix: str
) -> None:
    store = new_store(lease=0.6)
    raw.set(f"{prefix}:lock:{record_id(KEY)}", "a worker that was killed", px=600)
    lock = store.lock(KEY)
    assert not lock.try_acquire()
    assert "a worker that was killed" in lock.holder()  # type: ignore[attr-defined]
    started = time.monotonic()
    while not lock.try_acquire():
        assert time.monotonic() - started < 5
    assert time.monotonic() - started > 0.2
    lock.release()


def test_a_living_holder_keeps_its_lease(new_store: Callable[..., RedisTokenStore]) -> None:
    held = new_store(lease=0.3).lock(KEY)
    other = new_store(lease=0.3).lock(KEY)
    assert held.try_acquire()
    time.sleep(1.0)  # three leases
    assert not other.try_acquire()
    held.release()
    assert other.try_acquire()
    other.release()


def test_a_waiter_is_woken_by_the_release_and_waits_without_redis_traffic(
    new_store: Callable[..., RedisTokenStore], raw: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Waiters look at the lock again only every 5 s here: acquiring sooner after the release proves the wake-up.
    monkeypatch.setattr(RedisRecordLock, "_recheck", lambda self: 5.0)
    holder = new_store(lease=30).lock(KEY)
    waiter = new_store(lease=30).lock(KEY)
    assert holder.try_acquire()
    assert not waiter.try_acquire()  # queued for a wake-up
    before = int(raw.info("stats")["total_commands_processed"])
    waited = time.monotonic()
    while time.monotonic() - waited < 1.0:
        assert not waiter.try_acquire()
    commands = int(raw.info("stats")["total_commands_processed"]) - before - 1  # (the INFO itself)
    assert commands == 0  # asleep on its channel: not one command per call

    acquired: list[float] = []

    def wait() -> None:
        while not waiter.try_acquire():
            time.sleep(0.1)  # the driver's longest poll: a wake-up must not wait for it
        acquired.append(time.monotonic())

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)
    released = time.monotonic()
    holder.release()
    thread.join(timeout=5)
    assert acquired
    assert acquired[0] - released < 2.5  # woken, not the next look at the lock (5 s)
    waiter.release()
