"""Token endpoint requests: code exchange and refresh.

Every token request carries the ``resource`` indicator (RFC 8707) when one is in use. Responses get an absolute
``expires_at``; a refresh that returns no new refresh token keeps the old one; a refresh token is never assumed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from typing import Any

from mcp_oauth_auth.exceptions import (
    InvalidGrantError,
    OAuthError,
    TokenExchangeError,
    TokenRefreshError,
)
from mcp_oauth_auth.flow.client_auth import ClientAssertionSigner, authenticated_fetch, client_authentication
from mcp_oauth_auth.flow.effects import Effect, HttpResponse
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.records import ClientRegistration, TokenSet

__all__ = ["client_authentication", "exchange_code", "parse_token_response", "refresh_tokens", "token_error"]

logger = logging.getLogger("mcp_oauth_auth")


def exchange_code(
    endpoint: str,
    client: ClientRegistration,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    resource: str | None,
    policy: RetryPolicy,
    *,
    assertion_signer: ClientAssertionSigner | None = None,
    issuer: str | None = None,
) -> Generator[Effect, Any, TokenSet]:
    """Exchange an authorization code (RFC 6749 §4.1.3, RFC 7636 §4.5). ``assertion_signer`` and ``issuer`` (the
    assertion's audience) are for a client that authenticates with ``private_key_jwt``."""
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    if resource:
        fields["resource"] = resource
    logger.debug("exchanging the authorization code at %s", endpoint)
    response = yield from authenticated_fetch(
        endpoint,
        client,
        fields,
        policy,
        "authorization code exchange",
        assertion_signer=assertion_signer,
        issuer=issuer,
    )
    if response.status != 200:
        raise token_error(TokenExchangeError, "the token endpoint refused the authorization code", response, endpoint)
    return parse_token_response(response, endpoint, TokenExchangeError, previous_refresh_token=None)


def refresh_tokens(
    endpoint: str,
    client: ClientRegistration,
    refresh_token: str,
    resource: str | None,
    policy: RetryPolicy,
    *,
    assertion_signer: ClientAssertionSigner | None = None,
    issuer: str | None = None,
) -> Generator[Effect, Any, TokenSet]:
    """Refresh (RFC 6749 §6). ``invalid_grant`` raises :class:`InvalidGrantError`; the caller re-authorizes.
    ``assertion_signer`` and ``issuer`` are for a client that authenticates with ``private_key_jwt``."""
    fields = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if resource:
        fields["resource"] = resource
    logger.debug("refreshing the access token at %s", endpoint)
    response = yield from authenticated_fetch(
        endpoint, client, fields, policy, "token refresh", assertion_signer=assertion_signer, issuer=issuer
    )
    if response.status != 200:
        error_class = InvalidGrantError if _error_code(response) == "invalid_grant" else TokenRefreshError
        raise token_error(error_class, "the token endpoint refused the refresh", response, endpoint)
    return parse_token_response(response, endpoint, TokenRefreshError, previous_refresh_token=refresh_token)


def _error_code(response: HttpResponse) -> str | None:
    error = (response.json_object() or {}).get("error")
    return error if isinstance(error, str) else None


def token_error(error_class: type[OAuthError], message: str, response: HttpResponse, endpoint: str) -> OAuthError:
    document = response.json_object() or {}
    description = document.get("error_description")
    return error_class(
        message,
        url=endpoint,
        status_code=response.status,
        error=_error_code(response),
        error_description=description[:500] if isinstance(description, str) else None,
    )


def parse_token_response(
    response: HttpResponse,
    endpoint: str,
    error_class: type[OAuthError],
    previous_refresh_token: str | None,
) -> TokenSet:
    """A :class:`TokenSet` from a successful token response (RFC 6749 §5.1)."""
    document = response.json_object() or {}
    access_token = document.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise error_class("the token response has no access_token", url=endpoint, status_code=response.status)
    token_type = document.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise error_class(f"the token response has token_type {token_type!r}; only Bearer is supported", url=endpoint)
    now = time.time()
    expires_in = document.get("expires_in")
    expires_at = None
    if isinstance(expires_in, (int, float)) or (isinstance(expires_in, str) and expires_in.isdigit()):
        expires_at = now + float(expires_in)
    refresh_token = document.get("refresh_token")
    scope = document.get("scope")
    id_token = document.get("id_token")
    return TokenSet(
        access_token=access_token,
        token_type="Bearer",
        expires_at=expires_at,
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else previous_refresh_token,
        scope=scope if isinstance(scope, str) else None,
        id_token=id_token if isinstance(id_token, str) else None,
        issued_at=now,
    )
