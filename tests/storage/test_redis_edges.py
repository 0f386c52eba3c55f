"""The Redis store's less travelled paths, against the real redis-server: arguments, a lost reply to a save, the OS
keyring as the key source, two hosts creating the store at once, ACL refusals, damaged data, and the lease keeper."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from mcp_oauth_auth.exceptions import TokenStorageError
from mcp_oauth_auth.records import RecordKey
from mcp_oauth_auth.storage import master_key, redis_key
from mcp_oauth_auth.storage.codec import record_id
from mcp_oauth_auth.storage.encrypted_format import NewerFormatError
from mcp_oauth_auth.storage.redis_lock import SAVE
from mcp_oauth_auth.storage.redis_store import RedisTokenStore
from tests.storage.contract import ISSUER, RESOURCE, make_record
from tests.storage.redis_server import RedisServer, running_redis

pytestmark = pytest.mark.integration

KEY = RecordKey(ISSUER, RESOURCE)
PASSWORD = "edge-password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as running:
        yield running


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_key, "_SCRYPT_N", 2**10)


@pytest.fixture
def prefix() -> str:
    return f"edge-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def new_store(server: RedisServer, prefix: str) -> Callable[..., RedisTokenStore]:
    def make(**options: Any) -> RedisTokenStore:
        options.setdefault("password", PASSWORD)
        options.setdefault("prefix", prefix)
        options.setdefault("retry_for", 1.0)
        return RedisTokenStore(server.url, **options)

    return make


@pytest.fixture
def raw(server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"url": "redis://127.0.0.1:1/0", "lease": 0}, "lease and timeout must be positive"),
        ({"url": "redis://127.0.0.1:1/0", "prefix": "a b"}, "prefix must be a non-empty name"),
        ({}, "no Redis URL: pass url= to RedisTokenStore or set MCP_OAUTH_REDIS_URL"),
        ({"url": "http://user:secret@127.0.0.1/"}, "not a Redis URL: http://127.0.0.1/"),
        ({"url": "redis://127.0.0.1:1/0", "client": object()}, "pass either client= or url="),
    ],
)
def test_bad_arguments(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(TokenStorageError, match=message) as caught:
        RedisTokenStore(**arguments)
    assert "secret" not in str(caught.value)


def test_a_configured_client_and_the_url_from_the_environment(
    server: RedisServer, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = redis.Redis(host="127.0.0.1", port=server.port)
    store = RedisTokenStore(client=client, password=PASSWORD, prefix=prefix)
    assert repr(store) == f"RedisTokenStore('redis://127.0.0.1:{server.port}/0', prefix={prefix!r}, key=password)"
    store.save(make_record())
    monkeypatch.setenv("MCP_OAUTH_REDIS_URL", server.url)
    monkeypatch.setenv("MCP_OAUTH_PASSWORD", PASSWORD)
    assert RedisTokenStore(prefix=prefix).load(KEY) == make_record()
    client.close()


def test_a_save_whose_answer_was_lost_is_recognised_when_retried(new_store: Callable[..., RedisTokenStore]) -> None:
    store = new_store()
    store.save(make_record())
    script = store._script(SAVE)
    calls = []

    def answer_lost(**arguments: Any) -> Any:
        result = script(**arguments)
        calls.append(result)
        if len(calls) == 1:
            raise redis.ConnectionError("the connection dropped before the answer")
        return result

    store._scripts[SAVE] = answer_lost
    store.save(make_record(access_token="rotated"))  # no RecordConflictError with itself
    assert len(calls) == 2
    assert new_store().load(KEY) == make_record(access_token="rotated")
    store.save(make_record(access_token="again"))  # and its version is right afterwards


class FakeKeyring:
    def __init__(self, *, broken: bool = False) -> None:
        self.entries: dict[str, str] = {}
        self.broken = broken

    def get(self, account: str) -> str | None:
        if self.broken:
            raise RuntimeError("the keyring daemon went away")
        return self.entries.get(account)

    def set(self, account: str, secret: str) -> None:
        self.entries[account] = secret


def test_the_os_keyring_as_the_key_source(
    new_store: Callable[..., RedisTokenStore], monkeypatch: pytest.MonkeyPatch, prefix: str, server: RedisServer
) -> None:
    keyring = FakeKeyring()
    monkeypatch.setattr(redis_key, "_os_keyring", lambda: (keyring, ""))
    store = new_store(password=None)
    assert "key=keyring" in repr(store)
    store.save(make_record())
    [account] = keyring.entries
    assert account == f"redis-store-key:{server.url}/{prefix}"
    assert new_store(password=None).load(KEY) == make_record()
    keyring.entries.clear()  # another host (another process: no key in memory), whose keyring lacks the entry
    monkeypatch.setattr(master_key, "_MASTER_KEYS", {})
    with pytest.raises(TokenStorageError, match="has no such entry on this host"):
        new_store(password=None, prefix=prefix).load(KEY)
    with pytest.raises(TokenStorageError, match="use_keyring=False was given"):
        new_store(password=None, use_keyring=False).load(KEY)
    monkeypatch.setattr(redis_key, "_os_keyring", lambda: (FakeKeyring(broken=True), ""))
    with pytest.raises(TokenStorageError, match="reading it failed"):
        new_store(password=None).load(KEY)
    with pytest.raises(TokenStorageError, match="the OS keyring failed"):
        new_store(password=None, prefix=f"{prefix}-new").save(make_record())
    monkeypatch.setattr(redis_key, "_os_keyring", lambda: (None, "no D-Bus session"))
    with pytest.raises(TokenStorageError, match="not usable here: no D-Bus session"):
        new_store(password=None).load(KEY)
    with pytest.raises(TokenStorageError, match="empty"):
        new_store(password="")


def test_two_hosts_setting_up_the_store_at_once_agree(
    new_store: Callable[..., RedisTokenStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = new_store()
    first.save(make_record())
    second = new_store()
    real = RedisTokenStore._read_info
    answers = iter([None])

    def not_there_yet(self: RedisTokenStore) -> Any:
        return next(answers, None) if self is second and not getattr(self, "_looked", False) else real(self)

    def looked(self: RedisTokenStore) -> Any:
        result = not_there_yet(self)
        self._looked = True  # type: ignore[attr-defined]
        return result

    monkeypatch.setattr(RedisTokenStore, "_read_info", looked)
    assert second.load(KEY) == make_record()  # its own description lost the race; it uses the first one's


def test_acl_refusals_and_managed_redis_without_config(
    server: RedisServer, raw: redis.Redis, prefix: str, new_store: Callable[..., RedisTokenStore]
) -> None:
    raw.acl_setuser(
        "narrow",
        enabled=True,
        passwords=["+narrow-password"],
        keys=[f"{prefix}:record:*"],
        channels=["*"],
        commands=["+@all", "-config"],
    )
    store = RedisTokenStore(
        f"redis://narrow:narrow-password@127.0.0.1:{server.port}/0", password=PASSWORD, prefix=prefix
    )
    facts = store.persistence()
    assert facts["aof_enabled"] == "1"
    assert facts["appendfsync"].startswith("unknown (")
    with pytest.raises(TokenStorageError, match=f"lacks permission to read {prefix}:store"):
        store.save(make_record())
    raw.acl_deluser("narrow")


def test_data_redis_holds_that_is_not_ours(
    new_store: Callable[..., RedisTokenStore], raw: redis.Redis, prefix: str
) -> None:
    store = new_store()
    store.save(make_record())
    name = f"{prefix}:record:{record_id(KEY)}"
    original = raw.hget(name, "data")
    assert isinstance(original, bytes)
    raw.sadd(f"{prefix}:records", "0" * 40)  # listed, but gone
    assert store.list_keys() == [KEY]
    raw.hset(name, "data", b"not json")
    with pytest.raises(TokenStorageError, match=f"{name} on Redis.*damaged.*left untouched"):
        store.load(KEY)
    with pytest.raises(TokenStorageError, match=f"{name} on Redis.*cannot be parsed"):
        store.list_keys()
    newer = json.loads(original)
    newer["format"] = 2
    raw.hset(name, "data", json.dumps(newer))
    with pytest.raises(NewerFormatError, match="newer mcp-oauth-auth"):
        store.load(KEY)
    raw.delete(name)
    raw.set(name, "a string, not a hash")
    with pytest.raises(TokenStorageError, match=f"could not read {name}: ResponseError"):
        store.load(KEY)


def test_the_lease_keeper_and_a_lost_lease(
    new_store: Callable[..., RedisTokenStore], raw: redis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    lock = new_store(lease=0.3).lock(KEY)
    assert lock.holder() == "nobody"  # type: ignore[attr-defined]
    assert lock.try_acquire()
    assert lock.try_acquire()  # held already
    assert "held=True" in repr(lock)
    raw.delete(f"{prefix}:lock:{record_id(KEY)}")  # e.g. the lease ran out while the holder was frozen
    with caplog.at_level(logging.WARNING, logger="mcp_oauth_auth"):
        time.sleep(0.5)
    assert "expired while held" in caplog.text
    lock.release()


def test_a_release_that_cannot_reach_redis_is_logged(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    with running_redis(tmp_path) as server:
        lock = RedisTokenStore(server.url, password=PASSWORD, lease=0.6, retry_for=0.2).lock(KEY)
        assert lock.try_acquire()
        server.kill()
        with caplog.at_level(logging.WARNING, logger="mcp_oauth_auth"):
            time.sleep(0.5)  # the keeper cannot extend it
            lock.release()
        assert "could not extend the Redis lock" in caplog.text
        assert "could not release the Redis lock" in caplog.text


def test_without_redis_py(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(TokenStorageError, match=r"pip install 'mcp-oauth-auth\[redis\]'"):
        RedisTokenStore("redis://127.0.0.1:1/0")
