"""Keyring entries (storage/keyring_store.py, keyring_chunks.py) hold text anyone with the keyring can edit: whatever
the index or a record entry holds, the store answers or raises TokenStorageError."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from mcp_oauth_auth.exceptions import TokenStorageError
from mcp_oauth_auth.records import RecordKey
from mcp_oauth_auth.storage.codec import record_id
from mcp_oauth_auth.storage.keyring_store import DEFAULT_SERVICE, KeyringTokenStore
from tests.storage.test_keyring_store import MemoryKeyring

from .strategies import json_values

KEY = RecordKey("https://auth.example.com", "https://mcp.example.com/mcp")
LOCKS = Path(tempfile.mkdtemp(prefix="mcp-oauth-keyring-locks-"))

entry_texts = st.one_of(
    st.text(max_size=100),
    json_values.map(json.dumps),
    json_values.map(lambda value: json.dumps({"v": 1, "inline": value})),
    st.fixed_dictionaries(
        {"v": st.integers(0, 3), "generation": json_values, "chunks": st.one_of(st.integers(-1, 3), json_values)}
    ).map(json.dumps),
    st.integers(min_value=1, max_value=100_000).map(lambda depth: "[" * depth),
)


def store_with(name: str, text: str) -> KeyringTokenStore:
    return KeyringTokenStore(backend=MemoryKeyring({(DEFAULT_SERVICE, name): text}), lock_dir=LOCKS)


@given(entry_texts)
@example("[" * 100_000)
@example('{"v": 1, "inline": ' + "[" * 100_000)
def test_any_index_entry_lists_keys_or_raises_a_storage_error(text: str) -> None:
    try:
        keys = store_with("index", text).list_keys()
    except TokenStorageError:
        return
    assert all(isinstance(key, RecordKey) for key in keys)


@given(entry_texts)
@example("[" * 100_000)
def test_any_record_entry_loads_or_raises_a_storage_error(text: str) -> None:
    try:
        record = store_with(f"record:{record_id(KEY)}", text).load(KEY)
    except TokenStorageError:
        return
    assert record is None or record.key == KEY
