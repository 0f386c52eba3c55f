"""What the commands show of a stored credential: its summary (the ``--json`` document), its expiry and scopes in
words, and aligned fields. Never a secret."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mcp_oauth_auth.cli.lookup import store_label
from mcp_oauth_auth.cli.output import Terminal, describe_expiry, format_time
from mcp_oauth_auth.records import CredentialRecord

if TYPE_CHECKING:
    from mcp_oauth_auth.storage.base import TokenStore

__all__ = ["emit_json", "expiry_text", "granted_scopes", "print_fields", "summary"]


def granted_scopes(record: CredentialRecord) -> list[str]:
    if record.tokens is not None and record.tokens.scope is not None:
        return record.tokens.scope.split()
    return list(record.requested_scopes)


def expiry_text(record: CredentialRecord) -> str:
    if record.tokens is None:
        return "no token (log in again)"
    return describe_expiry(record.tokens.expires_at)


def summary(record: CredentialRecord, store: TokenStore) -> dict[str, Any]:
    tokens = record.tokens
    expires_at = tokens.expires_at if tokens else None
    return {
        "names": list(record.names),
        "server_url": record.server_url,
        "account": record.account,
        "resource": record.resource,
        "issuer": record.issuer,
        "scopes": granted_scopes(record),
        "requested_scopes": list(record.requested_scopes),
        "logged_in": tokens is not None,
        "expires_at": format_time(expires_at),
        "expires_in": None if expires_at is None else round(expires_at - time.time()),
        "expiry": expiry_text(record),
        "refresh_token": tokens is not None and tokens.refresh_token is not None,
        "token_type": tokens.token_type if tokens else None,
        "dpop_bound": record.dpop_key is not None,
        "client_id": record.client.client_id,
        "client_kind": record.client.kind,
        "updated_at": format_time(record.updated_at),
        "store": store_label(store),
    }


def print_fields(terminal: Terminal, fields: Sequence[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in fields)
    for label, value in fields:
        terminal.print(f"  {terminal.style(label.ljust(width), 'dim')}  {value}")


def emit_json(terminal: Terminal, document: Any) -> None:
    terminal.print_json(document)
