"""Dynamic client registration (RFC 7591): the checks of the client metadata (grant and response types, redirect
URIs, authentication method, scope, ``jwks`` for ``private_key_jwt``) and the new client's credentials."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from mcp_oauth_auth.testing.fake_as.keys import PublicKeyInput, load_public_key
from mcp_oauth_auth.testing.fake_as.metadata import MetadataEndpoint
from mcp_oauth_auth.testing.fake_as.oauth_http import Reject, method_not_allowed, not_found, split_scope, token_error
from mcp_oauth_auth.testing.fake_as.records import CONFIDENTIAL_METHODS, JWT_METHOD
from mcp_oauth_auth.testing.fake_http import LOOPBACK_HOSTS, FakeRequest, FakeResponse, json_response

__all__ = ["RegistrationEndpoint"]


class RegistrationEndpoint(MetadataEndpoint):
    """``/register``, when ``registration_enabled``."""

    def handle_register(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        if not self._context.config.registration_enabled:
            return not_found(request.path)
        if request.method != "POST":
            return method_not_allowed("POST")
        try:
            body: Any = json.loads(request.body)
        except ValueError:
            body = request.body.decode("utf-8", errors="replace")
        self._context.log.registration_requests.append(body)
        if injected is not None:
            return injected
        try:
            return self._register(request, body)
        except Reject as reject:
            return reject.response

    def _register(self, request: FakeRequest, body: Any) -> FakeResponse:
        config = self._context.config
        if request.content_type != "application/json":
            raise _invalid_metadata("the request body must be application/json")
        if not isinstance(body, dict):
            raise _invalid_metadata("the request body must be a JSON object")
        grant_types, response_types, redirect_uris = _registration_lists(body, self.supported_grants())
        invalid = _invalid_metadata
        requested_method = body.get("token_endpoint_auth_method", "client_secret_basic")  # RFC 7591 §2
        if not isinstance(requested_method, str):
            raise invalid("token_endpoint_auth_method must be a string")
        method = config.registration_auth_method
        if method is None:
            if requested_method not in config.token_endpoint_auth_methods_supported:
                raise invalid(f"token_endpoint_auth_method {requested_method!r} is not supported")
            method = requested_method
        for name in ("scope", "client_name", "application_type"):
            if name in body and not isinstance(body[name], str):
                raise invalid(f"{name} must be a string")
        scope = body.get("scope")
        if scope is not None:
            unknown = [item for item in split_scope(scope) if item not in config.scopes_supported]
            if unknown:
                raise invalid(f"unknown scope: {' '.join(unknown)}")
        public_key: PublicKeyInput | None = None
        if method == JWT_METHOD:
            jwks = body.get("jwks")
            if not isinstance(jwks, dict):
                raise invalid("private_key_jwt needs the client's keys in 'jwks' (jwks_uri is not supported here)")
            try:
                load_public_key(jwks)
            except ValueError as exc:
                raise invalid(f"unusable jwks: {exc}") from None
            public_key = jwks

        client_id = f"dyn-{secrets.token_hex(8)}"
        secret = secrets.token_urlsafe(32) if method in CONFIDENTIAL_METHODS else None
        response: dict[str, Any] = dict(body)
        response.update(
            client_id=client_id,
            client_id_issued_at=int(self._context.now()),
            token_endpoint_auth_method=method,
            redirect_uris=redirect_uris,
            grant_types=grant_types,
            response_types=response_types,
            application_type=body.get("application_type", "web"),
        )
        response.pop("client_secret", None)
        response.pop("client_secret_expires_at", None)
        if secret is not None:
            response.update(client_secret=secret, client_secret_expires_at=0)
        self.add_client(
            client_id,
            secret,
            method,
            redirect_uris=redirect_uris,
            grant_types=grant_types,
            kind="dynamic",
            metadata=response,
            public_key=public_key,
        )
        return json_response(201, response, no_store=True)


def _invalid_metadata(description: str, error: str = "invalid_client_metadata") -> Reject:
    return token_error(error, description)


def _registration_lists(
    body: dict[str, Any], supported_grants: Sequence[str]
) -> tuple[list[str], list[str], list[str]]:
    """(grant_types, response_types, redirect_uris) of a registration request, with RFC 7591 defaults."""
    grant_types = body.get("grant_types", ["authorization_code"])
    if not _is_str_list(grant_types) or not grant_types:
        raise _invalid_metadata("grant_types must be a non-empty list of strings")
    unsupported = [grant for grant in grant_types if grant not in supported_grants]
    if unsupported:
        raise _invalid_metadata(f"unsupported grant_types: {unsupported}")
    response_types = body.get("response_types", ["code"])
    if not _is_str_list(response_types) or any(kind != "code" for kind in response_types):
        raise _invalid_metadata("response_types must be a list containing only 'code'")
    if "authorization_code" in grant_types and "code" not in response_types:
        raise _invalid_metadata("grant_type authorization_code needs response_type code (RFC 7591 §2.1)")
    redirect_uris = body.get("redirect_uris")
    if redirect_uris is None:
        if "authorization_code" in grant_types:
            raise _invalid_metadata("redirect_uris is required for the authorization_code grant")
        redirect_uris = []
    if not _is_str_list(redirect_uris) or ("authorization_code" in grant_types and not redirect_uris):
        raise _invalid_metadata("redirect_uris must be a non-empty list of strings")
    for uri in redirect_uris:
        problem = _redirect_uri_problem(uri)
        if problem is not None:
            raise _invalid_metadata(f"{uri!r}: {problem}", "invalid_redirect_uri")
    return list(grant_types), list(response_types), list(redirect_uris)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) and item for item in value)


def _redirect_uri_problem(uri: str) -> str | None:
    parts = urlsplit(uri)
    if not parts.scheme:
        return "not an absolute URI"
    if "#" in uri:
        return "must not contain a fragment"
    if parts.scheme == "http":
        if (parts.hostname or "") not in LOOPBACK_HOSTS:
            return "http is only allowed for loopback redirect URIs"
    elif parts.scheme == "https" and not parts.hostname:
        return "https redirect URI without a host"
    return None
