"""DPoP (RFC 9449) against a real authorization server: oidc-provider with its DPoP feature and nonces on, and a
resource server of this module (on 127.0.0.1) that verifies every proof and the binding the way RFC 9449 §7 asks:
``Authorization: DPoP``, one proof by the key whose thumbprint the token's ``cnf.jkt`` names (read by
introspection, RFC 7662), ``htm``/``htu``/``iat``/``jti``, its own nonce, and the ``ath`` of the token.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from mcp_oauth_auth import DPoPKey, MCPOAuth, MemoryTokenStore
from mcp_oauth_auth.testing.dpop_proofs import DPoPProofChecker, DPoPProofError

from .oidc_provider import MACHINE_CLIENTS, OIDCProvider, Person, run_oidc_provider
from .test_oidc_provider import RecordingAuthorizer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PRM_PATH = "/.well-known/oauth-protected-resource/mcp"


@dataclass
class DPoPResource:
    """A protected resource that accepts DPoP-bound tokens only, checking each proof and binding."""

    url: str
    provider: OIDCProvider | None = None
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    checker: DPoPProofChecker = field(default_factory=lambda: DPoPProofChecker(("ES256", "EdDSA")))
    #: (status, why) per request to the MCP endpoint.
    answers: list[tuple[int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def metadata(self) -> dict[str, Any]:
        assert self.provider is not None
        return {
            "resource": self.url,
            "authorization_servers": [self.provider.issuer],
            "scopes_supported": ["mcp:read"],
            "dpop_bound_access_tokens_required": True,
            "dpop_signing_alg_values_supported": ["ES256", "EdDSA"],
        }

    def check(self, method: str, headers: Any) -> tuple[int, str, str | None]:
        """(status, why, DPoP error) for a request to the MCP endpoint."""
        assert self.provider is not None
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "dpop" or not token:
            return 401, "no DPoP token", None
        try:
            thumbprint = self.checker.check(
                headers.get_all("DPoP") or [], method, self.url, time.time(), nonce=self.nonce, access_token=token
            )
        except DPoPProofError as exc:
            return 401, exc.description, exc.error
        info = self.provider.introspect(token)
        if not info.get("active") or info.get("aud") != self.url:
            return 401, "inactive, or for another audience", "invalid_token"
        if info.get("token_type") != "DPoP" or info.get("cnf", {}).get("jkt") != thumbprint:
            return 401, "not bound to the proof's key", "invalid_token"
        return 200, "ok", None


@contextmanager
def serve_resource() -> Iterator[DPoPResource]:
    resource: DPoPResource | None = None

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, document: dict[str, Any], headers: list[tuple[str, str]]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            for name, value in [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers]:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _serve(self) -> None:
            assert resource is not None
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if self.path == PRM_PATH:
                self._send(200, resource.metadata(), [])
                return
            with resource.lock:
                status, why, error = resource.check(self.command, self.headers)
                resource.answers.append((status, why))
            nonce = [("DPoP-Nonce", resource.nonce)]
            if status == 200:
                self._send(200, {"ok": True}, nonce)
                return
            params = f'algs="ES256 EdDSA", resource_metadata="{resource.url.rsplit("/mcp", 1)[0]}{PRM_PATH}"'
            if error is not None:
                params = f'error="{error}", {params}'
            self._send(401, {"error": error or "unauthorized"}, [("WWW-Authenticate", f"DPoP {params}"), *nonce])

        do_GET = do_POST = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    resource = DPoPResource(f"http://127.0.0.1:{server.server_address[1]}/mcp")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield resource
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def dpop_stack(tmp_path: Path) -> Iterator[tuple[OIDCProvider, DPoPResource]]:
    with serve_resource() as resource, run_oidc_provider(tmp_path, resources=[resource.url], dpop_nonce=True) as op:
        resource.provider = op
        yield op, resource


def test_client_credentials_with_dpop_nonces(dpop_stack: tuple[OIDCProvider, DPoPResource]) -> None:
    provider, resource = dpop_stack
    client_id = MACHINE_CLIENTS["client_secret_basic"]
    auth = MCPOAuth(
        resource.url,
        store=MemoryTokenStore(),
        grant_type="client_credentials",
        client_id=client_id,
        client_secret=provider.secret(client_id),
        dpop=True,
    )
    with httpx.Client(auth=auth, timeout=30) as client:
        statuses = [client.post(resource.url, json={"n": n}).status_code for n in range(3)]
    assert statuses == [200, 200, 200]
    # The provider demanded its nonce once (400 use_dpop_nonce), then issued a DPoP-bound token; every token
    # request carried a proof.
    token_requests = provider.requests("token", grant_type="client_credentials")
    assert [(r["status"], r["error"], r["dpop"]) for r in token_requests] == [
        (400, "use_dpop_nonce", True),
        (200, None, True),
    ]
    assert auth.record is not None
    assert auth.record.tokens is not None
    assert auth.record.tokens.token_type == "DPoP"
    key = DPoPKey.from_pem(auth.record.dpop_key or "")
    info = provider.introspect(auth.record.tokens.access_token)
    assert info["cnf"] == {"jkt": key.thumbprint}
    # The resource: no token (401), a DPoP token without its nonce (401 use_dpop_nonce, retried once), then
    # every request at once, with the nonce kept from its answers.
    assert [status for status, _ in resource.answers] == [401, 401, 200, 200, 200]
    assert "nonce" in resource.answers[1][1]


def test_code_flow_uses_dpop_unasked_and_refreshes_with_the_stored_key(
    dpop_stack: tuple[OIDCProvider, DPoPResource],
) -> None:
    provider, resource = dpop_stack
    person = Person("alice", provider.password)
    auth = MCPOAuth(resource.url, store=MemoryTokenStore(), authorizer=RecordingAuthorizer(person))

    async def two_requests(auth: MCPOAuth) -> list[int]:
        async with httpx.AsyncClient(auth=auth, timeout=30) as client:
            return [(await client.post(resource.url, json={})).status_code for _ in range(2)]

    assert anyio.run(two_requests, auth) == [200, 200]
    assert provider.interactions() == ["login", "consent"]
    record = auth.record
    assert record is not None
    assert record.tokens is not None
    assert record.tokens.token_type == "DPoP"
    assert record.tokens.refresh_token is not None
    [exchange] = provider.requests("token", grant_type="authorization_code", status=200)
    assert exchange["dpop"] is True
    # A restarted process near expiry: it refreshes the DPoP-bound refresh token with the stored key (oidc-provider
    # binds a public client's refresh token to it), without the person.
    now = time.time()
    auth.store.save(record.with_tokens(replace(record.tokens, expires_at=now + 5, issued_at=now - 295)))
    restarted = MCPOAuth(resource.url, store=auth.store, authorizer=RecordingAuthorizer(person))
    assert anyio.run(two_requests, restarted) == [200, 200]
    refreshes = provider.requests("token", grant_type="refresh_token")
    assert [r["status"] for r in refreshes if r["error"] != "use_dpop_nonce"] == [200]
    assert all(r["dpop"] for r in refreshes)
    assert provider.interactions() == ["login", "consent"]
    assert restarted.record is not None
    assert restarted.record.dpop_key == record.dpop_key
    assert restarted.tokens is not None
    info = provider.introspect(restarted.tokens.access_token)
    assert info["cnf"] == {"jkt": DPoPKey.from_pem(record.dpop_key or "").thumbprint}
