"""The authorization endpoint: checks of the authorization request (client, exact redirect URI, PKCE S256, scope,
resource), and the redirect back with a single-use code or an error; a consent page is not shown: the one fake user
approves at once (or denies, per ``deny_authorization``)."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from mcp_oauth_auth.testing.fake_as.oauth_http import Reject, method_not_allowed, split_scope
from mcp_oauth_auth.testing.fake_as.records import AuthorizationCode, FakeClient
from mcp_oauth_auth.testing.fake_as.state import AuthorizationServerState
from mcp_oauth_auth.testing.fake_http import (
    FakeRequest,
    FakeResponse,
    add_query,
    is_loopback_http,
    json_response,
    parse_params,
)

__all__ = ["AuthorizationEndpoint"]

#: The ``iss`` sent in the callback when ``callback_iss="wrong"``.
WRONG_ISSUER = "https://wrong-issuer.test"
_CODE_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class AuthorizationEndpoint(AuthorizationServerState):
    """``/authorize``."""

    def handle_authorize(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        if request.method != "GET":
            return method_not_allowed("GET")
        first: dict[str, str] = {}
        for name, value in request.query:
            first.setdefault(name, value)
        self._context.log.authorization_requests.append(first)
        if injected is not None:
            return injected
        try:
            return self._authorize(request)
        except Reject as reject:
            return reject.response

    def _authorize(self, request: FakeRequest) -> FakeResponse:
        config = self._context.config
        params, repeated = parse_params(request.query)
        repeated_without_resource = [name for name in repeated if name != "resource"]
        if repeated_without_resource:
            raise Reject(_error_page("invalid_request", f"repeated parameters: {repeated_without_resource}"))
        client_id = params.get("client_id")
        if client_id is None:
            raise Reject(_error_page("invalid_request", "client_id is required"))
        client = self.lookup_client(client_id)
        if client is None:
            raise Reject(_error_page("invalid_client", "unknown client_id"))
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None:
            raise Reject(_error_page("invalid_request", "redirect_uri is required"))
        if not self._redirect_allowed(client, redirect_uri):
            raise Reject(_error_page("invalid_request", "redirect_uri is not registered for this client"))

        # From here on the redirect URI is trusted: errors go back to the client.
        state = params.get("state")

        def fail(error: str, description: str) -> Reject:
            return Reject(self._redirect(redirect_uri, [("error", error), ("error_description", description)], state))

        if params.get("response_type") != "code":
            raise fail("unsupported_response_type", "response_type must be 'code'")
        if state is None:
            raise fail("invalid_request", "state is required")
        if "authorization_code" not in client.grant_types:
            raise fail("unauthorized_client", "the client is not registered for authorization_code")
        challenge = params.get("code_challenge")
        if challenge is None:
            raise fail("invalid_request", "code_challenge is required (PKCE)")
        method = params.get("code_challenge_method")
        if method is None:
            raise fail("invalid_request", "code_challenge_method is required; only S256 is supported")
        if method != "S256":
            raise fail("invalid_request", "transform algorithm not supported; only S256 is supported")
        if not _CODE_CHALLENGE.match(challenge):
            raise fail("invalid_request", "code_challenge is not a BASE64URL-encoded SHA-256 digest")
        requested = split_scope(params.get("scope"))
        unknown = [scope for scope in requested if scope not in config.scopes_supported]
        if unknown:
            raise fail("invalid_scope", f"unknown scope: {' '.join(unknown)}")
        scopes = tuple(dict.fromkeys(requested)) if requested else tuple(config.default_scopes)
        if "resource" in repeated:
            raise fail("invalid_target", "this server accepts one resource per request")
        resource = params.get("resource")
        if resource is not None and resource not in self._context.accepted_resources():
            raise fail("invalid_target", "unknown resource")
        if config.deny_authorization:
            raise fail("access_denied", "the user denied the request")

        code = secrets.token_urlsafe(32)
        self._codes[code] = AuthorizationCode(
            code=code,
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            code_challenge=challenge,
            scopes=scopes,
            resource=resource,
            expires_at=self._context.now() + config.authorization_code_lifetime,
        )
        return self._redirect(redirect_uri, [("code", code)], state)

    def _redirect(self, redirect_uri: str, params: list[tuple[str, str]], state: str | None) -> FakeResponse:
        config = self._context.config
        if state is not None:
            params.append(("state", state))
        if config.callback_iss == "wrong":
            params.append(("iss", WRONG_ISSUER))
        elif config.callback_iss == "correct" and config.iss_parameter_supported:
            params.append(("iss", self._context.issuer))
        location = add_query(redirect_uri, params)
        return FakeResponse(302, [("Location", location), ("Cache-Control", "no-store"), ("Content-Length", "0")])

    def _redirect_allowed(self, client: FakeClient, redirect_uri: str) -> bool:
        if client.kind == "client-metadata-document":
            return is_loopback_http(redirect_uri) and "#" not in redirect_uri
        any_port = self._context.config.loopback_redirect_any_port
        return any(
            redirect_uri == registered or (any_port and _same_loopback_except_port(registered, redirect_uri))
            for registered in client.redirect_uris
        )


def _error_page(error: str, description: str) -> FakeResponse:
    """What the browser shows when the AS cannot trust the redirect URI (no redirect, RFC 6749 §4.1.2.1)."""
    return json_response(400, {"error": error, "error_description": description})


def _same_loopback_except_port(registered: str, candidate: str) -> bool:
    """RFC 8252 §7.3: loopback redirect URIs match whatever the port."""
    if not (is_loopback_http(registered) and is_loopback_http(candidate)):
        return False
    a, b = urlsplit(registered), urlsplit(candidate)
    return (a.hostname, a.path, a.query) == (b.hostname, b.path, b.query) and not b.fragment
