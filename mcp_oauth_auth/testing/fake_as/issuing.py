"""Issuing tokens: the grant behind them, access tokens, refresh tokens (per the configuration and the client's
grant types), and the checks of the requested scope and resource shared by the grants."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from mcp_oauth_auth.testing.fake_as.dpop import DPoPTokenChecks
from mcp_oauth_auth.testing.fake_as.oauth_http import split_scope, token_error
from mcp_oauth_auth.testing.fake_as.records import AccessTokenRecord, FakeClient, Grant, RefreshToken
from mcp_oauth_auth.testing.fake_http import FakeResponse, json_response

__all__ = ["TokenIssuer"]


class TokenIssuer(DPoPTokenChecks):
    """Grants and the tokens issued for them, also without any HTTP exchange (:meth:`issue_tokens`)."""

    def _requested_scopes(self, value: str | None) -> tuple[str, ...]:
        """The scopes of a ``scope`` parameter (the configured defaults when absent); raises invalid_scope."""
        config = self._context.config
        requested = split_scope(value)
        unknown = [scope for scope in requested if scope not in config.scopes_supported]
        if unknown:
            raise token_error("invalid_scope", f"unknown scope: {' '.join(unknown)}")
        return tuple(dict.fromkeys(requested)) if requested else tuple(config.default_scopes)

    def _checked_resource(self, resource: str | None) -> str | None:
        if resource is not None and resource not in self._context.accepted_resources():
            raise token_error("invalid_target", "unknown resource")
        return resource

    def _issue(
        self,
        grant: Grant,
        client: FakeClient,
        scopes: tuple[str, ...],
        *,
        new_grant: bool,
        refresh_allowed: bool = True,
    ) -> dict[str, Any]:
        config = self._context.config
        now = self._context.now()
        access = AccessTokenRecord(
            token=secrets.token_urlsafe(32),
            grant=grant,
            client_id=client.client_id,
            scopes=scopes,
            resource=grant.resource,
            issued_at=now,
            expires_at=now + config.access_token_lifetime,
            jkt=self._dpop_jkt,
        )
        self._access_tokens[access.token] = access
        document: dict[str, Any] = {
            "access_token": access.token,
            "token_type": "DPoP" if access.jkt is not None else "Bearer",
            "expires_in": config.access_token_lifetime,
        }
        if scopes:
            document["scope"] = " ".join(scopes)
        wants_refresh = (
            refresh_allowed
            and config.issue_refresh_tokens
            and "refresh_token" in client.grant_types
            and (not config.refresh_token_requires_offline_access or "offline_access" in grant.scopes)
        )
        if new_grant and wants_refresh:
            document["refresh_token"] = self._new_refresh_token(grant, client)
        return document

    def _new_refresh_token(self, grant: Grant, client: FakeClient) -> str:
        # RFC 9449 §5: a public client's refresh token is bound to its DPoP key; a confidential client's need not be.
        jkt = self._dpop_jkt if client.token_endpoint_auth_method == "none" else None
        refresh = RefreshToken(secrets.token_urlsafe(32), grant, client.client_id, jkt=jkt)
        self._refresh_tokens[refresh.token] = refresh
        return refresh.token

    @staticmethod
    def _token_response(document: dict[str, Any]) -> FakeResponse:
        return json_response(200, document, no_store=True)

    def issue_tokens(self, client_id: str, scopes: Sequence[str], resource: str | None) -> dict[str, Any]:
        """Grant ``scopes`` to a known client without any HTTP exchange; returns the token response body."""
        client = self.clients.get(client_id)
        if client is None:
            raise KeyError(f"unknown client_id {client_id!r}")
        grant = Grant(secrets.token_hex(8), client_id, tuple(scopes), resource)
        self._grants[grant.grant_id] = grant
        return self._issue(grant, client, grant.scopes, new_grant=True)
