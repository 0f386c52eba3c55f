"""Credential storage: the :class:`TokenStore` protocol and its backends."""

from mcp_oauth_auth.storage.base import LockingTokenStore, RecordLock, TokenStore
from mcp_oauth_auth.storage.memory import MemoryTokenStore

__all__ = ["LockingTokenStore", "MemoryTokenStore", "RecordLock", "TokenStore"]
