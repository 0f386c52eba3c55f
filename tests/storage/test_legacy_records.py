"""Records stored before accounts existed are the default account's, found where they always were.

``legacy/`` holds what mcp-oauth-auth 0.1.0 (main at eb6b333, before accounts) wrote for one credential: an encrypted
file store (key-file, with its ``store.key``), the OS keyring entries of a keyring store, and the record as JSON.
The files are read here as a user's existing store would be, by every backend that derives its own keys: the file
name, the keyring entry names and index, the Vault path and the Redis key of the record must not have changed.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from mcp_oauth_auth import MCPOAuth
from mcp_oauth_auth.exceptions import AuthorizationError
from mcp_oauth_auth.records import CredentialRecord, RecordKey
from mcp_oauth_auth.storage.codec import record_id
from mcp_oauth_auth.storage.encrypted_file import EncryptedFileTokenStore
from mcp_oauth_auth.storage.keyring_store import KeyringTokenStore
from mcp_oauth_auth.storage.memory import MemoryTokenStore
from tests.storage.test_keyring_store import MemoryKeyring

LEGACY = Path(__file__).parent / "legacy"
KEY = RecordKey("https://auth.example.com", "https://mcp.example.com/mcp")
#: The record id 0.1.0 gave KEY: its file name, keyring entry, Vault path and Redis key.
LEGACY_ID = "360997ee9d19164a4098744d2633aef377846e06"


def legacy_record() -> CredentialRecord:
    return CredentialRecord.from_dict(json.loads((LEGACY / "record.json").read_text()))


def test_the_legacy_record_is_of_the_default_account() -> None:
    document = json.loads((LEGACY / "record.json").read_text())
    assert "account" not in document
    record = CredentialRecord.from_dict(document)
    assert record.account is None
    assert record.key == KEY
    assert record.to_dict() == document  # written back exactly as before: no account field appears
    assert record_id(KEY) == LEGACY_ID
    assert record_id(RecordKey(KEY.issuer, KEY.resource, "work")) != LEGACY_ID


def test_the_legacy_record_has_no_renewal_note() -> None:
    """Records written before ``renewal`` existed read with none (``mcp-oauth token`` then asks for a new login when
    they expire, as it did), and are written back without the field."""
    document = json.loads((LEGACY / "record.json").read_text())
    assert "renewal" not in document
    record = CredentialRecord.from_dict(document)
    assert record.renewal is None
    assert "renewal" not in record.to_dict()


@pytest.fixture
def legacy_file_store(tmp_path: Path) -> EncryptedFileTokenStore:
    directory = tmp_path / "store"
    shutil.copytree(LEGACY / "file-store", directory)
    # (git keeps no modes: the store refuses a key file or records that others can read)
    directory.chmod(0o700)
    for path in directory.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)
    return EncryptedFileTokenStore(directory, use_keyring=False)


def test_an_encrypted_file_store_of_0_1_0_is_read_as_the_default_account(
    legacy_file_store: EncryptedFileTokenStore,
) -> None:
    assert (legacy_file_store.records_dir / f"{LEGACY_ID}.rec").exists()
    assert legacy_file_store.list_keys() == [KEY]
    assert legacy_file_store.load(KEY) == legacy_record()
    assert legacy_file_store.load(RecordKey(KEY.issuer, KEY.resource, "work")) is None
    # Saving it again keeps it in the same file, still readable as the default account's.
    legacy_file_store.save(legacy_record())
    assert sorted(path.name for path in legacy_file_store.records_dir.iterdir()) == [f"{LEGACY_ID}.rec"]


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request was expected: {request.method} {request.url}")


def _refuse(url: str) -> str:
    raise AuthorizationError("no new authorization in this test")


def test_mcpoauth_uses_a_legacy_credential_for_the_default_account_only(
    legacy_file_store: EncryptedFileTokenStore,
) -> None:
    with httpx.Client(transport=httpx.MockTransport(_no_network)) as client:
        tokens = MCPOAuth(KEY.resource, store=legacy_file_store, authorizer=_refuse).authenticate(client)
        assert tokens.access_token == "legacy-access-token"
        work = MCPOAuth(KEY.resource, store=legacy_file_store, authorizer=_refuse, account="work")
        with pytest.raises(AssertionError, match="no request was expected"):
            work.authenticate(client)  # the work account has no credential: it would authorize, never borrow
    assert work.record is None


@pytest.fixture
def legacy_keyring(tmp_path: Path) -> KeyringTokenStore:
    entries = {
        (service, name): value for service, name, value in json.loads((LEGACY / "keyring-entries.json").read_text())
    }
    assert ("mcp-oauth-auth", f"record:{LEGACY_ID}") in entries
    return KeyringTokenStore(backend=MemoryKeyring(entries, limit=10_000), lock_dir=tmp_path / "locks")


def test_keyring_entries_of_0_1_0_are_read_as_the_default_account(legacy_keyring: KeyringTokenStore) -> None:
    assert legacy_keyring.list_keys() == [KEY]
    assert legacy_keyring.load(KEY) == legacy_record()
    work = legacy_record()
    work = CredentialRecord.from_dict({**work.to_dict(), "account": "work"})
    legacy_keyring.save(work)
    assert sorted(legacy_keyring.list_keys(), key=str) == sorted([KEY, work.key], key=str)
    assert legacy_keyring.load(KEY) == legacy_record()
    assert legacy_keyring.load(work.key) == work


def test_a_memory_store_keeps_the_default_account_apart() -> None:
    store = MemoryTokenStore()
    store.save(legacy_record())
    assert store.load(RecordKey(KEY.issuer, KEY.resource)) == legacy_record()
    assert store.load(RecordKey(KEY.issuer, KEY.resource, "work")) is None


# -- Vault and Redis: the record written where 0.1.0 wrote it -------------------------------------------------------


@pytest.mark.integration
def test_a_vault_record_of_0_1_0_is_read_as_the_default_account() -> None:
    from mcp_oauth_auth.storage.vault import VaultTokenStore
    from tests.storage.fake_vault import ROOT_TOKEN, FakeVault, serve_vault

    text = (LEGACY / "record.json").read_text()
    compact = json.dumps(json.loads(text), separators=(",", ":"), sort_keys=True)
    vault = FakeVault()
    with serve_vault(vault) as url:
        vault.write_raw(f"mcp-oauth/records/{LEGACY_ID}", {"record": compact})
        store = VaultTokenStore(url, token=ROOT_TOKEN)
        assert store.list_keys() == [KEY]
        assert store.load(KEY) == legacy_record()
        assert store.load(RecordKey(KEY.issuer, KEY.resource, "work")) is None


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    from tests.storage.redis_server import running_redis

    with running_redis(tmp_path / "redis") as server:
        yield server.url


@pytest.mark.integration
def test_a_redis_record_of_0_1_0_is_read_as_the_default_account(redis_url: str, tmp_path: Path) -> None:
    """The Redis store seals records as the file store does: 0.1.0's sealed record, under the Redis key 0.1.0 gave
    it, with the store's key check and the same key file, opens as the default account's."""
    import redis

    from mcp_oauth_auth.storage.redis_store import RedisTokenStore

    files = LEGACY / "file-store"
    key_file = tmp_path / "store.key"
    shutil.copyfile(files / "store.key", key_file)
    key_file.chmod(0o600)
    prefix = f"legacy-{uuid.uuid4().hex[:8]}"
    raw = redis.Redis.from_url(redis_url)
    try:
        raw.set(f"{prefix}:store", (files / "store.json").read_bytes())
        raw.hset(
            f"{prefix}:record:{LEGACY_ID}",
            mapping={"v": 1, "data": (files / "records" / f"{LEGACY_ID}.rec").read_bytes()},
        )
        raw.sadd(f"{prefix}:records", LEGACY_ID)
    finally:
        raw.close()
    store = RedisTokenStore(redis_url, prefix=prefix, key_file=key_file, use_keyring=False, retry_for=1.0)
    assert store.list_keys() == [KEY]
    assert store.load(KEY) == legacy_record()
    assert store.load(RecordKey(KEY.issuer, KEY.resource, "work")) is None


def test_a_legacy_encrypted_record_reads_without_a_note_and_takes_one(
    legacy_file_store: EncryptedFileTokenStore,
) -> None:
    loaded = legacy_file_store.load(KEY)
    assert loaded is not None
    assert loaded.renewal is None
    note = {"grant": "jwt-bearer", "assertion_file": "/var/run/secrets/tokens/mcp"}
    legacy_file_store.save(replace(loaded, renewal=note))
    again = legacy_file_store.load(KEY)
    assert again is not None
    assert again.renewal == note
    assert sorted(path.name for path in legacy_file_store.records_dir.iterdir()) == [f"{LEGACY_ID}.rec"]
