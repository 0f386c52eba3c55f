"""The state every endpoint family of the fake authorization server works on: the client registry (clients added
by tests or registered dynamically, and Client ID Metadata Document clients) and the stores of what it issued."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from mcp_oauth_auth.testing.fake_as.keys import PublicKeyInput, load_public_key
from mcp_oauth_auth.testing.fake_as.records import (
    ALL_AUTH_METHODS,
    CONFIDENTIAL_METHODS,
    JWT_METHOD,
    AccessTokenRecord,
    AuthorizationCode,
    DeviceCode,
    FakeClient,
    Grant,
    RefreshToken,
)
from mcp_oauth_auth.testing.fake_context import StackContext
from mcp_oauth_auth.testing.fake_http import is_loopback_http

__all__ = ["AuthorizationServerState"]


class AuthorizationServerState:
    """Clients, codes, grants, tokens and device codes; the base of every endpoint family."""

    def __init__(self, context: StackContext) -> None:
        self._context = context
        self.clients: dict[str, FakeClient] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self._grants: dict[str, Grant] = {}
        self._access_tokens: dict[str, AccessTokenRecord] = {}
        self._refresh_tokens: dict[str, RefreshToken] = {}
        self._device_codes: dict[str, DeviceCode] = {}
        #: (client_id, jti) -> exp of every accepted private_key_jwt assertion (RFC 7523 §3 item 7).
        self._seen_jtis: dict[tuple[str, str], float] = {}
        #: {"client_id", "auth_method", "scope", "resource", "user_code", "status", "error"} per device
        #: authorization request.
        self.device_authorization_requests: list[dict[str, Any]] = []

    def add_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        token_endpoint_auth_method: str = "none",  # noqa: S107 - not a password
        redirect_uris: Sequence[str] = (),
        grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
        *,
        kind: str = "pre-registered",
        metadata: dict[str, Any] | None = None,
        public_key: PublicKeyInput | None = None,
        also_allowed_auth_methods: Sequence[str] = (),
    ) -> FakeClient:
        """Register a client. ``public_key`` (PEM, JWK, JWK Set or key object) is required for ``private_key_jwt``;
        ``also_allowed_auth_methods`` lets a confidential client authenticate in more ways than the registered
        one (e.g. both secret methods, or a secret and a key)."""
        methods = list(dict.fromkeys([token_endpoint_auth_method, *also_allowed_auth_methods]))
        unknown = [method for method in methods if method not in ALL_AUTH_METHODS]
        if unknown:
            raise ValueError(f"token endpoint auth methods must be among {ALL_AUTH_METHODS}, not {unknown}")
        if "none" in methods and len(methods) > 1:
            raise ValueError("a public client ('none') cannot also use confidential authentication methods")
        uses_secret = any(method in CONFIDENTIAL_METHODS for method in methods)
        if uses_secret and not client_secret:
            raise ValueError(f"{[m for m in methods if m in CONFIDENTIAL_METHODS]} need a client_secret")
        if not uses_secret and client_secret is not None:
            raise ValueError(f"a client authenticating with {methods} has no client_secret")
        uses_key = JWT_METHOD in methods
        if uses_key and public_key is None:
            raise ValueError("private_key_jwt needs the client's public_key")
        if not uses_key and public_key is not None:
            raise ValueError("a public_key is only for clients that use private_key_jwt")
        key, key_id = load_public_key(public_key) if public_key is not None else (None, None)
        client = FakeClient(
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint_auth_method=token_endpoint_auth_method,
            redirect_uris=list(redirect_uris),
            grant_types=list(grant_types),
            kind=kind,
            metadata=dict(metadata or {}),
            auth_methods=methods,
            public_key=key,
            key_id=key_id,
        )
        self.clients[client_id] = client
        return client

    def lookup_client(self, client_id: str) -> FakeClient | None:
        """A known client, or a Client ID Metadata Document client when that is enabled and the id fits."""
        client = self.clients.get(client_id)
        if client is not None:
            return client
        if self._context.config.client_id_metadata_document_supported and _is_cimd_client_id(client_id):
            return FakeClient(client_id=client_id, kind="client-metadata-document")
        return None

    def find_access_token(self, token: str) -> AccessTokenRecord | None:
        return self._access_tokens.get(token)

    def token_counts(self) -> tuple[int, int]:
        return len(self._access_tokens), len(self._refresh_tokens)


def _is_cimd_client_id(client_id: str) -> bool:
    parts = urlsplit(client_id)
    if parts.fragment or not parts.hostname:
        return False
    return parts.scheme == "https" or is_loopback_http(client_id)
