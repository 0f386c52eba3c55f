"""TokenManager: credential storage by server name, over a :class:`~mcp_oauth_auth.TokenStore`.

A name labels credential records (``record.names``); tokens saved by hand for a name that labels no credential go
to an *unbound* record (issuer :data:`UNBOUND_ISSUER`) that only TokenManager reads back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from mcp_oauth_auth.compat.tokens import OAuthTokens
from mcp_oauth_auth.driving.session import StoreSession
from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.config import check_account
from mcp_oauth_auth.flow.effects import DeleteRecord, LoadRecord, LockRecord, SaveRecord
from mcp_oauth_auth.flow.urls import canonical_resource
from mcp_oauth_auth.records import ClientRegistration, CredentialRecord, RecordKey, TokenSet
from mcp_oauth_auth.storage.backends import TokenStoreBackend
from mcp_oauth_auth.storage.base import TokenStore
from mcp_oauth_auth.storage.factory import create_store_with_options
from mcp_oauth_auth.storage.names import StoredRecord, guarded, labelled, load_all, serves

__all__ = ["UNBOUND_ISSUER", "TokenManager", "is_unbound"]

logger = logging.getLogger("mcp_oauth_auth")

#: The issuer of records holding tokens saved by hand for a name that labels no credential (see module docs).
UNBOUND_ISSUER = "urn:mcp-oauth-auth:unbound"
_UNBOUND_RESOURCE = "urn:mcp-oauth-auth:name:"


def is_unbound(record: CredentialRecord | RecordKey) -> bool:
    """Whether ``record`` holds tokens saved by hand under a name, bound to no server (see the module docs)."""
    return record.issuer == UNBOUND_ISSUER


def _unbound_key(name: str, account: str | None) -> RecordKey:
    return RecordKey(issuer=UNBOUND_ISSUER, resource=_UNBOUND_RESOURCE + quote(name, safe=""), account=account)


def _unbound_record(name: str, account: str | None, tokens: TokenSet) -> CredentialRecord:
    key = _unbound_key(name, account)
    return CredentialRecord(
        issuer=key.issuer,
        resource=key.resource,
        server_url=key.resource,
        client=ClientRegistration(client_id="", kind="unbound"),
        token_endpoint="",
        tokens=tokens,
        names=(name,),
        account=account,
    )


def check_name(name: str, account: str | None = None) -> None:
    """Refuse a server name that is not a non-empty string, and an account label :func:`check_account` refuses."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"a server name must be a non-empty string, not {name!r}")
    check_account(account)


def _most_recent(records: Sequence[CredentialRecord]) -> CredentialRecord | None:
    """The record to use among several: one with tokens before one without, then the most recently updated."""
    return max(records, key=lambda record: (record.tokens is not None, record.updated_at), default=None)


class TokenManager:
    """Credential storage by server name, over a :class:`~mcp_oauth_auth.TokenStore`.

    ``TokenManager()`` uses the automatic store (the OS keyring when usable, else encrypted files under
    ``~/.mcp_oauth``); ``backend=`` picks one by name (:class:`TokenStoreBackend`), with ``token_dir=`` and
    ``password=`` for the encrypted file store and ``vault_url=``, ``vault_token=``, ``vault_mount_point=``,
    ``vault_path_prefix=``, ``vault_namespace=`` ... for Vault. ``store=`` uses a store object you already have.

    Names label credential records (``record.names``); ``server_url=`` narrows a lookup to that server. Without a
    URL and with several credentials carrying the same label (labelled by other tools), the most recently updated
    one is used and a warning is logged. Tokens saved for a name that labels no credential go to an unbound record
    (:func:`is_unbound`).

    ``account=`` (every method that looks records up takes it) is the account label of the credential, as given to
    :class:`~mcp_oauth_auth.MCPOAuth`: a lookup finds records of that account only, and None means the default
    account. A name labels at most one server per account.
    """

    def __init__(
        self,
        backend: TokenStoreBackend | str = TokenStoreBackend.AUTO,
        token_dir: str | os.PathLike[str] | None = None,
        password: str | None = None,
        *,
        store: TokenStore | None = None,
        lock_timeout: float = 60.0,
        **vault_options: Any,
    ) -> None:
        if store is not None:
            if backend != TokenStoreBackend.AUTO or token_dir is not None or password is not None or vault_options:
                raise ConfigurationError("pass either store= or backend= with its options to TokenManager, not both")
            self._store: TokenStore = store
        else:
            options = dict(vault_options)
            if token_dir is not None:
                options["token_dir"] = token_dir
            if password is not None:
                options["password"] = password
            self._store = create_store_with_options(backend, options)
        self._lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"TokenManager(store={self._store!r})"

    @property
    def store(self) -> TokenStore:
        return self._store

    @property
    def blocking(self) -> bool:
        """Whether store calls may block (async callers then run them in a worker thread)."""
        return getattr(self._store, "blocking", True) is not False

    # -- the seed's API ------------------------------------------------------------------------------------------

    def save_tokens(self, server_name: str, tokens: OAuthTokens, *, account: str | None = None) -> None:
        """Store ``tokens`` for ``server_name``: in the credential labelled with it, else in an unbound record."""
        check_name(server_name, account)
        record = self.find_credential(server_name, account=account)
        key = record.key if record is not None else _unbound_key(server_name, account)
        with self._session(key) as session:
            current = session.perform(LoadRecord(key))
            if current is None and record is not None:
                current = record  # deleted meanwhile: its labelled credential is still what was asked for
            updated = (
                _unbound_record(server_name, account, tokens.to_token_set())
                if current is None
                else current.with_tokens(tokens.to_token_set())
            )
            session.perform(SaveRecord(updated))

    def load_tokens(
        self, server_name: str, server_url: str | None = None, *, account: str | None = None
    ) -> OAuthTokens | None:
        """The tokens stored for ``server_name`` (for that server only, with ``server_url``), or None."""
        record = self.find_credential(server_name, server_url, account=account)
        if record is None and server_url is None:
            record = self._load(_unbound_key(server_name, account))
        if record is None or record.tokens is None:
            return None
        return OAuthTokens.from_token_set(record.tokens)

    def has_valid_tokens(self, server_name: str, server_url: str | None = None, *, account: str | None = None) -> bool:
        """Whether an access token that has not expired is stored for ``server_name``."""
        tokens = self.load_tokens(server_name, server_url, account=account)
        return tokens is not None and not tokens.is_expired()

    def delete_tokens(self, server_name: str, server_url: str | None = None, *, account: str | None = None) -> bool:
        """Delete every credential of ``account`` labelled ``server_name`` (for that server only, with
        ``server_url``), with its registration, and tokens saved by hand under it. True when something was deleted.
        Local only: nothing is revoked (see :meth:`OAuthHandler.logout`)."""
        return bool(self._delete_named(server_name, server_url, account))

    # -- listing and lookup --------------------------------------------------------------------------------------

    def list_credentials(self) -> list[CredentialRecord]:
        """Every stored credential record, labelled or not, sorted by name and URL. Records that cannot be read
        (damaged, or of a newer format) are left out and logged."""
        return sorted(self._records(), key=lambda record: (record.names == (), record.names, record.server_url))

    def find_credential(
        self, server_name: str, server_url: str | None = None, *, account: str | None = None
    ) -> CredentialRecord | None:
        """The server credential of ``account`` labelled ``server_name`` (for the server at ``server_url``, when
        given), or None.

        Unbound records are never returned here.
        """
        check_name(server_name, account)
        candidates = self._labelled(server_name, server_url, account)
        if server_url is None and len(candidates) > 1:
            logger.warning(
                "%d credentials are labelled %r (%s); using the most recently updated one: pass server_url= to choose",
                len(candidates),
                server_name,
                ", ".join(record.server_url for record in candidates),
            )
        return _most_recent(candidates)

    def _labelled(self, name: str, server_url: str | None, account: str | None) -> list[CredentialRecord]:
        url = None if server_url is None else canonical_resource(server_url)
        return [
            record
            for record in labelled(self._found(), name)
            if not is_unbound(record) and record.account == account and (url is None or serves(record, url))
        ]

    # -- used by OAuthHandler ------------------------------------------------------------------------------------

    def _unique_credential(self, name: str, account: str | None) -> CredentialRecord | None:
        """The one server credential of ``account`` labelled ``name``; None when there is none, or more than one."""
        candidates = self._labelled(name, None, account)
        return candidates[0] if len(candidates) == 1 else None

    def _attach_name(self, name: str, key: RecordKey) -> None:
        """Label the credential ``key`` with ``name`` and take the label off every other record of its account: a
        name belongs to one server at a time (per account). Tokens saved by hand under the name for that account are
        dropped (a real credential replaces them).
        """
        with self._session(key) as session:
            record = session.perform(LoadRecord(key))
            if record is not None and name not in record.names:
                session.perform(SaveRecord(replace(record, names=(*record.names, name))))
        for other in self._records():
            if other.key != key and other.account == key.account and name in other.names:
                self._remove_label(name, other.key)

    def _remove_label(self, name: str, key: RecordKey) -> None:
        with self._session(key) as session:
            record = session.perform(LoadRecord(key))
            if record is None or name not in record.names:
                return
            if is_unbound(record):
                session.perform(DeleteRecord(key))
            else:
                names = tuple(label for label in record.names if label != name)
                session.perform(SaveRecord(replace(record, names=names)))
                logger.info("the name %r now labels another server; it was taken off %s", name, key)

    def _delete_named(self, name: str, server_url: str | None, account: str | None) -> list[RecordKey]:
        check_name(name, account)
        keys = [record.key for record in self._labelled(name, server_url, account)]
        keys.append(_unbound_key(name, account))
        deleted = []
        for key in keys:
            with self._session(key) as session:
                if session.perform(LoadRecord(key)) is not None:
                    session.perform(DeleteRecord(key))
                    deleted.append(key)
        return deleted

    def _delete_keys(self, keys: Sequence[RecordKey]) -> None:
        for key in keys:
            with self._session(key) as session:
                session.perform(DeleteRecord(key))

    # -- store access --------------------------------------------------------------------------------------------

    def _records(self) -> list[CredentialRecord]:
        return [item.record for item in self._found() if item.record is not None]

    def _found(self) -> list[StoredRecord]:
        found = load_all(self._store, guard=True)
        for item in found:
            if item.record is None:
                logger.warning("skipping a credential record that cannot be read: %s", item.problem)
        return found

    def _load(self, key: RecordKey) -> CredentialRecord | None:
        record: CredentialRecord | None = guarded(lambda: self._store.load(key))
        return record

    @contextmanager
    def _session(self, key: RecordKey) -> Iterator[StoreSession]:
        """A store session holding the record lock of ``key``: changes never interleave with a refresh."""
        session = StoreSession(self._store, self._lock_timeout)
        try:
            session.perform(LockRecord(key))
            yield session
        finally:
            session.close()
