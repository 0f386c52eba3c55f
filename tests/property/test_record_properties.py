"""Stored records (records.py, storage/codec.py): round trips, hostile stored data, and no secret in any message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mcp_oauth_auth.exceptions import TokenStorageError
from mcp_oauth_auth.records import ClientRegistration, CredentialRecord, RecordKey, TokenSet
from mcp_oauth_auth.storage.codec import decode_record, encode_record

from .strategies import MARKER, hostile_bodies, json_values, plain_text, secrets

finite = st.floats(allow_nan=False, allow_infinity=False)
texts = st.text(max_size=30)
visible_ascii = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
text_tuples = st.lists(texts, max_size=3).map(tuple)

registrations = st.builds(
    ClientRegistration,
    client_id=texts,
    kind=st.sampled_from(["pre-registered", "client-metadata-document", "dynamic"]),
    token_endpoint_auth_method=texts,
    client_secret=st.one_of(st.none(), texts),
    redirect_uris=text_tuples,
    grant_types=text_tuples,
    client_secret_expires_at=st.one_of(st.none(), st.integers()),
    registration_access_token=st.one_of(st.none(), texts),
    registration_client_uri=st.one_of(st.none(), texts),
    scope=st.one_of(st.none(), texts),
)
token_sets = st.builds(
    TokenSet,
    access_token=visible_ascii,
    token_type=texts,
    expires_at=st.one_of(st.none(), finite),
    refresh_token=st.one_of(st.none(), texts),
    scope=st.one_of(st.none(), texts),
    id_token=st.one_of(st.none(), texts),
    issued_at=finite,
)
records = st.builds(
    CredentialRecord,
    issuer=texts,
    resource=texts,
    server_url=texts,
    client=registrations,
    token_endpoint=texts,
    tokens=st.one_of(st.none(), token_sets),
    requested_scopes=text_tuples,
    authorization_endpoint=st.one_of(st.none(), texts),
    revocation_endpoint=st.one_of(st.none(), texts),
    updated_at=finite,
    names=text_tuples,
)


@given(records)
def test_a_record_encoded_then_decoded_is_equal(record: CredentialRecord) -> None:
    assert decode_record(encode_record(record), "test", expected=record.key) == record
    assert decode_record(encode_record(record).decode(), "test") == record


@given(records)
def test_a_record_survives_its_dict_form(record: CredentialRecord) -> None:
    assert CredentialRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


@given(hostile_bodies)
@example(b"[" * 100_000)
@example(b'{"issuer":' * 100_000)
@example(b'{"format": 2}')
@example(b'{"format": true}')
def test_any_stored_bytes_are_a_record_or_a_storage_error(data: bytes) -> None:
    try:
        record = decode_record(data, "entry")
    except TokenStorageError:
        return
    assert isinstance(record, CredentialRecord)


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document where a value can be put."""
    found = [prefix]
    if isinstance(document, dict):
        for name, value in document.items():
            found.extend(_paths(value, (*prefix, name)))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(document) if isinstance(document, dict) else list(document)
    copy[path[0]] = _replaced(document[path[0]], path[1:], value)
    return copy


@given(records, st.data())
def test_a_stored_record_with_any_one_value_replaced_is_a_record_or_a_storage_error(
    record: CredentialRecord, data: st.DataObject
) -> None:
    document = record.to_dict()
    path = data.draw(st.sampled_from(_paths(document)))
    changed = _replaced(document, path, data.draw(json_values))
    try:
        decoded = decode_record(json.dumps(changed).encode(), "entry")
    except TokenStorageError:
        return
    assert isinstance(decoded, CredentialRecord)
    assert decode_record(encode_record(decoded), "entry") == decoded
    value = _at(changed, path)
    if not isinstance(value, (dict, list)):
        assert _same(_at(decoded.to_dict(), path), value), f"{path}: {value!r} was read as something else"


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


def _same(read: Any, stored: Any) -> bool:
    """Whether a scalar read from a record is the one stored: a boolean is not a number, nor a number a string."""
    if isinstance(read, bool) or isinstance(stored, bool):
        return type(read) is type(stored) and read == stored
    if isinstance(read, (int, float)) and isinstance(stored, (int, float)):
        return float(read) == float(stored)
    return type(read) is type(stored) and read == stored


@given(records, st.data())
def test_a_malformed_record_error_never_shows_the_values_found(record: CredentialRecord, data: st.DataObject) -> None:
    """A wrong value in a stored record may be a secret: the error names the field, never the value."""
    document = record.to_dict()
    path = data.draw(st.sampled_from([path for path in _paths(document) if path]))
    wrong = data.draw(
        st.one_of(
            secrets.map(lambda secret: {"value": secret}),
            secrets.map(lambda secret: [secret]) if path[-1] not in _LIST_FIELDS else st.nothing(),
            secrets.map(lambda secret: {secret: 1}),
            secrets if isinstance(path[-1], str) and path[-1] not in _STRING_FIELDS else st.nothing(),
        )
    )
    with pytest.raises(TokenStorageError) as raised:
        decode_record(json.dumps(_replaced(document, path, wrong)).encode(), "entry")
    assert MARKER not in str(raised.value)
    assert MARKER not in repr(raised.value)


#: The fields where any list of strings is valid.
_LIST_FIELDS = {"requested_scopes", "names", "redirect_uris", "grant_types"}
#: The fields where any string is valid: a secret there is just a value, not an error.
_STRING_FIELDS = {
    "issuer",
    "resource",
    "server_url",
    "token_endpoint",
    "authorization_endpoint",
    "revocation_endpoint",
    "client_id",
    "kind",
    "token_endpoint_auth_method",
    "client_secret",
    "registration_access_token",
    "registration_client_uri",
    "scope",
    "token_type",
    "refresh_token",
    "id_token",
    "access_token",
}


@given(secrets, secrets, secrets, secrets, secrets, plain_text)
def test_records_never_show_their_secrets(
    access_token: str, refresh_token: str, id_token: str, client_secret: str, registration_token: str, scope: str
) -> None:
    record = CredentialRecord(
        issuer="https://auth.example.com",
        resource="https://mcp.example.com/mcp",
        server_url="https://mcp.example.com/mcp",
        client=ClientRegistration(
            "client", "dynamic", "client_secret_post", client_secret, registration_access_token=registration_token
        ),
        token_endpoint="https://auth.example.com/token",
        tokens=TokenSet(access_token, refresh_token=refresh_token, id_token=id_token, scope=scope),
    )
    for text in (repr(record), str(record), repr(record.client), repr(record.tokens), str(record.key)):
        assert MARKER not in text


@given(records, records)
def test_a_record_stored_under_another_key_is_refused(record: CredentialRecord, other: CredentialRecord) -> None:
    key = RecordKey(other.issuer, other.resource)
    if key == record.key:
        assert decode_record(encode_record(record), "entry", expected=key) == record
    else:
        with pytest.raises(TokenStorageError, match="belongs to"):
            decode_record(encode_record(record), "entry", expected=key)
