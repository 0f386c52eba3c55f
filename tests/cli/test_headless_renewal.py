"""``mcp-oauth token`` renews a credential without a refresh token the way ``login`` made it: workload identity with
the (rotated) assertion file, enterprise-managed authorization with a new ID-JAG from the stored IdP session; through
the real entry point, against the fake stack on loopback, with tokens that expire within a second or two."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey

from mcp_oauth_auth.authorizers.base import DEFAULT_REDIRECT_URI
from mcp_oauth_auth.flow.enterprise import TOKEN_EXCHANGE
from mcp_oauth_auth.flow.jwt_bearer import JWT_BEARER
from mcp_oauth_auth.records import CredentialRecord
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig, serve_stack

from .runner import file_store, problem, run_cli, stored_records
from .test_enterprise_login import IDP_SECRET, MCP_SECRET, SECRETS, enterprise_stack, idp_options

ISSUER = "https://token.actions.githubusercontent.com"
CODE = "authorization_code"
LIFETIME = 2


def wait_until_expired(record: CredentialRecord) -> None:
    assert record.tokens is not None
    assert record.tokens.expires_at is not None
    time.sleep(max(0.0, record.tokens.expires_at - time.time()) + 0.1)
    assert record.tokens.expires_within(0)


def the_record(home: Path, server_url: str) -> CredentialRecord:
    [record] = [record for record in stored_records(home) if record.server_url == server_url]
    return record


def stored_json(record: CredentialRecord) -> str:
    return json.dumps(record.to_dict())


def workload_assertion(key: ec.EllipticCurvePrivateKey, audience: str, subject: str) -> str:
    claims = {"iss": ISSUER, "sub": subject, "aud": audience, "exp": int(time.time()) + 300}
    return jwt.encode({"alg": "ES256"}, claims, ECKey.import_key(key))


@contextlib.contextmanager
def workload_login(
    home: Path, tmp_path: Path, lifetime: int = LIFETIME, grant_types: Sequence[str] = (JWT_BEARER,)
) -> Iterator[tuple[FakeMCPStack, ec.EllipticCurvePrivateKey, Path]]:
    """The fake stack trusting a workload issuer, and ``ci`` logged in to it with ``--assertion-file oidc-token``
    (relative to ``tmp_path``, where it runs); the stack, the issuer's key and the assertion file."""
    key = ec.generate_private_key(ec.SECP256R1())
    config = FakeStackConfig(workload_issuers={ISSUER: key.public_key()}, access_token_lifetime=lifetime)
    with serve_stack(config) as stack:
        stack.add_client("ci-workload", redirect_uris=[DEFAULT_REDIRECT_URI], grant_types=list(grant_types))
        token_file = tmp_path / "oidc-token"
        token_file.write_text(workload_assertion(key, stack.issuer, "repo:org/app:first"))
        options = ["--client-id", "ci-workload", "--assertion-file", token_file.name]
        login = run_cli(home, "login", "ci", stack.server_url, *options, cwd=tmp_path)
        assert login.returncode == 0, problem(login)
        yield stack, key, token_file


def test_token_renews_a_workload_credential_with_the_rotated_assertion_file(home: Path, tmp_path: Path) -> None:
    with workload_login(home, tmp_path) as (stack, key, token_file):
        first_assertion = token_file.read_text()
        record = the_record(home, stack.server_url)
        assert record.tokens is not None
        assert record.tokens.refresh_token is None
        assert record.renewal == {"grant": "jwt-bearer", "assertion_file": str(token_file)}  # made absolute
        assert first_assertion not in stored_json(record)
        # The workload's platform rotates the file; the stored token expires.
        rotated = workload_assertion(key, stack.issuer, "repo:org/app:rotated")
        token_file.write_text(rotated)
        wait_until_expired(record)
        result = run_cli(home, "token", "ci")
        assert result.returncode == 0, problem(result)
        assert result.stdout != record.tokens.access_token
        assert stack.grants_used() == [JWT_BEARER, JWT_BEARER]
        assert stack.token_requests[-1]["workload"] == "repo:org/app:rotated"
        assert rotated not in result.stdout + result.stderr
        renewed = the_record(home, stack.server_url)
        assert renewed.tokens is not None
        assert renewed.tokens.access_token == result.stdout
        # The note outlives the new grant: the next expiry is renewed too.
        assert renewed.renewal == record.renewal
        wait_until_expired(renewed)
        again = run_cli(home, "token", "ci")
        assert again.returncode == 0, problem(again)
        assert again.stdout not in (result.stdout, record.tokens.access_token)
        assert stack.grants_used() == [JWT_BEARER] * 3
        # ``test`` renews the same way before it connects (the fake stack's resource answers, but speaks no MCP).
        wait_until_expired(the_record(home, stack.server_url))
        tested = run_cli(home, "test", "ci")
        assert "is this URL an MCP endpoint?" in tested.stderr, problem(tested)
        assert stack.grants_used() == [JWT_BEARER] * 4
        current = the_record(home, stack.server_url).tokens
        assert current is not None
        assert stack.resource_requests[-1]["status"] == 200  # (the one before it: login's check, unauthenticated)
        assert stack.resource_requests[-1]["authorization"] == f"Bearer {current.access_token}"


@contextlib.contextmanager
def enterprise_login(home: Path, lifetime: int = LIFETIME) -> Iterator[tuple[FakeMCPStack, CredentialRecord]]:
    """The fake stack with its IdP, and ``acme`` logged in to it (signed in at the IdP without a browser); the stack
    and the stored credential."""
    with enterprise_stack(access_token_lifetime=lifetime) as stack:
        login = run_cli(home, "login", "acme", stack.server_url, *idp_options(stack), "--headless", env=SECRETS)
        assert login.returncode == 0, problem(login)
        yield stack, the_record(home, stack.server_url)


def test_token_renews_an_enterprise_credential_from_the_idp_session(home: Path) -> None:
    with enterprise_login(home) as (stack, record):
        assert stack.idp is not None
        assert record.tokens is not None
        assert record.renewal == {
            "grant": "id-jag",
            "idp_issuer": stack.config.idp_base_url,
            "idp_client_id": "idp-client",
            "idp_client_secret_env": "ACME_IDP_SECRET",
        }
        for secret in (MCP_SECRET, IDP_SECRET, *stack.idp.issued_id_jags):
            assert secret not in json.dumps(record.renewal)
        wait_until_expired(record)
        # Only the IdP's secret is needed now: the MCP client's is stored with the client registration.
        result = run_cli(home, "token", "acme", env={"ACME_IDP_SECRET": IDP_SECRET})
        assert result.returncode == 0, problem(result)
        assert result.stdout != record.tokens.access_token
        assert len(stack.idp.authorization_requests) == 1  # nobody signed in again
        assert [request["grant_type"] for request in stack.idp.token_requests].count(TOKEN_EXCHANGE) == 2
        assert [request["id_jag"] for request in stack.token_requests] == [True, True]
        for secret in (MCP_SECRET, IDP_SECRET, *stack.idp.issued_id_jags):
            assert secret not in result.stdout + result.stderr
        assert the_record(home, stack.server_url).renewal == record.renewal


def test_token_renews_an_enterprise_credential_with_the_rewritten_id_token_file(home: Path, tmp_path: Path) -> None:
    with enterprise_stack(access_token_lifetime=LIFETIME) as stack:
        assert stack.idp is not None
        idp = stack.idp

        def id_token(subject: str) -> str:
            now = int(time.time())
            return idp.sign({"iss": idp.issuer, "sub": subject, "aud": "idp-client", "iat": now, "exp": now + 600})

        token_file = tmp_path / "id-token"
        token_file.write_text(id_token("alice"))
        options = [*idp_options(stack), "--id-token-file", token_file.name]
        login = run_cli(home, "login", "acme", stack.server_url, *options, env=SECRETS, cwd=tmp_path)
        assert login.returncode == 0, problem(login)
        record = the_record(home, stack.server_url)
        assert record.renewal is not None
        assert record.renewal["id_token_file"] == str(token_file)
        assert token_file.read_text() not in stored_json(record)
        token_file.write_text(id_token("alice-again"))
        wait_until_expired(record)
        result = run_cli(home, "token", "acme", env={"ACME_IDP_SECRET": IDP_SECRET})
        assert result.returncode == 0, problem(result)
        assert [request["workload"] for request in stack.token_requests] == ["alice", "alice-again"]
        assert idp.authorization_requests == []  # nobody signed in: the file is the ID token


def test_a_missing_idp_secret_variable_is_one_clear_line(home: Path) -> None:
    with enterprise_login(home) as (stack, record):
        wait_until_expired(record)
        result = run_cli(home, "token", "acme")
        assert result.returncode == 1, problem(result)
        assert result.stdout == ""
        error, hint = result.stderr.splitlines()
        assert error == (
            "error: the environment variable ACME_IDP_SECRET (named at login by --idp-client-secret-env) is not set"
        )
        assert hint.startswith("hint: export ACME_IDP_SECRET=")
        # Nothing was spent or removed: with the variable set, the same credential renews.
        assert the_record(home, stack.server_url) == record
        renewed = run_cli(home, "token", "acme", env={"ACME_IDP_SECRET": IDP_SECRET})
        assert renewed.returncode == 0, problem(renewed)


def test_logout_needs_no_idp_secret(home: Path) -> None:
    """Revoking makes no grant: an expired enterprise credential is logged out of without the IdP's secret."""
    with enterprise_login(home) as (stack, record):
        wait_until_expired(record)
        result = run_cli(home, "logout", "acme")  # (no ACME_IDP_SECRET)
        assert result.returncode == 0, problem(result)
        assert stack.server_url not in [other.server_url for other in stored_records(home)]


def test_a_token_not_yet_due_needs_no_idp_secret(home: Path) -> None:
    with enterprise_login(home, lifetime=3600) as (_, record):
        assert record.tokens is not None
        result = run_cli(home, "token", "acme")  # (no ACME_IDP_SECRET)
        assert result.returncode == 0, problem(result)
        assert result.stdout == record.tokens.access_token


def test_without_the_idp_session_the_person_is_told_to_log_in_again(home: Path) -> None:
    with enterprise_login(home) as (stack, record):
        assert stack.idp is not None
        [session] = [other for other in stored_records(home) if other.key != record.key]
        file_store(home).delete(session.key)
        wait_until_expired(record)
        result = run_cli(home, "token", "acme", env={"ACME_IDP_SECRET": IDP_SECRET})
        assert result.returncode == 3, problem(result)
        assert f"a new login is needed\nhint: mcp-oauth login acme {stack.server_url}" in result.stderr
        assert "Traceback" not in result.stderr
        assert len(stack.idp.authorization_requests) == 1  # no sign-in was started


def test_a_record_without_a_note_is_renewed_by_a_new_login_as_before(home: Path, tmp_path: Path) -> None:
    with workload_login(home, tmp_path) as (stack, _, _):
        # As a record written before the note existed: no ``renewal`` field at all.
        record = the_record(home, stack.server_url)
        store = file_store(home)
        store.save(CredentialRecord.from_dict({k: v for k, v in record.to_dict().items() if k != "renewal"}))
        legacy = the_record(home, stack.server_url)
        assert legacy.renewal is None
        wait_until_expired(legacy)
        result = run_cli(home, "token", "ci")
        assert result.returncode == 3, problem(result)
        assert "a new login is needed" in result.stderr
        assert stack.grants_used() == [JWT_BEARER]


def test_a_new_login_without_a_headless_grant_drops_the_note(home: Path, tmp_path: Path) -> None:
    with workload_login(home, tmp_path, grant_types=(JWT_BEARER, CODE)) as (stack, _, _):
        record = the_record(home, stack.server_url)
        assert record.renewal is not None
        # Expired, the same credential is replaced by a person's login: its note goes.
        wait_until_expired(record)
        headless = run_cli(home, "login", "ci", stack.server_url, "--client-id", "ci-workload", "--headless")
        assert headless.returncode == 0, problem(headless)
        assert the_record(home, stack.server_url).renewal is None
        assert "renewal" not in the_record(home, stack.server_url).to_dict()


def test_a_credential_found_again_keeps_its_note(home: Path, tmp_path: Path) -> None:
    with workload_login(home, tmp_path, lifetime=3600, grant_types=(JWT_BEARER, CODE)) as (stack, _, _):
        record = the_record(home, stack.server_url)
        time.sleep(1.1)  # (login says "Logged in" for a token issued within the second before it started)
        again = run_cli(home, "login", "ci", stack.server_url, "--client-id", "ci-workload", "--headless")
        assert "Already logged in" in again.stdout, problem(again)
        assert the_record(home, stack.server_url).renewal == record.renewal
        assert stack.grants_used() == [JWT_BEARER]
