"""Point 1, resolved: a public-looking name that resolves to a forbidden address is refused before the request leaves
(the resolver replaced, no DNS), and a response that came from a forbidden address is refused before it is read
(a real loopback socket, reached through a proxy mount so that the name itself resolves publicly). The same
exemptions as for literal hosts: the MCP server's own address, allow_private_networks, hosts the user named."""

from __future__ import annotations

import importlib
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from mcp_oauth_auth import DiscoveryError, OAuthError, UnsafeURLError
from mcp_oauth_auth.driving import resolution
from mcp_oauth_auth.flow.addresses import AddressPolicy
from mcp_oauth_auth.flow.effects import HttpRequest, ResolveHost, send
from mcp_oauth_auth.flow.guard import guarded

from .hostile import SERVER, HostileServer, answer, as_metadata, document, make_auth

AS = "https://auth.example"
PRM = {"resource": SERVER, "authorization_servers": [AS]}
PUBLIC = "93.184.215.14"
AS_METADATA_URL = f"{AS}/.well-known/oauth-authorization-server"


class Names(dict[str, tuple[str, ...]]):
    """Host name -> addresses, as the drivers' resolver sees them (no DNS); ``lookups``: (name, thread) of each."""

    lookups: list[tuple[str, str]]


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> Names:
    table = Names({"mcp.example": (PUBLIC,)})
    table.lookups = []

    def fake(host: str, port: int) -> tuple[str, ...]:
        table.lookups.append((host, threading.current_thread().name))
        return table.get(host, ())

    monkeypatch.setattr(resolution, "resolver", fake)
    return table


@pytest.mark.parametrize(
    ("addresses", "rule"),
    [
        (("169.254.169.254",), "link-local"),
        ((PUBLIC, "10.0.0.5"), "private-network"),  # any forbidden address of several
        (("::ffff:127.0.0.1",), "IPv4-mapped"),
        (("fd00::1",), "unique local"),
    ],
)
def test_a_name_resolving_inside_is_refused_before_the_request(
    kind: tuple[str, str], names: Names, addresses: tuple[str, ...], rule: str
) -> None:
    names["auth.example"] = addresses
    server = HostileServer.protected(PRM)
    server.routes[AS_METADATA_URL] = document(as_metadata(AS))
    with pytest.raises(UnsafeURLError, match=rf"auth\.example resolves to .*{rule}") as caught:
        server.request(kind, make_auth())
    assert caught.value.url == AS_METADATA_URL
    assert "allow_private_networks=True" in str(caught.value)
    assert not [url for url in server.urls() if url.startswith(AS)]  # nothing left for it


def test_a_name_resolving_to_a_public_address_passes(kind: tuple[str, str], names: Names) -> None:
    names["auth.example"] = (PUBLIC,)
    server = HostileServer.protected(PRM)
    with pytest.raises(DiscoveryError) as caught:  # the fake publishes no AS metadata: discovery fails after it
        server.request(kind, make_auth())
    assert not isinstance(caught.value, UnsafeURLError)
    assert AS_METADATA_URL in server.urls()
    assert [host for host, _ in names.lookups] == ["mcp.example", "auth.example"]
    if kind[1] != "sync":  # async clients resolve in a worker thread: the event loop never blocks on DNS
        assert all(thread != threading.main_thread().name for _, thread in names.lookups)


@pytest.mark.parametrize(
    "options",
    [{"allow_private_networks": True}, {"issuer": AS}],
    ids=["opted-in", "named-by-the-user"],
)
def test_the_exemptions_hold_for_resolved_names(kind: tuple[str, str], names: Names, options: dict[str, Any]) -> None:
    names["auth.example"] = ("10.0.0.5",)
    server = HostileServer.protected(PRM)
    with pytest.raises(DiscoveryError) as caught:
        server.request(kind, make_auth(**options))
    assert not isinstance(caught.value, UnsafeURLError)
    assert AS_METADATA_URL in server.urls()


def test_a_server_whose_own_name_resolves_inside_may_name_internal_hosts(kind: tuple[str, str], names: Names) -> None:
    """A local deployment under DNS names: the MCP server resolves to a private address itself."""
    names["mcp.example"] = ("10.0.0.4",)
    names["auth.example"] = ("10.0.0.5",)
    server = HostileServer.protected(PRM)
    with pytest.raises(DiscoveryError) as caught:
        server.request(kind, make_auth())
    assert not isinstance(caught.value, UnsafeURLError)
    assert AS_METADATA_URL in server.urls()


def test_names_are_resolved_once_per_flow_and_never_for_a_local_server() -> None:
    def flow() -> Any:
        for _ in range(3):
            yield from send(HttpRequest.get(f"{AS}/x"))

    effects = []
    steps = guarded(flow(), AddressPolicy(SERVER))
    effect = next(steps)
    while True:
        effects.append(effect)
        try:
            effect = steps.send((PUBLIC,) if isinstance(effect, ResolveHost) else _not_found())
        except DiscoveryError:
            break
        except StopIteration:
            break
    assert [(e.host, e.port) for e in effects if isinstance(e, ResolveHost)] == [
        ("mcp.example", 443),
        ("auth.example", 443),
    ]

    local = guarded(flow(), AddressPolicy("http://127.0.0.1:8000/mcp"))
    assert not isinstance(next(local), ResolveHost)
    local.close()


def _not_found() -> Any:
    from mcp_oauth_auth.flow.effects import HttpResponse

    return HttpResponse(404)


# -- the address a response came from: a real socket --------------------------------------------------------------


class _Answer(socketserver.BaseRequestHandler):
    """Answers every request sent to it as to an HTTP proxy: from its routes (absolute URL -> answer), else with
    the AS metadata of ``http://auth.example``."""

    server: _Loopback

    def handle(self) -> None:
        self.request.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.request.recv(4096)
            if not data:
                return
            head += data
        self.server.requests += 1
        target = head.split(b" ", 2)[1].decode().partition("?")[0]
        route = self.server.routes.get(target, document(as_metadata("http://auth.example")))
        status, headers, body = route(None)
        lines = [
            f"HTTP/1.1 {status} X",
            *(f"{name}: {value}" for name, value in headers.items()),
            f"Content-Length: {len(body)}",
            "Connection: close",
            "",
            "",
        ]
        self.request.sendall("\r\n".join(lines).encode() + body)


class _Loopback(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    requests = 0
    routes: dict[str, Any]


@contextmanager
def _loopback(address: str = "127.0.0.1", routes: dict[str, Any] | None = None) -> Iterator[_Loopback]:
    server = _Loopback((address, 0), _Answer)
    server.routes = routes or {}
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _through_loopback(kind: tuple[str, str], proxy: _Loopback, host: str = "auth.example") -> dict[str, Any]:
    """Client options sending ``http://HOST`` to the loopback socket (a proxy mount), the rest to the fake."""
    return {"mounts": {f"http://{host}": _proxied(kind, proxy)}}


def _proxied(kind: tuple[str, str], proxy: _Loopback) -> Any:
    library = importlib.import_module(kind[0])
    transport = library.HTTPTransport if kind[1] == "sync" else library.AsyncHTTPTransport
    host, port = proxy.server_address[:2]
    return transport(proxy=f"http://{host}:{port}")


def test_a_response_from_a_forbidden_address_is_refused_unread(kind: tuple[str, str], names: Names) -> None:
    """The name resolves publicly here, but the connection went to loopback (re-bound, or resolved otherwise by
    the client's transport): the answer is refused."""
    names["auth.example"] = (PUBLIC,)
    server = HostileServer.protected({"resource": SERVER, "authorization_servers": ["http://auth.example"]})
    with _loopback() as proxy:
        with pytest.raises(UnsafeURLError, match=r"auth\.example went to 127\.0\.0\.1, a loopback address") as caught:
            server.request(kind, make_auth(allow_insecure_http=True), **_through_loopback(kind, proxy))
        assert proxy.requests >= 1  # it was asked, and its answer was not used
    assert caught.value.url == "http://auth.example/.well-known/oauth-authorization-server"


def test_a_response_from_an_allowed_address_is_used(kind: tuple[str, str], names: Names) -> None:
    """The control: from a host the user named (``issuer=``), the same answer is used (the flow goes on to
    registration)."""
    names["auth.example"] = (PUBLIC,)
    server = HostileServer.protected({"resource": SERVER, "authorization_servers": ["http://auth.example"]})
    with _loopback() as proxy:
        auth = make_auth(allow_insecure_http=True, issuer="http://auth.example")
        with pytest.raises(OAuthError) as caught:
            server.request(kind, auth, **_through_loopback(kind, proxy))
        assert not isinstance(caught.value, UnsafeURLError)
        assert proxy.requests >= 2  # the metadata, then its registration endpoint


HTTP_SERVER = "http://mcp.example/mcp"
HTTP_PRM = {"resource": HTTP_SERVER, "authorization_servers": ["http://auth.example"]}


def _mcp_routes() -> dict[str, Any]:
    return {
        HTTP_SERVER: answer(401, {"www-authenticate": "Bearer"}),
        "http://mcp.example/.well-known/oauth-protected-resource/mcp": document(HTTP_PRM),
    }


def test_a_response_from_the_servers_own_address_is_used(kind: tuple[str, str], names: Names) -> None:
    """Through a proxy on a private address, every response comes from the proxy: the MCP server's too. A response
    from the address the server's responses came from reaches nothing the server's URL does not."""
    names["auth.example"] = (PUBLIC,)
    with _loopback(routes=_mcp_routes()) as proxy:
        server = HostileServer()
        options = {
            "mounts": {"http://mcp.example": _proxied(kind, proxy), "http://auth.example": _proxied(kind, proxy)}
        }
        with pytest.raises(OAuthError) as caught:
            server.request(kind, make_auth(HTTP_SERVER, allow_insecure_http=True), url=HTTP_SERVER, **options)
    assert not isinstance(caught.value, UnsafeURLError)
    assert proxy.requests >= 4  # the protected request, the metadata of both, then registration


def test_a_server_re_binding_its_own_name_does_not_switch_the_checks_off(kind: tuple[str, str], names: Names) -> None:
    """The MCP server's name answers from loopback (re-bound): its own responses are used (the user named it), but
    an authorization server answering from another internal address is still refused."""
    names["auth.example"] = (PUBLIC,)
    with _loopback(routes=_mcp_routes()) as front, _loopback("127.0.0.2") as internal:
        server = HostileServer()
        options = {
            "mounts": {"http://mcp.example": _proxied(kind, front), "http://auth.example": _proxied(kind, internal)}
        }
        with pytest.raises(UnsafeURLError, match=r"auth\.example went to 127\.0\.0\.2"):
            server.request(kind, make_auth(HTTP_SERVER, allow_insecure_http=True), url=HTTP_SERVER, **options)
    assert internal.requests == 1  # asked (the connection cannot be pinned), its answer not used
