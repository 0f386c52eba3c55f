"""The encrypted file store's plain-text parts (storage/encrypted_format.py): store.json and the record envelopes
are read from disk before any decryption, so they are hostile input too (a truncated write, a hand edit)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mcp_oauth_auth.exceptions import TokenStorageError
from mcp_oauth_auth.records import RecordKey
from mcp_oauth_auth.storage.encrypted_format import (
    KEY_BYTES,
    KEYRING,
    PASSWORD,
    Envelope,
    StoreInfo,
    listed_key,
    parse_envelope,
    parse_store_info,
    seal_key_check,
    seal_record,
)

from .strategies import hostile_bodies, json_values, with_field

PATH = Path("/home/someone/.mcp_oauth/records/abc.rec")
STORE = Path("/home/someone/.mcp_oauth/store.json")
MASTER = bytes(range(KEY_BYTES))


def store_info(source: str = PASSWORD) -> StoreInfo:
    nonce, ciphertext = seal_key_check(MASTER)
    extra: dict[str, Any] = {"salt": os.urandom(16), "n": 2**14, "r": 8, "p": 1} if source == PASSWORD else {}
    return StoreInfo(source, "store-1", nonce, ciphertext, **extra)


@given(hostile_bodies)
@example(b"[" * 100_000)
@example(b'{"format":' * 100_000)
@example(b'{"format": 2}')
def test_any_store_json_is_store_info_or_a_storage_error(data: bytes) -> None:
    try:
        info = parse_store_info(data, STORE, STORE.parent)
    except TokenStorageError:
        return
    assert isinstance(info, StoreInfo)


@given(hostile_bodies)
@example(b"[" * 100_000)
@example(b'{"format": 2, "issuer": "i", "resource": "r"}')
def test_any_record_file_is_an_envelope_or_a_storage_error(data: bytes) -> None:
    try:
        envelope = parse_envelope(data, PATH)
    except TokenStorageError:
        key = listed_key(data, PATH)
        assert key is None or isinstance(key, RecordKey)
        return
    assert isinstance(envelope, Envelope)
    assert listed_key(data, PATH) == envelope.key


@given(st.sampled_from([PASSWORD, KEYRING]), st.data())
def test_store_json_round_trips_and_any_one_field_changed_is_still_read_safely(
    source: str, data: st.DataObject
) -> None:
    info = store_info(source)
    assert parse_store_info(info.to_json(), STORE, STORE.parent) == info
    document = json.loads(info.to_json())
    name = data.draw(st.sampled_from([*document, "kdf.n", "kdf.r", "kdf.p", "kdf.salt", "key_check.nonce"]))
    value = data.draw(json_values)
    if "." in name and source == PASSWORD:
        outer, inner = name.split(".")
        document[outer] = with_field(document[outer], inner, value)
    else:
        document[name] = value
    try:
        parsed = parse_store_info(json.dumps(document).encode(), STORE, STORE.parent)
    except TokenStorageError as exc:
        message = str(exc)
        assert str(STORE) in message or "newer mcp-oauth-auth" in message
        return
    assert isinstance(parsed, StoreInfo)
    if parsed.key_source == PASSWORD:
        assert parsed.n >= 2
        assert parsed.n & (parsed.n - 1) == 0
        assert 128 * parsed.n * parsed.r <= 1 << 30


@given(st.text(max_size=30), st.text(max_size=30), st.none() | st.text(max_size=30), st.binary(max_size=64))
def test_a_sealed_record_parses_back_to_its_key_and_opens_to_its_plaintext(
    issuer: str, resource: str, account: str | None, plaintext: bytes
) -> None:
    key = RecordKey(issuer, resource, account)
    sealed = seal_record(plaintext, key, MASTER)
    envelope = parse_envelope(sealed, PATH)
    assert envelope.key == key
    assert listed_key(sealed, PATH) == key
    assert envelope.open(MASTER, PATH) == plaintext


@given(st.integers(min_value=1, max_value=30), st.integers(min_value=1, max_value=64))
def test_scrypt_parameters_beyond_a_gibibyte_are_refused(log_n: int, r: int) -> None:
    """A store.json is not trusted to make the process allocate any amount of memory to derive its key."""
    document = json.loads(store_info(PASSWORD).to_json())
    document["kdf"].update(n=2**log_n, r=r, p=1)
    data = json.dumps(document).encode()
    if 128 * 2**log_n * r > 1 << 30:
        with pytest.raises(TokenStorageError, match="invalid scrypt parameters"):
            parse_store_info(data, STORE, STORE.parent)
    else:
        assert parse_store_info(data, STORE, STORE.parent).n == 2**log_n
