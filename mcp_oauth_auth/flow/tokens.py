"""Token endpoint requests: code exchange, refresh, and the client authentication they carry.

Every token request carries the ``resource`` indicator (RFC 8707) when one is in use. Responses get an absolute
``expires_at``; a refresh that returns no new refresh token keeps the old one; a refresh token is never assumed.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Generator
from typing import Any
from urllib.parse import quote

from mcp_oauth_auth.exceptions import (
    ConfigurationError,
    InvalidGrantError,
    OAuthError,
    TokenExchangeError,
    TokenRefreshError,
)
from mcp_oauth_auth.flow.effects import Effect, HttpRequest, HttpResponse
from mcp_oauth_auth.flow.fetch import RetryPolicy, fetch
from mcp_oauth_auth.records import ClientRegistration, TokenSet

__all__ = ["client_authentication", "exchange_code", "parse_token_response", "refresh_tokens", "token_error"]

logger = logging.getLogger("mcp_oauth_auth")


def _form_encode(value: str) -> str:
    """application/x-www-form-urlencoded encoding of one value (RFC 6749 §2.3.1, Appendix B)."""
    return quote(value, safe="").replace("%20", "+")


def client_authentication(
    client: ClientRegistration, fields: dict[str, str], *, client_assertion: str | None = None
) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """``fields`` and headers with the client's token endpoint authentication applied.

    ``private_key_jwt`` (RFC 7523 §2.2) needs ``client_assertion``, a signed JWT made for this very request (see
    :mod:`mcp_oauth_auth.flow.client_credentials`); ``client_id`` is sent along with it (RFC 7521 §4.2).
    """
    method = client.token_endpoint_auth_method
    if method == "private_key_jwt":
        if client_assertion is None:
            raise ConfigurationError(f"client {client.client_id!r} uses private_key_jwt: a client assertion is needed")
        return {
            **fields,
            "client_id": client.client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client_assertion,
        }, ()
    if method == "client_secret_basic":
        assert client.client_secret is not None
        credentials = f"{_form_encode(client.client_id)}:{_form_encode(client.client_secret)}"
        encoded = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
        return fields, (("Authorization", f"Basic {encoded}"),)
    if method == "client_secret_post":
        assert client.client_secret is not None
        return {**fields, "client_id": client.client_id, "client_secret": client.client_secret}, ()
    return {**fields, "client_id": client.client_id}, ()


def _token_request(
    endpoint: str, client: ClientRegistration, fields: dict[str, str], policy: RetryPolicy, what: str
) -> Generator[Effect, Any, HttpResponse]:
    fields, headers = client_authentication(client, fields)
    response = yield from fetch(HttpRequest.form(endpoint, fields, headers), policy, what)
    return response


def exchange_code(
    endpoint: str,
    client: ClientRegistration,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    resource: str | None,
    policy: RetryPolicy,
) -> Generator[Effect, Any, TokenSet]:
    """Exchange an authorization code (RFC 6749 §4.1.3, RFC 7636 §4.5)."""
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    if resource:
        fields["resource"] = resource
    logger.debug("exchanging the authorization code at %s", endpoint)
    response = yield from _token_request(endpoint, client, fields, policy, "authorization code exchange")
    if response.status != 200:
        raise token_error(TokenExchangeError, "the token endpoint refused the authorization code", response, endpoint)
    return parse_token_response(response, endpoint, TokenExchangeError, previous_refresh_token=None)


def refresh_tokens(
    endpoint: str,
    client: ClientRegistration,
    refresh_token: str,
    resource: str | None,
    policy: RetryPolicy,
) -> Generator[Effect, Any, TokenSet]:
    """Refresh (RFC 6749 §6). ``invalid_grant`` raises :class:`InvalidGrantError`; the caller re-authorizes."""
    fields = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if resource:
        fields["resource"] = resource
    logger.debug("refreshing the access token at %s", endpoint)
    response = yield from _token_request(endpoint, client, fields, policy, "token refresh")
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
