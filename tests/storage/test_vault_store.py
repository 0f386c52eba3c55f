"""The Vault store against a fake Vault (KV v2 over real loopback HTTP, through hvac)."""

from __future__ import annotations

import importlib
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator

import hvac
import pytest

from mcp_oauth_auth.exceptions import RecordConflictError, TokenStorageError
from mcp_oauth_auth.records import RecordKey
from mcp_oauth_auth.storage.codec import encode_record, record_id
from mcp_oauth_auth.storage.vault import VaultTokenStore
from tests.storage.contract import ISSUER, RESOURCE, MakeStore, StoreContract, make_record
from tests.storage.fake_vault import ROOT_TOKEN, FakeVault, serve_vault

pytestmark = pytest.mark.integration

KEY = RecordKey(ISSUER, RESOURCE)
RECORD_PATH = f"mcp-oauth/records/{record_id(KEY)}"
LOCK_PATH = f"mcp-oauth/locks/{record_id(KEY)}"
SECRET_TOKEN = "hvs.DISTINCTIVE-token-do-not-leak-5e1f"
SECRET_ID = "secret-id-DISTINCTIVE-do-not-leak-92c4"
ROLE_ID = "role-id-mcp-oauth"
VAULT_ENV = ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_NAMESPACE", "VAULT_ROLE_ID", "VAULT_SECRET_ID")


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeVault, str]]:
    fake = FakeVault(mounts=("secret", "kv"))
    with serve_vault(fake) as url:
        yield fake, url


@pytest.fixture
def vault(served: tuple[FakeVault, str], monkeypatch: pytest.MonkeyPatch) -> FakeVault:
    for name in VAULT_ENV:
        monkeypatch.delenv(name, raising=False)
    served[0].reset()
    return served[0]


@pytest.fixture
def url(served: tuple[FakeVault, str], vault: FakeVault) -> str:
    return served[1]


@pytest.fixture
def new_store(url: str) -> Callable[..., VaultTokenStore]:
    def make(**options: object) -> VaultTokenStore:
        options.setdefault("token", ROOT_TOKEN)
        return VaultTokenStore(url, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def closed_port_url() -> str:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connections are refused
    return f"http://127.0.0.1:{port}"


class TestVaultStoreContract(StoreContract):
    @pytest.fixture
    def make_store(self, url: str) -> MakeStore:
        return lambda: VaultTokenStore(url, token=ROOT_TOKEN)


def shown(exc: BaseException) -> str:
    """Everything a user could see of an exception: message, repr and the printed traceback."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(type(exc), exc, exc.__traceback__)])


# -- layout and check-and-set ------------------------------------------------------------------------------------


def test_layout_in_vault(vault: FakeVault, new_store: Callable[..., VaultTokenStore]) -> None:
    record = make_record()
    new_store().save(record)
    assert vault.secret_data(RECORD_PATH) == {"record": encode_record(record).decode()}
    assert vault.secret_data(f"mcp-oauth/locks/{record_id(KEY)}") is None


def test_prefix_and_mount_are_separate_locations(vault: FakeVault, new_store: Callable[..., VaultTokenStore]) -> None:
    record = make_record()
    new_store(path_prefix="/team/app/", mount_point="kv").save(record)
    assert vault.secret_data(f"team/app/records/{record_id(KEY)}", mount="kv") is not None
    assert new_store().load(KEY) is None
    assert new_store(path_prefix="team/app").load(KEY) is None  # same prefix, other mount
    assert new_store(path_prefix="team/app", mount_point="kv").load(KEY) == record


def test_two_hosts_never_overwrite_each_others_rotation(
    vault: FakeVault, new_store: Callable[..., VaultTokenStore]
) -> None:
    new_store().save(make_record(refresh_token="refresh-0"))
    host_a, host_b = new_store(), new_store()
    assert host_a.load(KEY) is not None
    assert host_b.load(KEY) is not None
    rotated_a = make_record(access_token="access-A", refresh_token="refresh-A")
    host_a.save(rotated_a)

    with pytest.raises(RecordConflictError, match="changed by another host") as caught:
        host_b.save(make_record(access_token="access-B", refresh_token="refresh-B"))
    assert RECORD_PATH in str(caught.value)
    assert new_store().load(KEY) == rotated_a
    with pytest.raises(RecordConflictError):  # still stale until it reads again
        host_b.save(make_record(access_token="access-B", refresh_token="refresh-B"))

    assert host_b.load(KEY) == rotated_a
    rotated_b = make_record(access_token="access-B2", refresh_token="refresh-B2")
    host_b.save(rotated_b)
    assert new_store().load(KEY) == rotated_b
    with pytest.raises(RecordConflictError):
        host_a.save(make_record(access_token="access-A2"))


def test_concurrent_creation_by_two_hosts(new_store: Callable[..., VaultTokenStore]) -> None:
    host_a, host_b = new_store(), new_store()
    assert host_a.load(KEY) is None
    assert host_b.load(KEY) is None
    host_a.save(make_record(access_token="from-A"))
    with pytest.raises(RecordConflictError):  # B saw no record: its save is "create only"
        host_b.save(make_record(access_token="from-B"))
    assert new_store().load(KEY) == make_record(access_token="from-A")


def test_record_deleted_by_another_host_is_a_conflict(new_store: Callable[..., VaultTokenStore]) -> None:
    host_a, host_b = new_store(), new_store()
    host_a.save(make_record())
    assert host_b.load(KEY) is not None
    host_a.delete(KEY)
    with pytest.raises(RecordConflictError):
        host_b.save(make_record(access_token="resurrected"))
    assert host_b.load(KEY) is None
    host_b.save(make_record(access_token="new"))
    assert host_a.load(KEY) == make_record(access_token="new")


def test_delete_then_save_again_on_the_same_and_another_store(new_store: Callable[..., VaultTokenStore]) -> None:
    store = new_store()
    store.save(make_record())
    store.delete(KEY)
    store.save(make_record(access_token="again"))  # after delete the path has no versions: cas=0 works
    other = new_store()
    other.delete(KEY)
    new_store().save(make_record(access_token="third"))
    assert other.load(KEY) == make_record(access_token="third")


def test_plain_save_without_load_replaces(vault: FakeVault, new_store: Callable[..., VaultTokenStore]) -> None:
    new_store().save(make_record(access_token="old"))
    new_store().save(make_record(access_token="new"))
    assert new_store().load(KEY) == make_record(access_token="new")


def test_soft_deleted_record_loads_as_none_and_can_be_saved(
    vault: FakeVault, new_store: Callable[..., VaultTokenStore], url: str
) -> None:
    new_store().save(make_record())
    client = hvac.Client(url=url, token=ROOT_TOKEN)
    client.secrets.kv.v2.delete_latest_version_of_secret(path=RECORD_PATH)  # vault kv delete: metadata stays
    store = new_store()
    assert store.load(KEY) is None
    assert store.list_keys() == []
    store.save(make_record(access_token="after-soft-delete"))
    assert new_store().load(KEY) == make_record(access_token="after-soft-delete")


def test_requests_per_operation(vault: FakeVault, new_store: Callable[..., VaultTokenStore]) -> None:
    store = new_store()
    store.save(make_record())
    vault.request_count = 0
    assert store.load(KEY) is not None
    assert vault.request_count == 1
    store.save(make_record(access_token="rotated"))
    assert vault.request_count == 2  # the remembered version makes the save a single check-and-set write
    assert vault.requests[-1] == ("POST", f"/v1/secret/data/{RECORD_PATH}")


def test_failed_write_keeps_the_previous_record(vault: FakeVault, new_store: Callable[..., VaultTokenStore]) -> None:
    store = new_store()
    store.save(make_record(access_token="kept"))
    vault.fail_next(1, 500)
    with pytest.raises(TokenStorageError, match="try again") as caught:
        store.save(make_record(access_token="lost"))
    assert caught.value.status_code == 500
    assert not isinstance(caught.value, RecordConflictError)
    assert store.load(KEY) == make_record(access_token="kept")


# -- record locks ------------------------------------------------------------------------------------------------


def test_lock_entry_content_and_removal(vault: FakeVault, new_store: Callable[..., VaultTokenStore]) -> None:
    lock = new_store(lock_ttl=30).lock(KEY)
    before = time.time()
    assert lock.try_acquire()
    entry = vault.secret_data(LOCK_PATH)
    assert entry is not None
    assert socket.gethostname() in entry["owner"]
    assert before + 29 <= entry["expires_at"] <= time.time() + 30
    assert lock.try_acquire()  # already held by this object
    lock.release()
    assert vault.secret_data(LOCK_PATH) is None
    assert ("DELETE", f"/v1/secret/metadata/{LOCK_PATH}") in vault.requests


def test_lock_is_exclusive_between_hosts_and_locks_of_one_host(new_store: Callable[..., VaultTokenStore]) -> None:
    store = new_store()
    holder, same_host, other_host = store.lock(KEY), store.lock(KEY), new_store().lock(KEY)
    assert holder.try_acquire()
    assert not same_host.try_acquire()
    assert not other_host.try_acquire()
    holder.release()
    assert other_host.try_acquire()
    other_host.release()


def test_expired_lock_is_taken_over(vault: FakeVault, new_store: Callable[..., VaultTokenStore]) -> None:
    dead = new_store(lock_ttl=0.8).lock(KEY)
    assert dead.try_acquire()  # its holder "dies": it never releases
    waiting = new_store(lock_ttl=30).lock(KEY)
    assert not waiting.try_acquire()
    time.sleep(0.9)
    assert waiting.try_acquire()
    entry = vault.secret_data(LOCK_PATH)
    assert entry is not None
    assert entry["expires_at"] > time.time() + 20
    waiting.release()
    assert vault.secret_data(LOCK_PATH) is None


def test_release_by_a_former_holder_keeps_the_new_owners_lock(
    vault: FakeVault, new_store: Callable[..., VaultTokenStore]
) -> None:
    slow = new_store(lock_ttl=0.8).lock(KEY)
    assert slow.try_acquire()
    time.sleep(0.9)
    owner = new_store().lock(KEY)
    assert owner.try_acquire()
    slow.release()  # it still believes it holds the lock; the entry is no longer its own
    assert vault.secret_data(LOCK_PATH) is not None
    assert not new_store().lock(KEY).try_acquire()
    owner.release()
    assert vault.secret_data(LOCK_PATH) is None


def test_own_expired_entry_is_left_for_the_next_contender(
    vault: FakeVault, new_store: Callable[..., VaultTokenStore]
) -> None:
    late = new_store(lock_ttl=0.8).lock(KEY)
    assert late.try_acquire()
    time.sleep(0.9)
    seen = len(vault.requests)
    late.release()  # someone may be taking an expired entry over right now: deleting it could delete theirs
    assert vault.requests[seen:] == [("GET", f"/v1/secret/data/{LOCK_PATH}")]
    assert vault.secret_data(LOCK_PATH) is not None
    assert new_store().lock(KEY).try_acquire()


def test_release_that_cannot_reach_vault_is_logged(
    vault: FakeVault, new_store: Callable[..., VaultTokenStore], caplog: pytest.LogCaptureFixture
) -> None:
    lock = new_store().lock(KEY)
    assert lock.try_acquire()
    vault.sealed = True
    with caplog.at_level("WARNING", logger="mcp_oauth_auth"):
        lock.release()
    assert f"secret/{LOCK_PATH}" in caplog.text
    assert "sealed" in caplog.text
    vault.sealed = False
    assert vault.secret_data(LOCK_PATH) is not None  # it expires by itself
    assert not new_store().lock(KEY).try_acquire()
    lock.release()  # no longer held: nothing to do
    assert vault.secret_data(LOCK_PATH) is not None


def test_release_of_an_unheld_lock_leaves_the_holders_entry(
    vault: FakeVault, new_store: Callable[..., VaultTokenStore]
) -> None:
    owner = new_store().lock(KEY)
    assert owner.try_acquire()
    other = new_store().lock(KEY)
    assert not other.try_acquire()
    other.release()
    assert vault.secret_data(LOCK_PATH) is not None
    assert not new_store().lock(KEY).try_acquire()
    owner.release()


def test_soft_deleted_or_unreadable_lock_entry_does_not_block_forever(
    vault: FakeVault, new_store: Callable[..., VaultTokenStore], url: str
) -> None:
    vault.write_raw(LOCK_PATH, {"owner": "someone", "expires_at": "not a number"})
    lock = new_store().lock(KEY)
    assert lock.try_acquire()
    lock.release()
    vault.write_raw(LOCK_PATH, {"owner": "someone", "expires_at": time.time() + 600})
    hvac.Client(url=url, token=ROOT_TOKEN).secrets.kv.v2.delete_latest_version_of_secret(path=LOCK_PATH)
    assert lock.try_acquire()
    lock.release()


# -- configuration -------------------------------------------------------------------------------------------------


def test_configuration_from_the_environment(
    vault: FakeVault, url: str, new_store: Callable[..., VaultTokenStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_ADDR", url)
    monkeypatch.setenv("VAULT_TOKEN", ROOT_TOKEN)
    monkeypatch.setenv("VAULT_NAMESPACE", "team-a")
    store = VaultTokenStore()
    store.save(make_record())
    assert vault.secret_data(RECORD_PATH, namespace="team-a") is not None
    assert vault.secret_data(RECORD_PATH) is None
    assert repr(store) == f"VaultTokenStore('{url}', mount='secret', prefix='mcp-oauth', namespace='team-a')"


def test_missing_address_or_credentials(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TokenStorageError, match="VAULT_ADDR"):
        VaultTokenStore(token=ROOT_TOKEN)
    with pytest.raises(TokenStorageError, match="VAULT_TOKEN") as caught:
        VaultTokenStore(url)
    assert "VAULT_ROLE_ID" in str(caught.value)
    monkeypatch.setenv("VAULT_ROLE_ID", ROLE_ID)
    with pytest.raises(TokenStorageError, match="secret_id"):
        VaultTokenStore(url)


def test_namespaces_are_isolated(new_store: Callable[..., VaultTokenStore]) -> None:
    team_a = new_store(namespace="team-a")
    team_a.save(make_record())
    assert new_store(namespace="team-b").load(KEY) is None
    assert new_store(namespace="team-b").list_keys() == []
    assert new_store().load(KEY) is None
    assert new_store(namespace="team-a").list_keys() == [KEY]


def test_approle_login_and_relogin_after_expiry(vault: FakeVault, url: str) -> None:
    vault.add_approle(ROLE_ID, SECRET_ID)
    store = VaultTokenStore(url, role_id=ROLE_ID, secret_id=SECRET_ID)
    assert vault.logins == 0  # no network work before first use
    store.save(make_record())
    assert vault.logins == 1
    assert store.load(KEY) == make_record()
    assert vault.logins == 1
    for token in vault.tokens() - {ROOT_TOKEN}:
        vault.expire_token(token)
    assert store.load(KEY) == make_record()
    assert vault.logins == 2


def test_approle_from_the_environment(vault: FakeVault, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    vault.add_approle(ROLE_ID, SECRET_ID)
    monkeypatch.setenv("VAULT_ADDR", url)
    monkeypatch.setenv("VAULT_ROLE_ID", ROLE_ID)
    monkeypatch.setenv("VAULT_SECRET_ID", SECRET_ID)
    VaultTokenStore().save(make_record())
    assert vault.logins == 1
    assert VaultTokenStore(token=ROOT_TOKEN).load(KEY) == make_record()


def test_approle_wrong_secret_id(vault: FakeVault, url: str) -> None:
    vault.add_approle(ROLE_ID, "the-right-one")
    store = VaultTokenStore(url, role_id=ROLE_ID, secret_id=SECRET_ID)
    with pytest.raises(TokenStorageError, match="AppRole login") as caught:
        store.load(KEY)
    assert "VAULT_SECRET_ID" in str(caught.value)
    assert SECRET_ID not in shown(caught.value)
    assert SECRET_ID not in repr(store)


def test_permission_denied_is_retried_once_after_a_new_approle_login(vault: FakeVault, url: str) -> None:
    vault.add_approle(ROLE_ID, SECRET_ID)
    store = VaultTokenStore(url, role_id=ROLE_ID, secret_id=SECRET_ID)
    store.save(make_record())
    vault.fail_next(1, 403, "permission denied")
    assert store.load(KEY) == make_record()
    assert vault.logins == 2
    vault.fail_next(2, 403, "permission denied", path="/data/")  # the new token is refused too: no third login
    with pytest.raises(TokenStorageError, match="lacks permission"):
        store.load(KEY)
    assert vault.logins == 3


def test_given_hvac_client(vault: FakeVault, url: str) -> None:
    client = hvac.Client(url=url, token=ROOT_TOKEN, namespace="team-c")
    store = VaultTokenStore(client=client)
    store.save(make_record())
    assert vault.secret_data(RECORD_PATH, namespace="team-c") is not None
    with pytest.raises(TokenStorageError, match="either client"):
        VaultTokenStore(url, client=client)


def test_missing_hvac_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setitem(sys.modules, "hvac", None)  # "import hvac" now raises ImportError
    monkeypatch.delitem(sys.modules, "mcp_oauth_auth.storage.vault")
    module = importlib.import_module("mcp_oauth_auth.storage.vault")  # importing works without hvac
    with pytest.raises(TokenStorageError) as caught:
        module.VaultTokenStore(url, token=ROOT_TOKEN)
    assert str(caught.value) == "the Vault store needs hvac: pip install 'mcp-oauth-auth[vault]'"


# -- failures ------------------------------------------------------------------------------------------------------


def test_wrong_token_is_a_permission_error(vault: FakeVault, new_store: Callable[..., VaultTokenStore]) -> None:
    store = new_store(token=SECRET_TOKEN)
    for operation in (lambda: store.load(KEY), lambda: store.save(make_record()), store.list_keys):
        with pytest.raises(TokenStorageError, match="lacks permission on secret/mcp-oauth") as caught:
            operation()
        message = str(caught.value)
        assert "grant read/create/update/delete/list" in message
        assert "secret/data/mcp-oauth/*" in message
        assert "secret/metadata/mcp-oauth/*" in message
        assert SECRET_TOKEN not in shown(caught.value)


def test_sealed_vault(vault: FakeVault, new_store: Callable[..., VaultTokenStore]) -> None:
    store = new_store()
    store.save(make_record())
    vault.sealed = True
    with pytest.raises(TokenStorageError, match="is sealed; unseal it"):
        store.load(KEY)
    lock = store.lock(KEY)
    with pytest.raises(TokenStorageError, match="sealed"):
        lock.try_acquire()
    vault.sealed = False
    assert store.load(KEY) == make_record()


def test_unreachable_vault(closed_port_url: str) -> None:
    store = VaultTokenStore(closed_port_url, token=SECRET_TOKEN, timeout=2)
    for operation in (lambda: store.load(KEY), lambda: store.save(make_record()), store.list_keys):
        with pytest.raises(TokenStorageError, match=f"Vault at {closed_port_url} is unreachable") as caught:
            operation()
        assert SECRET_TOKEN not in shown(caught.value)
    lock = store.lock(KEY)
    with pytest.raises(TokenStorageError, match="unreachable"):
        lock.try_acquire()
    lock.release()  # not held: nothing to do


def test_vault_that_does_not_answer() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog, but nothing ever answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(TokenStorageError, match=f"Vault at {url} is unreachable \\(ReadTimeout\\)"):
            VaultTokenStore(url, token=SECRET_TOKEN, timeout=0.3).load(KEY)
        assert time.monotonic() - started < 5


def test_missing_mount(new_store: Callable[..., VaultTokenStore]) -> None:
    with pytest.raises(TokenStorageError, match="no secrets engine is mounted at 'nope/'"):
        new_store(mount_point="nope").load(KEY)


@pytest.mark.parametrize(
    "data",
    [
        {"record": "{not json"},
        {"record": '{"format": 1, "issuer": "https://auth.example.com"}'},
        {"something": "else"},
    ],
)
def test_corrupt_record_is_reported_and_kept(
    vault: FakeVault, new_store: Callable[..., VaultTokenStore], data: dict[str, str]
) -> None:
    vault.write_raw(RECORD_PATH, data)
    store = new_store()
    with pytest.raises(TokenStorageError, match=f"secret/{RECORD_PATH}") as caught:
        store.load(KEY)
    assert "left untouched" in str(caught.value)
    with pytest.raises(TokenStorageError, match=f"secret/{RECORD_PATH}"):
        store.list_keys()
    assert vault.secret_data(RECORD_PATH) == data


def test_record_under_a_foreign_name_is_reported(vault: FakeVault, new_store: Callable[..., VaultTokenStore]) -> None:
    vault.write_raw("mcp-oauth/records/renamed", {"record": encode_record(make_record()).decode()})
    with pytest.raises(TokenStorageError, match="move or delete it"):
        new_store().list_keys()


def test_subfolders_under_records_are_ignored(vault: FakeVault, new_store: Callable[..., VaultTokenStore]) -> None:
    vault.write_raw("mcp-oauth/records/folder/inner", {"x": "y"})
    store = new_store()
    assert store.list_keys() == []
    store.save(make_record())
    assert store.list_keys() == [KEY]


def test_no_secret_in_any_message_or_repr(
    vault: FakeVault, url: str, closed_port_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault.add_token(SECRET_TOKEN)
    store = VaultTokenStore(url, token=SECRET_TOKEN)
    assert SECRET_TOKEN not in repr(store)
    assert repr(store) == f"VaultTokenStore('{url}', mount='secret', prefix='mcp-oauth')"
    assert SECRET_TOKEN not in repr(store.lock(KEY))
    failures: list[TokenStorageError] = []
    for switch in (
        lambda: vault.fail_next(1, 500, f"echo of {SECRET_TOKEN}"),  # even if something echoed it
        lambda: vault.fail_next(1, 400, "invalid request"),
        lambda: vault.fail_next(1, 429, "rate limited"),
        lambda: vault.fail_next(1, 503, "Vault is sealed"),
        lambda: vault.write_raw(RECORD_PATH, {"record": "{broken"}),
    ):
        switch()
        with pytest.raises(TokenStorageError) as caught:
            store.load(KEY)
        failures.append(caught.value)
    vault.expire_token(SECRET_TOKEN)
    with pytest.raises(TokenStorageError) as caught:
        store.load(KEY)
    failures.append(caught.value)
    with pytest.raises(TokenStorageError) as caught:
        VaultTokenStore(closed_port_url, token=SECRET_TOKEN).load(KEY)
    failures.append(caught.value)
    for failure in failures:
        assert SECRET_TOKEN not in shown(failure)
    assert "***" in str(failures[0])
