"""Hostile and mistaken input: passwords in URLs are never printed, numbers out of range are usage errors, and what
servers or stores supply never reaches the terminal as control sequences."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig, serve_stack

from .runner import file_store, problem, run_cli, stored_records
from .test_errors_and_terminal import run_in_terminal

PASSWORD = "PW-SECRET-123"

#: A window title (OSC), a line wipe and a carriage return (CSI), a C1 CSI, DEL and a right-to-left override.
HOSTILE = "\x1b]0;PWNED\x07\x1b[2K\rfake \x9b2J\x7f\u202eok"
#: How the terminal shows it: every control as an escape.
SHOWN = "\\x1b]0;PWNED\\x07\\x1b[2K\\x0dfake \\x9b2J\\x7f\\u202eok"


def with_password(url: str) -> str:
    return url.replace("://", f"://alice:{PASSWORD}@", 1)


def assert_no_control_characters(text: str) -> None:
    assert not [c for c in text if c != "\n" and (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c == "\u202e")], text


@pytest.mark.parametrize(
    "args",
    [
        ["login", "work", "https://alice:PW-SECRET-123@mcp.test:99999/mcp"],
        ["--debug", "login", "work", "https://alice:PW-SECRET-123@mcp.test:99999/mcp"],
        ["login", "work", "{url}", "--headless"],
        ["doctor", "{url}"],
        ["doctor", "{url}", "--json"],
        ["show", "nobody", "--url", "{url}"],
    ],
)
def test_a_password_in_a_url_is_never_printed(stack: FakeMCPStack, home: Path, args: list[str]) -> None:
    url = with_password(stack.server_url)
    result = run_cli(home, *(arg.replace("{url}", url) for arg in args))
    output = result.stdout + result.stderr
    assert PASSWORD not in output, problem(result)
    assert "alice:***@" in output, problem(result)  # the URL is still recognisable
    assert "unexpected" not in output


@pytest.mark.parametrize(
    "args",
    [
        ["doctor", "http://127.0.0.1:9/mcp", "--timeout", "-1"],
        ["doctor", "http://127.0.0.1:9/mcp", "--timeout", "0"],
        ["doctor", "http://127.0.0.1:9/mcp", "--timeout", "nan"],
        ["doctor", "http://127.0.0.1:9/mcp", "--timeout", "inf"],
        ["doctor", "http://127.0.0.1:9/mcp", "--timeout", "1e400"],
        ["test", "work", "--timeout", "-5"],
        ["demo", "--serve", "--port", "99999"],
        ["demo", "--serve", "--port", "-1"],
    ],
)
def test_a_number_out_of_range_is_a_usage_error(home: Path, args: list[str]) -> None:
    result = run_cli(home, *args)
    assert result.returncode == 2, problem(result)
    assert result.stdout == ""
    error, hint = result.stderr.splitlines()
    assert error.startswith(f"error: argument {args[-2]}: must be "), error
    assert repr(args[-1]) in error
    assert hint == f"hint: see `mcp-oauth {args[0]} --help`"


def test_demo_on_a_port_in_use(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(home, "demo", "--serve", "--port", str(port))
    assert result.returncode == 1, problem(result)
    error, hint = result.stderr.splitlines()
    assert error.startswith(f"error: cannot listen on port {port}: "), error
    assert hint == "hint: choose another --port, or leave it out for any free port"


def test_doctor_shows_what_a_hostile_server_publishes_escaped(home: Path) -> None:
    with serve_stack(FakeStackConfig(prm_scopes_supported=["mcp:read", HOSTILE])) as stack:
        result = run_cli(home, "doctor", stack.server_url, "--timeout", "5")
        assert result.returncode == 0, problem(result)
        assert_no_control_characters(result.stdout + result.stderr)
        assert f"scopes supported: mcp:read {SHOWN}" in result.stdout

        # JSON is exact: its own escapes carry the value (DEL escaped too, although JSON would allow it raw).
        result = run_cli(home, "doctor", stack.server_url, "--json")
        assert result.returncode == 0, problem(result)
        assert_no_control_characters(result.stdout)
        metadata = json.loads(result.stdout)["protected_resource_metadata"]
        assert metadata["scopes_supported"] == ["mcp:read", HOSTILE]

        # On a terminal, the command's own colours stay; the server's escapes do not.
        status, coloured = run_in_terminal(home, "doctor", stack.server_url, env={"TERM": "xterm"})
        assert status == 0
        assert "\x1b[32;1m✓\x1b[0m PKCE S256 advertised" in coloured
        assert "\x1b]0;PWNED" not in coloured
        assert "\x9b" not in coloured
        assert SHOWN in coloured


def test_list_and_show_escape_what_the_store_holds(logged_in: FakeMCPStack, home: Path) -> None:
    [record] = stored_records(home)
    assert record.tokens is not None
    hostile = replace(
        record,
        names=("work", HOSTILE),
        tokens=replace(record.tokens, scope=f"mcp:read {HOSTILE}"),
        revocation_endpoint=f"{logged_in.issuer}/revoke{HOSTILE}",
    )
    file_store(home).save(hostile)
    for args in (["list"], ["show", "work"], ["show", HOSTILE]):
        result = run_cli(home, *args)
        assert result.returncode == 0, problem(result)
        assert_no_control_characters(result.stdout + result.stderr)
        assert SHOWN in result.stdout
    for args in (["list", "--json"], ["show", "work", "--json"]):
        result = run_cli(home, *args)
        assert result.returncode == 0, problem(result)
        assert_no_control_characters(result.stdout)
        document = json.loads(result.stdout)
        summary = document[0] if isinstance(document, list) else document
        assert summary["names"] == ["work", HOSTILE]
        assert summary["scopes"] == f"mcp:read {HOSTILE}".split()


def test_an_error_repeating_the_command_line_escapes_it(home: Path) -> None:
    result = run_cli(home, "list", HOSTILE)
    assert result.returncode == 2, problem(result)
    assert_no_control_characters(result.stderr)
    assert result.stderr.splitlines()[0] == f"error: unrecognized arguments: {SHOWN}"


def test_logout_when_revocation_fails_temporarily_says_what_happened(logged_in: FakeMCPStack, home: Path) -> None:
    logged_in.fail_next("revoke", status=503, times=10)
    result = run_cli(home, "logout", "work")
    # docs/cli.md: the credential is deleted anyway and the status is 0; the warnings say what was not revoked.
    assert result.returncode == 0, problem(result)
    assert stored_records(home) == []
    assert "Logged out of work" in result.stdout
    assert "credentials were kept" not in result.stderr
    assert "try again later" not in result.stderr
    for token in ("refresh token", "access token"):
        assert (
            f"warning: the {token} was not revoked: the authorization server failed temporarily (3 attempts) and did "
            "not revoke the token: it stays valid at the server until it expires (status=503"
        ) in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "warning: the credential was removed here, but the refresh token and the access token were not revoked at "
        "the server: they may stay valid there until they expire"
    )


def test_logout_json_when_revocation_fails_temporarily(logged_in: FakeMCPStack, home: Path) -> None:
    logged_in.fail_next("revoke", status=503, times=10)
    result = run_cli(home, "logout", "work", "--json")
    assert result.returncode == 0, problem(result)
    document = json.loads(result.stdout)
    assert document["removed"] is True
    assert [outcome["revoked"] for outcome in document["revocation"]] == [False, False]
    for outcome in document["revocation"]:
        assert "it stays valid at the server until it expires" in outcome["error"]
        assert "credentials were kept" not in outcome["error"]
    assert stored_records(home) == []
