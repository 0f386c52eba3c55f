"""login, list, show, token, logout and clear through the real entry point, against the fake stack on loopback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx

from mcp_oauth_auth.records import CredentialRecord
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig, serve_stack

from .runner import child_env, file_store, problem, run_cli, store_login, stored_records


def only_record(home: Path) -> CredentialRecord:
    [record] = stored_records(home)
    return record


def test_login_authorizes_and_stores_the_credential_under_its_name(stack: FakeMCPStack, home: Path) -> None:
    result = run_cli(home, "login", "work", stack.server_url, "--headless", "--scope", "mcp:read")
    assert result.returncode == 0, problem(result)
    assert "Logged in: work" in result.stdout
    assert stack.server_url in result.stdout
    assert "in 60 min" in result.stdout or "in 59 min" in result.stdout
    assert stack.count("authorize") == 1
    assert stack.authorization_requests[0]["code_challenge_method"] == "S256"
    record = only_record(home)
    assert record.names == ("work",)
    assert record.server_url == stack.server_url
    assert "mcp:read" in record.requested_scopes
    assert record.tokens is not None
    assert record.tokens.access_token not in result.stdout + result.stderr


def test_login_again_reuses_the_stored_credential_and_adds_the_name(stack: FakeMCPStack, home: Path) -> None:
    assert run_cli(home, "login", "work", stack.server_url, "--headless").returncode == 0
    result = run_cli(home, "login", "other-name", stack.server_url, "--headless", "--json")
    assert result.returncode == 0, problem(result)
    assert json.loads(result.stdout)["names"] == ["work", "other-name"]
    assert stack.count("authorize") == 1
    assert only_record(home).names == ("work", "other-name")


def test_login_with_the_device_flow_shows_the_code(home: Path) -> None:
    config = FakeStackConfig(
        device_authorization_enabled=True, device_poll_interval=1, device_auto_approve_after_polls=0
    )
    with serve_stack(config) as stack:
        result = run_cli(home, "login", "dev", stack.server_url, "--device")
        assert result.returncode == 0, problem(result)
        assert stack.verification_uri in result.stderr
        assert "confirm the code" in result.stderr
        assert stack.grants_used() == ["urn:ietf:params:oauth:grant-type:device_code"]
        assert only_record(home).names == ("dev",)

        # Where no browser can be opened (here: CI), a plain login uses the device flow the server offers.
        file_store(home).delete(only_record(home).key)
        result = run_cli(home, "login", "ci", stack.server_url, env={"CI": "true"})
        assert result.returncode == 0, problem(result)
        assert "No browser can be opened here (running in CI" in result.stderr
        assert stack.verification_uri in result.stderr
        assert stack.grants_used()[-1] == "urn:ietf:params:oauth:grant-type:device_code"
        assert only_record(home).names == ("ci",)


def test_login_where_no_browser_can_open_and_no_device_flow(stack: FakeMCPStack, home: Path) -> None:
    result = run_cli(home, "login", "ci", stack.server_url, env={"CI": "true"})
    assert result.returncode == 1, problem(result)
    error, hint = result.stderr.splitlines()[-2:]
    assert error.startswith("error: cannot ask for authorization: no browser can be opened here (running in CI")
    assert hint.startswith("hint: log in with --no-browser")
    assert stored_records(home) == []


def test_login_without_a_browser_takes_the_pasted_redirect(stack: FakeMCPStack, home: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "mcp_oauth_auth", "login", "pasted", stack.server_url, "--no-browser"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=child_env(home),
    )
    assert child.stderr is not None
    assert child.stdin is not None
    authorization_url = None
    seen = []
    for line in child.stderr:
        seen.append(line)
        if "/authorize?" in line:
            authorization_url = line.strip()
            break
    assert authorization_url is not None, "".join(seen)
    child.stdin.write(stack.authorizer(authorization_url) + "\n")
    child.stdin.flush()
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 0, stdout + stderr
    assert "Logged in: pasted" in stdout
    assert only_record(home).names == ("pasted",)


def test_list_shows_a_table_without_secrets(logged_in: FakeMCPStack, home: Path) -> None:
    result = run_cli(home, "list")
    assert result.returncode == 0, problem(result)
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "SERVER", "ISSUER", "SCOPES", "EXPIRES", "STORE"]
    assert row.startswith("work ")
    assert logged_in.server_url in row
    assert "mcp:read mcp:write" in row
    assert re.search(r"in (59|60) min", row)
    assert row.rstrip().endswith("encrypted_file")
    tokens = only_record(home).tokens
    assert tokens is not None
    assert tokens.access_token not in result.stdout
    assert tokens.refresh_token is not None
    assert tokens.refresh_token not in result.stdout


def test_list_says_when_a_token_has_expired(logged_in: FakeMCPStack, home: Path) -> None:
    store = file_store(home)
    record = only_record(home)
    assert record.tokens is not None
    store.save(record.with_tokens(replace(record.tokens, expires_at=time.time() - 3 * 3600)))
    result = run_cli(home, "list")
    assert result.returncode == 0, problem(result)
    assert "expired 3 h ago" in result.stdout


def test_list_json_for_scripts(logged_in: FakeMCPStack, home: Path) -> None:
    result = run_cli(home, "list", "--json")
    assert result.returncode == 0, problem(result)
    [entry] = json.loads(result.stdout)
    assert entry["names"] == ["work"]
    assert entry["server_url"] == logged_in.server_url
    assert entry["issuer"] == logged_in.issuer
    assert entry["scopes"] == ["mcp:read", "mcp:write", "offline_access"]
    assert 3500 < entry["expires_in"] <= 3600
    assert entry["refresh_token"] is True
    assert entry["store"] == "encrypted_file"
    tokens = only_record(home).tokens
    assert tokens is not None
    assert tokens.access_token not in result.stdout


def test_list_of_an_empty_store(home: Path) -> None:
    result = run_cli(home, "list")
    assert result.returncode == 0, problem(result)
    assert result.stdout == ""
    assert "No stored credentials" in result.stderr


def test_show_redacts_the_tokens(logged_in: FakeMCPStack, home: Path) -> None:
    tokens = only_record(home).tokens
    assert tokens is not None
    assert tokens.refresh_token is not None
    for args, ellipsis in ((("show", "work"), "…"), (("get", "work", "--json"), "...")):
        result = run_cli(home, *args)
        assert result.returncode == 0, problem(result)
        output = result.stdout + result.stderr
        assert tokens.access_token not in output
        assert tokens.refresh_token not in output
        assert f"{tokens.access_token[:4]}{ellipsis}{tokens.access_token[-3:]}" in output
        assert logged_in.issuer in output
        assert logged_in.revocation_endpoint in output


def test_token_prints_exactly_a_token_the_server_accepts(logged_in: FakeMCPStack, home: Path) -> None:
    result = run_cli(home, "token", "work")
    assert result.returncode == 0, problem(result)
    tokens = only_record(home).tokens
    assert tokens is not None
    assert result.stdout == tokens.access_token
    response = httpx.get(logged_in.server_url, headers={"Authorization": f"Bearer {result.stdout}"})
    assert response.status_code == 200
    assert logged_in.count("token") == 1  # no refresh was needed


def test_token_refreshes_an_expired_token(logged_in: FakeMCPStack, home: Path) -> None:
    store = file_store(home)
    record = only_record(home)
    assert record.tokens is not None
    store.save(record.with_tokens(replace(record.tokens, expires_at=time.time() - 5)))
    result = run_cli(home, "token", "work")
    assert result.returncode == 0, problem(result)
    assert result.stdout != record.tokens.access_token
    assert logged_in.grants_used() == ["authorization_code", "refresh_token"]
    response = httpx.get(logged_in.server_url, headers={"Authorization": f"Bearer {result.stdout}"})
    assert response.status_code == 200


def test_token_never_starts_a_new_login(logged_in: FakeMCPStack, home: Path) -> None:
    store = file_store(home)
    record = only_record(home)
    assert record.tokens is not None
    store.save(record.with_tokens(replace(record.tokens, expires_at=time.time() - 5, refresh_token=None)))
    result = run_cli(home, "token", "work")
    assert result.returncode == 3, problem(result)
    assert result.stdout == ""
    assert "a new login is needed" in result.stderr
    assert f"mcp-oauth login work {logged_in.server_url}" in result.stderr
    assert logged_in.count("authorize") == 1


def test_logout_revokes_at_the_server_and_forgets(logged_in: FakeMCPStack, home: Path) -> None:
    tokens = only_record(home).tokens
    assert tokens is not None
    result = run_cli(home, "logout", "work")
    assert result.returncode == 0, problem(result)
    assert "Revoked the refresh token and the access token" in result.stdout
    revoked = [(request["token_type_hint"], request["revoked"]) for request in logged_in.revocation_requests]
    assert revoked == [("refresh_token", True), ("access_token", True)]
    sent = [request["token"] for request in logged_in.revocation_requests]
    assert sent == [tokens.refresh_token, tokens.access_token]
    assert stored_records(home) == []
    response = httpx.get(logged_in.server_url, headers={"Authorization": f"Bearer {tokens.access_token}"})
    assert response.status_code == 401
    assert run_cli(home, "show", "work").returncode == 3


def test_logout_when_the_server_is_gone_still_forgets_and_says_what_was_not_revoked(home: Path) -> None:
    with serve_stack() as stack:
        store_login(home, "gone", stack.server_url)
    result = run_cli(home, "logout", "gone")
    assert result.returncode == 0, problem(result)
    assert "refresh token was not revoked" in result.stderr
    assert "could not reach" in result.stderr
    assert stored_records(home) == []


def test_clear_forgets_without_contacting_the_server(logged_in: FakeMCPStack, home: Path) -> None:
    result = run_cli(home, "clear", "work", "--json")
    assert result.returncode == 0, problem(result)
    assert json.loads(result.stdout)["removed"] is True
    assert logged_in.revocation_requests == []
    assert stored_records(home) == []


def test_a_name_for_two_servers_means_the_latest_unless_url_says(home: Path) -> None:
    # (Which record a name means is tested in detail in test_lookup.py.)
    with serve_stack() as first, serve_stack() as second:
        store_login(home, "twin", first.server_url)
        result = run_cli(home, "login", "twin", second.server_url, "--headless")
        assert result.returncode == 0, problem(result)
        assert f"'twin' also names {first.server_url}" in result.stderr
        chosen = run_cli(home, "show", "twin", "--url", first.server_url, "--json")
        assert chosen.returncode == 0, problem(chosen)
        assert json.loads(chosen.stdout)["server_url"] == first.server_url


def test_a_pre_registered_confidential_client(home: Path) -> None:
    secret = "pre-registered-secret-0123456789"
    with serve_stack(FakeStackConfig(registration_enabled=False)) as stack:
        stack.add_client("cli-app", secret, "client_secret_basic", ["http://127.0.0.1:33418/callback"])
        env = {"MCP_OAUTH_CLIENT_SECRET": secret}
        result = run_cli(home, "login", "pre", stack.server_url, "--headless", "--client-id", "cli-app", env=env)
        assert result.returncode == 0, problem(result)
        record = only_record(home)
        assert (record.client.client_id, record.client.kind) == ("cli-app", "pre-registered")
        assert record.tokens is not None
        file_store(home).save(record.with_tokens(replace(record.tokens, expires_at=time.time() - 5)))
        shown = run_cli(home, "show", "pre")
        token = run_cli(home, "token", "pre")
        assert token.returncode == 0, problem(token)
        refresh = stack.token_requests[-1]
        assert (refresh["grant_type"], refresh["client_id"], refresh["auth_method"]) == (
            "refresh_token",
            "cli-app",
            "client_secret_basic",
        )
        assert stack.count("register") == 0
    for output in (result, shown, token):
        assert secret not in output.stdout + output.stderr
    assert "set (hidden)" in shown.stdout


def test_issuer_keeps_a_pre_registered_client_at_its_authorization_server(home: Path) -> None:
    secret = "pre-registered-secret-0123456789"
    with serve_stack(FakeStackConfig(registration_enabled=False)) as stack:
        stack.add_client("cli-app", secret, "client_secret_basic", ["http://127.0.0.1:33418/callback"])
        env = {"MCP_OAUTH_CLIENT_SECRET": secret}
        login = ("login", "pre", stack.server_url, "--headless", "--client-id", "cli-app")
        refused = run_cli(home, *login, "--issuer", "https://login.example.com", env=env)
        assert refused.returncode == 1, problem(refused)
        assert "https://login.example.com" in refused.stderr
        assert stack.count("token") == 0
        assert file_store(home).list_keys() == []
        accepted = run_cli(home, *login, "--issuer", stack.issuer, env=env)
        assert accepted.returncode == 0, problem(accepted)
    for output in (refused, accepted):
        assert secret not in output.stdout + output.stderr
