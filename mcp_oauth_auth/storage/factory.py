"""TokenStoreFactory: stores by backend name, as chuk-mcp-client-oauth offered them (its ``vault_*`` option names
accepted)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.storage.auto import BackendStatus, get_available_backends
from mcp_oauth_auth.storage.backends import TokenStoreBackend, create_store
from mcp_oauth_auth.storage.base import TokenStore

__all__ = ["TokenStoreFactory", "create_store_with_options"]


def _store_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The seed's ``vault_url=``, ``vault_token=``, ... are our Vault store's ``url=``, ``token=``, ..."""
    return {name.removeprefix("vault_"): value for name, value in options.items()}


def create_store_with_options(backend: TokenStoreBackend | str, options: Mapping[str, Any]) -> TokenStore:
    try:
        return create_store(backend, **_store_options(options))
    except TypeError as exc:
        raise ConfigurationError(f"the {backend} credential store does not take these options: {exc}") from None


class TokenStoreFactory:
    """Stores by name, as chuk-mcp-client-oauth offered them."""

    @staticmethod
    def create(backend: TokenStoreBackend | str = TokenStoreBackend.AUTO, **options: Any) -> TokenStore:
        """A new store (see :func:`mcp_oauth_auth.storage.create_store`; ``vault_*`` option names are accepted)."""
        return create_store_with_options(backend, options)

    @staticmethod
    def get_available_backends() -> list[TokenStoreBackend]:
        """The backends that can store credentials on this machine now, best first (``AUTO`` is not listed)."""
        available = []
        for status in get_available_backends():
            if not status.available:
                continue
            if status.name == "keyring":
                keyring_backend = _platform_keyring(status.reason)
                if keyring_backend is not None:
                    available.append(keyring_backend)
            else:
                available.append(TokenStoreBackend(status.name))
        return available

    @staticmethod
    def describe_backends() -> list[BackendStatus]:
        """Every backend with whether it works here and why (or why not) — see
        :func:`mcp_oauth_auth.get_available_backends`."""
        return get_available_backends()


def _platform_keyring(description: str) -> TokenStoreBackend | None:
    """The named keyring backend of this platform, when the usable OS keyring is that one."""
    if sys.platform == "darwin":
        return TokenStoreBackend.KEYCHAIN
    if sys.platform == "win32":
        return TokenStoreBackend.CREDENTIAL_MANAGER
    if sys.platform.startswith("linux") and "secretservice" in description.lower().replace(" ", ""):
        return TokenStoreBackend.SECRET_SERVICE
    return None
