"""Stored records with fields of the wrong type are reported as damaged when read, never as a TypeError later.

Records in the OS keyring and in Vault are plain JSON that people and other tools can edit. Every field is checked
when a record is decoded; the error names the field and the expected type, never the value (it may be a secret).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_oauth_auth import EncryptedFileTokenStore, MCPOAuth, RetryPolicy
from mcp_oauth_auth.exceptions import TokenStorageError
from mcp_oauth_auth.records import ClientRegistration, CredentialRecord, RecordFormatError, RecordKey, TokenSet
from mcp_oauth_auth.storage import TokenStore, encrypted_file, master_key
from mcp_oauth_auth.storage.codec import decode_record, encode_record
from mcp_oauth_auth.storage.keyring_store import KeyringTokenStore
from mcp_oauth_auth.testing import FakeMCPStack
from tests.storage.contract import ISSUER, RESOURCE, make_record
from tests.storage.crash_writer import TEST_SCRYPT_N
from tests.storage.test_keyring_store import MemoryKeyring

WHERE = "the test entry"
SECRET = "SECRET-MARKER-9f3a"
#: Every secret value of ``make_record()`` (to check that none appears in an error message).
RECORD_SECRETS = ("access-token-VALUE-1", "refresh-token-VALUE-1", "client-secret-VALUE", "registration-token-VALUE")
MISSING = object()
FAST = RetryPolicy(attempts=2, base_delay=0.0)


def document() -> dict[str, Any]:
    """``make_record()`` as stored, with an id_token so that every secret field is present."""
    data = json.loads(encode_record(make_record(id_token="id-token-VALUE-1")))
    assert isinstance(data, dict)
    return data


def damaged(path: tuple[str, ...], value: object) -> bytes:
    """The stored form of ``make_record()`` with the field at ``path`` set to ``value`` (or removed: MISSING)."""
    data = document()
    parent = data
    for name in path[:-1]:
        parent = parent[name]
    if value is MISSING:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return json.dumps(data).encode()


def assert_reported(data: bytes, field: str, expected: str) -> TokenStorageError:
    with pytest.raises(TokenStorageError) as caught:
        decode_record(data, WHERE, RecordKey(ISSUER, RESOURCE))
    message = str(caught.value)
    assert type(caught.value) is TokenStorageError
    assert f"the credential record {WHERE} is incomplete or malformed: {field} " in message
    assert expected in message
    for secret in (SECRET, "id-token-VALUE-1", *RECORD_SECRETS):
        assert secret not in message
        assert secret not in repr(caught.value)
    return caught.value


# (path in the document, wrong value, field named in the error, expected type named in the error)
Case = tuple[tuple[str, ...], object, str, str]

TOKEN_SET_CASES: list[Case] = [
    (("tokens", "access_token"), SECRET + "\r\nX-Injected: 1", "tokens.access_token", "printable ASCII"),
    (("tokens", "access_token"), SECRET + "\u20ac", "tokens.access_token", "printable ASCII"),
    (("tokens", "access_token"), "", "tokens.access_token", "non-empty string of printable ASCII"),
    (("tokens", "expires_at"), SECRET, "tokens.expires_at", "must be a finite number or null (found a string)"),
    (("tokens", "expires_at"), True, "tokens.expires_at", "(found a boolean)"),
    (("tokens", "expires_at"), float("nan"), "tokens.expires_at", "a finite number or null (found NaN"),
    (("tokens", "expires_at"), float("inf"), "tokens.expires_at", "a finite number or null (found NaN"),
    (("tokens", "expires_at"), 10**400, "tokens.expires_at", "out-of-range number"),
    (("tokens", "expires_at"), [SECRET], "tokens.expires_at", "(found a list)"),
    (("tokens", "issued_at"), SECRET, "tokens.issued_at", "must be a finite number (found a string)"),
    (("tokens", "issued_at"), None, "tokens.issued_at", "must be a finite number (found null)"),
    (("tokens", "issued_at"), False, "tokens.issued_at", "(found a boolean)"),
    (("tokens", "issued_at"), float("-inf"), "tokens.issued_at", "(found NaN"),
    (("tokens", "access_token"), 5, "tokens.access_token", "must be a string (found a number)"),
    (("tokens", "access_token"), [SECRET], "tokens.access_token", "must be a string (found a list)"),
    (("tokens", "access_token"), None, "tokens.access_token", "must be a string (found null)"),
    (("tokens", "access_token"), MISSING, "tokens.access_token", "is missing (expected a string)"),
    (("tokens", "refresh_token"), {"value": SECRET}, "tokens.refresh_token", "a string or null (found an object)"),
    (("tokens", "id_token"), 1, "tokens.id_token", "a string or null (found a number)"),
    (("tokens", "token_type"), None, "tokens.token_type", "must be a string (found null)"),
    (("tokens", "scope"), ["mcp:read"], "tokens.scope", "a string or null (found a list)"),
]

CLIENT_CASES: list[Case] = [
    (("client", "client_id"), 5, "client.client_id", "must be a string (found a number)"),
    (("client", "client_id"), MISSING, "client.client_id", "is missing (expected a string)"),
    (("client", "kind"), True, "client.kind", "must be a string (found a boolean)"),
    (("client", "token_endpoint_auth_method"), 0, "client.token_endpoint_auth_method", "must be a string"),
    (("client", "client_secret"), [SECRET], "client.client_secret", "a string or null (found a list)"),
    (("client", "redirect_uris"), 5, "client.redirect_uris", "must be a list of strings (found a number)"),
    (("client", "redirect_uris"), SECRET, "client.redirect_uris", "must be a list of strings (found a string)"),
    (("client", "redirect_uris"), ["http://127.0.0.1/cb", 5], "client.redirect_uris[1]", "must be a string"),
    (("client", "grant_types"), None, "client.grant_types", "must be a list of strings (found null)"),
    (("client", "client_secret_expires_at"), SECRET, "client.client_secret_expires_at", "an integer or null"),
    (("client", "client_secret_expires_at"), 1.5, "client.client_secret_expires_at", "an integer or null"),
    (("client", "client_secret_expires_at"), True, "client.client_secret_expires_at", "(found a boolean)"),
    (("client", "registration_access_token"), 5, "client.registration_access_token", "a string or null"),
    (("client", "registration_client_uri"), {}, "client.registration_client_uri", "a string or null"),
    (("client", "scope"), ["mcp:read"], "client.scope", "a string or null (found a list)"),
]

RECORD_CASES: list[Case] = [
    (("issuer",), 5, "issuer", "must be a string (found a number)"),
    (("resource",), None, "resource", "must be a string (found null)"),
    (("resource",), MISSING, "resource", "is missing (expected a string)"),
    (("server_url",), 5, "server_url", "must be a string (found a number)"),
    (("token_endpoint",), 5, "token_endpoint", "must be a string (found a number)"),
    (("token_endpoint",), MISSING, "token_endpoint", "is missing (expected a string)"),
    (("client",), SECRET, "client", "must be an object (found a string)"),
    (("client",), MISSING, "client", "is missing (expected an object)"),
    (("tokens",), SECRET, "tokens", "must be an object (found a string)"),
    (("tokens",), [], "tokens", "must be an object (found a list)"),
    (("requested_scopes",), "mcp:read mcp:write", "requested_scopes", "must be a list of strings (found a string)"),
    (("requested_scopes",), ["mcp:read", None], "requested_scopes[1]", "must be a string (found null)"),
    (("authorization_endpoint",), 5, "authorization_endpoint", "a string or null (found a number)"),
    (("revocation_endpoint",), True, "revocation_endpoint", "a string or null (found a boolean)"),
    (("updated_at",), SECRET, "updated_at", "must be a finite number (found a string)"),
    (("updated_at",), float("inf"), "updated_at", "(found NaN"),
    (("format",), "1", "format", "must be a positive integer"),
    (("format",), True, "format", "must be a positive integer"),
    (("format",), 0, "format", "must be a positive integer"),
    (("format",), 1.0, "format", "must be a positive integer"),
]

NAMES_CASES: list[Case] = [
    (("names",), "work", "names", "must be a list of strings (found a string)"),
    (("names",), None, "names", "must be a list of strings (found null)"),
    (("names",), {"work": True}, "names", "must be a list of strings (found an object)"),
    (("names",), ["work", 5], "names[1]", "must be a string (found a number)"),
    (("names",), [["nested"]], "names[0]", "must be a string (found a list)"),
]


RENEWAL_CASES: list[Case] = [
    (("renewal",), SECRET, "renewal", "must be an object or null (found a string)"),
    (("renewal",), ["jwt-bearer"], "renewal", "must be an object or null (found a list)"),
    (("renewal",), {"grant": "id-jag", "idp_client_secret_env": 5}, "renewal.idp_client_secret_env", "a number"),
    (("renewal",), {"assertion_file": None}, "renewal.assertion_file", "must be a string (found null)"),
]


def case_id(case: Case) -> str:
    path, value, _, _ = case
    shown = "missing" if value is MISSING else type(value).__name__
    return f"{'.'.join(path)}={shown}"


@pytest.mark.parametrize("case", TOKEN_SET_CASES, ids=case_id)
def test_token_set_fields(case: Case) -> None:
    path, value, field, expected = case
    assert_reported(damaged(path, value), field, expected)


@pytest.mark.parametrize("case", CLIENT_CASES, ids=case_id)
def test_client_registration_fields(case: Case) -> None:
    path, value, field, expected = case
    assert_reported(damaged(path, value), field, expected)


@pytest.mark.parametrize("case", RECORD_CASES, ids=case_id)
def test_credential_record_fields(case: Case) -> None:
    path, value, field, expected = case
    assert_reported(damaged(path, value), field, expected)


@pytest.mark.parametrize("case", NAMES_CASES, ids=case_id)
def test_names(case: Case) -> None:
    path, value, field, expected = case
    assert_reported(damaged(path, value), field, expected)


@pytest.mark.parametrize("case", RENEWAL_CASES, ids=case_id)
def test_renewal(case: Case) -> None:
    path, value, field, expected = case
    assert_reported(damaged(path, value), field, expected)


def test_a_renewal_note_reads_back_and_is_absent_from_other_records() -> None:
    note = {"grant": "jwt-bearer", "assertion_file": "/var/run/secrets/tokens/mcp"}
    record = replace(make_record(), renewal=note)
    assert decode_record(encode_record(record), WHERE, record.key) == record
    assert json.loads(encode_record(record))["renewal"] == note
    assert "renewal" not in json.loads(encode_record(make_record()))
    assert decode_record(encode_record(make_record()), WHERE).renewal is None
    assert "assertion_file" in repr(record)  # nothing secret: the repr may show it


def test_a_secret_in_the_wrong_field_is_not_shown() -> None:
    """Secrets moved into fields that expect numbers or lists (a hand edit gone wrong) stay out of the message."""
    data = document()
    data["tokens"]["expires_at"] = data["tokens"]["access_token"]
    data["tokens"]["issued_at"] = data["tokens"]["refresh_token"]
    data["client"]["redirect_uris"] = data["client"]["client_secret"]
    error = assert_reported(json.dumps(data).encode(), "client.redirect_uris", "a list of strings (found a string)")
    assert error.__cause__ is None
    assert error.__suppress_context__  # no traceback chained to the error shows the value either


def test_from_dict_raises_a_value_error_naming_the_field_path() -> None:
    """Outside the stores, ``from_dict`` raises RecordFormatError (a ValueError) with the field's path."""
    with pytest.raises(RecordFormatError) as caught:
        TokenSet.from_dict({"access_token": "a", "expires_at": "soon"})
    assert isinstance(caught.value, ValueError)
    assert (caught.value.field, caught.value.expected, caught.value.found) == (
        "expires_at",
        "a finite number or null",
        "a string",
    )
    with pytest.raises(RecordFormatError, match=r"^redirect_uris must be a list of strings \(found a number\)$"):
        ClientRegistration.from_dict({"client_id": "c", "kind": "dynamic", "redirect_uris": 5})
    data = document()
    data["client"]["grant_types"] = ["authorization_code", 7]
    with pytest.raises(RecordFormatError) as nested:
        CredentialRecord.from_dict(data)
    assert nested.value.field == "client.grant_types[1]"
    copy = pickle.loads(pickle.dumps(nested.value))
    assert (type(copy), str(copy), copy.field) == (RecordFormatError, str(nested.value), nested.value.field)


# -- what must keep working ---------------------------------------------------------------------------------------


def test_a_record_written_now_reads_back_equal() -> None:
    record = make_record(id_token="id-token-VALUE-1")
    assert decode_record(encode_record(record), WHERE, record.key) == record
    unbound = CredentialRecord(
        issuer="urn:x",
        resource="urn:x:name",
        server_url="urn:x:name",
        client=ClientRegistration(client_id="", kind="unbound"),
        token_endpoint="",
        tokens=TokenSet(access_token="a", issued_at=5.0),
        names=("work",),
    )
    assert decode_record(encode_record(unbound), WHERE) == unbound


def test_older_records_with_missing_and_null_optional_fields_still_read() -> None:
    """The oldest format-1 records: no ``format``, ``server_url``, ``names``, ``scope``, ``issued_at``, ...; nulls."""
    minimal = {
        "issuer": ISSUER,
        "resource": RESOURCE,
        "client": {"client_id": "c", "kind": "dynamic", "client_secret": None, "client_secret_expires_at": None},
        "token_endpoint": f"{ISSUER}/token",
        "tokens": {"access_token": "a", "expires_at": None, "refresh_token": None, "scope": None},
        "authorization_endpoint": None,
        "revocation_endpoint": None,
    }
    record = decode_record(json.dumps(minimal), WHERE, RecordKey(ISSUER, RESOURCE))
    assert record.server_url == RESOURCE
    assert record.client == ClientRegistration(client_id="c", kind="dynamic")
    assert record.tokens == TokenSet(access_token="a", issued_at=0.0)
    assert (record.requested_scopes, record.names, record.updated_at) == ((), (), 0.0)
    assert decode_record(json.dumps({**minimal, "tokens": None}), WHERE).tokens is None


def test_whole_numbers_read_as_floats() -> None:
    """Another tool may write ``expires_at`` as an integer: it reads as the same time, as a float."""
    data = document()
    data["tokens"].update(expires_at=2_000_000_000, issued_at=1_900_000_000)
    data["updated_at"] = 1_900_000_001
    data["client"]["client_secret_expires_at"] = 2_100_000_000
    record = decode_record(json.dumps(data), WHERE)
    assert record.tokens is not None
    assert type(record.tokens.expires_at) is float
    assert record.tokens.expires_at == 2_000_000_000
    assert type(record.tokens.issued_at) is float
    assert type(record.updated_at) is float
    assert record.client.client_secret_expires_at == 2_100_000_000


# -- end to end: a hand-edited record in a store, used by MCPOAuth ----------------------------------------------------


def expired(doc: dict[str, Any], **changes: Any) -> None:
    """Apply ``changes`` to the record document, with the access token expired so that a refresh is due at once."""
    doc["tokens"]["expires_at"] = 1.0
    for path, value in changes.items():
        *parents, name = path.split("__")
        parent = doc
        for part in parents:
            parent = parent[part]
        parent[name] = value


# name -> (the changes, the field the error names)
EDITS: dict[str, tuple[dict[str, Any], str]] = {
    "expires_at string": ({"tokens__expires_at": "soon"}, "tokens.expires_at"),
    "issued_at string": ({"tokens__issued_at": "x"}, "tokens.issued_at"),
    "token_endpoint int": ({"token_endpoint": 5}, "token_endpoint"),
    "names string": ({"names": "abc"}, "names"),
    "redirect_uris number": ({"client__redirect_uris": 5}, "client.redirect_uris"),
    "access_token with a line break": ({"tokens__access_token": "abc\r\ndef"}, "tokens.access_token"),
}


def use(stack: FakeMCPStack, store: TokenStore) -> int:
    auth = MCPOAuth(stack.server_url, store=store, authorizer=stack.authorizer, retry=FAST)
    with httpx.Client(auth=auth, transport=stack.httpx_transport()) as client:
        return client.get(stack.server_url).status_code


@pytest.mark.parametrize("edit", list(EDITS), ids=str)
def test_hand_edited_keyring_record_is_reported_and_kept(edit: str, tmp_path: Path) -> None:
    backend = MemoryKeyring(limit=10**6)  # the plain JSON a person could edit with a keyring tool
    store = KeyringTokenStore(backend=backend, lock_dir=tmp_path / "locks", chunk_size=10**6)
    stack = FakeMCPStack()
    assert use(stack, store) == 200
    [entry] = [name for name in backend.entries if name[1].startswith("record:")]
    manifest = json.loads(backend.entries[entry])
    changes, field = EDITS[edit]
    expired(manifest["inline"], **changes)
    backend.entries[entry] = json.dumps(manifest)
    before = dict(backend.entries)
    access_token = json.loads(before[entry])["inline"]["tokens"]["access_token"]

    with pytest.raises(TokenStorageError, match="incomplete or malformed") as caught:
        use(stack, store)
    assert f": {field} " in str(caught.value)
    assert access_token not in str(caught.value)
    assert backend.entries == before  # reported, not deleted nor replaced


def test_damaged_encrypted_file_record_is_reported_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(master_key, "_SCRYPT_N", TEST_SCRYPT_N)
    monkeypatch.setattr(master_key, "_os_keyring", lambda: (None, "the tests do not use the OS keyring"))
    store = EncryptedFileTokenStore(directory=tmp_path, password="pw", use_keyring=False)
    stack = FakeMCPStack()
    assert use(stack, store) == 200
    [key] = store.list_keys()
    good = store.load(key)
    assert good is not None

    def damaged_encoding(record: CredentialRecord) -> bytes:
        data = json.loads(encode_record(record))
        data["tokens"]["expires_at"] = "soon"
        return json.dumps(data).encode()

    with monkeypatch.context() as patch:  # the store seals the damaged plaintext as if it had been written so
        patch.setattr(encrypted_file, "encode_record", damaged_encoding)
        store.save(good)
    files = {path: path.read_bytes() for path in tmp_path.rglob("*.rec")}

    with pytest.raises(TokenStorageError, match=r"incomplete or malformed: tokens\.expires_at ") as caught:
        use(stack, store)
    assert good.tokens is not None
    assert good.tokens.access_token not in str(caught.value)
    assert {path: path.read_bytes() for path in tmp_path.rglob("*.rec")} == files
