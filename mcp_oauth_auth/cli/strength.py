"""How well the store protects what it holds, said where it matters: a credential in the encrypted file store whose
key sits in a file beside it (no OS keyring, no ``MCP_OAUTH_PASSWORD``) is as readable as plain text to anyone who
can read those files, and ``login`` and ``list`` say so, as ``gh`` says "stored in plain text"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp_oauth_auth.cli.output import Terminal

if TYPE_CHECKING:
    from mcp_oauth_auth.storage.base import TokenStore

__all__ = ["warn_if_weak"]


def weak_protection(store: TokenStore) -> tuple[str, str] | None:
    """The warning and its one-line remedy when ``store`` keeps its key in a file beside the credentials."""
    from mcp_oauth_auth.cli.lookup import concrete_store
    from mcp_oauth_auth.storage.encrypted_file import EncryptedFileTokenStore

    chosen = concrete_store(store)
    if not isinstance(chosen, EncryptedFileTokenStore) or chosen.key_source != "key-file":
        return None
    warning = (
        f"credentials are stored as good as in plain text: the files in {chosen.directory} are encrypted with the "
        f"key file {chosen.key_file} beside them, so anyone who can read them can use them (no OS keyring here, "
        "and MCP_OAUTH_PASSWORD is not set)"
    )
    remedy = (
        "to protect them, set MCP_OAUTH_PASSWORD and log in again into a new store (another MCP_OAUTH_HOME), "
        "or log in where an OS keyring is available"
    )
    return warning, remedy


def warn_if_weak(terminal: Terminal, store: TokenStore) -> None:
    """Say so on stderr when :func:`weak_protection` finds the store weak."""
    found = weak_protection(store)
    if found is not None:
        warning, remedy = found
        terminal.warning(warning)
        terminal.note(f"{terminal.style('remedy:', 'cyan', stream='err')} {remedy}")
