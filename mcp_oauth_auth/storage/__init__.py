"""Credential storage: the :class:`TokenStore` protocol and its backends.

The persistent backends are imported on first use, so that programs pay for ``keyring``, ``cryptography``,
``hvac`` or ``redis`` only when they store credentials with them.
"""

from typing import TYPE_CHECKING, Any

from mcp_oauth_auth.storage.base import LockingTokenStore, RecordLock, TokenStore
from mcp_oauth_auth.storage.memory import MemoryTokenStore

if TYPE_CHECKING:
    from mcp_oauth_auth.storage.auto import AutoTokenStore, BackendStatus, default_store, get_available_backends
    from mcp_oauth_auth.storage.backends import TokenStoreBackend, create_store
    from mcp_oauth_auth.storage.encrypted_file import EncryptedFileTokenStore
    from mcp_oauth_auth.storage.keyring_probe import KeyringStatus, probe_keyring
    from mcp_oauth_auth.storage.keyring_store import KeyringTokenStore
    from mcp_oauth_auth.storage.redis_store import RedisTokenStore
    from mcp_oauth_auth.storage.vault import VaultTokenStore

_LAZY = {
    "AutoTokenStore": "auto",
    "BackendStatus": "auto",
    "default_store": "auto",
    "get_available_backends": "auto",
    "EncryptedFileTokenStore": "encrypted_file",
    "KeyringStatus": "keyring_probe",
    "KeyringTokenStore": "keyring_store",
    "probe_keyring": "keyring_probe",
    "VaultTokenStore": "vault",
    "RedisTokenStore": "redis_store",
    "TokenStoreBackend": "backends",
    "create_store": "backends",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "AutoTokenStore",
    "BackendStatus",
    "EncryptedFileTokenStore",
    "KeyringStatus",
    "KeyringTokenStore",
    "LockingTokenStore",
    "MemoryTokenStore",
    "RecordLock",
    "RedisTokenStore",
    "TokenStore",
    "TokenStoreBackend",
    "VaultTokenStore",
    "create_store",
    "default_store",
    "get_available_backends",
    "probe_keyring",
]
