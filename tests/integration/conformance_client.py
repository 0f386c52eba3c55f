"""Our client for the official MCP conformance suite (``@modelcontextprotocol/conformance``).

The suite starts a mock MCP server and authorization server for one scenario, then runs
``python conformance_client.py <server-url>`` with the scenario's name in ``MCP_CONFORMANCE_SCENARIO``, the protocol
revision it serves in ``MCP_CONFORMANCE_PROTOCOL_VERSION`` and, for some scenarios, credentials in
``MCP_CONFORMANCE_CONTEXT`` (JSON). It judges the client by the requests it sees, and by this process's exit code.

The client is what a user writes: :class:`~mcp_oauth_auth.MCPOAuth` on an ``httpx.AsyncClient``, a fresh
:class:`~mcp_oauth_auth.MemoryTokenStore`, and :class:`~mcp_oauth_auth.HeadlessAuthorizer` standing in for the
person (the suite's authorization endpoint redirects straight to the redirect URI with the code). The MCP side is
kept to what the scenarios need: connect (the ``initialize`` handshake, or the stateless lifecycle of the 2026-07-28
revision), ``tools/list`` and a call of the suite's ``test-tool``. A refusal (an ``OAuthError``) exits with 1.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import sys
from typing import Any

import httpx

from mcp_oauth_auth import EnterpriseIdP, HeadlessAuthorizer, MCPOAuth, MemoryTokenStore, PrivateKeyJWT
from mcp_oauth_auth.exceptions import OAuthError

#: The Client ID Metadata Document URL the suite's CIMD scenarios expect (an https URL with a path).
CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"

#: The revisions whose lifecycle starts with ``initialize`` (the 2026-07-28 revision dropped it, SEP-2575).
STATEFUL_REVISIONS = frozenset({"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"})

CLIENT_INFO = {"name": "mcp-oauth-auth-conformance", "version": "1.0.0"}

logger = logging.getLogger("conformance_client")


def scenario_context() -> dict[str, Any]:
    raw = os.environ.get("MCP_CONFORMANCE_CONTEXT")
    return json.loads(raw) if raw else {}


#: Scenarios whose server publishes its origin as the protected resource of an MCP endpoint below it. The library
#: accepts only the identical resource by default (RFC 9728 §3.3; a parent resource would let one tenant's server
#: obtain tokens valid for its neighbours, issue 14); a deployer who trusts such a gateway opts in, as here.
PARENT_RESOURCE_SCENARIOS = frozenset({"auth/metadata-var2"})

#: Enterprise-managed authorization (ID-JAG, SEP-990): the scenario's identity provider, the person's ID token and the
#: client's credentials at both servers come in the context. Named differently in the stable and pre-release suites.
ENTERPRISE_SCENARIOS = frozenset({"auth/cross-app-access-complete-flow", "auth/enterprise-managed-authorization"})

#: The machine-to-machine scenarios: no tool call follows the listing.
MACHINE_SCENARIOS = frozenset(
    {"auth/client-credentials-basic", "auth/client-credentials-jwt", "auth/wif-jwt-bearer", *ENTERPRISE_SCENARIOS}
)


def operator_issuer(server_url: str) -> str:
    """The authorization server an operator configures with pre-registered credentials (``issuer=``): the library
    sends a secret, key or workload assertion only to an issuer the user names, or to one on the MCP server's own
    origin (issue 14), and the suite's authorization server runs on another origin. Read here from the server's
    protected resource metadata, as the operator would have read it when registering the client."""
    with httpx.Client(timeout=10) as client:
        challenge = client.post(server_url, json={}).headers.get("www-authenticate", "")
        found = re.search(r'resource_metadata="([^"]+)"', challenge)
        origin = httpx.URL(server_url).copy_with(path="/", query=None)
        metadata_url = found.group(1) if found else str(origin.join("/.well-known/oauth-protected-resource"))
        servers = client.get(metadata_url).json()["authorization_servers"]
    return str(servers[0])


def make_auth(server_url: str, scenario: str, context: dict[str, Any]) -> MCPOAuth:
    """MCPOAuth as the scenario calls for: pre-registered or machine-to-machine credentials from the context."""
    options: dict[str, Any] = {
        "store": MemoryTokenStore(),
        "authorizer": HeadlessAuthorizer(timeout=10),
        "client_name": "mcp-oauth-auth conformance client",
        "allow_parent_resource": scenario in PARENT_RESOURCE_SCENARIOS,
    }
    if scenario == "auth/pre-registration":
        options.update(client_id=context["client_id"], client_secret=context["client_secret"])
    elif scenario == "auth/client-credentials-basic":
        options.update(
            grant_type="client_credentials", client_id=context["client_id"], client_secret=context["client_secret"]
        )
    elif scenario == "auth/client-credentials-jwt":
        signer = PrivateKeyJWT(context["private_key_pem"], algorithm=context.get("signing_algorithm") or "ES256")
        options.update(grant_type="client_credentials", client_id=context["client_id"], private_key=signer)
    elif scenario == "auth/wif-jwt-bearer":
        options.update(client_id=context["client_id"], assertion=context["valid_jwt"])
    elif scenario in ENTERPRISE_SCENARIOS:
        idp = EnterpriseIdP(
            issuer=context["idp_issuer"], client_id=context["idp_client_id"], id_token=context["idp_id_token"]
        )
        options.update(client_id=context["client_id"], client_secret=context["client_secret"], identity_assertion=idp)
    else:
        options.update(client_metadata_url=CLIENT_METADATA_URL)
    if "client_id" in options:
        options["issuer"] = operator_issuer(server_url)
    return MCPOAuth(server_url, **options)


class McpSession:
    """Just enough of MCP over Streamable HTTP: JSON-RPC requests answered as JSON or as an SSE stream."""

    def __init__(self, client: httpx.AsyncClient, server_url: str, protocol_version: str) -> None:
        self._client = client
        self._url = server_url
        self._version = protocol_version
        self._stateless = protocol_version not in STATEFUL_REVISIONS
        self._ids = itertools.count(1)
        self._headers = {"Accept": "application/json, text/event-stream"}

    async def connect(self) -> None:
        if self._stateless:
            self._headers["MCP-Protocol-Version"] = self._version
            return
        handshake = {"protocolVersion": self._version, "capabilities": {}, "clientInfo": CLIENT_INFO}
        await self.request("initialize", handshake)
        self._headers["MCP-Protocol-Version"] = self._version
        await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        params = dict(params or {})
        if self._stateless:
            params["_meta"] = {
                "io.modelcontextprotocol/protocolVersion": self._version,
                "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
                "io.modelcontextprotocol/clientCapabilities": {},
            }
        message_id = next(self._ids)
        response = await self._post({"jsonrpc": "2.0", "id": message_id, "method": method, "params": params})
        answer = _answer(response, message_id)
        if "error" in answer:
            raise RuntimeError(f"{method} failed: {answer['error']}")
        result: dict[str, Any] = answer["result"]
        return result

    async def _post(self, message: dict[str, Any]) -> httpx.Response:
        response = await self._client.post(self._url, json=message, headers=self._headers)
        session_id = response.headers.get("mcp-session-id")
        if session_id:
            self._headers["Mcp-Session-Id"] = session_id
        if response.status_code >= 400:
            raise RuntimeError(f"{message.get('method')}: HTTP {response.status_code} {response.text[:200]}")
        return response


def _answer(response: httpx.Response, message_id: int) -> dict[str, Any]:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                message = json.loads(line[5:])
                if message.get("id") == message_id:
                    return dict(message)
        raise RuntimeError("the event stream ended without the answer")
    return dict(response.json())


async def run(server_url: str) -> None:
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    version = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION") or "2025-11-25"
    auth = make_auth(server_url, scenario, scenario_context())
    async with httpx.AsyncClient(auth=auth, timeout=20) as client:
        session = McpSession(client, server_url, version)
        await session.connect()
        tools = await session.request("tools/list")
        logger.info("tools: %s", [tool.get("name") for tool in tools.get("tools", [])])
        if scenario in MACHINE_SCENARIOS:
            return
        await session.request("tools/call", {"name": "test-tool", "arguments": {}})


def main() -> int:
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    logging.getLogger("httpcore").setLevel(logging.INFO)
    try:
        asyncio.run(run(sys.argv[-1]))
    except OAuthError as exc:
        print(f"refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
