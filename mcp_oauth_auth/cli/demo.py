"""``mcp-oauth demo``: the whole MCP authorization flow against a server on this machine, narrated.

The embedded server listens on 127.0.0.1 only, on a free port, and is made of two parts behind one standard
library HTTP server (no extra dependency, no network):

* the authorization server, the protected resource metadata and the bearer-token checks of the MCP endpoint are
  :class:`~mcp_oauth_auth.testing.FakeMCPStack` — the fake authorization stack of this package's own test suite
  (RFC 8414 metadata, RFC 7591 registration, authorization code with PKCE S256, rotating refresh tokens,
  RFC 7009 revocation). Its ``/authorize`` approves at once: there is no login page;
* the MCP endpoint behind those checks is a minimal MCP server written here: JSON-RPC over the streamable HTTP
  transport (JSON responses, no sessions), answering ``initialize``, ``ping``, ``tools/list`` and ``tools/call``
  for two tools, ``add`` and ``whoami``. It is not the official MCP SDK server.

The scenario then logs in (approving headlessly), calls a tool, lets the access token expire so that the client
refreshes it, and logs out with revocation, checking each outcome at the server.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import httpx

from mcp_oauth_auth import __version__
from mcp_oauth_auth.cli.errors import CLIError
from mcp_oauth_auth.cli.mcp_session import HANDSHAKE_VERSIONS, MCPClientSession, MCPError
from mcp_oauth_auth.cli.output import Terminal, describe_expiry, redact_token

if TYPE_CHECKING:
    from mcp_oauth_auth.auth import MCPOAuth
    from mcp_oauth_auth.storage.base import TokenStore
    from mcp_oauth_auth.testing.fake import FakeMCPStack

__all__ = ["DemoServer", "run_demo", "serve_forever"]

logger = logging.getLogger("mcp_oauth_auth")

_HOST = "127.0.0.1"
_SERVER_NAME = "mcp-oauth demo server"
_TOOLS: list[dict[str, Any]] = [
    {
        "name": "add",
        "description": "Add two integers.",
        "inputSchema": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
    {
        "name": "whoami",
        "description": "The OAuth client and scopes of the access token that called this tool.",
        "inputSchema": {"type": "object", "properties": {}},
    },
]


# ---------------------------------------------------------------------------------------------------------------
# The server


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


def _json_answer(status: int, document: Any) -> _Answer:
    return _Answer(status, [("Content-Type", "application/json")], json.dumps(document).encode("utf-8"))


class DemoServer:
    """The embedded MCP server and its authorization server, on ``http://127.0.0.1:<port>``.

    Use :meth:`start` as a context manager; ``url`` is the MCP endpoint and ``stack`` the authorization side
    (its request log tells what the client did).
    """

    def __init__(self, port: int = 0) -> None:
        from mcp_oauth_auth.testing.fake import FakeMCPStack
        from mcp_oauth_auth.testing.fake_config import FakeStackConfig

        self._http = _HTTPServer((_HOST, port), _RequestHandler)
        self._http.demo = self
        bound_port = self._http.server_address[1]
        # The device flow is offered, and approves each code itself at the second poll (a second later): a login
        # with --device works on a machine without any browser.
        config = FakeStackConfig(
            device_authorization_enabled=True, device_poll_interval=1, device_auto_approve_after_polls=1
        )
        self.stack: FakeMCPStack = FakeMCPStack(config, base_url=f"http://{_HOST}:{bound_port}")
        #: The same server named ``localhost`` (what people and browsers type) is a server of its own: a client
        #: checks that the metadata names the very URL it was given.
        self.localhost = FakeMCPStack(config, base_url=f"http://localhost:{bound_port}")
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, name="mcp-oauth-demo-server", daemon=True
        )

    @property
    def url(self) -> str:
        """The MCP endpoint."""
        return self.stack.server_url

    @classmethod
    @contextlib.contextmanager
    def start(cls, port: int = 0) -> Iterator[DemoServer]:
        server = cls(port)
        server._thread.start()
        try:
            yield server
        finally:
            server._http.shutdown()
            server._http.server_close()
            server._thread.join(10)

    def respond(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> _Answer:
        """The fake stack answers everything, including the bearer check of the MCP endpoint; a request it lets
        through to the MCP endpoint is then answered as MCP."""
        stack = self.localhost if httpx.URL(url).host == "localhost" else self.stack
        checked = stack.handle(method, url, headers, body)
        if checked.status != 200 or not self._is_mcp_endpoint(url):
            return _Answer(checked.status, list(checked.headers), checked.body)
        return self._mcp(method, body, checked.json())

    def _is_mcp_endpoint(self, url: str) -> bool:
        return httpx.URL(url).path == httpx.URL(self.url).path

    def _mcp(self, method: str, body: bytes, caller: dict[str, Any]) -> _Answer:
        if method != "POST":
            # No server-initiated stream and no sessions to end (MCP streamable HTTP allows 405 for both).
            return _Answer(405, [("Allow", "POST")])
        try:
            message = json.loads(body)
        except ValueError:
            return _json_answer(400, _rpc_error(None, -32700, "Parse error"))
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return _json_answer(400, _rpc_error(None, -32600, "Invalid Request"))
        if "id" not in message or "method" not in message:
            return _Answer(202, [])  # a notification or a response: accepted, nothing to answer
        return _json_answer(200, _dispatch(message, caller))


def _rpc_error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _dispatch(message: dict[str, Any], caller: dict[str, Any]) -> dict[str, Any]:
    request_id, method = message["id"], message["method"]
    params: dict[str, Any] = message["params"] if isinstance(message.get("params"), dict) else {}
    if method == "initialize":
        requested = params.get("protocolVersion")
        version = requested if requested in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[0]
        result: dict[str, Any] = {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": _SERVER_NAME, "version": __version__},
        }
    elif method == "ping":
        result = {}
    elif method == "tools/list":
        result = {"tools": _TOOLS}
    elif method == "tools/call":
        return _call_tool(request_id, params, caller)
    else:
        return _rpc_error(request_id, -32601, f"Method not found: {method}")
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _call_tool(request_id: Any, params: dict[str, Any], caller: dict[str, Any]) -> dict[str, Any]:
    name, arguments = params.get("name"), params.get("arguments")
    if not isinstance(arguments, dict):
        arguments = {}
    if name == "add":
        a, b = arguments.get("a"), arguments.get("b")
        if not isinstance(a, int) or not isinstance(b, int):
            text, is_error = "add needs two integers, a and b", True
        else:
            text, is_error = str(a + b), False
    elif name == "whoami":
        text, is_error = f"client {caller.get('client_id')} with scopes {' '.join(caller.get('scopes', []))}", False
    else:
        return _rpc_error(request_id, -32602, f"Unknown tool: {name}")
    result = {"content": [{"type": "text", "text": text}], "isError": is_error}
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    demo: DemoServer


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body leave in one write (flushed after each request), without Nagle's delay.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _HTTPServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        host = self.headers.get("Host") or f"{_HOST}:{self.server.server_address[1]}"
        headers = list(self.headers.items())
        try:
            answer = self.server.demo.respond(self.command, f"http://{host}{self.path}", headers, body)
        except Exception:
            logger.exception("demo server: %s %s failed", self.command, self.path)
            answer = _json_answer(500, {"error": "server_error"})
        self.send_response(answer.status)
        for name, value in answer.headers:
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = do_OPTIONS = _answer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("demo server: " + format, *args)


# ---------------------------------------------------------------------------------------------------------------
# The scenario


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Made once: loading the CA bundle is the slowest part of creating a transport (nothing here uses TLS)."""
    return ssl.create_default_context()


def _local_transport() -> httpx.HTTPTransport:
    """An explicit transport: no proxy from the environment is ever involved with the embedded server."""
    return httpx.HTTPTransport(verify=_tls_context())


def _local_client(auth: MCPOAuth | None = None) -> httpx.Client:
    return httpx.Client(transport=_local_transport(), auth=auth, timeout=10)


class _Narrator:
    def __init__(self, terminal: Terminal) -> None:
        self._terminal = terminal
        self._step = 0
        self.arrow = terminal.arrow

    def redact(self, token: str | None) -> str:
        return redact_token(token, self._terminal.ellipsis)

    def step(self, title: str, first: str, *more: str) -> None:
        self._step += 1
        label = f"{self._step}. {title:<9}"
        self._terminal.print(f"{self._terminal.style(label, 'bold')}  {first}")
        for line in more:
            self._terminal.print(f"{' ' * len(label)}  {line}")


def run_demo(terminal: Terminal, store: TokenStore | None = None, store_name: str | None = None) -> None:
    """Run the narrated scenario; raises :class:`~mcp_oauth_auth.cli.errors.CLIError` when a step fails."""
    started = time.monotonic()
    terminal.print(
        terminal.style("mcp-oauth demo", "bold")
        + ": the MCP authorization flow against a server on this machine (nothing leaves it)"
    )
    terminal.print()
    narrator = _Narrator(terminal)
    with contextlib.ExitStack() as cleanup:
        if store is None:
            from mcp_oauth_auth.storage.encrypted_file import EncryptedFileTokenStore

            home = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="mcp-oauth-demo-"))
            store = EncryptedFileTokenStore(home, use_keyring=False)
            store_name = "a temporary encrypted-file store, deleted at the end"
        server = cleanup.enter_context(DemoServer.start())
        narrator.step(
            "Server",
            f"MCP server {server.url}",
            f"with its authorization server {server.stack.issuer} (embedded, on loopback)",
        )
        auth = _log_in(narrator, server, store, store_name or "the chosen store")
        _call_tools(narrator, server, auth)
        _refresh(narrator, server, auth)
        _log_out(narrator, server, auth)
    terminal.print()
    terminal.success(f"Demo complete in {time.monotonic() - started:.1f} s.")
    terminal.print("Next, with your own server:")
    terminal.print("  mcp-oauth doctor URL        what it publishes for authorization")
    terminal.print("  mcp-oauth login NAME URL    log in (your browser opens)")
    terminal.print("  mcp-oauth test NAME         connect with the stored credential")


def _log_in(narrator: _Narrator, server: DemoServer, store: TokenStore, store_name: str) -> MCPOAuth:
    from mcp_oauth_auth.auth import MCPOAuth
    from mcp_oauth_auth.authorizers.headless import HeadlessAuthorizer

    auth = MCPOAuth(
        server.url,
        store=store,
        authorizer=HeadlessAuthorizer(transport=_local_transport()),
        client_name="mcp-oauth demo",
        name="demo",
    )
    with _local_client() as http:
        tokens = auth.authenticate(http)
    stack = server.stack
    record = auth.record
    if record is None or stack.count("token") != 1 or stack.count("authorize") != 1:
        raise CLIError("demo: the login did not go through the expected authorization")
    [authorization] = stack.authorization_requests
    a = narrator.arrow
    refresh = "and a refresh token" if tokens.refresh_token else "and no refresh token"
    narrator.step(
        "Log in",
        f"protected resource metadata (RFC 9728) {a} authorization server metadata (RFC 8414)",
        f"{a} registered client {record.client.client_id} (RFC 7591)",
        f"{a} approved without a browser (PKCE {authorization.get('code_challenge_method')}, "
        "resource indicator RFC 8707)",
        f"{a} access token {narrator.redact(tokens.access_token)}, expires {describe_expiry(tokens.expires_at)}, "
        f"{refresh}",
        f"stored in {store_name}",
    )
    return auth


def _mcp_calls(server: DemoServer, auth: MCPOAuth, a: int, b: int) -> tuple[str, list[str], str]:
    with _local_client(auth) as http:
        session = MCPClientSession(http, server.url, client_version=__version__)
        try:
            info = session.initialize()
            tools = [str(tool.get("name")) for tool in session.list_tools()]
            result = session.call_tool("add", {"a": a, "b": b})
        except MCPError as exc:
            raise CLIError(f"demo: the MCP call failed: {exc}") from exc
        finally:
            session.close()
    text = "".join(str(block.get("text", "")) for block in result.get("content", []) if isinstance(block, dict))
    return f"{info.name} (MCP {info.protocol_version})", tools, text


def _call_tools(narrator: _Narrator, server: DemoServer, auth: MCPOAuth) -> None:
    server_info, tools, total = _mcp_calls(server, auth, 2, 3)
    if total != "5":
        raise CLIError(f"demo: add(2, 3) returned {total!r}")
    a = narrator.arrow
    narrator.step(
        "MCP call",
        f"initialize: {server_info}",
        f"tools/list: {', '.join(tools)}  {a}  tools/call add(2, 3) = {total}",
    )


def _refresh(narrator: _Narrator, server: DemoServer, auth: MCPOAuth) -> None:
    stack = server.stack
    before = auth.tokens
    stack.clock = lambda: time.time() + 7200  # the server's clock runs two hours ahead from now on
    rejected_before = sum(1 for request in stack.resource_requests if request["status"] == 401)
    _, _, total = _mcp_calls(server, auth, 20, 22)
    rejected = sum(1 for request in stack.resource_requests if request["status"] == 401) - rejected_before
    after = auth.tokens
    if total != "42" or "refresh_token" not in stack.grants_used() or before is None or after is None:
        raise CLIError("demo: the expired token was not refreshed as expected")
    if after.access_token == before.access_token:
        raise CLIError("demo: the access token did not change on refresh")
    a = narrator.arrow
    rotated = "rotated" if after.refresh_token != before.refresh_token else "kept"
    narrator.step(
        "Refresh",
        "the server's clock jumps 2 h: the access token has expired",
        f"{a} the server answered 401 ({rejected}x) {a} refreshed with the refresh token ({rotated})",
        f"{a} new access token {narrator.redact(after.access_token)} {a} tools/call add(20, 22) = {total}",
    )


def _log_out(narrator: _Narrator, server: DemoServer, auth: MCPOAuth) -> None:
    tokens = auth.tokens
    if tokens is None:
        raise CLIError("demo: there is no token to log out with")
    with _local_client() as http:
        outcomes = auth.logout(http)
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        refused = http.post(server.url, json=ping, headers={"Authorization": f"Bearer {tokens.access_token}"})
    revoked = [outcome.token_type_hint.replace("_", " ") for outcome in outcomes if outcome.revoked]
    if len(revoked) != len(outcomes) or not revoked or refused.status_code != 401:
        raise CLIError("demo: the logout did not revoke the tokens")
    if auth.store.list_keys():
        raise CLIError("demo: the stored credential is still there after the logout")
    a = narrator.arrow
    narrator.step(
        "Log out",
        f"revoked the {' and the '.join(revoked)} (RFC 7009), deleted the stored credential",
        f"{a} the old access token is now refused (HTTP {refused.status_code})",
    )


def serve_forever(terminal: Terminal, port: int = 0) -> None:
    """Run the embedded server until interrupted, for trying the other commands (or your own client) on it."""
    with DemoServer.start(port) as server:
        terminal.print(f"MCP server:            {server.url}")
        terminal.print(f"Authorization server:  {server.stack.issuer}")
        terminal.print(f"Also as:               {server.localhost.server_url}")
        terminal.print()
        terminal.print("Try, in another terminal:")
        terminal.print(f"  mcp-oauth doctor {server.url}")
        terminal.print(f"  mcp-oauth login demo {server.url} --device")
        terminal.print("  mcp-oauth test demo")
        terminal.print()
        terminal.print("The login needs no browser: the demo approves the device code itself after a second.")
        terminal.print("(Without --device, on a desktop, your browser opens and the demo approves at once.)")
        terminal.print()
        terminal.note("Serving on loopback only; Ctrl-C stops.")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
