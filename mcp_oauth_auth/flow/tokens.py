"""Token endpoint requests: code exchange and refresh.

Every token request carries the ``resource`` indicator (RFC 8707) when one is in use. Responses get an absolute
``expires_at``; what a refresh response leaves out did not change (:func:`keep_omitted`); a refresh token is never
assumed.
"""

from __future__ import annotations

import base64
import logging
import math
import re
import time
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote_plus

from mcp_oauth_auth.exceptions import (
    InvalidGrantError,
    OAuthError,
    TokenExchangeError,
    TokenRefreshError,
)
from mcp_oauth_auth.flow.client_auth import ClientAssertionSigner, authenticated_fetch, client_authentication
from mcp_oauth_auth.flow.effects import Effect, HttpRequest, HttpResponse
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.values import parse_seconds
from mcp_oauth_auth.records import ClientRegistration, TokenSet

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.dpop import DPoPState

__all__ = [
    "client_authentication",
    "exchange_code",
    "grant_request",
    "keep_omitted",
    "parse_token_response",
    "refresh_due_at",
    "refresh_tokens",
    "token_error",
]

logger = logging.getLogger("mcp_oauth_auth")

#: Refresh errors after which the refresh token is of no more use to this client (RFC 6749 §5.2). ``invalid_client``
#: is not among them: the engine tells a forgotten dynamic registration from wrong pre-registered credentials.
_FINAL_REFRESH_ERRORS = frozenset({"invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope"})
#: The longest ``expires_in`` taken at its word (ten years); beyond it the lifetime counts as unknown.
_MAX_LIFETIME = 10 * 365 * 86400
#: Request form fields that carry a secret a server could echo back in an error (RFC 6749, 7009, 7523, 7636, 8628,
#: 8693).
_SECRET_FIELDS = frozenset(
    (
        "code",
        "code_verifier",
        "refresh_token",
        "client_secret",
        "client_assertion",
        "device_code",
        "token",
        "assertion",
        "subject_token",
    )
)
#: Shorter values are not redacted: too weak to be a real credential, they would only garble ordinary words.
_MIN_SECRET_LENGTH = 8
#: What an ``Authorization: Bearer`` header can carry: visible ASCII (RFC 6750's b64token is a subset).
_HEADER_SAFE_TOKEN = re.compile(r"[\x21-\x7e]+")


def exchange_code(
    endpoint: str,
    client: ClientRegistration,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    resource: str | None,
    retry: RetryPolicy,
    *,
    private_key: ClientAssertionSigner | None = None,
    issuer: str | None = None,
    now: Callable[[], float] = time.time,
    dpop: DPoPState | None = None,
) -> Generator[Effect, Any, TokenSet]:
    """Exchange an authorization code (RFC 6749 §4.1.3, RFC 7636 §4.5). ``private_key`` and ``issuer`` (the
    assertion's audience) are for a client that authenticates with ``private_key_jwt``."""
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    logger.debug("exchanging the authorization code at %s", endpoint)
    return (
        yield from grant_request(
            endpoint,
            client,
            fields,
            (),
            resource,
            retry,
            "authorization code exchange",
            "the token endpoint refused the authorization code",
            private_key=private_key,
            issuer=issuer,
            now=now,
            dpop=dpop,
        )
    )


def grant_request(
    endpoint: str,
    client: ClientRegistration,
    fields: dict[str, str],
    scopes: tuple[str, ...],
    resource: str | None,
    retry: RetryPolicy,
    what: str,
    refusal: str,
    *,
    private_key: ClientAssertionSigner | None = None,
    issuer: str | None = None,
    now: Callable[[], float] = time.time,
    dpop: DPoPState | None = None,
) -> Generator[Effect, Any, TokenSet]:
    """One token request of a grant: ``fields`` with ``scope`` and ``resource`` (RFC 8707) when given, the client
    authenticated as registered, temporary failures retried; a refusal raises :class:`TokenExchangeError` with the
    server's error and ``refusal`` as its message, an answer is parsed (RFC 6749 §5.1). With ``dpop``, the request
    carries a DPoP proof (RFC 9449) and a DPoP-bound answer is expected."""
    fields = with_scope_and_resource(fields, scopes, resource)
    response = yield from authenticated_fetch(
        endpoint, client, fields, retry, what, private_key=private_key, issuer=issuer, now=now, dpop=dpop
    )
    if response.status != 200:
        raise token_error(TokenExchangeError, refusal, response, endpoint)
    return parse_token_response(response, endpoint, TokenExchangeError, now=now, dpop=dpop is not None)


def with_scope_and_resource(fields: dict[str, str], scopes: tuple[str, ...], resource: str | None) -> dict[str, str]:
    """``fields`` plus ``scope`` (space-separated, RFC 6749 §3.3) and ``resource`` (RFC 8707), each when given."""
    extra = {"scope": " ".join(scopes)} if scopes else {}
    if resource:
        extra["resource"] = resource
    return {**fields, **extra}


def refresh_tokens(
    endpoint: str,
    client: ClientRegistration,
    refresh_token: str,
    resource: str | None,
    retry: RetryPolicy,
    *,
    previous_scope: str | None = None,
    private_key: ClientAssertionSigner | None = None,
    issuer: str | None = None,
    now: Callable[[], float] = time.time,
    dpop: DPoPState | None = None,
) -> Generator[Effect, Any, TokenSet]:
    """Refresh (RFC 6749 §6). A final refusal (``invalid_grant``, ``unauthorized_client``,
    ``unsupported_grant_type``, ``invalid_scope``) raises :class:`InvalidGrantError`: this refresh token will not
    work for this client again, and the caller re-authorizes.
    A response without a refresh token keeps ``refresh_token``, one without ``scope`` keeps ``previous_scope`` (the
    scope of the tokens being refreshed, when known): :func:`keep_omitted`.
    ``private_key`` and ``issuer`` are for a client that authenticates with ``private_key_jwt``."""
    fields = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if resource:
        fields["resource"] = resource
    logger.debug("refreshing the access token at %s", endpoint)
    response = yield from authenticated_fetch(
        endpoint, client, fields, retry, "token refresh", private_key=private_key, issuer=issuer, now=now, dpop=dpop
    )
    if response.status != 200:
        error_class = InvalidGrantError if _error_code(response) in _FINAL_REFRESH_ERRORS else TokenRefreshError
        raise token_error(error_class, "the token endpoint refused the refresh", response, endpoint)
    tokens = parse_token_response(response, endpoint, TokenRefreshError, now=now, dpop=dpop is not None)
    return keep_omitted(tokens, refresh_token=refresh_token, scope=previous_scope)


def keep_omitted(tokens: TokenSet, *, refresh_token: str | None, scope: str | None) -> TokenSet:
    """``tokens`` from a refresh response, with what the response left out taken from the tokens it replaces: the
    refresh token (RFC 6749 §6: the server *may* issue a new one; without one, the old one stays valid) and the
    scope (§5.1: omitted when identical to the scope requested, i.e. the scope granted before)."""
    return replace(
        tokens,
        refresh_token=tokens.refresh_token if tokens.refresh_token is not None else refresh_token,
        scope=tokens.scope if tokens.scope is not None else scope,
    )


def _error_code(response: HttpResponse) -> str | None:
    error = (response.json_object() or {}).get("error")
    return error if isinstance(error, str) else None


def token_error(error_class: type[OAuthError], message: str, response: HttpResponse, endpoint: str) -> OAuthError:
    """``error_class`` with the server's ``error`` and ``error_description``, minus any secret of the request that
    ``response`` answers: a server may echo the code, verifier, refresh token or client secret it was sent."""
    document = response.json_object() or {}
    secrets = _sent_secrets(response.request)
    error = _error_code(response)
    description = document.get("error_description")
    return error_class(
        message,
        url=endpoint,
        status_code=response.status,
        error=_redact(error, secrets) if error is not None else None,
        error_description=_redact(description, secrets)[:500] if isinstance(description, str) else None,
    )


def _sent_secrets(request: HttpRequest | None) -> list[str]:
    """The secrets ``request`` carried (form fields, HTTP Basic credentials), longest first; not the very short."""
    if request is None:
        return []
    headers = {name.lower(): value for name, value in request.headers}
    secrets: set[str] = set()
    if headers.get("content-type") == "application/x-www-form-urlencoded":
        form = parse_qsl(request.body.decode("ascii", "replace"))
        secrets.update(value for name, value in form if name in _SECRET_FIELDS)
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and credentials:
        secrets.add(credentials)
        try:
            password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")[2]
        except ValueError:
            password = ""
        secrets.update((password, unquote_plus(password)))
    return sorted((secret for secret in secrets if len(secret) >= _MIN_SECRET_LENGTH), key=len, reverse=True)


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def parse_token_response(
    response: HttpResponse,
    endpoint: str,
    error_class: type[OAuthError],
    now: Callable[[], float] = time.time,
    *,
    dpop: bool = False,
) -> TokenSet:
    """A :class:`TokenSet` from a successful token response (RFC 6749 §5.1), issued at ``now()``: what the response
    says, no more (an empty ``refresh_token`` is none).

    ``token_type`` ``Bearer``, or ``DPoP`` when the request carried a DPoP proof (``dpop``). A ``Bearer`` answer to
    a DPoP request is allowed (RFC 9449 §5: the server decides) and logged: the token is then sent as a bearer
    token."""
    document = response.json_object() or {}
    access_token = document.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise error_class("the token response has no access_token", url=endpoint, status_code=response.status)
    if not _HEADER_SAFE_TOKEN.fullmatch(access_token):
        raise error_class(
            "the token response's access_token has characters other than visible ASCII; it cannot be sent in an "
            "Authorization header",
            url=endpoint,
            status_code=response.status,
        )
    token_type = document.get("token_type", "Bearer")
    kind = token_type.lower() if isinstance(token_type, str) else None
    if kind == "dpop" and dpop:
        token_type = "DPoP"
    elif kind == "bearer":
        token_type = "Bearer"
        if dpop:
            logger.info(
                "%s issued a Bearer token to a DPoP request (RFC 9449 §5); sending it as a bearer token", endpoint
            )
    else:
        shown = repr(token_type)[:40]
        supported = "Bearer and DPoP" if dpop else "only Bearer (DPoP is not in use)"
        raise error_class(f"the token response has token_type {shown}; {supported} supported", url=endpoint)
    issued_at = now()
    expires_at = None
    if "expires_in" in document:
        expires_in = parse_seconds(document["expires_in"])
        if expires_in is not None and expires_in <= _MAX_LIFETIME:
            expires_at = issued_at + expires_in
        else:
            logger.debug("the token response's expires_in is not a usable lifetime; treating it as unknown")
    refresh_token = document.get("refresh_token")
    scope = document.get("scope")
    id_token = document.get("id_token")
    return TokenSet(
        access_token=access_token,
        token_type=token_type,
        expires_at=expires_at,
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        scope=scope if isinstance(scope, str) else None,
        id_token=id_token if isinstance(id_token, str) else None,
        issued_at=issued_at,
    )


#: Refresh this many seconds before expiry by default (at most half of the token's lifetime).
DEFAULT_REFRESH_SKEW = 60.0


def refresh_due_at(tokens: TokenSet | None, skew: float | None) -> float:
    """When to refresh: ``skew`` seconds before expiry; by default 60 s, but never before half of the lifetime.

    The cap matters for short-lived tokens: with a fixed 60 s margin, a 30 s token would be refreshed on every
    request. An explicit ``skew`` is taken as given.
    """
    if tokens is None or tokens.expires_at is None:
        return math.inf
    if skew is None:
        skew = DEFAULT_REFRESH_SKEW
        if tokens.issued_at > 0:
            skew = min(skew, max(0.0, (tokens.expires_at - tokens.issued_at) / 2))
    return tokens.expires_at - skew
