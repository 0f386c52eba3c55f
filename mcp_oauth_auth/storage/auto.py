"""Choosing a store: the best one this machine offers, and a report of what is available here and why.

The choice is the OS keyring when it is usable (macOS Keychain, Windows Credential Manager, an unlocked Linux
Secret Service), else the encrypted file store. Nothing ever falls back to plaintext, and nothing prompts.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcp_oauth_auth.records import CredentialRecord, RecordKey
from mcp_oauth_auth.storage.base import RecordLock

if TYPE_CHECKING:
    from mcp_oauth_auth.storage.encrypted_file import EncryptedFileTokenStore
    from mcp_oauth_auth.storage.keyring_store import KeyringTokenStore

__all__ = ["AutoTokenStore", "BackendStatus", "default_store", "get_available_backends"]

logger = logging.getLogger("mcp_oauth_auth")


@dataclass(frozen=True)
class BackendStatus:
    """One storage backend on this machine: whether it can be used, and why (or why not) in a sentence."""

    name: str
    available: bool
    reason: str


def default_store() -> KeyringTokenStore | EncryptedFileTokenStore:
    """The OS keyring store when the keyring is usable, else the encrypted file store; the choice is logged."""
    from mcp_oauth_auth.storage.keyring_quick import keyring_out_of_reach

    reason = keyring_out_of_reach()  # (then keyring is not even imported)
    if reason is None:
        from mcp_oauth_auth.storage.keyring_store import KeyringTokenStore, probe_keyring

        status = probe_keyring()
        if status.usable:
            logger.info("storing credentials in the OS keyring (%s)", status.backend)
            return KeyringTokenStore()
        reason = status.reason
    from mcp_oauth_auth.storage.encrypted_file import EncryptedFileTokenStore

    store = EncryptedFileTokenStore()
    logger.info("storing credentials in %r: the OS keyring is not usable (%s)", store, reason)
    return store


def get_available_backends() -> list[BackendStatus]:
    """Every backend, in order of preference, with whether it works here and why (or why not)."""
    from mcp_oauth_auth.storage.keyring_probe import probe_keyring

    keyring_status = probe_keyring()
    keyring_reason = f"OS keyring via {keyring_status.backend}" if keyring_status.usable else keyring_status.reason
    return [
        BackendStatus("keyring", keyring_status.usable, keyring_reason),
        BackendStatus("encrypted_file", True, _encrypted_file_reason(keyring_status.usable)),
        _vault_status(),
        BackendStatus("memory", True, "in this process only: credentials are lost when it exits"),
    ]


def _encrypted_file_reason(keyring_usable: bool) -> str:
    if os.environ.get("MCP_OAUTH_PASSWORD"):
        return "AES-256-GCM files, key derived from MCP_OAUTH_PASSWORD"
    if keyring_usable:
        return "AES-256-GCM files, random key kept in the OS keyring"
    return "AES-256-GCM files, random key in a 0600 key file beside them (set MCP_OAUTH_PASSWORD for more)"


def _vault_status() -> BackendStatus:
    if importlib.util.find_spec("hvac") is None:
        return BackendStatus("vault", False, "hvac is not installed: pip install 'mcp-oauth-auth[vault]'")
    if not os.environ.get("VAULT_ADDR"):
        return BackendStatus("vault", False, "VAULT_ADDR is not set")
    if not (os.environ.get("VAULT_TOKEN") or (os.environ.get("VAULT_ROLE_ID") and os.environ.get("VAULT_SECRET_ID"))):
        return BackendStatus("vault", False, "neither VAULT_TOKEN nor VAULT_ROLE_ID and VAULT_SECRET_ID is set")
    return BackendStatus("vault", True, f"HashiCorp Vault KV v2 at {os.environ['VAULT_ADDR']}")


class AutoTokenStore:
    """The store :func:`default_store` chooses, chosen on first use rather than at construction.

    Creating an :class:`~mcp_oauth_auth.MCPOAuth` therefore costs no keyring probe, no D-Bus round trip and no file
    access; the first request that needs a credential pays for them once.
    """

    def __init__(self) -> None:
        self._chosen: KeyringTokenStore | EncryptedFileTokenStore | None = None
        self._mutex = threading.Lock()

    @property
    def chosen(self) -> KeyringTokenStore | EncryptedFileTokenStore:
        with self._mutex:
            if self._chosen is None:
                self._chosen = default_store()
            return self._chosen

    def load(self, key: RecordKey) -> CredentialRecord | None:
        return self.chosen.load(key)

    def save(self, record: CredentialRecord) -> None:
        self.chosen.save(record)

    def delete(self, key: RecordKey) -> None:
        self.chosen.delete(key)

    def list_keys(self) -> list[RecordKey]:
        return self.chosen.list_keys()

    def lock(self, key: RecordKey) -> RecordLock:
        return self.chosen.lock(key)

    def __repr__(self) -> str:
        return f"AutoTokenStore({self._chosen!r})" if self._chosen is not None else "AutoTokenStore(not chosen yet)"
