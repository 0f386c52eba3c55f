"""``mcp-oauth login NAME URL --idp-issuer URL --idp-client-id ID [--idp-client-secret-env VAR] [--id-token-file PATH]``
(enterprise-managed authorization) and what ``doctor`` says about the jwt-bearer grant and the grant profiles, through
the real entry point, against the fake stack and its identity provider on two loopback origins."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

from mcp_oauth_auth.flow.enterprise import TOKEN_EXCHANGE
from mcp_oauth_auth.flow.jwt_bearer import JWT_BEARER
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig, serve_stack
from mcp_oauth_auth.testing.server import reserve_loopback_port, serve_asgi

from .runner import problem, run_cli, stored_records

MCP_SECRET = "mcp-secret-for-the-cli-test"
IDP_SECRET = "idp-secret-for-the-cli-test"
SECRETS = {"MCP_OAUTH_CLIENT_SECRET": MCP_SECRET, "ACME_IDP_SECRET": IDP_SECRET}


@contextlib.contextmanager
def enterprise_stack(**config: object) -> Iterator[FakeMCPStack]:
    """The stack on one loopback port, its identity provider (the same app, routed by origin) on another."""
    idp_socket = reserve_loopback_port()
    idp_url = f"http://127.0.0.1:{idp_socket.getsockname()[1]}"
    settings = FakeStackConfig(idp_base_url=idp_url, idp_client_secret=IDP_SECRET, **config)  # type: ignore[arg-type]
    with serve_stack(settings) as stack, serve_asgi(stack.asgi_app, sock=idp_socket, name="the fake IdP"):
        stack.add_client("mcp-client", MCP_SECRET, "client_secret_basic", grant_types=[JWT_BEARER])
        yield stack


def idp_options(stack: FakeMCPStack) -> list[str]:
    assert stack.config.idp_base_url is not None
    return [
        "--client-id",
        "mcp-client",
        "--idp-issuer",
        stack.config.idp_base_url,
        "--idp-client-id",
        "idp-client",
        "--idp-client-secret-env",
        "ACME_IDP_SECRET",
    ]


def test_login_with_an_id_token_file(home: Path, tmp_path: Path) -> None:
    with enterprise_stack() as stack:
        assert stack.idp is not None
        now = int(time.time())
        token = stack.idp.sign(
            {"iss": stack.idp.issuer, "sub": "alice", "aud": "idp-client", "iat": now, "exp": now + 600}
        )
        token_file = tmp_path / "id-token"
        token_file.write_text(token)
        result = run_cli(
            home,
            "login",
            "acme",
            stack.server_url,
            *idp_options(stack),
            "--id-token-file",
            str(token_file),
            env=SECRETS,
        )
        assert result.returncode == 0, problem(result)
        assert "Logged in: acme" in result.stdout
        assert "ID-JAG from" in result.stdout
        [exchange] = stack.idp.token_requests
        assert exchange["grant_type"] == TOKEN_EXCHANGE
        assert exchange["auth_method"] == "client_secret_basic"
        assert stack.token_requests[0]["id_jag"] is True
        for secret in (token, MCP_SECRET, IDP_SECRET, *stack.idp.issued_id_jags):
            assert secret not in result.stdout + result.stderr
    [record] = stored_records(home)
    assert record.client.client_id == "mcp-client"
    assert token not in repr(record.to_dict())


def test_login_signs_in_at_the_identity_provider_once(home: Path) -> None:
    with enterprise_stack() as stack:
        options = [*idp_options(stack), "--headless"]
        first = run_cli(home, "login", "acme", stack.server_url, *options, env=SECRETS)
        assert first.returncode == 0, problem(first)
        assert stack.idp is not None
        assert len(stack.idp.authorization_requests) == 1
        assert "nonce" in stack.idp.authorization_requests[0]
        # The MCP credential forgotten: a second login mints a new ID-JAG from the stored IdP session.
        assert run_cli(home, "clear", "acme").returncode == 0
        second = run_cli(home, "login", "acme", stack.server_url, *options, env=SECRETS)
        assert second.returncode == 0, problem(second)
        assert len(stack.idp.authorization_requests) == 1
        assert [request["grant_type"] for request in stack.idp.token_requests].count(TOKEN_EXCHANGE) == 2


def test_usage_errors(home: Path) -> None:
    url = "https://mcp.example.com/mcp"
    alone = run_cli(home, "login", "a", url, "--idp-client-id", "x")
    assert alone.returncode == 2
    assert "--idp-client-id belong to --idp-issuer" in alone.stderr
    no_client = run_cli(home, "login", "a", url, "--idp-issuer", "https://idp.example.com", "--idp-client-id", "x")
    assert no_client.returncode == 2
    assert "needs --client-id" in no_client.stderr
    unset = run_cli(
        home,
        "login",
        "a",
        url,
        "--client-id",
        "c",
        "--idp-issuer",
        "https://idp.example.com",
        "--idp-client-id",
        "x",
        "--idp-client-secret-env",
        "NOT_SET_ANYWHERE",
        env={"MCP_OAUTH_CLIENT_SECRET": "s"},
    )
    assert unset.returncode == 2
    assert "NOT_SET_ANYWHERE" in unset.stderr
    assert "is not set" in unset.stderr


def test_doctor_reports_the_grant_profiles_and_the_jwt_bearer_grant(home: Path) -> None:
    with enterprise_stack() as stack:
        report = run_cli(home, "doctor", stack.server_url).stdout
        assert "jwt-bearer grant offered" in report, report
        assert "authorization grant profiles: urn:ietf:params:oauth:grant-profile:id-jag" in report
        assert "enterprise-managed authorization (ID-JAG) accepted" in report
        [server] = json.loads(run_cli(home, "doctor", stack.server_url, "--json").stdout)["authorization_servers"]
        assert server["jwt_bearer"] is True
        assert server["authorization_grant_profiles_supported"] == ["urn:ietf:params:oauth:grant-profile:id-jag"]
    with serve_stack(FakeStackConfig()) as stack:
        report = run_cli(home, "doctor", stack.server_url).stdout
        assert "authorization_grant_profiles_supported not published" in report
        assert "jwt-bearer grant offered" not in report
