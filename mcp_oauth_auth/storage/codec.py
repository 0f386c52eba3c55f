"""Records to bytes and back, with the errors every backend reports the same way."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mcp_oauth_auth.exceptions import TokenStorageError
from mcp_oauth_auth.flow.values import is_whole_number
from mcp_oauth_auth.records import RECORD_FORMAT, CredentialRecord, RecordFormatError, RecordKey

__all__ = ["decode_record", "encode_record", "record_id"]


def record_id(key: RecordKey) -> str:
    """A short, stable, filesystem- and keyring-safe name for ``key`` (issuer and resource are URLs).

    The default account's id is what it was before accounts existed (records stored then are found under it); a
    named account's id hashes the three parts as a JSON list, which no issuer and resource joined by a newline can
    spell.
    """
    if key.account is None:
        identity = f"{key.issuer}\n{key.resource}"
    else:
        identity = json.dumps([key.issuer, key.resource, key.account], separators=(",", ":"))
    return hashlib.sha256(identity.encode()).hexdigest()[:40]


def encode_record(record: CredentialRecord) -> bytes:
    return json.dumps(record.to_dict(), separators=(",", ":"), sort_keys=True).encode("utf-8")


def decode_record(data: bytes | str, where: str, expected: RecordKey | None = None) -> CredentialRecord:
    """The record in ``data``; ``where`` names it in errors (a path, a keyring entry, a Vault path).

    A record written by a newer format, one that is not JSON, or one with a missing field or a field of the wrong type
    raises :class:`~mcp_oauth_auth.exceptions.TokenStorageError` saying so (naming the field, never its value: it may
    be a secret); the caller keeps the stored data untouched.
    """
    try:
        document: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested deeper than json can
        raise TokenStorageError(f"the credential record {where} is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(document, dict):
        raise TokenStorageError(f"the credential record {where} is not a JSON object")
    version = document.get("format", 1)
    if not is_whole_number(version, 1):
        raise TokenStorageError(
            f"the credential record {where} is incomplete or malformed: format must be a positive integer"
        )
    if version > RECORD_FORMAT:
        raise TokenStorageError(
            f"the credential record {where} was written in format {version} by a newer mcp-oauth-auth "
            f"(this one reads format {RECORD_FORMAT}); upgrade mcp-oauth-auth to use it"
        )
    try:
        record = CredentialRecord.from_dict(document)
    except RecordFormatError as exc:
        raise TokenStorageError(f"the credential record {where} is incomplete or malformed: {exc}") from None
    if expected is not None and record.key != expected:
        raise TokenStorageError(f"the credential record {where} belongs to {record.key}, not to {expected}")
    return record
