"""A real, independently written authorization server for the integration tests: ``oidc-provider`` (Node.js, pinned in
``tests/integration/oidc/package-lock.json``), with a real MCP server (official SDK) in front of it.

The provider runs as a child process on 127.0.0.1 (a port the system picks); its log (one JSON line per request and
per step of the person's interaction) goes to a file in the test's temporary directory, which is printed when the
test fails. The process is always ended by its PID: SIGTERM, then SIGKILL if it has not exited after 10 seconds.

Fixtures: ``oidc_stack`` (the provider and the MCP server with default settings) and ``oidc_stack_factory`` (a
function starting them with other settings). Import both into a test module to use them.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_oauth_auth import PrivateKeyJWT
from mcp_oauth_auth.authorizers.base import DEFAULT_REDIRECT_URI
from mcp_oauth_auth.flow.client_auth import CLIENT_ASSERTION_TYPE
from mcp_oauth_auth.testing import reserve_loopback_port

from .child_process import show_logs, stop, wait_for_ready_line
from .mcp_sdk_server import RunningMCPServer, serve_mcp_server

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
SERVER_SCRIPT = OIDC_DIR / "server.mjs"
INSTALL_HINT = "npm ci --prefix tests/integration/oidc"

#: The scopes the MCP server (the resource) accepts.
MCP_SCOPES = ("mcp:read", "mcp:write", "mcp:admin")
#: The scope the MCP server's ``admin_stats`` tool needs on top of ``mcp:read``.
ADMIN_SCOPE = "mcp:admin"
#: A second resource the provider issues tokens for: its tokens must not open the MCP server.
OTHER_RESOURCE = "https://other.example/api"
USERNAME = "alice"

#: The MCP server's own client, for introspection (RFC 7662).
INTROSPECTION_CLIENT = "mcp-server"
#: Pre-registered confidential clients of the authorization code grant, by token endpoint authentication method.
CONFIDENTIAL_CLIENTS = {
    "client_secret_basic": "confidential-basic",
    "client_secret_post": "confidential-post",
    "private_key_jwt": "confidential-jwt",
}
#: Pre-registered confidential clients of the client credentials grant, by token endpoint authentication method.
MACHINE_CLIENTS = {
    "client_secret_basic": "machine-basic",
    "client_secret_post": "machine-post",
    "private_key_jwt": "machine-jwt",
}

# -- the provider process ---------------------------------------------------------------------------------------


@dataclass
class OIDCProvider:
    """A running oidc-provider: its issuer, metadata, log and the secrets of the pre-registered clients."""

    issuer: str
    metadata: dict[str, Any]
    log_path: Path
    client_secrets: dict[str, str]
    password: str
    process: subprocess.Popen[bytes] = field(repr=False)
    #: The private keys (PEM) of the clients that authenticate with private_key_jwt.
    client_keys: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def token_endpoint(self) -> str:
        return str(self.metadata["token_endpoint"])

    @property
    def introspection_endpoint(self) -> str:
        return str(self.metadata["introspection_endpoint"])

    @property
    def revocation_endpoint(self) -> str:
        return str(self.metadata["revocation_endpoint"])

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue
        return lines

    def events(self, name: str, **fields: Any) -> list[dict[str, Any]]:
        """Logged events called ``name`` whose fields have the given values."""
        return [
            line
            for line in self.log_lines()
            if line.get("event") == name and all(line.get(key) == value for key, value in fields.items())
        ]

    def requests(self, route: str | None = None, **fields: Any) -> list[dict[str, Any]]:
        """Logged HTTP requests (to the provider's own routes) matching ``route`` and ``fields``."""
        if route is not None:
            fields["route"] = route
        return self.events("request", **fields)

    def interactions(self) -> list[str]:
        """What the person was shown and did, in order: ``login``, ``consent`` (successful steps only)."""
        steps = []
        for line in self.log_lines():
            if line.get("event") == "login" and line.get("ok"):
                steps.append("login")
            elif line.get("event") == "consent" and line.get("decision") == "approve":
                steps.append("consent")
        return steps

    def secret(self, client_id: str) -> str:
        return self.client_secrets[client_id]

    def client_credentials(self, client_id: str) -> dict[str, Any]:
        """``MCPOAuth`` options that authenticate as ``client_id``: its secret, or its private key."""
        if client_id in self.client_keys:
            return {"private_key": PrivateKeyJWT(self.client_keys[client_id], key_id=f"{client_id}-key")}
        return {"client_secret": self.secret(client_id)}

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 introspection as the MCP server does it."""
        response = httpx.post(
            self.introspection_endpoint,
            data={"token": token},
            auth=(INTROSPECTION_CLIENT, self.secret(INTROSPECTION_CLIENT)),
            timeout=10,
        )
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def token_request(self, fields: dict[str, str], client_id: str, *, public: bool = False) -> httpx.Response:
        """A token request of our own (not through the library): as a public client, or with HTTP Basic."""
        if public:
            return httpx.post(self.token_endpoint, data={**fields, "client_id": client_id}, timeout=10)
        if client_id in self.client_keys:
            assertion = PrivateKeyJWT(self.client_keys[client_id], key_id=f"{client_id}-key").assertion(
                client_id, self.issuer
            )
            jwt_fields = {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion}
            return httpx.post(self.token_endpoint, data={**fields, **jwt_fields}, timeout=10)
        return httpx.post(self.token_endpoint, data=fields, auth=(client_id, self.secret(client_id)), timeout=10)

    def revoke(self, token: str, client_id: str, *, hint: str, public: bool = False) -> httpx.Response:
        """RFC 7009 revocation of our own (not through the library)."""
        fields = {"token": token, "token_type_hint": hint}
        if public:
            return httpx.post(self.revocation_endpoint, data={**fields, "client_id": client_id}, timeout=10)
        return httpx.post(self.revocation_endpoint, data=fields, auth=(client_id, self.secret(client_id)), timeout=10)


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node.js is needed for the oidc-provider integration tests (tests/integration/oidc): install Node.js "
            f"20.19 or later, then run `{INSTALL_HINT}`",
            pytrace=False,
        )
    if not (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        pytest.fail(
            f"oidc-provider is not installed in {OIDC_DIR / 'node_modules'}: run `{INSTALL_HINT}` "
            "(the CI script .ci/run does it)",
            pytrace=False,
        )
    return node


def _settings(resources: list[str], access_token_ttl: int, provider_scopes: tuple[str, ...]) -> dict[str, Any]:
    client_secrets = {
        client_id: secrets.token_urlsafe(24)
        for client_id in (INTROSPECTION_CLIENT, *CONFIDENTIAL_CLIENTS.values(), *MACHINE_CLIENTS.values())
    }
    client_keys: dict[str, str] = {}  # PEM

    def authentication(method: str, client_id: str) -> dict[str, Any]:
        """The client metadata that lets ``client_id`` authenticate with ``method``."""
        if method != "private_key_jwt":
            return {"client_secret": client_secrets[client_id], "token_endpoint_auth_method": method}
        del client_secrets[client_id]
        pem = (
            ec.generate_private_key(ec.SECP256R1())
            .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            .decode("ascii")
        )
        client_keys[client_id] = pem
        jwk = {**PrivateKeyJWT(pem).public_jwk(), "kid": f"{client_id}-key", "use": "sig", "alg": "ES256"}
        return {"token_endpoint_auth_method": method, "jwks": {"keys": [jwk]}}

    clients: list[dict[str, Any]] = [
        {
            "client_id": INTROSPECTION_CLIENT,
            "client_secret": client_secrets[INTROSPECTION_CLIENT],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": [],
            "response_types": [],
            "redirect_uris": [],
        }
    ]
    for method, client_id in CONFIDENTIAL_CLIENTS.items():
        clients.append(
            {
                "client_id": client_id,
                "client_name": f"confidential client ({method})",
                **authentication(method, client_id),
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "redirect_uris": [DEFAULT_REDIRECT_URI],
            }
        )
    for method, client_id in MACHINE_CLIENTS.items():
        clients.append(
            {
                "client_id": client_id,
                **authentication(method, client_id),
                "grant_types": ["client_credentials"],
                "response_types": [],
                "redirect_uris": [],
            }
        )
    return {
        "resources": resources,
        "resourceScopes": " ".join(MCP_SCOPES),
        "extraScopes": list(provider_scopes),
        "accessTokenTTL": access_token_ttl,
        "accounts": {USERNAME: secrets.token_urlsafe(12)},
        "clients": clients,
        "introspectionClients": [INTROSPECTION_CLIENT],
        "_secrets": client_secrets,
        "_keys": client_keys,
    }


@contextmanager
def run_oidc_provider(
    workdir: Path,
    *,
    resources: list[str],
    access_token_ttl: int = 300,
    provider_scopes: tuple[str, ...] = MCP_SCOPES,
    dpop_nonce: bool = False,
) -> Iterator[OIDCProvider]:
    """Start ``node server.mjs`` on 127.0.0.1 and stop it on exit (``dpop_nonce``: DPoP proofs need its nonce).

    ``resources``: the RFC 8707 resources the provider issues tokens for (each accepting :data:`MCP_SCOPES`);
    ``access_token_ttl``: their access tokens' lifetime in seconds; ``provider_scopes``: which of the MCP scopes
    the provider also lists as its own (in ``scopes_supported``, and accepted in registration metadata).
    """
    node = _node()
    workdir.mkdir(parents=True, exist_ok=True)
    settings = _settings(resources, access_token_ttl, provider_scopes)
    client_secrets = settings.pop("_secrets")
    client_keys = settings.pop("_keys")
    settings["dpopNonce"] = dpop_nonce
    config_path = workdir / "oidc-provider.json"
    config_path.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    log_path = workdir / "oidc-provider.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [node, str(SERVER_SCRIPT), str(config_path)],
            cwd=OIDC_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        issuer = str(wait_for_ready_line(process, log_path, "oidc-provider")["issuer"])
        discovery = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
        discovery.raise_for_status()
        yield OIDCProvider(
            issuer=issuer,
            metadata=discovery.json(),
            log_path=log_path,
            client_secrets=client_secrets,
            password=settings["accounts"][USERNAME],
            process=process,
            client_keys=client_keys,
        )
    finally:
        stop(process)


# -- the person, in a browser that is an HTTP client ------------------------------------------------------------


@dataclass
class _Form:
    attributes: dict[str, str]
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (tag or input type, name, value)


class _FormParser(HTMLParser):
    """The forms of a page, with their inputs and named submit buttons (also those outside, via ``form=``)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.title = ""
        self._open: _Form | None = None
        self._in_title = False
        self._detached: list[tuple[str, tuple[str, str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "title":
            self._in_title = True
        elif tag == "form":
            self._open = _Form(attributes)
            self.forms.append(self._open)
        elif tag in ("input", "button") and "name" in attributes:
            kind = attributes.get("type", "text" if tag == "input" else "submit").lower()
            entry = (kind, attributes["name"], attributes.get("value", ""))
            if "form" in attributes:
                self._detached.append((attributes["form"], entry))
            elif self._open is not None:
                self._open.fields.append(entry)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def close(self) -> None:
        super().close()
        for form_id, entry in self._detached:
            for form in self.forms:
                if form.attributes.get("id") == form_id:
                    form.fields.append(entry)


@dataclass
class Person:
    """Fills in the provider's pages the way a person would: signs in, then allows (or denies) the request.

    Use :meth:`page_handler` as a :class:`~mcp_oauth_auth.HeadlessAuthorizer` page handler. ``pages`` lists the
    titles of the pages answered, in order.
    """

    username: str
    password: str
    decision: str = "approve"
    user_code: str | None = None
    pages: list[str] = field(default_factory=list)

    def page_handler(self, response: httpx.Response) -> httpx.Request | None:
        if "html" not in response.headers.get("Content-Type", ""):
            return None
        parser = _FormParser()
        parser.feed(response.text)
        parser.close()
        self.pages.append(parser.title.strip())
        if len(parser.forms) != 1:
            return None  # an error page, or a page this person does not understand: give up
        [form] = parser.forms
        data: dict[str, str] = {}
        buttons: list[tuple[str, str]] = []
        for kind, name, value in form.fields:
            if kind in ("submit", "image"):
                buttons.append((name, value))
            elif name == "username":
                data[name] = self.username
            elif name == "password":
                data[name] = self.password
            elif name == "user_code" and self.user_code is not None and kind != "hidden":
                data[name] = self.user_code
            else:
                data[name] = value
        button = self._choose(buttons)
        if button is not None:
            data[button[0]] = button[1]
        action = urljoin(str(response.url), form.attributes.get("action") or str(response.url))
        method = form.attributes.get("method", "get").upper()
        if method == "GET":
            return httpx.Request("GET", action, params=data)
        return httpx.Request("POST", action, data=data)

    def _choose(self, buttons: list[tuple[str, str]]) -> tuple[str, str] | None:
        for name, value in buttons:
            if name == "decision" and value == self.decision:
                return name, value
        for name, value in buttons:
            if name not in ("decision", "abort"):
                return name, value
        return None


def complete_device_authorization(verification_uri: str, person: Person, *, max_pages: int = 12) -> str:
    """The person opens the verification URI in their browser, types the user code, signs in and allows.

    Returns the title of the last page (the provider's success page)."""
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        response = browser.get(verification_uri)
        for _ in range(max_pages):
            response.raise_for_status()
            request = person.page_handler(response)
            if request is None:
                return person.pages[-1]
            browser.cookies.set_cookie_header(request)
            response = browser.send(request)
    raise AssertionError(f"the device pages did not end within {max_pages} pages: {person.pages}")


# -- the provider and the MCP server together ---------------------------------------------------------------------


@dataclass
class OIDCStack:
    provider: OIDCProvider
    mcp: RunningMCPServer

    @property
    def url(self) -> str:
        """The MCP endpoint (also the RFC 8707 resource)."""
        return self.mcp.url

    def person(self, **options: Any) -> Person:
        """The account holder, who knows their password."""
        return Person(USERNAME, self.provider.password, **options)


@contextmanager
def run_oidc_stack(
    workdir: Path, *, access_token_ttl: int = 300, provider_scopes: tuple[str, ...] = MCP_SCOPES
) -> Iterator[OIDCStack]:
    """oidc-provider, and an MCP SDK server in front of it that validates its tokens by introspection."""
    with ExitStack() as stack:
        sock = reserve_loopback_port()
        stack.callback(sock.close)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
        provider = stack.enter_context(
            run_oidc_provider(
                workdir,
                resources=[url, OTHER_RESOURCE],
                access_token_ttl=access_token_ttl,
                provider_scopes=provider_scopes,
            )
        )
        mcp = stack.enter_context(
            serve_mcp_server(
                provider.issuer,
                provider.introspection_endpoint,
                sock=sock,
                introspection_client=(INTROSPECTION_CLIENT, provider.secret(INTROSPECTION_CLIENT)),
                admin_scope=ADMIN_SCOPE,
            )
        )
        yield OIDCStack(provider=provider, mcp=mcp)


#: Starts the provider and the MCP server with :func:`run_oidc_stack`'s keyword options.
StackFactory = Callable[..., OIDCStack]


@pytest.fixture(name="oidc_stack_factory")
def oidc_stack_factory_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StackFactory]:
    """Starts oidc-provider and the MCP server (``run_oidc_stack`` options); stops them after the test, and shows
    the provider's log when the test failed (the log stays in the test's temporary directory)."""
    failed_before = request.session.testsfailed
    logs: list[Path] = []
    with ExitStack() as stack:

        def start(**options: Any) -> OIDCStack:
            workdir = tmp_path / f"oidc-{len(logs)}"
            logs.append(workdir / "oidc-provider.log")
            return stack.enter_context(run_oidc_stack(workdir, **options))

        yield start
    if request.session.testsfailed > failed_before:
        show_logs(request, logs, "oidc-provider")


@pytest.fixture(name="oidc_stack")
def oidc_stack_fixture(oidc_stack_factory: StackFactory) -> OIDCStack:
    """oidc-provider and the MCP server, with the default settings."""
    return oidc_stack_factory()
