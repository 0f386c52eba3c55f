"""Choosing a store automatically, and reporting what is available here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from mcp_oauth_auth import MCPOAuth, get_available_backends
from mcp_oauth_auth.storage import (
    AutoTokenStore,
    EncryptedFileTokenStore,
    KeyringTokenStore,
    TokenStoreBackend,
    default_store,
)
from mcp_oauth_auth.storage.auto import BackendStatus
from mcp_oauth_auth.storage.factory import TokenStoreFactory
from mcp_oauth_auth.storage.keyring_store import probe_keyring
from tests.storage.contract import make_record
from tests.storage.test_keyring_store import MemoryKeyring


@pytest.fixture
def usable_keyring() -> Iterator[MemoryKeyring]:
    backend = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    probe_keyring.cache_clear()
    yield backend
    keyring.set_keyring(previous)
    probe_keyring.cache_clear()


def test_without_a_usable_keyring_the_encrypted_file_store_is_chosen(credential_home: Path) -> None:
    store = default_store()
    assert isinstance(store, EncryptedFileTokenStore)
    assert store.directory == credential_home


def test_a_usable_keyring_is_preferred(usable_keyring: MemoryKeyring) -> None:
    store = default_store()
    assert isinstance(store, KeyringTokenStore)
    record = make_record()
    store.save(record)
    assert store.load(record.key) == record
    assert usable_keyring.entries  # the record really went to the keyring


def test_available_backends_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    backends = {backend.name: backend for backend in get_available_backends()}
    assert list(backends) == ["keyring", "encrypted_file", "vault", "memory"]
    assert not backends["keyring"].available
    assert backends["keyring"].reason  # a sentence saying why, e.g. the fail backend
    assert backends["encrypted_file"].available
    assert "key file" in backends["encrypted_file"].reason
    assert not backends["vault"].available
    assert backends["vault"].reason == "VAULT_ADDR is not set"
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:8200")
    vault = {backend.name: backend for backend in get_available_backends()}["vault"]
    assert not vault.available
    assert "VAULT_TOKEN" in vault.reason
    monkeypatch.setenv("VAULT_TOKEN", "hvs.secret-token")
    vault = {backend.name: backend for backend in get_available_backends()}["vault"]
    assert vault.available
    assert "hvs.secret-token" not in vault.reason
    monkeypatch.setenv("MCP_OAUTH_PASSWORD", "correct horse")
    encrypted = {backend.name: backend for backend in get_available_backends()}["encrypted_file"]
    assert "MCP_OAUTH_PASSWORD" in encrypted.reason


def test_available_backends_with_a_usable_keyring(usable_keyring: MemoryKeyring) -> None:
    backends = {backend.name: backend for backend in get_available_backends()}
    assert backends["keyring"].available
    assert "keyring" in backends["encrypted_file"].reason


def test_the_choice_is_made_on_first_use_not_at_construction(credential_home: Path) -> None:
    auth = MCPOAuth("https://mcp.example.com/mcp")
    store = auth.store
    assert isinstance(store, AutoTokenStore)
    assert repr(store) == "AutoTokenStore(not chosen yet)"
    assert list(credential_home.iterdir()) == []  # nothing written by constructing
    assert store.list_keys() == []
    assert "EncryptedFileTokenStore" in repr(store)
    record = make_record()
    store.save(record)
    assert store.load(record.key) == record
    lock = store.lock(record.key)
    assert lock.try_acquire()
    lock.release()


@pytest.mark.parametrize(
    ("platform", "reason", "expected"),
    [
        ("darwin", "OS keyring via keyring.backends.macOS.Keyring", [TokenStoreBackend.KEYCHAIN]),
        ("win32", "OS keyring via keyring.backends.Windows.WinVaultKeyring", [TokenStoreBackend.CREDENTIAL_MANAGER]),
        ("linux", "OS keyring via keyring.backends.SecretService.Keyring", [TokenStoreBackend.SECRET_SERVICE]),
        ("linux", "OS keyring via Secret Service", [TokenStoreBackend.SECRET_SERVICE]),
        ("linux", "OS keyring via keyring.backends.kwallet.DBusKeyring", []),
        ("freebsd13", "OS keyring via keyring.backends.SecretService.Keyring", []),
    ],
)
def test_the_usable_os_keyring_is_listed_by_its_platform_name(
    monkeypatch: pytest.MonkeyPatch, platform: str, reason: str, expected: list[TokenStoreBackend]
) -> None:
    """TokenStoreFactory names the OS keyring the way chuk-mcp-client-oauth did: by the platform keyring it is;
    a keyring that is none of the three (KWallet, a third-party backend) is not listed under a wrong name."""
    from mcp_oauth_auth.storage import factory

    statuses = [
        BackendStatus("keyring", True, reason),
        BackendStatus("vault", False, "VAULT_ADDR is not set"),
        BackendStatus("encrypted_file", True, "works"),
    ]
    monkeypatch.setattr(factory, "get_available_backends", lambda: statuses)
    monkeypatch.setattr(factory.sys, "platform", platform)
    assert TokenStoreFactory.get_available_backends() == [*expected, TokenStoreBackend.ENCRYPTED_FILE]
    assert TokenStoreFactory.describe_backends() == statuses
