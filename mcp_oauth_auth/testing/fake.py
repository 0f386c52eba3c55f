"""``FakeMCPStack``: a fake protected MCP resource with its OAuth 2.1 authorization server, sans-IO.

:meth:`FakeMCPStack.handle` maps (method, URL, headers, body) to a :class:`FakeResponse` without any I/O,
under a lock (so it is thread-safe). Thin adapters expose it as an ASGI app, as httpx / httpx2 mock
transports, as respx routes, and as an in-process authorizer. Routing is by origin (scheme, host, port) and
path, so one stack can serve a resource origin and a different authorization server origin at once.

Example::

    stack = FakeMCPStack(FakeStackConfig(as_base_url="https://auth.test"), base_url="https://mcp.test")
    with httpx.Client(transport=stack.httpx_transport()) as client:
        assert client.get(stack.server_url).status_code == 401
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from mcp_oauth_auth.testing.fake_as import FakeAuthorizationServer, FakeClient, PublicKeyInput
from mcp_oauth_auth.testing.fake_config import FakeStackConfig, validate_base_url
from mcp_oauth_auth.testing.fake_context import ENDPOINTS, FakeLog
from mcp_oauth_auth.testing.fake_http import FakeRequest, FakeResponse, HeadersInput, json_response, origin_of
from mcp_oauth_auth.testing.fake_provider import ProviderBehaviour
from mcp_oauth_auth.testing.fake_resource import PRM_WELL_KNOWN, FakeResource

if TYPE_CHECKING:
    import httpx2
    import respx

__all__ = ["ASGIApp", "AuthorizationPageError", "FakeMCPStack"]

ASGIMessage = MutableMapping[str, Any]
ASGIReceive = Callable[[], Awaitable[ASGIMessage]]
ASGISend = Callable[[ASGIMessage], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], ASGIReceive, ASGISend], Awaitable[None]]

_Handler = Callable[[FakeRequest, "FakeResponse | None"], FakeResponse]
#: The logical endpoints of ``ENDPOINTS`` plus the device authorization endpoint and its verification page.
_ENDPOINTS = tuple(dict.fromkeys((*ENDPOINTS, "device_authorization", "device_verification")))
_REDIRECT_STATUSES = (301, 302, 303, 307, 308)


class AuthorizationPageError(RuntimeError):
    """The fake authorization endpoint answered without a redirect (an error page a person would see)."""

    def __init__(self, status: int, error: str | None, description: str | None) -> None:
        super().__init__(f"the authorization endpoint answered {status} without a redirect: {error}: {description}")
        self.status = status
        self.error = error
        self.error_description = description


class FakeMCPStack:
    """A protected MCP resource at ``{base_url}{config.mcp_path}`` and its authorization server.

    The authorization server's issuer is ``{config.as_base_url or base_url}{config.issuer_path}``. ``config``
    and ``clock`` (a callable returning the current time, default :func:`time.time`) may be replaced at any
    time.
    """

    def __init__(self, config: FakeStackConfig | None = None, *, base_url: str = "https://mcp.test") -> None:
        validate_base_url("base_url", base_url)
        self.base_url = base_url.rstrip("/")
        self.config = config if config is not None else FakeStackConfig()
        self.config.validate()
        self.clock: Callable[[], float] = time.time
        self._lock = threading.RLock()
        self._log = FakeLog()
        self._failures: dict[str, deque[FakeResponse]] = {}
        self._as = FakeAuthorizationServer(self)
        self._resource = FakeResource(self, self._as)
        self._provider = ProviderBehaviour(lambda: self.config, lambda: self.issuer, self.accepted_resources)
        self._asgi_app = self._make_asgi_app()

    def __repr__(self) -> str:
        access, refresh = self._as.token_counts()
        return (
            f"FakeMCPStack(server_url={self.server_url!r}, issuer={self.issuer!r}, "
            f"clients={len(self._as.clients)}, access_tokens={access}, refresh_tokens={refresh})"
        )

    # ------------------------------------------------------------------ URLs

    def now(self) -> float:
        return self.clock()

    @property
    def server_url(self) -> str:
        """The MCP endpoint URL (the protected resource)."""
        return f"{self.base_url}{self.config.mcp_path}"

    @property
    def as_base_url(self) -> str:
        return (self.config.as_base_url or self.base_url).rstrip("/")

    @property
    def issuer(self) -> str:
        return f"{self.as_base_url}{self.config.issuer_path}"

    @property
    def resource_metadata_url(self) -> str | None:
        """Where the protected resource metadata is served, per ``prm_mode`` (None for "none")."""
        path = self._resource.prm_path()
        return None if path is None else f"{self.base_url}{path}"

    @property
    def as_metadata_url(self) -> str | None:
        """The main URL of the authorization server metadata, per ``as_metadata_mode`` (None for "none")."""
        mode = self.config.as_metadata_mode
        if mode == "oauth":
            return f"{self.as_base_url}/.well-known/oauth-authorization-server{self.config.issuer_path}"
        if mode == "oidc":
            return f"{self.as_base_url}/.well-known/openid-configuration{self.config.issuer_path}"
        if mode == "oidc_append_only":
            return f"{self.issuer}/.well-known/openid-configuration"
        return None

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/authorize"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @property
    def registration_endpoint(self) -> str:
        return f"{self.issuer}/register"

    @property
    def revocation_endpoint(self) -> str:
        return f"{self.issuer}/revoke"

    @property
    def introspection_endpoint(self) -> str:
        return f"{self.issuer}/introspect"

    @property
    def device_authorization_endpoint(self) -> str:
        """Served when ``config.device_authorization_enabled`` (RFC 8628 §3.1)."""
        return self._as.device_authorization_endpoint

    @property
    def verification_uri(self) -> str:
        """The device verification page (a form that approves or denies a user code)."""
        return self._as.verification_uri

    def accepted_resources(self) -> tuple[str, ...]:
        """Resource indicators this stack issues tokens for: the server URL, ``prm_resource`` when that is a
        parent of it on the same origin (a server may identify itself by a broader URI), and
        ``config.extra_resources``."""
        prm_resource = self.config.prm_resource
        resources = [self.server_url]
        if (
            prm_resource is not None
            and prm_resource != self.server_url
            and _is_parent_resource(prm_resource, self.server_url)
        ):
            resources.append(prm_resource)
        return (*resources, *self.config.extra_resources)

    # ------------------------------------------------------------------ logs

    @property
    def log(self) -> FakeLog:
        return self._log

    @property
    def request_log(self) -> list[dict[str, Any]]:
        """Every request: {"endpoint", "method", "url", "status"}."""
        return self._log.requests

    @property
    def resource_requests(self) -> list[dict[str, Any]]:
        return self._log.resource_requests

    @property
    def authorization_requests(self) -> list[dict[str, str]]:
        return self._log.authorization_requests

    @property
    def token_requests(self) -> list[dict[str, Any]]:
        return self._log.token_requests

    @property
    def registration_requests(self) -> list[Any]:
        return self._log.registration_requests

    @property
    def revocation_requests(self) -> list[dict[str, Any]]:
        return self._log.revocation_requests

    @property
    def introspection_requests(self) -> list[dict[str, Any]]:
        return self._log.introspection_requests

    @property
    def device_authorization_requests(self) -> list[dict[str, Any]]:
        """{"client_id", "auth_method", "scope", "resource", "user_code", "status", "error"} per device
        authorization request."""
        return self._as.device_authorization_requests

    @property
    def violations(self) -> list[str]:
        return self._log.violations

    def count(self, endpoint: str) -> int:
        """How many requests the logical ``endpoint`` (see ``ENDPOINTS``, plus "device_authorization" and
        "device_verification") received since the last reset."""
        _check_endpoint(endpoint)
        with self._lock:
            return self._log.counts[endpoint]

    def grants_used(self) -> list[str | None]:
        """The grant_type of every token request, in order (``client_credentials``, the device_code URN, ...)."""
        with self._lock:
            return [record["grant_type"] for record in self._log.token_requests]

    def reset_log(self) -> None:
        """Forget the logs and counters (clients, tokens and pending failures stay)."""
        with self._lock:
            self._log.clear()
            self._as.device_authorization_requests.clear()

    # ------------------------------------------------------------------ state and failure injection

    def add_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        token_endpoint_auth_method: str = "none",  # noqa: S107 - not a password
        redirect_uris: Sequence[str] = (),
        grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
        *,
        public_key: PublicKeyInput | None = None,
        also_allowed_auth_methods: Sequence[str] = (),
    ) -> FakeClient:
        """Pre-register a client.

        For ``token_endpoint_auth_method="private_key_jwt"``, ``public_key`` (PEM, JWK, JWK Set with one key, or a
        ``cryptography`` public key) verifies its assertions. ``also_allowed_auth_methods`` lets a confidential
        client authenticate in more ways than the registered one. Machine-to-machine clients list
        ``"client_credentials"`` in ``grant_types``; device clients ``"urn:ietf:params:oauth:grant-type:device_code"``.
        """
        with self._lock:
            return self._as.add_client(
                client_id,
                client_secret,
                token_endpoint_auth_method,
                redirect_uris,
                grant_types,
                public_key=public_key,
                also_allowed_auth_methods=also_allowed_auth_methods,
            )

    def approve_device(self, user_code: str, scopes: Sequence[str] | None = None) -> None:
        """The user approves the device authorization of ``user_code`` (case and hyphens ignored), granting
        ``scopes`` (default: those requested). KeyError when no such code awaits a decision, ValueError when it
        was already decided."""
        with self._lock:
            self._as.approve_device(user_code, scopes)

    def deny_device(self, user_code: str) -> None:
        """The user denies the device authorization of ``user_code``: the next poll gets access_denied."""
        with self._lock:
            self._as.deny_device(user_code)

    def pending_user_codes(self) -> list[str]:
        """User codes that await a decision and have not expired, oldest first."""
        with self._lock:
            return self._as.pending_user_codes()

    @property
    def clients(self) -> dict[str, FakeClient]:
        """The registered clients by client_id (a copy)."""
        with self._lock:
            return dict(self._as.clients)

    def issue_tokens(
        self, client_id: str, *, scopes: Sequence[str] = (), resource: str | None = None
    ) -> dict[str, Any]:
        """Grant ``scopes`` to a registered client directly (to seed stored credentials); returns the token
        response body. ``resource`` defaults to the server URL."""
        with self._lock:
            return self._as.issue_tokens(client_id, scopes, resource if resource is not None else self.server_url)

    def fail_next(
        self,
        endpoint: str,
        *,
        status: int = 503,
        times: int = 1,
        json: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests to the logical ``endpoint`` with ``status``.

        The request is still counted and logged. "token" covers every token request, "refresh" only
        grant_type=refresh_token ones (and is used first for those). The body is ``json``, by default an OAuth
        error (``temporarily_unavailable`` for 429 and 5xx, else ``invalid_request``); ``headers`` are added.
        """
        _check_endpoint(endpoint)
        if times < 1:
            raise ValueError("times must be at least 1")
        if json is None:
            error = "temporarily_unavailable" if status == 429 or status >= 500 else "invalid_request"
            document: Mapping[str, Any] = {
                "error": error,
                "error_description": f"injected failure ({status})",
            }
        else:
            document = json
        extra = list((headers or {}).items())
        response = json_response(status, dict(document), extra)
        overridden = {name.lower() for name, _ in extra}
        response = FakeResponse(
            status,
            [(name, value) for name, value in response.headers if name.lower() not in overridden] + extra,
            response.body,
        )
        with self._lock:
            self._failures.setdefault(endpoint, deque()).extend([response] * times)

    def _take_failure(self, endpoints: Sequence[str]) -> FakeResponse | None:
        for endpoint in endpoints:
            queue = self._failures.get(endpoint)
            if queue:
                return queue.popleft()
        return None

    # ------------------------------------------------------------------ the handler

    def handle(self, method: str, url: str, headers: HeadersInput = (), body: bytes = b"") -> FakeResponse:
        """Answer one HTTP request. Pure apart from the stack's own state; thread-safe."""
        request = FakeRequest.build(method, url, headers, body)
        with self._lock:
            self.config.validate()
            endpoint, handler = self._route(request)
            endpoints = [endpoint]
            if endpoint == "token" and _peek_grant_type(request) == "refresh_token":
                endpoints.insert(0, "refresh")
            for name in endpoints:
                self._log.counts[name] += 1
            injected = self._take_failure(endpoints) or self._provider.refusal(endpoint, request)
            response = self._provider.after(endpoint, request, handler(request, injected))
            self._log.requests.append(
                {"endpoint": endpoint, "method": request.method, "url": url, "status": response.status}
            )
            return response

    def _route(self, request: FakeRequest) -> tuple[str, _Handler]:
        path = request.path
        if request.origin == origin_of(self.as_base_url):
            if _is_as_metadata_path(path):
                return "as_metadata", self._as.handle_metadata
            name = self._as.endpoint_paths().get(path)
            if name is not None:
                handlers: dict[str, _Handler] = {
                    "authorize": self._as.handle_authorize,
                    "token": self._as.handle_token,
                    "register": self._as.handle_register,
                    "revoke": self._as.handle_revoke,
                    "introspect": self._as.handle_introspect,
                    "userinfo": self._as.handle_userinfo,
                    "jwks": self._as.handle_jwks,
                    "device_authorization": self._as.handle_device_authorization,
                    "device_verification": self._as.handle_device_verification,
                }
                return name, handlers[name]
        if request.origin == origin_of(self.base_url):
            if path == PRM_WELL_KNOWN or path.startswith(f"{PRM_WELL_KNOWN}/"):
                return "prm", self._resource.handle_prm
            if self._resource.is_resource_path(path):
                return "resource", self._resource.handle_resource
        return "not_found", _handle_not_found

    # ------------------------------------------------------------------ adapters

    def authorizer(self, authorization_url: str) -> str:
        """An authorizer: performs the GET of ``authorization_url`` in-process and returns the redirect target
        (the callback URL). Raises :class:`AuthorizationPageError` when the endpoint does not redirect."""
        response = self.handle("GET", authorization_url, [("accept", "text/html")], b"")
        location = response.header("location")
        if response.status in _REDIRECT_STATUSES and location:
            return location
        error: str | None = None
        description: str | None = None
        try:
            document = response.json()
        except ValueError:
            document = None
        if isinstance(document, dict):
            error, description = document.get("error"), document.get("error_description")
        raise AuthorizationPageError(response.status, error, description)

    @property
    def asgi_app(self) -> ASGIApp:
        """An ASGI 3 application serving this stack (lifespan supported)."""
        return self._asgi_app

    def _make_asgi_app(self) -> ASGIApp:
        # A plain coroutine function, so that servers that sniff the interface (uvicorn) see ASGI 3.
        async def app(scope: MutableMapping[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
            await self._asgi(scope, receive, send)

        return app

    async def _asgi(self, scope: MutableMapping[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            raise ValueError(f"FakeMCPStack serves HTTP only, not {scope['type']!r}")
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = [(key.decode("latin-1"), value.decode("latin-1")) for key, value in scope["headers"]]
        host = next((value for key, value in headers if key.lower() == "host"), None)
        if host is None:
            server_host, server_port = scope.get("server") or ("127.0.0.1", 80)
            host = f"{server_host}:{server_port}"
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        url = f"{scope.get('scheme', 'http')}://{host}{raw_path.decode('latin-1')}"
        query: bytes = scope.get("query_string", b"")
        if query:
            url = f"{url}?{query.decode('latin-1')}"
        response = self.handle(scope["method"], url, headers, b"".join(chunks))
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    def httpx_transport(self) -> httpx.MockTransport:
        """An ``httpx.MockTransport`` serving this stack, for ``httpx.Client`` and ``httpx.AsyncClient``."""
        return httpx.MockTransport(self._httpx_handler)

    def _httpx_handler(self, request: httpx.Request) -> httpx.Response:
        response = self.handle(request.method, str(request.url), request.headers.multi_items(), request.content)
        return httpx.Response(response.status, headers=response.headers, content=response.body)

    def httpx2_transport(self) -> httpx2.MockTransport:
        """An ``httpx2.MockTransport`` serving this stack (httpx2 is imported only here)."""
        import httpx2

        def handler(request: httpx2.Request) -> httpx2.Response:
            response = self.handle(request.method, str(request.url), request.headers.multi_items(), request.content)
            return httpx2.Response(response.status, headers=response.headers, content=response.body)

        return httpx2.MockTransport(handler)

    def mock_respx(self, router: respx.Router) -> list[respx.Route]:
        """Add catch-all routes for the stack's origins (as configured now) to a respx router."""
        routes = []
        for origin in dict.fromkeys([origin_of(self.base_url), origin_of(self.as_base_url)]):
            parts = urlsplit(origin)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            route = router.route(scheme=parts.scheme, host=parts.hostname, port=port)
            route.side_effect = self._httpx_handler
            routes.append(route)
        return routes


def _handle_not_found(request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
    if injected is not None:
        return injected
    return json_response(404, {"error": "not_found", "error_description": f"nothing at {request.path}"})


def _is_as_metadata_path(path: str) -> bool:
    return (
        path.startswith("/.well-known/oauth-authorization-server")
        or path.startswith("/.well-known/openid-configuration")
        or path.endswith("/.well-known/openid-configuration")
    )


def _peek_grant_type(request: FakeRequest) -> str | None:
    try:
        pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return None
    return next((value for name, value in pairs if name == "grant_type"), None)


def _check_endpoint(endpoint: str) -> None:
    if endpoint not in _ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {_ENDPOINTS}")


def _is_parent_resource(candidate: str, server_url: str) -> bool:
    """True when ``candidate`` is ``server_url``'s origin or a path prefix of it (no query, no fragment)."""
    try:
        if origin_of(candidate) != origin_of(server_url):
            return False
    except ValueError:
        return False
    parts = urlsplit(candidate)
    if parts.query or parts.fragment or "#" in candidate:
        return False
    prefix = parts.path.rstrip("/")
    server_path = urlsplit(server_url).path
    return prefix in ("", server_path) or server_path.startswith(f"{prefix}/")
