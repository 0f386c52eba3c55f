"""Stored credentials by the names people give them (``record.names``), and the store they live in."""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from mcp_oauth_auth.cli.errors import CLIError, ExitCode, NotLoggedInError
from mcp_oauth_auth.cli.output import Terminal
from mcp_oauth_auth.exceptions import ConfigurationError, TokenStorageError, WrongPasswordError
from mcp_oauth_auth.records import CredentialRecord, RecordKey
from mcp_oauth_auth.storage.base import RecordLock, TokenStore
from mcp_oauth_auth.storage.memory import MutexRecordLock
from mcp_oauth_auth.storage.names import StoredRecord, labelled, serves
from mcp_oauth_auth.storage.names import load_all as _load_all

__all__ = [
    "RecordView",
    "StoredRecord",
    "account_option",
    "add_name",
    "concrete_store",
    "find_record",
    "labelled",
    "load_all",
    "open_store",
    "relabel",
    "store_description",
    "store_label",
]


def open_store(backend: str) -> TokenStore:
    """The store named on the command line (``--store``): see :func:`~mcp_oauth_auth.storage.create_store`."""
    from mcp_oauth_auth.storage.backends import TokenStoreBackend, create_store

    try:
        return create_store(backend)
    except ConfigurationError as exc:
        choices = ", ".join(member.value for member in TokenStoreBackend)
        raise CLIError(str(exc), f"--store takes one of: {choices}", ExitCode.USAGE) from None


def load_all(store: TokenStore) -> list[StoredRecord]:
    """Every record in the store (one that cannot be read says why); a wrong ``MCP_OAUTH_PASSWORD`` is an error of
    the whole store, raised as such, rather than one unreadable record after another."""
    found = _load_all(store)
    for item in found:
        if isinstance(item.error, WrongPasswordError):
            raise item.error
    return found


def concrete_store(store: TokenStore) -> TokenStore:
    """The store in use: the one an ``auto`` store chose."""
    from mcp_oauth_auth.storage.auto import AutoTokenStore

    return store.chosen if isinstance(store, AutoTokenStore) else store


def store_label(store: TokenStore) -> str:
    """A short name for the store actually in use: ``keyring``, ``encrypted_file``, ``vault``, ``memory``."""
    kind = type(concrete_store(store)).__name__
    labels = {
        "KeyringTokenStore": "keyring",
        "EncryptedFileTokenStore": "encrypted_file",
        "VaultTokenStore": "vault",
        "RedisTokenStore": "redis",
        "MemoryTokenStore": "memory",
    }
    return labels.get(kind, kind)


def store_description(store: TokenStore) -> str:
    """The store with where it keeps things, e.g. ``encrypted_file (/home/me/.mcp_oauth)``."""
    concrete = concrete_store(store)
    directory = getattr(concrete, "directory", None) or getattr(concrete, "url", None)
    label = store_label(store)
    return f"{label} ({directory})" if directory is not None else label


def find_record(
    store: TokenStore,
    name: str,
    url: str | None = None,
    terminal: Terminal | None = None,
    account: str | None = None,
) -> CredentialRecord:
    """The record named ``name`` (optionally for the server ``url``, of the account ``account``); the most recently
    updated when several are (``terminal`` then says so on stderr).

    A ``name`` that is no record's name but a server URL finds that server's record. Without ``account``, a name
    that labels records of several accounts means the default account's record when there is one, and is refused
    as ambiguous otherwise: a command never picks one person's credential for another by recency.
    """
    everything = load_all(store)
    records = [found.record for found in everything if found.record is not None]
    matches = labelled(everything, name)
    if not matches and "://" in name:
        matches = [record for record in records if serves(record, name)]
    if url is not None:
        matches = [record for record in matches if serves(record, url)]
    if account is not None:
        matches = [record for record in matches if record.account == account]
    else:
        matches = _one_account(matches, name, terminal)
    if not matches:
        where = f" for {url}" if url else ""
        of_account = f" of the account {account!r}" if account is not None else ""
        unreadable = len(everything) - len(records)
        hint = "`mcp-oauth list` shows the stored credentials; `mcp-oauth login NAME URL` adds one"
        if unreadable:
            hint += f" ({unreadable} stored record{'s' if unreadable != 1 else ''} cannot be read: see `list`)"
        raise NotLoggedInError(
            f"no stored credential named {name!r}{where}{of_account} in the {store_label(store)} store", hint
        )
    latest = max(matches, key=lambda record: record.updated_at)
    others = {record.server_url for record in matches} - {latest.server_url}
    if others and terminal is not None:
        terminal.note(
            f"note: {name!r} also names {', '.join(sorted(others))}; using {latest.server_url}, the most recently "
            "updated (--url chooses)"
        )
    return latest


def _one_account(matches: list[CredentialRecord], name: str, terminal: Terminal | None) -> list[CredentialRecord]:
    """Among ``matches`` (no ``--account`` given): the default account's records when ``name`` labels records of
    several accounts, or an error when none of them is the default account's."""
    accounts = {record.account for record in matches}
    if len(accounts) <= 1:
        return matches
    named = sorted(account for account in accounts if account is not None)
    if None not in accounts:
        raise CLIError(
            f"{name!r} names the credentials of several accounts ({', '.join(map(repr, named))})",
            "choose one with --account ACCOUNT",
            ExitCode.USAGE,
        )
    if terminal is not None:
        terminal.note(
            f"note: {name!r} also names the credential of the account{'s' if len(named) > 1 else ''} "
            f"{', '.join(map(repr, named))}; using the default account's (--account chooses)"
        )
    return [record for record in matches if record.account is None]


def account_option(account: str | None) -> str:
    """`` --account ACCOUNT`` (quoted for a shell) for a command about a named account's credential; nothing for the
    default account's."""
    import shlex

    return "" if account is None else f" --account {shlex.quote(account)}"


class Unchanged(enum.Enum):
    """The type of :data:`UNCHANGED`."""

    UNCHANGED = "unchanged"


#: ``renewal`` of :func:`relabel`: the record keeps its own.
UNCHANGED = Unchanged.UNCHANGED


def add_name(
    store: TokenStore, key: RecordKey, name: str, renewal: dict[str, str] | Unchanged | None = UNCHANGED
) -> CredentialRecord | None:
    """Label the record with ``name`` and make it the most recently updated, so that ``name`` means this record
    from now on (under the store's lock for it, when the store has locks); with ``renewal``, that is the record's
    note of how it is renewed from now on (``login``). The updated record, or None if gone."""
    return relabel(store, key, lambda names: names if name in names else (*names, name), renewal)


def relabel(
    store: TokenStore,
    key: RecordKey,
    change: Callable[[tuple[str, ...]], tuple[str, ...]],
    renewal: dict[str, str] | Unchanged | None = UNCHANGED,
) -> CredentialRecord | None:
    """Give the record the names ``change`` makes of its names (and ``renewal``, unless :data:`UNCHANGED`), under
    the store's lock for it (when the store has locks), and make it the most recently updated. The updated record,
    or None if it is gone."""
    make_lock = getattr(store, "lock", None)
    lock: RecordLock | None = make_lock(key) if callable(make_lock) else None
    if lock is not None:
        deadline = time.monotonic() + 30
        while not lock.try_acquire():
            if time.monotonic() > deadline:
                raise TokenStorageError(f"the credential record {key} stayed locked; try again")
            time.sleep(0.02)
    try:
        record = store.load(key)
        if record is None:
            return None
        updated = replace(record, names=change(record.names), updated_at=time.time())
        if renewal is not UNCHANGED:
            updated = replace(updated, renewal=renewal)
        store.save(updated)
        return updated
    finally:
        if lock is not None:
            lock.release()


class RecordView:
    """The store, seen as holding only one record: so that :class:`~mcp_oauth_auth.MCPOAuth` works on exactly the
    record a person named, even when the store holds others for the same server (another issuer)."""

    def __init__(self, store: TokenStore, key: RecordKey) -> None:
        self._store = store
        self._key = key
        self._mutex = threading.Lock()
        self.blocking = getattr(store, "blocking", True)

    def load(self, key: RecordKey) -> CredentialRecord | None:
        return self._store.load(key)

    def save(self, record: CredentialRecord) -> None:
        self._store.save(record)

    def delete(self, key: RecordKey) -> None:
        self._store.delete(key)

    def list_keys(self) -> list[RecordKey]:
        return [self._key]

    def lock(self, key: RecordKey) -> RecordLock:
        make_lock = getattr(self._store, "lock", None)
        if callable(make_lock):
            lock: RecordLock = make_lock(key)
            return lock
        return MutexRecordLock(self._mutex)

    def __repr__(self) -> str:
        return repr(self._store)
