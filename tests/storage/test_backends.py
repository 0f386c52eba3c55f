"""Stores by name (create_store / TokenStoreBackend)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mcp_oauth_auth.exceptions import ConfigurationError, TokenStorageError
from mcp_oauth_auth.storage import (
    AutoTokenStore,
    EncryptedFileTokenStore,
    MemoryTokenStore,
    TokenStoreBackend,
    VaultTokenStore,
    create_store,
)


def test_names_and_members() -> None:
    assert [member.value for member in TokenStoreBackend] == [
        "auto",
        "keychain",
        "secret_service",
        "credential_manager",
        "vault",
        "redis",
        "encrypted_file",
        "memory",
    ]
    assert isinstance(create_store(), AutoTokenStore)
    assert isinstance(create_store("memory"), MemoryTokenStore)
    assert isinstance(create_store(TokenStoreBackend.MEMORY), MemoryTokenStore)


def test_encrypted_file_options(tmp_path: Path) -> None:
    store = create_store("encrypted_file", token_dir=tmp_path, password="pw")
    assert isinstance(store, EncryptedFileTokenStore)
    assert store.directory == tmp_path
    assert "password" in repr(store)


def test_vault_options() -> None:
    store = create_store("vault", url="http://127.0.0.1:8200", token="hvs.x", mount_point="kv")
    assert isinstance(store, VaultTokenStore)
    assert "kv" in repr(store)


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError, match="encrypted_file"):
        create_store("plaintext")
    with pytest.raises(ConfigurationError, match="takes no options"):
        create_store("memory", password="x")


def test_a_platform_keyring_elsewhere_is_refused() -> None:
    foreign = "keychain" if not sys.platform.startswith("darwin") else "credential_manager"
    with pytest.raises(TokenStorageError, match="not available"):
        create_store(foreign)


def test_secret_service_unusable_here_says_why() -> None:
    if not sys.platform.startswith("linux"):
        pytest.fail("this suite runs on Linux")
    # The tests run without a session bus unless a test starts a private one.
    with pytest.raises(TokenStorageError, match="cannot store credentials here"):
        create_store("secret_service")
