"""Where credentials live: the available stores, an in-memory store, an encrypted file store that survives a
restart, and ``TokenManager`` (the seed's storage API) listing them by name.

    python examples/token_storage_example.py                 # embedded fake MCP server, no network
    python examples/token_storage_example.py SERVER_URL      # a real MCP server (opens your browser once)

Everything is written to a temporary directory that is deleted at the end; your own credentials are not touched.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from mcp_oauth_auth import (
    EncryptedFileTokenStore,
    MCPOAuth,
    MemoryTokenStore,
    OAuthTokens,
    TokenManager,
    TokenStoreBackend,
    TokenStoreFactory,
    get_available_backends,
)


def show_backends() -> None:
    print("credential stores on this machine:")
    for status in get_available_backends():
        print(f"  {status.name:<15} {'yes' if status.available else 'no ':<4} {status.reason}")
    print(f"usable by name: {[backend.value for backend in TokenStoreFactory.get_available_backends()]}")


def log_in(server_url: str, store: Any, options: dict[str, Any], name: str) -> MCPOAuth:
    auth = MCPOAuth(server_url, store=store, name=name, **options)
    with httpx.Client(timeout=60) as client:
        auth.authenticate(client)  # stored, refreshed, or newly authorized
    return auth


def tour(server_url: str, options: dict[str, Any], directory: Path, count_authorizations: Any) -> bool:
    show_backends()

    memory = MemoryTokenStore()
    log_in(server_url, memory, options, "in-memory")
    print(f"\nmemory store after login: {memory!r} (gone when this process exits)")

    password = "example password, use your own"
    log_in(server_url, EncryptedFileTokenStore(directory, password=password), options, "files")
    before = count_authorizations()
    # A "restarted process": a new store object over the same directory finds the credential.
    restarted = log_in(server_url, EncryptedFileTokenStore(directory, password=password), options, "files")
    reused = count_authorizations() == before
    print(f"encrypted files in {directory}: {sorted(p.name for p in directory.rglob('*.rec'))}")
    print(f"after a restart the stored credential was used without a new authorization: {reused}")
    print(f"  {restarted.record!r}")

    manager = TokenManager(backend=TokenStoreBackend.ENCRYPTED_FILE, token_dir=directory, password=password)
    manager.save_tokens("saved-by-hand", OAuthTokens("example-token", expires_in=3600))
    print("\ncredentials by name (TokenManager.list_credentials):")
    for record in manager.list_credentials():
        print(f"  {', '.join(record.names) or '(no name)':<15} {record.server_url}")
    print(f"has_valid_tokens('files'): {manager.has_valid_tokens('files')}")
    print(f"load_tokens('saved-by-hand'): {manager.load_tokens('saved-by-hand')!r}")
    return reused and manager.has_valid_tokens("files")


@contextlib.contextmanager
def server() -> Iterator[tuple[str, dict[str, Any], Any]]:
    if len(sys.argv) > 1:
        yield sys.argv[1], {}, lambda: 0
        return
    from mcp_oauth_auth.testing import serve_stack

    with serve_stack() as stack:
        yield stack.server_url, {"authorizer": stack.authorizer}, lambda: stack.count("authorize")


def main() -> int:
    with tempfile.TemporaryDirectory() as directory, server() as (server_url, options, count_authorizations):
        ok = tour(server_url, options, Path(directory), count_authorizations)
    if not ok:
        print("FAILED")
        return 1
    print("OK: credentials stored, reused after a restart, and listed by name")
    return 0


if __name__ == "__main__":
    sys.exit(main())
