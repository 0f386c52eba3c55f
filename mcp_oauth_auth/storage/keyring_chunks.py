"""The value format of the keyring store: values of any length in keyring entries of limited size.

A value (a record or the index) is stored under its entry name; the entry under that name is its *manifest*, a JSON
object in one of two forms:

* ``{"v": 1, "inline": <value>}`` when this whole document fits in ``chunk_size`` characters (every value is a JSON
  object or list, embedded as it is rather than as an escaped string);
* ``{"v": 1, "generation": "<hex>", "chunks": <n>, "length": <characters>, "sha256": "<hex of the UTF-8 value>"}``
  otherwise, the value being the concatenation of the chunks ``<name>:<generation>:0`` … ``<name>:<generation>:<n-1>``,
  each at most ``chunk_size`` characters.

Values are JSON with non-ASCII characters escaped, so a character is one byte in UTF-8 and two in UTF-16: the default
``chunk_size`` of 1000 characters stays below the 2560-byte limit of a Windows Credential Manager entry.

A write stores the chunks under a new random generation, then the manifest (the commit point), then deletes the chunks
of the generation it replaced: a crash at any instant leaves either the old or the new complete value, and at worst
some orphaned chunks. A read verifies the length and SHA-256 of the chunks; a missing chunk or a mismatch is
reported as a :class:`ChunkError` and nothing is deleted. The caller serialises writers (the keyring store's file
lock); a read that races a write reads the new manifest again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from typing import Any, Protocol

from mcp_oauth_auth.exceptions import TokenStorageError

__all__ = [
    "MIN_CHUNK_SIZE",
    "ChunkError",
    "KeyringEntries",
    "UnreadableEntryError",
    "delete_value",
    "entry_json",
    "read_value",
    "write_value",
]

log = logging.getLogger("mcp_oauth_auth.storage.keyring_store")  # the store's logger: its messages stay where they were

_ENTRY_FORMAT = 1
MIN_CHUNK_SIZE = 256  # a chunked manifest is about 150 characters
_MAX_CHUNKS = 10_000
_GENERATION = re.compile(r"[0-9a-f]{8,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class UnreadableEntryError(TokenStorageError):
    """A manifest or index that cannot be interpreted (its data is left untouched)."""


class ChunkError(TokenStorageError):
    """A chunk that is missing or does not match its manifest; possibly a concurrent save replaced the value."""


class KeyringEntries(Protocol):
    """Keyring entries of one service by name; ``what`` names the value in errors, which say what to do."""

    def get(self, name: str, what: str) -> str | None: ...

    def set(self, name: str, value: str, what: str) -> None: ...

    def remove(self, name: str, what: str) -> None: ...

    def where(self, name: str) -> str:
        """The entry ``name`` in messages: its name, service and backend."""
        ...

    def delete_remedy(self, name: str) -> str:
        """How to get rid of the entry ``name`` when it is unreadable."""
        ...


def entry_json(document: object) -> str:
    """The compact JSON of an entry (keys sorted)."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def read_value(entries: KeyringEntries, name: str, what: str) -> str | None:
    """The value under ``name``, from its inline manifest or its chunks; None when there is no entry ``name``."""
    for attempt in range(3):
        raw = entries.get(name, what)
        if raw is None:
            return None
        manifest = _parse_manifest(entries, name, raw)
        if "inline" in manifest:
            return json.dumps(manifest["inline"], separators=(",", ":"))
        try:
            return _read_chunks(entries, name, manifest, what)
        except ChunkError:
            # A concurrent save commits a new generation and then deletes ours: read the new manifest again.
            if attempt < 2 and entries.get(name, what) != raw:
                continue
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _read_chunks(entries: KeyringEntries, name: str, manifest: dict[str, Any], what: str) -> str:
    generation, count = manifest["generation"], manifest["chunks"]
    parts = []
    for n in range(count):
        part = entries.get(f"{name}:{generation}:{n}", what)
        if part is None:
            raise ChunkError(
                f"{what} is incomplete: chunk {n} of {count} (entry {name}:{generation}:{n}) listed in "
                f"{entries.where(name)} is missing; nothing was deleted. {entries.delete_remedy(name)}"
            )
        parts.append(part)
    text = "".join(parts)
    if len(text) != manifest["length"] or hashlib.sha256(text.encode("utf-8")).hexdigest() != manifest["sha256"]:
        raise ChunkError(
            f"{what} is damaged: its {count} chunks do not match the checksum in {entries.where(name)}; nothing "
            f"was deleted. {entries.delete_remedy(name)}"
        )
    return text


def _parse_manifest(entries: KeyringEntries, name: str, raw: str) -> dict[str, Any]:
    try:
        manifest: Any = json.loads(raw)
    except (ValueError, RecursionError):
        manifest = None
    if not isinstance(manifest, dict):
        raise UnreadableEntryError(
            f"{entries.where(name)} is not an mcp-oauth-auth entry (not a JSON object); it was left untouched. "
            f"{entries.delete_remedy(name)}"
        )
    version = manifest.get("v")
    if isinstance(version, int) and version > _ENTRY_FORMAT:
        raise UnreadableEntryError(
            f"{entries.where(name)} was written in entry format {version} by a newer mcp-oauth-auth (this one "
            f"reads format {_ENTRY_FORMAT}); upgrade mcp-oauth-auth to use it"
        )
    if version == _ENTRY_FORMAT and isinstance(manifest.get("inline"), (dict, list)):
        return manifest
    generation, count, length, digest = (manifest.get(k) for k in ("generation", "chunks", "length", "sha256"))
    if (
        version == _ENTRY_FORMAT
        and isinstance(generation, str)
        and _GENERATION.fullmatch(generation)
        and type(count) is int
        and 0 < count <= _MAX_CHUNKS
        and type(length) is int
        and isinstance(digest, str)
        and _SHA256.fullmatch(digest)
    ):
        return manifest
    raise UnreadableEntryError(
        f"{entries.where(name)} is not a valid mcp-oauth-auth entry (unknown or incomplete manifest); it was left "
        f"untouched. {entries.delete_remedy(name)}"
    )


def _old_generation(entries: KeyringEntries, name: str, what: str) -> tuple[str, int] | None:
    """The chunk generation of the value under ``name`` now, if it is one we can read."""
    raw = entries.get(name, what)
    if raw is None:
        return None
    try:
        manifest = _parse_manifest(entries, name, raw)
    except UnreadableEntryError:
        return None  # overwritten by the save, but its chunks (if any) are not ours to guess at
    if "generation" in manifest:
        return manifest["generation"], manifest["chunks"]
    return None


def write_value(entries: KeyringEntries, name: str, text: str, what: str, chunk_size: int) -> None:
    """Store ``text`` (a JSON object or list) under ``name``: inline, or in chunks of at most ``chunk_size``."""
    old = _old_generation(entries, name, what)
    manifest = f'{{"inline":{text},"v":{_ENTRY_FORMAT}}}'  # text is a JSON object or list
    written: list[str] = []
    if len(manifest) > chunk_size:
        generation = secrets.token_hex(16)
        parts = [text[start : start + chunk_size] for start in range(0, len(text), chunk_size)]
        manifest = entry_json(
            {
                "v": _ENTRY_FORMAT,
                "generation": generation,
                "chunks": len(parts),
                "length": len(text),
                "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            }
        )
        try:
            for n, part in enumerate(parts):
                chunk = f"{name}:{generation}:{n}"
                entries.set(chunk, part, what)
                written.append(chunk)
        except TokenStorageError:
            _discard(entries, written, what)
            raise
    try:
        entries.set(name, manifest, what)  # the commit point
    except TokenStorageError:
        _discard(entries, written, what)
        raise
    if old is not None:
        generation, count = old
        _discard(entries, [f"{name}:{generation}:{n}" for n in range(count)], what)


def delete_value(entries: KeyringEntries, name: str, what: str) -> None:
    """Delete the entry ``name`` and the chunks of its value, if any."""
    old = _old_generation(entries, name, what)
    entries.remove(name, what)
    if old is not None:
        generation, count = old
        _discard(entries, [f"{name}:{generation}:{n}" for n in range(count)], what)


def _discard(entries: KeyringEntries, names: list[str], what: str) -> None:
    """Delete chunks nothing refers to any more; a failure only leaves orphaned entries behind."""
    for name in names:
        try:
            entries.remove(name, what)
        except TokenStorageError as exc:
            log.warning("could not delete an unused chunk of %s: %s", what, exc)
