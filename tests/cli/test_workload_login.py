"""``mcp-oauth login NAME URL --client-id ID --assertion-file PATH``: workload identity from the command line, through
the real entry point, against the fake stack on loopback."""

from __future__ import annotations

import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey

from mcp_oauth_auth.flow.jwt_bearer import JWT_BEARER
from mcp_oauth_auth.testing import FakeStackConfig, serve_stack

from .runner import problem, run_cli, stored_records

ISSUER = "https://token.actions.githubusercontent.com"


def test_login_with_an_assertion_file(home: Path, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with serve_stack(FakeStackConfig(workload_issuers={ISSUER: key.public_key()})) as stack:
        stack.add_client("ci-workload", grant_types=[JWT_BEARER])
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": "repo:org/app:ref:refs/heads/main", "aud": stack.issuer, "exp": now + 300}
        assertion = jwt.encode({"alg": "ES256"}, claims, ECKey.import_key(key))
        token_file = tmp_path / "oidc-token"
        token_file.write_text(assertion)
        result = run_cli(
            home, "login", "ci", stack.server_url, "--client-id", "ci-workload", "--assertion-file", str(token_file)
        )
        assert result.returncode == 0, problem(result)
        assert "Logged in: ci" in result.stdout
        assert assertion not in result.stdout + result.stderr
        assert stack.grants_used() == [JWT_BEARER]
        assert stack.token_requests[0]["workload"] == "repo:org/app:ref:refs/heads/main"
    [record] = stored_records(home)
    assert record.client.client_id == "ci-workload"
    assert assertion not in repr(record.to_dict())


def test_an_assertion_file_needs_a_client_id(home: Path, tmp_path: Path) -> None:
    result = run_cli(home, "login", "ci", "https://mcp.example.com/mcp", "--assertion-file", str(tmp_path / "t"))
    assert result.returncode == 2
    assert "--assertion-file needs --client-id" in result.stderr
