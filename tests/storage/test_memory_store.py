from __future__ import annotations

import pytest

from mcp_oauth_auth.storage import MemoryTokenStore
from tests.storage.contract import MakeStore, StoreContract


class TestMemoryStore(StoreContract):
    persistent = False

    @pytest.fixture
    def make_store(self) -> MakeStore:
        return MemoryTokenStore
