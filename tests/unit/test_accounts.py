"""Several accounts for one MCP server and one authorization server: each account's credential is its own record,
loaded, refreshed, stepped up and revoked on its own, and a request made for one account never carries the
other's token. Through real httpx clients against the fake stack served on a loopback port."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import anyio
import httpx
import pytest

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore
from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.records import CredentialRecord, RecordFormatError, RecordKey
from mcp_oauth_auth.storage.codec import record_id
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig, serve_stack

ISSUER = "https://auth.example.com"
RESOURCE = "https://mcp.example.com/mcp"


# -- identity ------------------------------------------------------------------------------------------------------


def test_the_default_account_keeps_the_key_records_had_before_accounts() -> None:
    assert RecordKey(ISSUER, RESOURCE) == RecordKey(ISSUER, RESOURCE, None)
    legacy = hashlib.sha256(f"{ISSUER}\n{RESOURCE}".encode()).hexdigest()[:40]
    assert record_id(RecordKey(ISSUER, RESOURCE)) == legacy


def test_each_account_has_its_own_record_id() -> None:
    ids = {
        record_id(RecordKey(ISSUER, RESOURCE, account)) for account in (None, "work", "Work", "work ", "tenant-2", "")
    }
    assert len(ids) == 6
    # No account label can make a named account's id collide with another issuer/resource pair's.
    assert record_id(RecordKey(ISSUER, f"{RESOURCE}\nwork")) != record_id(RecordKey(ISSUER, RESOURCE, "work"))


def test_a_named_account_is_stored_with_the_record_and_read_back() -> None:
    with serve_stack() as stack:
        store = MemoryTokenStore()
        work = MCPOAuth(stack.server_url, store=store, authorizer=stack.authorizer, account="work")
        work.authenticate()
    [key] = store.list_keys()
    assert key.account == "work"
    record = store.load(key)
    assert record is not None
    assert record.account == "work"
    assert record.to_dict()["account"] == "work"
    assert CredentialRecord.from_dict(record.to_dict()) == record
    assert "work" in str(key)
    assert work.account == "work"


@pytest.mark.parametrize("account", ["", " work", "work\n", "a\x1bb", "x" * 201, 7])
def test_an_account_label_that_cannot_be_shown_safely_is_refused(account: Any) -> None:
    with pytest.raises(ConfigurationError, match="account must be a label"):
        MCPOAuth(RESOURCE, store=MemoryTokenStore(), account=account)


# -- never mixed up ------------------------------------------------------------------------------------------------


class Accounts:
    """A personal (default) and a work account for the stack's server, over one store."""

    def __init__(self, stack: FakeMCPStack, store: MemoryTokenStore | None = None) -> None:
        self.stack = stack
        self.store = store or MemoryTokenStore()
        self.personal = self.auth(None)
        self.work = self.auth("work")

    def auth(self, account: str | None) -> MCPOAuth:
        return MCPOAuth(self.stack.server_url, store=self.store, authorizer=self.stack.authorizer, account=account)

    def record(self, account: str | None) -> CredentialRecord:
        [record] = [r for key in self.store.list_keys() if key.account == account and (r := self.store.load(key))]
        return record

    def token(self, account: str | None) -> str:
        tokens = self.record(account).tokens
        assert tokens is not None
        return tokens.access_token

    def sent(self) -> list[str | None]:
        """The Authorization header of every request the resource received, in order."""
        return [request["authorization"] for request in self.stack.resource_requests]


@pytest.fixture
def stack() -> Iterator[FakeMCPStack]:
    config = FakeStackConfig(required_scopes_by_path={"/mcp/admin": ["admin"]})
    with serve_stack(config) as served:
        yield served


def test_two_accounts_get_two_credentials_and_each_request_carries_its_own(stack: FakeMCPStack) -> None:
    accounts = Accounts(stack)
    with httpx.Client(auth=accounts.personal) as personal, httpx.Client(auth=accounts.work) as work:
        assert personal.get(stack.server_url).status_code == 200
        assert work.get(stack.server_url).status_code == 200
        assert stack.count("authorize") == 2  # the work account did not borrow the personal one's credential
        stack.reset_log()
        for _ in range(2):
            assert work.get(stack.server_url).status_code == 200
            assert personal.get(stack.server_url).status_code == 200
    mine, theirs = accounts.token(None), accounts.token("work")
    assert mine != theirs
    assert accounts.sent() == [f"Bearer {theirs}", f"Bearer {mine}"] * 2
    assert sorted(str(key.account) for key in accounts.store.list_keys()) == ["None", "work"]


def test_a_new_process_adopts_its_own_accounts_record_only(stack: FakeMCPStack) -> None:
    accounts = Accounts(stack)
    accounts.personal.authenticate()
    accounts.work.authenticate()
    again = Accounts(stack, accounts.store)  # new objects on the same store: another process
    assert again.personal.authenticate().access_token == accounts.token(None)
    assert again.work.authenticate().access_token == accounts.token("work")
    tenant = again.auth("tenant-2")
    assert tenant.authenticate().access_token not in (accounts.token(None), accounts.token("work"))
    assert stack.count("authorize") == 3


def test_refreshing_one_account_leaves_the_other_untouched(stack: FakeMCPStack) -> None:
    accounts = Accounts(stack)
    accounts.personal.authenticate()
    accounts.work.authenticate()
    personal_before = accounts.record(None)
    work = accounts.record("work")
    assert work.tokens is not None
    # The work account's token has expired (stored so by another process); the personal one has not.
    accounts.store.save(work.with_tokens(replace(work.tokens, expires_at=stack.now() - 10)))
    stack.reset_log()
    fresh = Accounts(stack, accounts.store)
    with httpx.Client(auth=fresh.work) as client:
        assert client.get(stack.server_url).status_code == 200
    with httpx.Client(auth=fresh.personal) as client:
        assert client.get(stack.server_url).status_code == 200
    [refresh] = stack.token_requests
    assert refresh["grant_type"] == "refresh_token"
    assert accounts.record(None) == personal_before
    assert accounts.token("work") != work.tokens.access_token
    assert accounts.sent() == [f"Bearer {accounts.token('work')}", f"Bearer {accounts.token(None)}"]


def test_a_refused_refresh_reauthorizes_that_account_only(stack: FakeMCPStack) -> None:
    accounts = Accounts(stack)
    accounts.personal.authenticate()
    accounts.work.authenticate()
    personal_before = accounts.record(None)
    work = accounts.record("work")
    assert work.tokens is not None
    # The work account's refresh token is no longer valid (revoked at the server), and its access token expired.
    stale = replace(work.tokens, expires_at=stack.now() - 10, refresh_token="revoked-refresh-token")
    accounts.store.save(work.with_tokens(stale))
    stack.reset_log()
    with httpx.Client(auth=Accounts(stack, accounts.store).work) as client:
        assert client.get(stack.server_url).status_code == 200
    assert stack.grants_used() == ["refresh_token", "authorization_code"]
    assert stack.count("authorize") == 1
    assert accounts.record(None) == personal_before
    assert accounts.token("work") not in (work.tokens.access_token, accounts.token(None))
    # Without a usable token the request went out bare (401, the work account's authorization), never with the
    # personal account's token.
    assert accounts.sent() == [None, f"Bearer {accounts.token('work')}"]


def test_a_step_up_for_one_account_widens_that_account_only(stack: FakeMCPStack) -> None:
    accounts = Accounts(stack)
    with httpx.Client(auth=accounts.personal) as personal, httpx.Client(auth=accounts.work) as work:
        assert personal.get(stack.server_url).status_code == 200
        assert work.get(f"{stack.server_url}/admin").status_code == 200  # 403 insufficient_scope, step-up, 200
    assert "admin" in accounts.record("work").requested_scopes
    assert "admin" not in accounts.record(None).requested_scopes
    assert stack.count("authorize") == 3
    assert stack.resource_requests[-1]["authorization"] == f"Bearer {accounts.token('work')}"


def test_logging_one_account_out_revokes_its_tokens_only(stack: FakeMCPStack) -> None:
    accounts = Accounts(stack)
    accounts.personal.authenticate()
    accounts.work.authenticate()
    work = accounts.record("work")
    assert work.tokens is not None
    outcomes = accounts.work.logout()
    assert [outcome.revoked for outcome in outcomes] == [True, True]
    revoked = {request["token"] for request in stack.revocation_requests}
    assert revoked == {work.tokens.access_token, work.tokens.refresh_token}
    assert [key.account for key in accounts.store.list_keys()] == [None]
    with httpx.Client(auth=Accounts(stack, accounts.store).personal) as client:
        assert client.get(stack.server_url).status_code == 200
    assert stack.count("authorize") == 2


def test_an_authorization_for_a_named_account_asks_the_person_to_choose_it() -> None:
    with serve_stack(FakeStackConfig(as_metadata_mode="oidc")) as stack:
        store = MemoryTokenStore()
        MCPOAuth(stack.server_url, store=store, authorizer=stack.authorizer).authenticate()
        MCPOAuth(stack.server_url, store=store, authorizer=stack.authorizer, account="work").authenticate()
        MCPOAuth(
            stack.server_url, store=store, authorizer=stack.authorizer, account="ci", login_hint="ci@example.com"
        ).authenticate()
        default, work, hinted = stack.authorization_requests
    assert "select_account" not in default.get("prompt", "")
    assert "login_hint" not in default
    assert work["prompt"].split()[-1] == "select_account"
    assert "login_hint" not in work
    assert hinted["login_hint"] == "ci@example.com"
    assert "select_account" not in hinted.get("prompt", "")


def test_an_oauth_server_gets_no_prompt_it_does_not_define(stack: FakeMCPStack) -> None:
    Accounts(stack).work.authenticate()
    [request] = stack.authorization_requests
    assert "prompt" not in request


# -- async ---------------------------------------------------------------------------------------------------------


def test_async_clients_keep_the_accounts_apart(stack: FakeMCPStack) -> None:
    accounts = Accounts(stack)

    async def main() -> None:
        async with httpx.AsyncClient(auth=accounts.personal) as personal, httpx.AsyncClient(auth=accounts.work) as work:
            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(personal.get, stack.server_url)
                    group.start_soon(work.get, stack.server_url)
            assert (await work.get(stack.server_url)).status_code == 200
            await accounts.work.alogout()
            assert (await personal.get(stack.server_url)).status_code == 200

    anyio.run(main)
    assert stack.count("authorize") == 2
    mine = accounts.token(None)
    assert [key.account for key in accounts.store.list_keys()] == [None]
    sent = [header for header in accounts.sent() if header is not None]
    assert sent.count(f"Bearer {mine}") == 4
    assert len(sent) == 8  # the other four carried the work account's token, never the personal one
    assert len(set(sent)) == 2


def test_a_record_whose_account_is_not_text_is_refused_naming_the_field() -> None:
    with serve_stack() as stack:
        store = MemoryTokenStore()
        MCPOAuth(stack.server_url, store=store, authorizer=stack.authorizer, account="work").authenticate()
    [key] = store.list_keys()
    record = store.load(key)
    assert record is not None
    with pytest.raises(RecordFormatError, match="account must be a string or null"):
        CredentialRecord.from_dict({**record.to_dict(), "account": 5})
