"""Several accounts for one server on the command line (``login --account``, ``--account`` on the commands that
use a credential, the ACCOUNT column of ``list``), and ``clear NAME`` dropping only a shared name, as ``logout``
does. Through the real entry point, in a child process."""

from __future__ import annotations

import json
from pathlib import Path

from mcp_oauth_auth.cli.demo import DemoServer
from mcp_oauth_auth.records import CredentialRecord
from mcp_oauth_auth.testing import FakeMCPStack

from .runner import problem, run_cli, stored_records


def login(home: Path, name: str, url: str, *options: str) -> None:
    result = run_cli(home, "login", name, url, "--headless", *options)
    assert result.returncode == 0, problem(result)


def by_account(home: Path) -> dict[str | None, CredentialRecord]:
    return {record.account: record for record in stored_records(home)}


def access_token(record: CredentialRecord) -> str:
    assert record.tokens is not None
    return record.tokens.access_token


def token(home: Path, *args: str) -> str:
    result = run_cli(home, "token", *args)
    assert result.returncode == 0, problem(result)
    return result.stdout


def test_two_accounts_for_one_server_live_side_by_side(stack: FakeMCPStack, home: Path) -> None:
    login(home, "gh", stack.server_url)
    result = run_cli(home, "login", "gh-work", stack.server_url, "--headless", "--account", "work")
    assert result.returncode == 0, problem(result)
    assert "as 'gh-work' (account 'work')" in result.stderr
    records = by_account(home)
    assert set(records) == {None, "work"}
    assert records["work"].names == ("gh-work",)
    assert access_token(records[None]) != access_token(records["work"])
    assert token(home, "gh") == access_token(records[None])
    assert token(home, "gh-work") == access_token(records["work"])  # the name points at the work account's record
    assert token(home, "gh-work", "--account", "work") == access_token(records["work"])
    assert run_cli(home, "token", "gh-work", "--account", "other").returncode == 3

    listed = run_cli(home, "list")
    assert listed.returncode == 0, problem(listed)
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "ACCOUNT", "SERVER"]
    assert sorted(row.split()[:2] for row in rows) == [["gh", "-"], ["gh-work", "work"]]
    document = json.loads(run_cli(home, "list", "--json").stdout)
    assert sorted((item["names"][0], item["account"]) for item in document) == [("gh", None), ("gh-work", "work")]
    shown = run_cli(home, "show", "gh-work")
    assert "account" in shown.stdout
    assert "work" in shown.stdout


def test_one_name_for_two_accounts_means_the_default_account_unless_told(stack: FakeMCPStack, home: Path) -> None:
    login(home, "gh", stack.server_url)
    login(home, "gh", stack.server_url, "--account", "work")
    records = by_account(home)
    plain = run_cli(home, "token", "gh")
    assert plain.returncode == 0, problem(plain)
    assert plain.stdout == access_token(records[None])
    assert "also names the credential of the account 'work'" in plain.stderr
    assert token(home, "gh", "--account", "work") == access_token(records["work"])

    logout = run_cli(home, "logout", "gh", "--account", "work")
    assert logout.returncode == 0, problem(logout)
    revoked = {request["token"] for request in stack.revocation_requests}
    work_tokens = records["work"].tokens
    assert work_tokens is not None
    assert revoked == {work_tokens.access_token, work_tokens.refresh_token}
    assert set(by_account(home)) == {None}
    assert token(home, "gh") == access_token(records[None])


def test_a_name_of_several_named_accounts_needs_account(stack: FakeMCPStack, home: Path) -> None:
    login(home, "gh", stack.server_url, "--account", "work")
    login(home, "gh", stack.server_url, "--account", "school")
    result = run_cli(home, "token", "gh")
    assert result.returncode == 2, problem(result)
    assert "'gh' names the credentials of several accounts ('school', 'work')" in result.stderr
    assert "--account" in result.stderr
    assert result.stdout == ""
    assert token(home, "gh", "--account", "school") == access_token(by_account(home)["school"])


def test_test_uses_the_chosen_accounts_credential(home: Path) -> None:
    with DemoServer.start() as server:
        login(home, "demo", server.url)
        login(home, "demo", server.url, "--account", "work")
        result = run_cli(home, "test", "demo", "--account", "work", "--json")
        assert result.returncode == 0, problem(result)
        assert json.loads(result.stdout)["account"] == "work"
        work = access_token(by_account(home)["work"])
        sent = [request["authorization"] for request in server.stack.resource_requests if request["status"] == 200]
        assert sent
        assert set(sent) == {f"Bearer {work}"}


def test_clear_of_a_shared_name_drops_only_that_name(stack: FakeMCPStack, home: Path) -> None:
    login(home, "work", stack.server_url)
    login(home, "ci", stack.server_url)
    [record] = stored_records(home)
    assert record.names == ("work", "ci")
    result = run_cli(home, "clear", "ci")
    assert result.returncode == 0, problem(result)
    assert f"Removed the name 'ci'; the credential for {stack.server_url} stays for 'work'" in result.stdout
    assert "mcp-oauth clear work" in result.stderr
    [kept] = stored_records(home)
    assert kept.names == ("work",)
    assert kept.tokens == record.tokens
    assert stack.revocation_requests == []
    last = run_cli(home, "clear", "work")  # the last name: the credential is forgotten (nothing revoked)
    assert last.returncode == 0, problem(last)
    assert stored_records(home) == []
    assert stack.revocation_requests == []


def test_clear_all_forgets_the_credential_whatever_names_it(stack: FakeMCPStack, home: Path) -> None:
    login(home, "work", stack.server_url)
    login(home, "ci", stack.server_url)
    result = run_cli(home, "clear", "ci", "--all", "--json")
    assert result.returncode == 0, problem(result)
    document = json.loads(result.stdout)
    assert document == {"names": ["work", "ci"], "server_url": stack.server_url, "account": None, "removed": True}
    assert stored_records(home) == []
    assert stack.revocation_requests == []
