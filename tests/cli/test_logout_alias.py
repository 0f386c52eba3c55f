"""``logout NAME`` drops just that name when other names use the same credential (nothing revoked: they keep
working); ``logout NAME --all``, or the last name, revokes and forgets it."""

from __future__ import annotations

import json
from pathlib import Path

from mcp_oauth_auth.testing import FakeMCPStack

from .runner import problem, run_cli, stored_records


def _two_names(stack: FakeMCPStack, home: Path) -> None:
    for name in ("work", "ci"):
        result = run_cli(home, "login", name, stack.server_url, "--headless")
        assert result.returncode == 0, problem(result)
    [record] = stored_records(home)
    assert record.names == ("work", "ci")


def test_logout_of_one_name_keeps_the_credential_the_other_uses(stack: FakeMCPStack, home: Path) -> None:
    _two_names(stack, home)
    result = run_cli(home, "logout", "ci")
    assert result.returncode == 0, problem(result)
    assert f"Removed the name 'ci'; the credential for {stack.server_url} stays for 'work'" in result.stdout
    assert "Nothing was revoked" in result.stderr
    assert stack.revocation_requests == []
    [record] = stored_records(home)
    assert record.names == ("work",)
    assert run_cli(home, "token", "work").returncode == 0
    assert run_cli(home, "token", "ci").returncode == 3
    last = run_cli(home, "logout", "work")  # the last name: revoked and forgotten
    assert last.returncode == 0, problem(last)
    assert len(stack.revocation_requests) == 2
    assert stored_records(home) == []


def test_logout_all_revokes_whatever_names_it(stack: FakeMCPStack, home: Path) -> None:
    _two_names(stack, home)
    result = run_cli(home, "logout", "ci", "--all", "--json")
    assert result.returncode == 0, problem(result)
    document = json.loads(result.stdout)
    assert document["removed"] is True
    assert document["names"] == ["work", "ci"]
    assert len(stack.revocation_requests) == 2
    assert stored_records(home) == []


def test_dropping_a_name_as_json(stack: FakeMCPStack, home: Path) -> None:
    _two_names(stack, home)
    result = run_cli(home, "logout", "work", "--json")
    assert result.returncode == 0, problem(result)
    document = json.loads(result.stdout)
    assert document == {
        "names": ["ci"],
        "removed_name": "work",
        "server_url": stack.server_url,
        "account": None,
        "removed": False,
        "revocation": [],
    }
