"""The behaviour every :class:`~mcp_oauth_auth.storage.TokenStore` backend must have.

A backend's test module subclasses :class:`StoreContract` and provides the ``make_store`` fixture: a callable
returning a *new* store object on the same location each time it is called (a second process would do the same),
so persistence and cross-instance locking are tested too. Pure in-memory stores set ``persistent = False``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import ClassVar

import pytest

from mcp_oauth_auth.records import ClientRegistration, CredentialRecord, RecordKey, TokenSet
from mcp_oauth_auth.storage import LockingTokenStore, RecordLock, TokenStore

MakeStore = Callable[[], TokenStore]

ISSUER = "https://auth.example.com"
RESOURCE = "https://mcp.example.com/mcp"


def make_record(
    issuer: str = ISSUER,
    resource: str = RESOURCE,
    access_token: str = "access-token-VALUE-1",
    refresh_token: str | None = "refresh-token-VALUE-1",
    id_token: str | None = None,
    account: str | None = None,
) -> CredentialRecord:
    return CredentialRecord(
        account=account,
        issuer=issuer,
        resource=resource,
        server_url=resource,
        client=ClientRegistration(
            client_id="client-123",
            kind="dynamic",
            token_endpoint_auth_method="client_secret_basic",
            client_secret="client-secret-VALUE",
            redirect_uris=("http://127.0.0.1:33418/callback",),
            grant_types=("authorization_code", "refresh_token"),
            registration_access_token="registration-token-VALUE",
        ),
        token_endpoint=f"{issuer}/token",
        tokens=TokenSet(
            access_token=access_token,
            expires_at=2_000_000_000.0,
            refresh_token=refresh_token,
            scope="mcp:read mcp:write",
            id_token=id_token,
            issued_at=1_900_000_000.0,
        ),
        requested_scopes=("mcp:read", "mcp:write"),
        authorization_endpoint=f"{issuer}/authorize",
        revocation_endpoint=f"{issuer}/revoke",
        updated_at=1_900_000_000.5,
    )


class StoreContract:
    persistent: ClassVar[bool] = True

    @pytest.fixture
    def store(self, make_store: MakeStore) -> TokenStore:
        return make_store()

    def test_is_a_token_store(self, store: TokenStore) -> None:
        assert isinstance(store, TokenStore)
        assert isinstance(store, LockingTokenStore)

    def test_missing_record_loads_as_none(self, store: TokenStore) -> None:
        assert store.load(RecordKey(ISSUER, RESOURCE)) is None
        assert store.list_keys() == []

    def test_round_trip_keeps_every_field(self, store: TokenStore) -> None:
        record = make_record(id_token="id-token-VALUE")
        store.save(record)
        assert store.load(record.key) == record
        assert store.list_keys() == [record.key]

    def test_round_trip_keeps_the_renewal_note(self, store: TokenStore) -> None:
        """``renewal`` (how ``mcp-oauth token`` renews a credential without a refresh token) reads back as written."""
        note = {"grant": "id-jag", "idp_issuer": "https://idp.example.com", "idp_client_secret_env": "IDP_SECRET"}
        record = replace(make_record(refresh_token=None), renewal=note)
        store.save(record)
        assert store.load(record.key) == record
        store.save(replace(record, renewal=None))
        loaded = store.load(record.key)
        assert loaded is not None
        assert loaded.renewal is None

    def test_save_replaces(self, store: TokenStore) -> None:
        store.save(make_record(access_token="first"))
        store.save(make_record(access_token="second"))
        loaded = store.load(RecordKey(ISSUER, RESOURCE))
        assert loaded is not None
        assert loaded.tokens is not None
        assert loaded.tokens.access_token == "second"
        assert len(store.list_keys()) == 1

    def test_record_without_tokens(self, store: TokenStore) -> None:
        record = make_record().with_tokens(None)
        store.save(record)
        assert store.load(record.key) == record

    def test_delete(self, store: TokenStore) -> None:
        record = make_record()
        store.save(record)
        store.delete(record.key)
        assert store.load(record.key) is None
        assert store.list_keys() == []
        store.delete(record.key)  # deleting what is not there is not an error

    def test_keys_are_issuer_and_resource(self, store: TokenStore) -> None:
        records = [
            make_record(),
            make_record(issuer="https://other-issuer.example.com", access_token="other-issuer"),
            make_record(resource="https://mcp.example.com/other", access_token="other-resource"),
        ]
        for record in records:
            store.save(record)
        assert sorted(store.list_keys(), key=str) == sorted((r.key for r in records), key=str)
        for record in records:
            assert store.load(record.key) == record
        store.delete(records[1].key)
        assert store.load(records[0].key) == records[0]
        assert store.load(records[2].key) == records[2]

    def test_accounts_are_separate_records(self, make_store: MakeStore) -> None:
        """Two accounts for one (issuer, resource) live side by side, beside the default account's record: each is
        listed, loaded, replaced and deleted on its own (by another store object too, as another process)."""
        store = make_store()
        records = [
            make_record(access_token="default-account"),
            make_record(access_token="work-account", account="work"),
            make_record(access_token="tenant-account", account="tenant 2 / ünïcode"),
        ]
        for record in records:
            store.save(record)
        other = make_store() if self.persistent else store
        assert sorted(other.list_keys(), key=str) == sorted((r.key for r in records), key=str)
        for record in records:
            assert other.load(record.key) == record
        store.save(make_record(access_token="work-account-rotated", account="work"))
        store.delete(records[2].key)
        assert other.load(records[0].key) == records[0]
        assert other.load(RecordKey(ISSUER, RESOURCE, "work")) == make_record(
            access_token="work-account-rotated", account="work"
        )
        assert other.load(records[2].key) is None
        assert sorted(other.list_keys(), key=str) == sorted((records[0].key, records[1].key), key=str)

    def test_unusual_urls_as_keys(self, store: TokenStore) -> None:
        record = make_record(
            issuer="https://login.example.com/tenant/äöü/v2.0?x=1&y=/..",
            resource="https://mcp.example.com:8443/a/../b/%2F/" + "x" * 300,
        )
        store.save(record)
        assert store.load(record.key) == record
        assert store.list_keys() == [record.key]

    def test_large_record(self, store: TokenStore) -> None:
        # Windows Credential Manager stops at about 2.5 KB per entry; JWTs with many claims are larger.
        record = make_record(access_token="a" * 6000, id_token="i" * 6000, refresh_token="r" * 2000)
        store.save(record)
        assert store.load(record.key) == record
        store.save(make_record())
        assert store.load(record.key) == make_record()

    def test_another_instance_sees_the_records(self, make_store: MakeStore) -> None:
        if not self.persistent:
            assert make_store().list_keys() == []  # a new in-memory store starts empty
            return
        record = make_record()
        make_store().save(record)
        assert make_store().load(record.key) == record
        assert make_store().list_keys() == [record.key]

    def test_concurrent_saves_from_threads(self, store: TokenStore) -> None:
        records = [make_record(resource=f"https://mcp.example.com/{n}", access_token=f"t{n}") for n in range(8)]
        errors: list[BaseException] = []

        def save(record: CredentialRecord) -> None:
            try:
                for _ in range(3):
                    store.save(record)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=save, args=(record,)) for record in records]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        for record in records:
            assert store.load(record.key) == record

    # -- record locks ------------------------------------------------------------------------------------------

    def lock(self, store: TokenStore, key: RecordKey) -> RecordLock:
        assert isinstance(store, LockingTokenStore)
        return store.lock(key)

    def test_lock_is_exclusive_across_store_objects(self, make_store: MakeStore) -> None:
        key = RecordKey(ISSUER, RESOURCE)
        store = make_store()
        first = self.lock(store, key)
        # Two store objects on one location behave like two processes; an in-memory store has only one object.
        second = self.lock(make_store() if self.persistent else store, key)
        assert first.try_acquire()
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire()
        assert not first.try_acquire()
        second.release()
        first.release()  # releasing an unheld lock is not an error

    def test_locks_are_per_record(self, store: TokenStore) -> None:
        first = self.lock(store, RecordKey(ISSUER, RESOURCE))
        other = self.lock(store, RecordKey(ISSUER, "https://mcp.example.com/other"))
        assert first.try_acquire()
        assert other.try_acquire()
        first.release()
        other.release()

    def test_locks_are_per_account(self, make_store: MakeStore) -> None:
        store = make_store()
        default = self.lock(store, RecordKey(ISSUER, RESOURCE))
        work = self.lock(store, RecordKey(ISSUER, RESOURCE, "work"))
        work_elsewhere = self.lock(make_store() if self.persistent else store, RecordKey(ISSUER, RESOURCE, "work"))
        assert default.try_acquire()
        assert work.try_acquire()  # another account's refresh does not wait for this one
        assert not work_elsewhere.try_acquire()  # the same account's does
        work.release()
        default.release()

    def test_lock_released_from_another_thread(self, store: TokenStore) -> None:
        key = RecordKey(ISSUER, RESOURCE)
        held = self.lock(store, key)
        assert held.try_acquire()
        thread = threading.Thread(target=held.release)
        thread.start()
        thread.join()
        again = self.lock(store, key)
        assert again.try_acquire()
        again.release()

    def test_lock_does_not_create_a_record(self, store: TokenStore) -> None:
        lock = self.lock(store, RecordKey(ISSUER, RESOURCE))
        assert lock.try_acquire()
        assert store.list_keys() == []
        lock.release()
        assert store.list_keys() == []
