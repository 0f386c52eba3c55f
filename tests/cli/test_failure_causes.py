"""A connection failure names the URL and what really happened, with advice that fits; the library's advice is given
in the command line's options; a wrong MCP_OAUTH_PASSWORD is a wrong password for every command."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from mcp_oauth_auth import HeadlessAuthorizer, MCPOAuth
from mcp_oauth_auth.cli.causes import as_cli_advice
from mcp_oauth_auth.exceptions import ConnectionFailedError, TemporaryOAuthError
from mcp_oauth_auth.storage.encrypted_file import EncryptedFileTokenStore
from mcp_oauth_auth.storage.memory import MemoryTokenStore
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig, serve_stack

from .runner import problem, run_cli
from .tls_server import self_signed_tls_server

#: RFC 6761 §6.4: no name under .invalid resolves, anywhere; looking it up needs no answer from the internet.
UNRESOLVABLE = "https://mcp.invalid/mcp"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as listener:
        yield listener.getsockname()[1]


def _error_and_hint(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """The last two lines: ``error: ...`` and ``hint: ...`` (progress notes come before them)."""
    lines = result.stderr.splitlines()
    assert len(lines) >= 2, problem(result)
    assert lines[-2].startswith("error: "), problem(result)
    assert lines[-1].startswith("hint: "), problem(result)
    assert sum(line.startswith("error: ") for line in lines) == 1, problem(result)
    return lines[-2], lines[-1]


def test_a_host_name_that_does_not_exist_is_called_a_typo_not_a_temporary_failure(home: Path) -> None:
    for command in (["doctor", UNRESOLVABLE], ["login", "x", UNRESOLVABLE, "--headless"]):
        result = run_cli(home, *command)
        assert result.returncode == 1, problem(result)
        error, hint = _error_and_hint(result)
        assert error == f"error: could not reach {UNRESOLVABLE}: the host name mcp.invalid was not found (DNS)"
        assert "typo" in hint
        assert "temporar" not in result.stderr


def test_a_refused_connection_says_nothing_listens(home: Path) -> None:
    port = _closed_port()
    url = f"http://127.0.0.1:{port}/mcp"
    result = run_cli(home, "doctor", url)
    assert result.returncode == 1, problem(result)
    error, hint = _error_and_hint(result)
    assert (
        error == f"error: could not reach {url}: 127.0.0.1:{port} refused the connection (nothing listens on that port)"
    )
    assert hint == "hint: is the server running, and is the port in the URL the right one?"


def test_a_certificate_that_fails_verification_is_named_with_its_problem(home: Path) -> None:
    with self_signed_tls_server() as port:
        url = f"https://127.0.0.1:{port}/mcp"
        result = run_cli(home, "doctor", url)
    assert result.returncode == 1, problem(result)
    error, hint = _error_and_hint(result)
    assert error == (
        f"error: could not reach {url}: TLS certificate verification failed for 127.0.0.1:{port}: self-signed "
        "certificate"
    )
    assert "SSL_CERT_FILE" in hint


def test_a_server_that_never_answers_is_a_timeout_with_the_option_that_waits_longer(
    home: Path, silent_port: int
) -> None:
    url = f"http://127.0.0.1:{silent_port}/mcp"
    result = run_cli(home, "doctor", url, "--timeout", "0.5")
    assert result.returncode == 1, problem(result)
    error, hint = _error_and_hint(result)
    assert error == f"error: {url} did not answer in time (ReadTimeout)"
    assert "--timeout" in hint


def test_the_library_names_the_cause_and_keeps_the_credential() -> None:
    store = MemoryTokenStore()
    with serve_stack() as stack:
        auth = MCPOAuth(stack.server_url, store=store, authorizer=HeadlessAuthorizer())
        with httpx.Client() as http:
            auth.authenticate(http)
        stored = auth.record
    assert stored is not None
    assert stored.tokens is not None
    store.save(stored.with_tokens(replace(stored.tokens, expires_at=1.0)))  # expired: the next use must refresh
    again = MCPOAuth(stack.server_url, store=store, authorizer=HeadlessAuthorizer())
    with pytest.raises(ConnectionFailedError) as raised, httpx.Client() as http:
        again.authenticate(http)
    assert isinstance(raised.value, TemporaryOAuthError)
    assert raised.value.reason == "refused"
    assert "refused the connection" in str(raised.value)
    assert store.load(stored.key) is not None  # a temporary failure never costs the credential


@pytest.mark.parametrize(
    ("library", "cli"),
    [
        (
            "Options: pass authorizer=PasteBackAuthorizer() to open the URL on another machine and paste the "
            "redirected URL back; or, for a machine identity, grant_type='client_credentials' with client_id= and "
            "client_secret=",
            "Options: log in with --no-browser to open the URL on another machine and paste the address you land on "
            "back; or log in with --client-id and --client-secret of a client registered at that server",
        ),
        (
            "If you trust this server, pass trust_unadvertised_pkce=True to use those endpoints.",
            "If you trust this server, log in with --trust-unadvertised-pkce to use those endpoints.",
        ),
        ("Pass issuer='https://as.example' if the client", "Log in with --issuer 'https://as.example' if the client"),
        ("the right password (MCP_OAUTH_PASSWORD or password=)", "the right password (MCP_OAUTH_PASSWORD)"),
        (
            "approve the request in the browser sooner, or raise LoopbackBrowserAuthorizer(timeout=...)",
            "approve the request in the browser sooner, or log in with --device or --no-browser, which wait longer",
        ),
        (
            "at http://as/login; HeadlessAuthorizer needs a page_handler that submits it, or use a browser "
            "(LoopbackBrowserAuthorizer)",
            "at http://as/login; --headless cannot fill it in: log in without --headless (your browser opens), or "
            "with --device or --no-browser",
        ),
        (
            "pass client_id= (and client_secret= for a confidential client).",
            "pass --client-id (and --client-secret for a confidential client).",
        ),
    ],
)
def test_the_librarys_advice_becomes_command_line_options(library: str, cli: str) -> None:
    assert as_cli_advice(library) == cli


def test_pkce_advice_at_the_command_line_names_the_option_that_works(home: Path) -> None:
    with serve_stack(FakeStackConfig(code_challenge_methods_supported=None)) as stack:
        refused = run_cli(home, "login", "x", stack.server_url, "--headless")
        assert refused.returncode == 1, problem(refused)
        assert "--trust-unadvertised-pkce" in refused.stderr
        assert "=True" not in refused.stderr
        trusted = run_cli(home, "login", "x", stack.server_url, "--headless", "--trust-unadvertised-pkce")
        assert trusted.returncode == 0, problem(trusted)


def test_a_wrong_password_is_a_wrong_password_for_every_command(
    logged_in_with_password: FakeMCPStack, home: Path
) -> None:
    for command in (["token", "work"], ["test", "work"], ["list"], ["show", "work"]):
        result = run_cli(home, *command, env={"MCP_OAUTH_PASSWORD": "not the password"})
        assert result.returncode == 1, problem(result)
        error, hint = _error_and_hint(result)
        assert error.startswith(f"error: wrong password for the credential store at {home}"), error
        assert "or password=" not in error
        assert hint.startswith("hint: set MCP_OAUTH_PASSWORD to the password this store was set up with")
    right = run_cli(home, "token", "work", env={"MCP_OAUTH_PASSWORD": "the password"})
    assert right.returncode == 0, problem(right)


@pytest.fixture
def logged_in_with_password(stack: FakeMCPStack, home: Path) -> FakeMCPStack:
    store = EncryptedFileTokenStore(home, password="the password", use_keyring=False)
    auth = MCPOAuth(stack.server_url, store=store, authorizer=HeadlessAuthorizer(), name="work")
    with httpx.Client() as http:
        auth.authenticate(http)
    return stack
