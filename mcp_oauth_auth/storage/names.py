"""Stored credential records by the names people give them (``record.names``) and by the server they serve: the one
index that the CLI (:mod:`mcp_oauth_auth.cli.lookup`), the seed-compatible ``TokenManager`` and the flow's store
session look records up in.

"This record serves that server" has one rule, :func:`serves`. What each does with several records carrying one
name is its own documented choice (the CLI takes the most recently updated one and says so; ``TokenManager``
prefers one with tokens and logs a warning).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from mcp_oauth_auth.exceptions import OAuthError, TokenStorageError
from mcp_oauth_auth.flow.urls import BearerScope, split_url
from mcp_oauth_auth.records import CredentialRecord, RecordKey
from mcp_oauth_auth.storage.base import TokenStore

__all__ = ["StoredRecord", "guarded", "labelled", "load_all", "serves"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class StoredRecord:
    """A record as found in the store, or the reason it could not be read."""

    key: RecordKey
    record: CredentialRecord | None
    problem: str | None = None


def load_all(store: TokenStore, *, guard: bool = False) -> list[StoredRecord]:
    """Every record in the store; one that cannot be read is reported (``problem``) rather than stopping the rest.

    A record "cannot be read" when the store says so (:class:`TokenStorageError`); with ``guard``, also when the
    store fails in any other way (see :func:`guarded`), and a failure to list becomes a ``TokenStorageError``.
    """
    call = guarded if guard else _unguarded
    found = []
    for key in call(store.list_keys):
        try:
            record = call(lambda: store.load(key))  # noqa: B023 - called at once
        except TokenStorageError as exc:
            found.append(StoredRecord(key, None, str(exc)))
            continue
        if record is not None:  # deleted meanwhile
            found.append(StoredRecord(key, record))
    return found


def labelled(found: Iterable[StoredRecord], name: str) -> list[CredentialRecord]:
    """The readable records among ``found`` that carry the label ``name``."""
    return [item.record for item in found if item.record is not None and name in item.record.names]


def serves(found: CredentialRecord | RecordKey, url: str) -> bool:
    """Whether the record ``found`` (or the record under that key) is a credential for the MCP server at ``url``:
    whether ``url`` lies at or below the record's resource on the same origin.

    This is where the record's access token may be sent (the bearer scope, :class:`BearerScope`), so the rule cannot
    be wider than where tokens go, and it holds for the URL the record was obtained for (a resource identifies its
    server, RFC 9728 §3.3). Scheme, host and default port are compared as RFC 3986 §6.2.2 normalises them. A ``url``
    that is not an absolute http(s) URL, and a record bound to no server (whose resource is a URN), serve nothing.
    """
    try:
        scheme, host, port, path, _ = split_url(url)
        return BearerScope.for_resource(found.resource).covers(scheme, host, port, path)
    except OAuthError:
        return False


def _unguarded(operation: Callable[[], _T]) -> _T:
    return operation()


def guarded(operation: Callable[[], _T]) -> _T:
    """Run a store call, turning anything but our own errors into a :class:`TokenStorageError`."""
    try:
        return operation()
    except OAuthError:
        raise
    except Exception as exc:
        raise TokenStorageError(f"the credential store failed: {type(exc).__name__}: {exc}") from exc
