"""Stores by name: what ``--store BACKEND`` on the command line and ``TokenStoreBackend`` in the high-level API
mean, in one place."""

from __future__ import annotations

import enum
import sys
from typing import Any

from mcp_oauth_auth.exceptions import ConfigurationError, TokenStorageError
from mcp_oauth_auth.storage.base import TokenStore

__all__ = ["TokenStoreBackend", "create_store"]


class TokenStoreBackend(str, enum.Enum):
    """The credential stores by name. The three OS keyrings are one store over different platform keyrings."""

    AUTO = "auto"
    KEYCHAIN = "keychain"
    SECRET_SERVICE = "secret_service"
    CREDENTIAL_MANAGER = "credential_manager"
    VAULT = "vault"
    REDIS = "redis"
    ENCRYPTED_FILE = "encrypted_file"
    MEMORY = "memory"

    def __str__(self) -> str:
        return self.value


#: The ``keyring`` backend class of each platform keyring, and the platform it exists on.
_PLATFORM_KEYRINGS = {
    TokenStoreBackend.KEYCHAIN: ("keyring.backends.macOS", "Keyring", "darwin", "the macOS Keychain"),
    TokenStoreBackend.SECRET_SERVICE: ("keyring.backends.SecretService", "Keyring", "linux", "the Secret Service"),
    TokenStoreBackend.CREDENTIAL_MANAGER: (
        "keyring.backends.Windows",
        "WinVaultKeyring",
        "win32",
        "Windows Credential Manager",
    ),
}


def create_store(backend: TokenStoreBackend | str = TokenStoreBackend.AUTO, **options: Any) -> TokenStore:
    """A new store for ``backend`` (a :class:`TokenStoreBackend` or its value, e.g. ``"encrypted_file"``).

    ``options`` go to the store's constructor: ``directory``/``password`` for the encrypted file store (the
    high-level API's ``token_dir`` is accepted as ``directory``), ``url``/``token``/``mount_point``/... for Vault,
    ``url``/``password``/``prefix``/... for Redis (``url`` defaults to ``$MCP_OAUTH_REDIS_URL``), ``service`` for the
    keyrings. Unknown names raise :class:`ConfigurationError` listing the valid ones.
    """
    try:
        kind = TokenStoreBackend(backend)
    except ValueError:
        names = ", ".join(member.value for member in TokenStoreBackend)
        raise ConfigurationError(f"unknown credential store {backend!r}; choose one of: {names}") from None
    if "token_dir" in options:
        options["directory"] = options.pop("token_dir")
    if kind is TokenStoreBackend.AUTO:
        from mcp_oauth_auth.storage.auto import AutoTokenStore

        _no_options(kind, options)
        return AutoTokenStore()
    if kind is TokenStoreBackend.MEMORY:
        from mcp_oauth_auth.storage.memory import MemoryTokenStore

        _no_options(kind, options)
        return MemoryTokenStore()
    if kind is TokenStoreBackend.ENCRYPTED_FILE:
        from mcp_oauth_auth.storage.encrypted_file import EncryptedFileTokenStore

        return EncryptedFileTokenStore(**options)
    if kind is TokenStoreBackend.VAULT:
        from mcp_oauth_auth.storage.vault import VaultTokenStore

        return VaultTokenStore(**options)
    if kind is TokenStoreBackend.REDIS:
        from mcp_oauth_auth.storage.redis_store import RedisTokenStore

        return RedisTokenStore(**options)
    return _platform_keyring_store(kind, options)


def _platform_keyring_store(kind: TokenStoreBackend, options: dict[str, Any]) -> TokenStore:
    import importlib

    from mcp_oauth_auth.storage.keyring_store import KeyringTokenStore, probe_keyring

    module_name, class_name, platform, title = _PLATFORM_KEYRINGS[kind]
    if not sys.platform.startswith(platform):
        raise TokenStorageError(f"{title} is not available on {sys.platform}; use 'auto' or 'encrypted_file'")
    backend = getattr(importlib.import_module(module_name), class_name)()
    status = probe_keyring(backend)
    if not status.usable:
        raise TokenStorageError(f"{title} cannot store credentials here: {status.reason}")
    return KeyringTokenStore(backend=backend, **options)


def _no_options(kind: TokenStoreBackend, options: dict[str, Any]) -> None:
    if options:
        raise ConfigurationError(f"the {kind.value} store takes no options (got {', '.join(sorted(options))})")
