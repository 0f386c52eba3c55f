"""``mcp-oauth login --dpop`` and what ``doctor`` says about DPoP, through the real entry point, on loopback."""

from __future__ import annotations

import json
from pathlib import Path

from mcp_oauth_auth import DPoPKey
from mcp_oauth_auth.testing import FakeStackConfig, serve_stack

from .runner import problem, run_cli, stored_records


def test_login_with_dpop_stores_a_bound_credential(home: Path) -> None:
    with serve_stack(FakeStackConfig(dpop=True, dpop_nonce=True)) as stack:
        result = run_cli(home, "login", "work", stack.server_url, "--headless", "--dpop")
        assert result.returncode == 0, problem(result)
        assert "DPoP (DPoP token, key stored with it)" in result.stdout
        [record] = stored_records(home)
        assert record.tokens is not None
        assert record.tokens.token_type == "DPoP"
        key = DPoPKey.from_pem(record.dpop_key or "")
        assert stack.token_requests[-1]["dpop_jkt"] == key.thumbprint
        assert "PRIVATE KEY" not in result.stdout + result.stderr
        listed = run_cli(home, "show", "work", "--json")
        assert listed.returncode == 0, problem(listed)
        shown = json.loads(listed.stdout)
        assert shown["dpop_bound"] is True
        assert shown["token_type"] == "DPoP"
        assert "PRIVATE KEY" not in listed.stdout


def test_login_without_dpop_stays_bearer(home: Path) -> None:
    with serve_stack(FakeStackConfig(dpop=True)) as stack:
        result = run_cli(home, "login", "work", stack.server_url, "--headless")
        assert result.returncode == 0, problem(result)
        [record] = stored_records(home)
        assert record.dpop_key is None
        assert "binding" not in result.stdout


def test_doctor_reports_dpop_support_and_requiredness(home: Path) -> None:
    with serve_stack(FakeStackConfig(dpop=True, dpop_required=True)) as stack:
        result = run_cli(home, "doctor", stack.server_url)
        report = result.stdout
        assert "DPoP challenge only" in report, report
        assert "DPoP-bound access tokens required" in report
        assert "DPoP (RFC 9449) proofs accepted: ES256, RS256, EdDSA" in report
        as_json = json.loads(run_cli(home, "doctor", stack.server_url, "--json").stdout)
        assert as_json["protected_resource_metadata"]["dpop_bound_access_tokens_required"] is True
        [server] = as_json["authorization_servers"]
        assert server["dpop_signing_alg_values_supported"] == ["ES256", "RS256", "EdDSA"]
    with serve_stack(FakeStackConfig(dpop=True)) as stack:
        report = run_cli(home, "doctor", stack.server_url).stdout
        assert "DPoP challenge too" in report
        assert "DPoP-bound access tokens required" not in report
    with serve_stack(FakeStackConfig()) as stack:
        report = run_cli(home, "doctor", stack.server_url).stdout
        assert "DPoP (RFC 9449) not advertised" in report
        assert "DPoP challenge" not in report
