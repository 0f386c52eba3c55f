"""Accounts in the seed-compatible API: an ``OAuthHandler(account=...)`` per account over one ``TokenManager``,
and ``TokenManager`` lookups by account. The same server name in two accounts names two credentials, never one
account's tokens for the other."""

from __future__ import annotations

import anyio
import pytest

from mcp_oauth_auth import OAuthHandler, OAuthTokens, TokenManager, TokenStoreBackend
from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.testing import FakeMCPStack

from .test_handler import Network

NAME = "github"


def handlers(network: Network, manager: TokenManager) -> tuple[OAuthHandler, OAuthHandler]:
    return network.handler(manager), network.handler(manager, account="work", login_hint="me@work.example")


def test_two_handlers_over_one_store_keep_their_accounts_tokens() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    manager = TokenManager(backend=TokenStoreBackend.MEMORY)
    personal, work = handlers(network, manager)

    async def main() -> tuple[str, str, str]:
        mine = await personal.ensure_authenticated_mcp(NAME, stack.server_url)
        theirs = await work.ensure_authenticated_mcp(NAME, stack.server_url)
        response = await work.authenticated_request(NAME, stack.server_url, "/mcp")
        assert response.status_code == 200
        headers = await personal.prepare_headers_for_mcp_server(NAME, stack.server_url)
        return mine.access_token, theirs.access_token, headers["Authorization"]

    mine, theirs, personal_header = anyio.run(main)
    assert mine != theirs
    assert personal_header == f"Bearer {mine}"
    assert stack.authorization_requests[1]["login_hint"] == "me@work.example"
    assert "login_hint" not in stack.authorization_requests[0]
    # Both records carry the name: a label is per account, and labelling the work one did not take it off the other.
    personal_record = manager.find_credential(NAME)
    work_record = manager.find_credential(NAME, account="work")
    assert personal_record is not None
    assert personal_record.tokens is not None
    assert work_record is not None
    assert work_record.tokens is not None
    assert (personal_record.tokens.access_token, work_record.tokens.access_token) == (mine, theirs)
    assert personal.get_authorization_header(NAME) == f"Bearer {mine}"
    assert work.get_authorization_header(NAME) == f"Bearer {theirs}"
    assert [request["authorization"] for request in stack.resource_requests] == [f"Bearer {theirs}"]


def test_a_fresh_handler_finds_its_accounts_credential_by_name() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    manager = TokenManager(backend=TokenStoreBackend.MEMORY)
    personal, work = handlers(network, manager)
    anyio.run(personal.ensure_authenticated_mcp, NAME, stack.server_url)
    theirs = anyio.run(work.ensure_authenticated_mcp, NAME, stack.server_url)
    again = network.handler(manager, account="work")
    assert again.get_authorization_header(NAME) == theirs.get_authorization_header()
    assert network.handler(manager, account="other").get_authorization_header(NAME) is None


def test_logging_out_of_one_account_keeps_the_other() -> None:
    stack = FakeMCPStack()
    network = Network(stack)
    manager = TokenManager(backend=TokenStoreBackend.MEMORY)
    personal, work = handlers(network, manager)
    mine = anyio.run(personal.ensure_authenticated_mcp, NAME, stack.server_url)
    theirs = anyio.run(work.ensure_authenticated_mcp, NAME, stack.server_url)
    outcomes = anyio.run(work.logout, NAME, stack.server_url)
    assert [outcome.revoked for outcome in outcomes] == [True, True]
    assert {request["token"] for request in stack.revocation_requests} == {theirs.access_token, theirs.refresh_token}
    assert manager.find_credential(NAME, account="work") is None
    kept = manager.load_tokens(NAME)
    assert kept is not None
    assert kept.access_token == mine.access_token
    assert work.clear_tokens(NAME) is False
    assert personal.clear_tokens(NAME) is True
    assert manager.list_credentials() == []


def test_token_manager_saves_and_deletes_per_account() -> None:
    manager = TokenManager(backend=TokenStoreBackend.MEMORY)
    personal = OAuthTokens(access_token="personal-token", expires_in=3600)
    work = OAuthTokens(access_token="work-token", expires_in=3600)
    manager.save_tokens(NAME, personal)
    manager.save_tokens(NAME, work, account="work")
    assert manager.load_tokens(NAME) is not None
    assert manager.load_tokens(NAME).access_token == "personal-token"  # type: ignore[union-attr]
    assert manager.load_tokens(NAME, account="work").access_token == "work-token"  # type: ignore[union-attr]
    assert manager.load_tokens(NAME, account="other") is None
    assert manager.has_valid_tokens(NAME, account="work")
    assert manager.delete_tokens(NAME, account="work")
    assert manager.load_tokens(NAME, account="work") is None
    assert manager.load_tokens(NAME).access_token == "personal-token"  # type: ignore[union-attr]


def test_an_invalid_account_is_refused_by_the_handler_and_the_manager() -> None:
    manager = TokenManager(backend=TokenStoreBackend.MEMORY)
    with pytest.raises(ConfigurationError, match="account must be a label"):
        OAuthHandler(manager, account=" work")
    with pytest.raises(ConfigurationError, match="account must be a label"):
        manager.load_tokens(NAME, account="")
