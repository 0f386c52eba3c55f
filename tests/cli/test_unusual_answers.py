"""The commands when what they find is not what they expect: a server that is not MCP, a damaged record."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from mcp_oauth_auth.records import RecordKey
from mcp_oauth_auth.storage.codec import record_id
from mcp_oauth_auth.testing import FakeMCPStack

from .runner import file_store, problem, run_cli, stored_records


def test_test_against_a_server_that_does_not_speak_mcp(logged_in: FakeMCPStack, home: Path) -> None:
    """The fake stack's resource accepts the token but answers no JSON-RPC: the command says what it got."""
    result = run_cli(home, "test", "work")
    assert result.returncode == 1, problem(result)
    assert result.stderr.splitlines() == [
        f"error: {logged_in.server_url}: initialize: the server's answer does not contain the response",
        "hint: is this URL an MCP endpoint?",
    ]


def test_a_damaged_record_is_listed_as_unreadable_and_the_others_still_work(
    logged_in: FakeMCPStack, home: Path
) -> None:
    key = RecordKey("https://lost.example.com", "https://lost.example.com/mcp")
    damaged = home / "records" / f"{record_id(key)}.rec"  # a well-formed envelope whose ciphertext does not decrypt
    envelope = {"format": 1, "issuer": key.issuer, "resource": key.resource}
    for field, size in (("salt", 32), ("nonce", 12), ("ciphertext", 40)):
        envelope[field] = base64.b64encode(bytes(size)).decode()
    damaged.write_text(json.dumps(envelope))
    result = run_cli(home, "list")
    # A partial list is not a success: the exit status says so, and the whole reason is on stderr.
    assert result.returncode == 1, problem(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    [unreadable] = [line for line in lines if line.startswith("? ")]
    assert "https://lost.example.com/mcp" in unreadable
    assert "unreadable: " in unreadable
    assert any(line.startswith("work ") for line in lines)
    [reason] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert reason.startswith("error: the credential for https://lost.example.com/mcp (https://lost.example.com) cannot")
    assert "record" in reason.split("cannot be read: ", 1)[1]
    narrow = run_cli(home, "list", env={"COLUMNS": "40"})
    assert narrow.returncode == 1, problem(narrow)
    assert reason in narrow.stderr.splitlines()  # cut in the table, whole below it
    as_json = run_cli(home, "list", "--json")
    assert as_json.returncode == 1, problem(as_json)
    assert [item.get("error") is not None for item in json.loads(as_json.stdout)].count(True) == 1
    missing = run_cli(home, "show", "nobody")
    assert missing.returncode == 3, problem(missing)
    assert "(1 stored record cannot be read: see `list`)" in missing.stderr


def test_clear_says_what_it_removed_and_that_nothing_was_revoked(logged_in: FakeMCPStack, home: Path) -> None:
    result = run_cli(home, "clear", "work")
    assert result.returncode == 0, problem(result)
    assert "Removed work" in result.stdout + result.stderr
    assert "nothing was revoked" in result.stdout + result.stderr
    assert logged_in.revocation_requests == []


def test_token_for_a_credential_without_tokens_asks_for_a_login(logged_in: FakeMCPStack, home: Path) -> None:
    store = file_store(home)
    [record] = stored_records(home)
    store.save(record.with_tokens(None))  # a refresh was refused for good: the registration is kept, no token
    result = run_cli(home, "token", "work")
    assert result.returncode == 3, problem(result)
    assert result.stdout == ""
    assert f"mcp-oauth login work {logged_in.server_url}" in result.stderr


def test_the_demo_can_use_a_store_of_your_choice(home: Path) -> None:
    result = run_cli(home, "demo", "--store", "memory")
    assert result.returncode == 0, problem(result)
    assert any(line.strip() == "stored in memory" for line in result.stdout.splitlines()), result.stdout
