"""``logout NAME`` and ``clear NAME`` when other names use the same credential: only the name goes; the credential,
which the other names still use, is neither revoked nor forgotten (``--all`` revokes and forgets it, or forgets it,
anyway)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp_oauth_auth.cli.errors import ExitCode, NotLoggedInError
from mcp_oauth_auth.cli.lookup import account_option, relabel, store_label
from mcp_oauth_auth.cli.output import Terminal
from mcp_oauth_auth.cli.summary import emit_json

if TYPE_CHECKING:
    from mcp_oauth_auth.records import CredentialRecord
    from mcp_oauth_auth.storage.base import TokenStore

__all__ = ["drop_alias", "shared_by_others"]

#: What the command does to a credential no other name uses, for the note after dropping a name.
_WHOLE = {"logout": "To log out of it everywhere", "clear": "To forget it here (nothing revoked)"}


def shared_by_others(record: CredentialRecord, name: str) -> bool:
    """Whether ``name`` is one of several names of ``record``."""
    return name in record.names and len(record.names) > 1


def drop_alias(
    terminal: Terminal, store: TokenStore, record: CredentialRecord, name: str, as_json: bool, command: str
) -> int:
    """Remove ``name`` from the record's names, and nothing else (``command``: ``logout`` or ``clear``, which was
    asked)."""
    updated = relabel(store, record.key, lambda names: tuple(other for other in names if other != name))
    if updated is None:
        raise NotLoggedInError(f"the credential named {name!r} is gone from the {store_label(store)} store")
    if as_json:
        emit_json(
            terminal,
            {
                "names": list(updated.names),
                "removed_name": name,
                "server_url": updated.server_url,
                "account": updated.account,
                "removed": False,
                "revocation": [],
            },
        )
        return ExitCode.OK
    others = ", ".join(repr(other) for other in updated.names)
    terminal.success(f"Removed the name {name!r}; the credential for {updated.server_url} stays for {others}")
    again = f"mcp-oauth {command} {updated.names[0]}{account_option(updated.account)}"
    terminal.note(f"Nothing was revoked. {_WHOLE[command]}: {again} (or this command with --all)")
    return ExitCode.OK
