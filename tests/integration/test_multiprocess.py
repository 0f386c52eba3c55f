"""Several OS processes share one encrypted file store and one authorization server that rotates refresh tokens
and revokes the whole grant when a refresh token is used twice. Access tokens live one second, so every process
needs a fresh token every half second; the record lock makes exactly one of them refresh, and the others adopt
its token from the store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mcp_oauth_auth import MCPOAuth
from mcp_oauth_auth.storage.encrypted_file import EncryptedFileTokenStore
from mcp_oauth_auth.testing import FakeStackConfig, serve_stack

pytestmark = pytest.mark.integration

WORKERS = 4
SECONDS = 10.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(90)
def test_processes_sharing_a_store_never_spend_a_refresh_token_twice(tmp_path: Path) -> None:
    config = FakeStackConfig(access_token_lifetime=1, rotate_refresh_tokens=True)
    with serve_stack(config) as stack:
        seed = MCPOAuth(
            stack.server_url, store=EncryptedFileTokenStore(tmp_path, use_keyring=False), authorizer=stack.authorizer
        )
        with httpx.Client(auth=seed) as client:
            assert client.get(stack.server_url).status_code == 200
        stack.reset_log()

        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.integration.multiprocess_worker",
                    stack.server_url,
                    str(tmp_path),
                    str(SECONDS),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(WORKERS)
        ]
        reports = []
        for worker in workers:
            stdout, stderr = worker.communicate(timeout=SECONDS + 60)
            assert worker.returncode == 0, stderr
            reports.append(json.loads(stdout))

        token_requests = list(stack.token_requests)
        resource_statuses = [request["status"] for request in stack.resource_requests]

    for report in reports:
        assert report["errors"] == []
        assert report["authorizations"] == 0
        assert set(report["statuses"]) == {"200"}, report
        assert report["statuses"]["200"] > 50  # each process really worked the whole time
    refused = [request for request in token_requests if request.get("error")]
    assert refused == []  # not one invalid_grant: no refresh token was ever used twice
    assert {request["grant_type"] for request in token_requests} == {"refresh_token"}
    # Roughly one refresh per half second of wall time, shared by all processes (not one per process).
    assert SECONDS <= len(token_requests) <= 4 * SECONDS * WORKERS
    assert stack.count("authorize") == 0
    assert 401 not in resource_statuses  # every request carried a valid token
