"""The on-disk formats of the encrypted file store: record envelopes and store.json, and the AEAD that binds them.

A record file is ``{"format": 1, "issuer", "resource", "salt", "nonce", "ciphertext"}``. The
issuer and the resource are URLs, not secrets: they stay in clear so that the store can list its records without a
key, and they are the AEAD's associated data, so a file edited, renamed or copied over another record's name does not
decrypt. Each write draws a fresh 32-byte salt and 12-byte nonce; the record key is HKDF-SHA256(master key, salt,
``"mcp-oauth-auth record v1"``), the plaintext is the shared record codec's JSON.

store.json says how to get the master key (:mod:`~mcp_oauth_auth.storage.master_key`): the key source, the scrypt
salt and parameters of a password store, a random store id and a key check value (the master key's AES-GCM
encryption of a constant), so that a wrong password or a replaced key is recognised as such. It holds no secret.

Data written by a newer version of this library raises :class:`NewerFormatError`: it is never decoded, and the store
never overwrites it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_oauth_auth.exceptions import TokenStorageError
from mcp_oauth_auth.flow.values import is_whole_number
from mcp_oauth_auth.records import RECORD_FORMAT, RecordKey

__all__ = [
    "KEYRING",
    "KEY_BYTES",
    "KEY_FILE",
    "PASSWORD",
    "RECORD_REMEDY",
    "SALT_BYTES",
    "Envelope",
    "NewerFormatError",
    "StoreInfo",
    "b64",
    "key_check_matches",
    "listed_key",
    "newer_record_format",
    "parse_envelope",
    "parse_store_info",
    "seal_key_check",
    "seal_record",
    "unb64",
]

_ENVELOPE_FORMAT = 1
_STORE_FORMAT = 1

_SCRYPT_MAX_MEMORY = 1 << 30  # refuse store.json parameters that would need more than 1 GiB

KEY_BYTES = 32
SALT_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_RECORD_INFO = b"mcp-oauth-auth record v1"
_CHECK_PLAINTEXT = b"mcp-oauth-auth key check v1"
_CHECK_AAD = b"mcp-oauth-auth store.json v1"

# The key sources, as store.json names them.
PASSWORD = "password"
KEYRING = "keyring"
KEY_FILE = "key-file"
_SOURCES = (PASSWORD, KEYRING, KEY_FILE)

RECORD_REMEDY = "remove it (or run `mcp-oauth logout`) and sign in again; the file is left as it is"
"""What to do about a record file that cannot be read."""


class NewerFormatError(TokenStorageError):
    """Data written by a newer version of this library: never decoded, never overwritten."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(value: object, length: int | None = None, minimum: int = 0) -> bytes | None:
    """Decoded base64, or None when ``value`` is not base64 of the expected size."""
    if not isinstance(value, str):
        return None
    try:
        data = base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, binascii.Error):
        return None
    if (length is not None and len(data) != length) or len(data) < minimum:
        return None
    return data


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


# -- store.json --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreInfo:
    """The contents of store.json."""

    key_source: str
    store_id: str
    check_nonce: bytes
    check_ciphertext: bytes
    salt: bytes = b""
    n: int = 0
    r: int = 0
    p: int = 0
    key_file: str | None = None  # where a key-file store's key was created: only a hint for error messages

    def to_json(self) -> bytes:
        document: dict[str, Any] = {
            "format": _STORE_FORMAT,
            "key_source": self.key_source,
            "store_id": self.store_id,
            "key_check": {"nonce": b64(self.check_nonce), "ciphertext": b64(self.check_ciphertext)},
        }
        if self.key_source == PASSWORD:
            document["kdf"] = {"name": "scrypt", "salt": b64(self.salt), "n": self.n, "r": self.r, "p": self.p}
        if self.key_file is not None:
            document["key_file"] = self.key_file
        return json.dumps(document, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def parse_store_info(data: bytes, path: Path | str, directory: Path | str) -> StoreInfo:
    def damaged(what: str) -> TokenStorageError:
        return TokenStorageError(
            f"{path} is damaged ({what}); restore it from a backup, or remove {directory} to start over "
            f"(you will have to sign in again)"
        )

    document = _json_object(data)
    if document is None:
        raise damaged("not a JSON object")
    version = document.get("format")
    if not is_whole_number(version, 1):
        raise damaged("no format version")
    if version > _STORE_FORMAT:
        raise NewerFormatError(
            f"the credential store at {directory} was set up by a newer mcp-oauth-auth (store format {version}, "
            f"this one reads format {_STORE_FORMAT}); upgrade mcp-oauth-auth to use it"
        )
    source = document.get("key_source")
    if source not in _SOURCES:
        raise damaged(f"unknown key source {source!r}")
    store_id = document.get("store_id")
    if not isinstance(store_id, str) or not store_id:
        raise damaged("no store id")
    check = document.get("key_check")
    nonce = unb64(check.get("nonce"), _NONCE_BYTES) if isinstance(check, dict) else None
    ciphertext = unb64(check.get("ciphertext"), minimum=_TAG_BYTES) if isinstance(check, dict) else None
    if nonce is None or ciphertext is None:
        raise damaged("no key check value")
    key_file = document.get("key_file")
    info = StoreInfo(
        key_source=str(source),
        store_id=store_id,
        check_nonce=nonce,
        check_ciphertext=ciphertext,
        key_file=key_file if isinstance(key_file, str) else None,
    )
    if source != PASSWORD:
        return info
    kdf = document.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise damaged("no scrypt parameters")
    salt = unb64(kdf.get("salt"), minimum=16)
    n, r, p = kdf.get("n"), kdf.get("r"), kdf.get("p")
    if (
        salt is None
        or not all(isinstance(value, int) and not isinstance(value, bool) for value in (n, r, p))
        or not (isinstance(n, int) and n >= 2 and n & (n - 1) == 0)
        or not (isinstance(r, int) and 1 <= r <= 64)
        or not (isinstance(p, int) and 1 <= p <= 64)
        or 128 * n * r > _SCRYPT_MAX_MEMORY
    ):
        raise damaged("invalid scrypt parameters")
    assert isinstance(n, int)  # for mypy; all three checked above
    assert isinstance(r, int)
    assert isinstance(p, int)
    return StoreInfo(
        key_source=PASSWORD,
        store_id=store_id,
        check_nonce=nonce,
        check_ciphertext=ciphertext,
        salt=salt,
        n=n,
        r=r,
        p=p,
    )


def seal_key_check(master: bytes) -> tuple[bytes, bytes]:
    """A new key check value for store.json: its nonce and the master key's encryption of a constant."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(_NONCE_BYTES)
    return nonce, AESGCM(master).encrypt(nonce, _CHECK_PLAINTEXT, _CHECK_AAD)


def key_check_matches(info: StoreInfo, master: bytes) -> bool:
    """Whether ``master`` is the key that store.json's key check value was made with."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        plaintext = AESGCM(master).decrypt(info.check_nonce, info.check_ciphertext, _CHECK_AAD)
    except InvalidTag:
        plaintext = b""
    return hmac.compare_digest(plaintext, _CHECK_PLAINTEXT)


# -- record envelopes --------------------------------------------------------------------------------------------


def _record_key(master: bytes, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=_RECORD_INFO).derive(master)


def _aad(key: RecordKey) -> bytes:
    """What each record's ciphertext is bound to: format, issuer, resource and (for a named account) the account,
    unambiguously encoded. The default account's is what it was before accounts existed."""
    parts: list[object] = ["mcp-oauth-auth record", _ENVELOPE_FORMAT, key.issuer, key.resource]
    if key.account is not None:
        parts.append(key.account)
    return json.dumps(parts, separators=(",", ":")).encode()


def seal_record(plaintext: bytes, key: RecordKey, master: bytes) -> bytes:
    """The record file for ``plaintext`` (an encoded record with that ``key``), under a fresh salt and nonce."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, nonce = os.urandom(SALT_BYTES), os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(_record_key(master, salt)).encrypt(nonce, plaintext, _aad(key))
    envelope = {
        "format": _ENVELOPE_FORMAT,
        "issuer": key.issuer,
        "resource": key.resource,
        **({"account": key.account} if key.account is not None else {}),
        "salt": b64(salt),
        "nonce": b64(nonce),
        "ciphertext": b64(ciphertext),
    }
    return json.dumps(envelope, separators=(",", ":")).encode("utf-8") + b"\n"


@dataclass(frozen=True)
class Envelope:
    issuer: str
    resource: str
    salt: bytes
    nonce: bytes
    ciphertext: bytes
    account: str | None = None

    @property
    def key(self) -> RecordKey:
        return RecordKey(issuer=self.issuer, resource=self.resource, account=self.account)

    def open(self, master: bytes, path: Path | str) -> bytes:
        """The plaintext; a ciphertext that does not decrypt under ``master`` raises, naming ``path``."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            return AESGCM(_record_key(master, self.salt)).decrypt(self.nonce, self.ciphertext, _aad(self.key))
        except InvalidTag:
            raise TokenStorageError(
                f"the credential record {path} cannot be decrypted: it was modified or truncated, or it comes from "
                f"another credential store; {RECORD_REMEDY}"
            ) from None


def parse_envelope(data: bytes, path: Path | str) -> Envelope:
    """The envelope in ``data`` (not decrypted); a damaged or newer one raises, naming ``path``."""

    def damaged(what: str) -> TokenStorageError:
        return TokenStorageError(f"the credential record {path} is damaged ({what}); {RECORD_REMEDY}")

    document = _json_object(data)
    if document is None:
        raise damaged("not a JSON object: truncated or overwritten")
    version = document.get("format")
    if not is_whole_number(version, 1):
        raise damaged("no format version")
    if version > _ENVELOPE_FORMAT:
        raise NewerFormatError(
            f"the credential record {path} was written in format {version} by a newer mcp-oauth-auth (this one "
            f"reads format {_ENVELOPE_FORMAT}); upgrade mcp-oauth-auth to use it"
        )
    key = _claimed_key(document)
    salt = unb64(document.get("salt"), SALT_BYTES)
    nonce = unb64(document.get("nonce"), _NONCE_BYTES)
    ciphertext = unb64(document.get("ciphertext"), minimum=_TAG_BYTES)
    if key is None:
        raise damaged("no issuer or resource, or an account that is not a string")
    if salt is None or nonce is None or ciphertext is None:
        raise damaged("invalid salt, nonce or ciphertext")
    return Envelope(
        issuer=key.issuer, resource=key.resource, account=key.account, salt=salt, nonce=nonce, ciphertext=ciphertext
    )


def _claimed_key(document: dict[str, Any]) -> RecordKey | None:
    """The record key an envelope names in clear (issuer, resource, and an account when it is not the default)."""
    issuer, resource, account = document.get("issuer"), document.get("resource"), document.get("account")
    if (
        not isinstance(issuer, str)
        or not isinstance(resource, str)
        or not (account is None or isinstance(account, str))
    ):
        return None
    return RecordKey(issuer=issuer, resource=resource, account=account)


def listed_key(data: bytes, path: Path | str) -> RecordKey | None:
    """The key a record file claims, without decrypting it; None when its envelope cannot be parsed."""
    try:
        return parse_envelope(data, path).key
    except NewerFormatError:
        return _claimed_key(_json_object(data) or {})  # listed: load() then says "upgrade"
    except TokenStorageError:
        return None


def newer_record_format(plaintext: bytes) -> bool:
    """Whether a decrypted record was written in a newer record format than this library reads."""
    document = _json_object(plaintext)
    version = None if document is None else document.get("format")
    return isinstance(version, int) and version > RECORD_FORMAT
