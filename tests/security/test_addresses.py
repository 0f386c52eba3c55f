"""Point 1: the URLs a server names (challenge, PRM, AS metadata and its endpoints) are never fetched on a private,
loopback, link-local, ULA, mapped or unspecified address unless the MCP server is on one itself, the user named the
host, or the user opted in; plain-http loopback only for a loopback MCP server; bounded authorization servers and
URLs per flow. Every refusal happens before the request leaves: the recording transport never sees it."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_oauth_auth import DiscoveryError, MemoryTokenStore, UnsafeURLError
from mcp_oauth_auth.flow.addresses import MAX_AUTHORIZATION_SERVERS, MAX_URLS_PER_FLOW, AddressPolicy, address_rule
from mcp_oauth_auth.flow.effects import HttpRequest, HttpResponse, ResolveHost, send
from mcp_oauth_auth.flow.guard import guarded

from .hostile import SERVER, HostileServer, answer, as_metadata, document, make_auth

AS = "https://auth.example"
PRM = {"resource": SERVER, "authorization_servers": [AS]}

INTERNAL = [
    "https://169.254.169.254",
    "https://10.0.0.5",
    "https://192.168.1.1:8443",
    "https://172.16.0.1",
    "https://127.0.0.1:2375",
    "https://[::1]",
    "https://[::ffff:169.254.169.254]",
    "https://[::ffff:a9fe:a9fe]",
    "https://[fd00::1]",
    "https://[fe80::1]",
    "https://0.0.0.0",
    "https://127.1",
    "https://2130706433",
    "https://0x7f.1",
    "https://localhost:8080",
    "https://metadata.localhost",
    "https://100.64.0.1",
]


def _hosts(server: HostileServer, prefix: str) -> list[str]:
    return [url for url in server.urls() if url.startswith(prefix.rstrip("/"))]


@pytest.mark.parametrize("target", INTERNAL)
def test_a_challenge_pointing_inside_is_refused_before_the_request(kind: tuple[str, str], target: str) -> None:
    server = HostileServer.protected(PRM, challenge=f'Bearer resource_metadata="{target}/latest/meta-data"')
    with pytest.raises(UnsafeURLError, match=r"refusing .*allow_private_networks=True") as caught:
        server.request(kind, make_auth())
    assert caught.value.url is not None
    assert caught.value.url.startswith(target.rstrip("/"))
    assert server.urls() == [SERVER]


@pytest.mark.parametrize("target", ["https://169.254.169.254", "https://[fd00::1]", "https://2130706433"])
def test_an_authorization_server_inside_is_refused(kind: tuple[str, str], target: str) -> None:
    server = HostileServer.protected({"resource": SERVER, "authorization_servers": [target]})
    with pytest.raises(UnsafeURLError):
        server.request(kind, make_auth())
    assert _hosts(server, target) == []


@pytest.mark.parametrize("endpoint", ["registration_endpoint", "token_endpoint"])
def test_endpoints_inside_receive_nothing(kind: tuple[str, str], endpoint: str) -> None:
    server = HostileServer.protected(PRM)
    metadata = as_metadata(AS, **{endpoint: "https://192.168.0.10/steal"})
    server.routes[f"{AS}/.well-known/oauth-authorization-server"] = document(metadata)
    server.routes[f"{AS}/register"] = document({"client_id": "c-1"}, status=201)
    auth = make_auth(authorizer=approve)
    with pytest.raises(UnsafeURLError, match=r"192\.168\.0\.10"):
        server.request(kind, auth)
    assert _hosts(server, "https://192.168.0.10") == []


def approve(url: str) -> str:
    """The callback an authorization server would send for the authorization request ``url``."""
    from urllib.parse import parse_qs, urlencode, urlsplit

    query = parse_qs(urlsplit(url).query)
    return f"{query['redirect_uri'][0]}?{urlencode({'code': 'c', 'state': query['state'][0], 'iss': AS})}"


def test_plain_http_loopback_is_refused_for_a_remote_server_even_when_opted_in(kind: tuple[str, str]) -> None:
    server = HostileServer.protected({"resource": SERVER, "authorization_servers": ["http://127.0.0.1:2375"]})
    with pytest.raises(UnsafeURLError, match="plain http"):
        server.request(kind, make_auth(allow_private_networks=True))
    assert _hosts(server, "http://127.0.0.1") == []


def test_the_opt_in_lets_private_addresses_through(kind: tuple[str, str]) -> None:
    server = HostileServer.protected({"resource": SERVER, "authorization_servers": ["https://10.0.0.5"]})
    with pytest.raises(DiscoveryError, match="publishes metadata"):
        server.request(kind, make_auth(allow_private_networks=True))
    assert "https://10.0.0.5/.well-known/oauth-authorization-server" in server.urls()


def test_a_host_the_user_named_is_trusted(kind: tuple[str, str]) -> None:
    server = HostileServer.protected({"resource": SERVER, "authorization_servers": ["https://10.0.0.5"]})
    with pytest.raises(DiscoveryError, match="publishes metadata"):
        server.request(kind, make_auth(issuer="https://10.0.0.5"))
    assert "https://10.0.0.5/.well-known/oauth-authorization-server" in server.urls()


def test_a_loopback_mcp_server_may_use_a_loopback_authorization_server(kind: tuple[str, str]) -> None:
    local = "http://127.0.0.1:8000/mcp"
    server = HostileServer()
    server.routes[local] = answer(401, {"www-authenticate": "Bearer"})
    server.routes["http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp"] = document(
        {"resource": local, "authorization_servers": ["http://localhost:9000", "http://[::1]:9001"]}
    )
    with pytest.raises(DiscoveryError, match="publishes metadata"):
        server.request(kind, make_auth(local), local)
    assert "http://localhost:9000/.well-known/oauth-authorization-server" in server.urls()
    assert "http://[::1]:9001/.well-known/oauth-authorization-server" in server.urls()


def test_a_long_list_of_authorization_servers_is_cut(kind: tuple[str, str]) -> None:
    servers = [f"https://as{index}.example" for index in range(300)]
    server = HostileServer.protected({"resource": SERVER, "authorization_servers": servers})
    with pytest.raises(DiscoveryError):
        server.request(kind, make_auth())
    asked = {url.split("/.well-known")[0] for url in server.urls() if ".well-known/o" in url and "as" in url}
    assert asked == set(servers[:MAX_AUTHORIZATION_SERVERS])
    assert len(server.seen) <= 3 + 2 * MAX_AUTHORIZATION_SERVERS


def test_a_flow_reaching_too_many_urls_is_stopped() -> None:
    def flow() -> Any:
        for index in range(MAX_URLS_PER_FLOW + 5):
            yield from send(HttpRequest.get(f"https://as.example/{index}"))
            # retries and polls repeat a URL: they do not count
            yield from send(HttpRequest.get(f"https://as.example/{index}?again"))

    steps = guarded(flow(), AddressPolicy(SERVER))

    def next_request(answer: Any) -> str:
        effect = steps.send(answer)
        while isinstance(effect, ResolveHost):  # names that do not resolve here: not refused
            effect = steps.send(())
        return str(effect.request.url)

    sent = [next_request(None)]

    def run_to_the_end() -> None:
        while True:
            sent.append(next_request(HttpResponse(404)))

    with pytest.raises(UnsafeURLError, match=f"at most {MAX_URLS_PER_FLOW}"):
        run_to_the_end()
    assert len({url.partition("?")[0] for url in sent}) == MAX_URLS_PER_FLOW


def test_logout_still_forgets_the_credential_when_revocation_points_inside() -> None:
    from mcp_oauth_auth.testing import FakeMCPStack

    from ..unit.clients import ClientKind, send_all

    stack = FakeMCPStack()
    store = MemoryTokenStore()
    auth = make_auth(stack.server_url, store=store, authorizer=stack.authorizer)
    send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    (key,) = store.list_keys()
    record = store.load(key)
    assert record is not None
    from dataclasses import replace

    store.save(replace(record, revocation_endpoint="https://169.254.169.254/revoke"))
    fresh = make_auth(stack.server_url, store=store, authorizer=stack.authorizer)
    import httpx

    with httpx.Client(transport=stack.httpx_transport()) as client:
        outcomes = fresh.logout(client)
    assert store.list_keys() == []
    assert outcomes
    assert all(isinstance(outcome.error, UnsafeURLError) for outcome in outcomes)
    assert not [entry for entry in stack.request_log if "169.254" in entry["url"]]


@pytest.mark.parametrize(
    ("host", "public"),
    [("8.8.8.8", True), ("2001:4860::8888", True), ("mcp.example", True), ("1e100.net", True), ("224.0.0.1", False)],
)
def test_public_addresses_and_names_pass(host: str, public: bool) -> None:
    assert (address_rule(host) is None) is public


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_step_by_step_client_applies_the_same_policy(backend: str) -> None:
    import anyio
    import httpx

    from mcp_oauth_auth import MCPOAuthClient

    server = HostileServer.protected({"resource": SERVER, "authorization_servers": ["https://169.254.169.254"]})

    async def main() -> None:
        async with server.client("httpx", "asyncio") as http:
            assert isinstance(http, httpx.AsyncClient)
            client = MCPOAuthClient(SERVER, http_client=http)
            with pytest.raises(UnsafeURLError, match="link-local"):
                await client.discover_authorization_server()
            opted = MCPOAuthClient(SERVER, http_client=http, allow_private_networks=True)
            with pytest.raises(DiscoveryError, match="publishes metadata"):
                await opted.discover_authorization_server()

    anyio.run(main, backend=backend)
    assert "https://169.254.169.254/.well-known/oauth-authorization-server" in server.urls()
