"""``mcp-oauth login --preset NAME --param KEY=VALUE --token-param KEY=VALUE`` through the real entry point, against
the fake stack served on loopback and behaving like the provider."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_oauth_auth.presets import PRESET_NAMES
from mcp_oauth_auth.testing import FakeMCPStack, serve_stack
from mcp_oauth_auth.testing.fake_provider import like_provider

from .runner import problem, run_cli, stored_records

SECRET_LOOKING = "value-0123456789abcdef0123456789"


@pytest.fixture
def google() -> Iterator[FakeMCPStack]:
    with serve_stack(like_provider("google")) as served:
        yield served


@pytest.fixture
def entra() -> Iterator[FakeMCPStack]:
    with serve_stack(like_provider("entra")) as served:
        yield served


def test_google_preset_gets_a_refresh_token(google: FakeMCPStack, home: Path) -> None:
    url = google.server_url
    scopes = ("--scope", "mcp:read", "--scope", "offline_access")
    refused = run_cli(home, "login", "g", url, "--headless", *scopes)
    assert refused.returncode == 1, problem(refused)
    assert "invalid_scope" in refused.stderr
    result = run_cli(home, "login", "g", url, "--headless", *scopes, "--preset", "google", "--param", "hd=example.test")
    assert result.returncode == 0, problem(result)
    assert "(with refresh token)" in result.stderr + result.stdout
    query = google.authorization_requests[-1]
    assert (query["access_type"], query["prompt"], query["hd"], query["scope"]) == (
        "offline",
        "consent",
        "example.test",
        "mcp:read",
    )
    (record,) = stored_records(home)
    assert record.tokens is not None
    assert record.tokens.refresh_token


def test_entra_preset_through_the_command(entra: FakeMCPStack, home: Path) -> None:
    refused = run_cli(home, "login", "e", entra.server_url, "--headless", "--trust-unadvertised-pkce")
    assert refused.returncode == 1, problem(refused)
    assert "AADSTS9010010" in refused.stderr
    result = run_cli(home, "login", "e", entra.server_url, "--headless", "--preset", "entra", "--token-param", "x=1")
    assert result.returncode == 0, problem(result)
    assert all("resource" not in query for query in entra.authorization_requests[1:])
    assert entra.token_requests[-1]["resource"] is None


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (("--param", "audience"), "error: --param takes KEY=VALUE, e.g. --param audience=https://api.example.com"),
        (("--param", "=x"), "error: --param takes KEY=VALUE, e.g. --param audience=https://api.example.com"),
        (("--param", f"state={SECRET_LOOKING}"), "error: --param state: this parameter is set by the login itself"),
        (
            ("--token-param", f"client_secret={SECRET_LOOKING}"),
            "error: --token-param client_secret: this parameter is set by the login itself",
        ),
        (("--param", "a=1", "--param", f"a={SECRET_LOOKING}"), "error: --param a is given twice"),
        (("--preset", "azure"), "error: --preset 'azure' is not a preset"),
        (
            ("--preset", "github"),
            "error: --preset github needs --client-id: this provider offers no dynamic registration",
        ),
    ],
)
def test_mistakes_are_one_line_usage_errors(home: Path, arguments: tuple[str, ...], error: str) -> None:
    # Checked before any request: the URL is never contacted.
    result = run_cli(home, "login", "x", "http://127.0.0.1:9/mcp", "--headless", *arguments)
    assert result.returncode == 2, problem(result)
    lines = result.stderr.splitlines()
    assert error in lines, problem(result)
    assert SECRET_LOOKING not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_an_unknown_preset_lists_the_presets(home: Path) -> None:
    result = run_cli(home, "login", "x", "http://127.0.0.1:9/mcp", "--preset", "azure")
    hint = result.stderr.splitlines()[-1]
    assert hint.startswith("hint: presets: ")
    assert all(name in hint for name in PRESET_NAMES)


def test_help_names_the_options_and_every_preset(home: Path) -> None:
    result = run_cli(home, "login", "--help")
    assert result.returncode == 0, problem(result)
    text = " ".join(result.stdout.split())
    assert "--preset NAME" in text
    assert "--param KEY=VALUE" in text
    assert "--token-param KEY=VALUE" in text
    assert all(name in text for name in PRESET_NAMES)


def test_github_preset_logs_in_with_the_device_flow(home: Path) -> None:
    from mcp_oauth_auth.flow.device import DEVICE_CODE_GRANT

    with serve_stack(like_provider("github", device_poll_interval=1)) as github:
        github.add_client("Iv1.app", grant_types=(DEVICE_CODE_GRANT, "refresh_token"))
        result = run_cli(home, "login", "gh", github.server_url, "--preset", "github", "--client-id", "Iv1.app")
        assert result.returncode == 0, problem(result)
        assert github.verification_uri in result.stderr
        assert github.grants_used() == [DEVICE_CODE_GRANT]
        assert github.count("register") == 0


def test_doctor_suggests_the_preset_of_a_keycloak_realm(home: Path) -> None:
    with serve_stack(like_provider("keycloak")) as keycloak:
        result = run_cli(home, "doctor", keycloak.server_url)
        text = " ".join(result.stdout.split())
        assert "Keycloak (the issuer's path /realms/mcp, a Keycloak realm): log in with --preset keycloak" in text, (
            problem(result)
        )
        as_json = run_cli(home, "doctor", keycloak.server_url, "--json")
        assert json.loads(as_json.stdout)["suggested_presets"] == ["keycloak"]
