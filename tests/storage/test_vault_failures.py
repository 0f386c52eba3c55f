"""How VaultTokenStore reports each way Vault or the network can fail, with a stand-in hvac client (the store
against a real KV v2 protocol server is tested in test_vault_store.py): every failure is a TokenStorageError that
says what happened and what to do, and never carries a credential."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import requests.exceptions
from hvac import exceptions as vault

from mcp_oauth_auth.exceptions import TokenStorageError
from mcp_oauth_auth.records import RecordKey
from mcp_oauth_auth.storage.vault import VaultTokenStore

KEY = RecordKey("https://auth.example.com", "https://mcp.example.com/mcp")


def client(read: Callable[..., Any], *, token: str = "s.token", login: Callable[..., Any] | None = None) -> Any:
    kv = SimpleNamespace(read_secret_version=read, list_secrets=read)
    return SimpleNamespace(
        token=token,
        url="https://vault.example.com:8200",
        adapter=SimpleNamespace(namespace="team"),
        secrets=SimpleNamespace(kv=SimpleNamespace(v2=kv)),
        auth=SimpleNamespace(approle=SimpleNamespace(login=login)),
    )


def raising(exc: Exception) -> Callable[..., Any]:
    def call(**_: Any) -> Any:
        raise exc

    return call


@pytest.mark.parametrize(
    ("exc", "message", "status"),
    [
        (vault.VaultDown(errors=["Vault is sealed"]), "is sealed; unseal it (vault operator unseal)", None),
        (vault.VaultDown(errors=["standby"]), "could not read secret/mcp-oauth/records/", 503),
        (vault.Unauthorized(errors=["permission denied"]), "check the mount (a KV version 2 engine)", 401),
        (vault.RateLimitExceeded(errors=[]), "RateLimitExceeded; try again later", 429),
        (vault.InternalServerError(errors=["boom"]), "boom; try again later; any stored record is unchanged", 500),
        (requests.exceptions.SSLError("bad certificate"), "TLS certificate of Vault", None),
        (requests.exceptions.ConnectionError("refused"), "is unreachable (ConnectionError) while trying to read", None),
        (requests.exceptions.Timeout("slow"), "is unreachable (Timeout)", None),
        (requests.exceptions.ChunkedEncodingError("cut"), "failed (ChunkedEncodingError)", None),
    ],
)
def test_each_failure_of_a_read_is_explained(exc: Exception, message: str, status: int | None) -> None:
    store = VaultTokenStore(client=client(raising(exc)))
    with pytest.raises(TokenStorageError) as raised:
        store.load(KEY)
    assert message in str(raised.value)
    assert raised.value.status_code == status
    assert "s.token" not in str(raised.value)


def test_no_engine_at_the_mount_and_a_missing_permission_are_explained() -> None:
    no_handler = vault.InvalidPath(errors=['no handler for route "kv/data/x". route entry not found.'])
    store = VaultTokenStore(client=client(raising(no_handler)), mount_point="kv")
    with pytest.raises(
        TokenStorageError, match=r"no secrets engine is mounted at 'kv/' on Vault at .* \(namespace 'team'\)"
    ):
        store.load(KEY)
    store = VaultTokenStore(client=client(raising(vault.Forbidden(errors=["permission denied"]))))
    with pytest.raises(TokenStorageError, match="the Vault token lacks permission on secret/mcp-oauth/records/"):
        store.load(KEY)


def test_a_listing_that_is_not_a_kv2_answer_is_reported() -> None:
    store = VaultTokenStore(client=client(lambda **_: {"data": {"keys": "not a list"}}))
    with pytest.raises(TokenStorageError, match="with an unexpected document; is 'secret' a KV version 2"):
        store.list_keys()
    store = VaultTokenStore(client=client(lambda **_: {"data": {"data": {}, "metadata": {"version": "1"}}}))
    with pytest.raises(TokenStorageError, match="unexpected document"):
        store.load(KEY)
    store = VaultTokenStore(client=client(lambda **_: {"data": {"data": ["x"], "metadata": {"version": 1}}}))
    with pytest.raises(TokenStorageError, match="unexpected document"):
        store.load(KEY)


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        (vault.VaultDown(errors=["Vault is sealed"]), "is sealed"),
        (vault.VaultDown(errors=["standby s3cr3t-id"]), "the AppRole login (auth/approle/login on Vault at"),
        (vault.InvalidRequest(errors=["invalid role or secret ID"]), "check the role ID and secret ID"),
        (requests.exceptions.ConnectionError("refused"), "is unreachable (ConnectionError) for the AppRole login"),
        ({"auth": None}, "returned no client token"),
    ],
)
def test_each_failure_of_the_approle_login_is_explained(outcome: Any, message: str) -> None:
    def login(**_: Any) -> Any:
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    never_read = raising(AssertionError("read before logging in"))
    store = VaultTokenStore(client=client(never_read, token="", login=login), role_id="role", secret_id="s3cr3t-id")
    with pytest.raises(TokenStorageError) as raised:
        store.load(KEY)
    assert message in str(raised.value)
    assert "s3cr3t-id" not in str(raised.value)


def test_bad_options_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TokenStorageError, match="mount_point must name the KV v2 secrets engine"):
        VaultTokenStore(client=client(raising(AssertionError())), mount_point="/")
    with pytest.raises(TokenStorageError, match="lock_ttl must be positive, not 0"):
        VaultTokenStore(client=client(raising(AssertionError())), lock_ttl=0)
    with pytest.raises(TokenStorageError, match="pass either client= or url="):
        VaultTokenStore("https://vault.example.com", client=client(raising(AssertionError())))
    with pytest.raises(TokenStorageError, match="an AppRole role_id is set but its secret_id"):
        VaultTokenStore("https://vault.example.com", role_id="role")
    with pytest.raises(TokenStorageError, match="an AppRole secret_id is set but its role_id"):
        VaultTokenStore("https://vault.example.com", secret_id="secret")
