"""Machine-to-machine access: the ``client_credentials`` grant (RFC 6749 §4.4) and ``private_key_jwt`` client
authentication (RFC 7523 §2.2, RFC 7521 §4.2).

The client authenticates as registered: ``client_secret_basic`` or ``client_secret_post`` with its secret, or
``private_key_jwt`` with a short-lived JWT signed by its private key
(:class:`~mcp_oauth_auth.flow.private_key_jwt.PrivateKeyJWT`, or anything with the same ``assertion`` method, see
:class:`ClientAssertionSigner`). A public client (``none``) cannot use this grant.

Every request gets a fresh assertion, retries of temporary failures included: an assertion's ``jti`` is single
use, and a server that recorded it before failing would refuse the same assertion again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from typing import Any, Protocol

from mcp_oauth_auth.exceptions import ConfigurationError, TemporaryOAuthError, TokenExchangeError
from mcp_oauth_auth.flow.effects import Effect, HttpRequest, HttpResponse, send, sleep
from mcp_oauth_auth.flow.fetch import RetryPolicy, fetch, is_temporary
from mcp_oauth_auth.flow.tokens import client_authentication, parse_token_response, token_error
from mcp_oauth_auth.flow.urls import safe_url
from mcp_oauth_auth.records import ClientRegistration, TokenSet

__all__ = [
    "ASSERTION_LIFETIME",
    "CLIENT_ASSERTION_TYPE",
    "PRIVATE_KEY_JWT",
    "ClientAssertionSigner",
    "authenticated_fetch",
    "request_client_credentials",
]

logger = logging.getLogger("mcp_oauth_auth")

#: The token endpoint authentication method name (RFC 7591 §2, OpenID Connect Core §9).
PRIVATE_KEY_JWT = "private_key_jwt"
#: ``client_assertion_type`` of a JWT client assertion (RFC 7523 §2.2).
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Seconds between an assertion's ``iat`` and its ``exp``.
ASSERTION_LIFETIME = 60

_SECRET_METHODS = ("client_secret_basic", "client_secret_post")


class ClientAssertionSigner(Protocol):
    """Produces a signed client assertion (RFC 7523 §3) for one token endpoint request."""

    def assertion(self, client_id: str, audience: str, now: float | None = None) -> str: ...


def _authenticated_request(
    endpoint: str,
    client: ClientRegistration,
    fields: dict[str, str],
    signer: ClientAssertionSigner | None,
    issuer: str | None,
    now: Callable[[], float],
) -> HttpRequest:
    """The form POST to ``endpoint`` with the client's authentication applied (a fresh assertion for JWT)."""
    assertion = None
    if client.token_endpoint_auth_method == PRIVATE_KEY_JWT:
        if signer is None:
            raise ConfigurationError(f"client {client.client_id!r} uses private_key_jwt but no signing key was given")
        if not issuer:
            raise ConfigurationError("private_key_jwt needs the authorization server's issuer as the audience")
        assertion = signer.assertion(client.client_id, issuer, now())
    elif signer is not None:
        raise ConfigurationError(
            f"a signing key was given but client {client.client_id!r} is registered for "
            f"{client.token_endpoint_auth_method}, not private_key_jwt"
        )
    form, headers = client_authentication(client, fields, client_assertion=assertion)
    return HttpRequest.form(endpoint, form, headers)


def authenticated_fetch(
    endpoint: str,
    client: ClientRegistration,
    fields: dict[str, str],
    policy: RetryPolicy,
    what: str,
    *,
    assertion_signer: ClientAssertionSigner | None = None,
    issuer: str | None = None,
    now: Callable[[], float] = time.time,
) -> Generator[Effect, Any, HttpResponse]:
    """POST ``fields`` to ``endpoint`` with client authentication, retrying temporary failures like
    :func:`~mcp_oauth_auth.flow.fetch.fetch`; with ``private_key_jwt``, each attempt carries a new assertion."""
    if client.token_endpoint_auth_method != PRIVATE_KEY_JWT:
        request = _authenticated_request(endpoint, client, fields, assertion_signer, issuer, now)
        response = yield from fetch(request, policy, what)
        return response
    response = yield from send(_authenticated_request(endpoint, client, fields, assertion_signer, issuer, now))
    for attempt in range(1, policy.attempts):
        if not is_temporary(response.status):
            return response
        delay = policy.delay(attempt - 1, response)
        logger.debug("%s: %s answered %s, retrying in %.1fs", what, safe_url(endpoint), response.status, delay)
        yield from sleep(delay)
        response = yield from send(_authenticated_request(endpoint, client, fields, assertion_signer, issuer, now))
    if is_temporary(response.status):
        raise TemporaryOAuthError(
            f"{what} failed temporarily {policy.attempts} times; credentials were kept, try again later",
            url=safe_url(endpoint),
            status_code=response.status,
        )
    return response


def request_client_credentials(
    token_endpoint: str,
    client: ClientRegistration,
    scopes: tuple[str, ...],
    resource: str | None,
    retry: RetryPolicy,
    *,
    assertion_signer: ClientAssertionSigner | None = None,
    issuer: str | None = None,
    now: Callable[[], float] = time.time,
) -> Generator[Effect, Any, TokenSet]:
    """Obtain tokens with the ``client_credentials`` grant (RFC 6749 §4.4).

    ``client.token_endpoint_auth_method`` selects the authentication: ``client_secret_basic``,
    ``client_secret_post`` or ``private_key_jwt`` (then ``assertion_signer`` and ``issuer``, the authorization
    server's issuer identifier used as the assertion's audience, are required). ``scope`` is sent when ``scopes``
    is not empty, ``resource`` (RFC 8707) when given. No refresh token is expected; one that is returned is kept in
    the :class:`TokenSet` as is. A refusal raises :class:`TokenExchangeError` with the server's ``error``.
    """
    method = client.token_endpoint_auth_method
    if method not in (*_SECRET_METHODS, PRIVATE_KEY_JWT):
        raise ConfigurationError(
            f"the client_credentials grant needs a confidential client (client_secret_basic, client_secret_post or "
            f"private_key_jwt); client {client.client_id!r} uses {method!r}"
        )
    if method in _SECRET_METHODS and not client.client_secret:
        raise ConfigurationError(f"client {client.client_id!r} uses {method} but has no client_secret")
    fields = {"grant_type": "client_credentials"}
    if scopes:
        fields["scope"] = " ".join(scopes)
    if resource:
        fields["resource"] = resource
    logger.debug("requesting a client_credentials token at %s (%s)", safe_url(token_endpoint), method)
    response = yield from authenticated_fetch(
        token_endpoint,
        client,
        fields,
        retry,
        "client credentials grant",
        assertion_signer=assertion_signer,
        issuer=issuer,
        now=now,
    )
    if response.status != 200:
        raise token_error(
            TokenExchangeError, "the token endpoint refused the client credentials grant", response, token_endpoint
        )
    return parse_token_response(response, token_endpoint, TokenExchangeError, previous_refresh_token=None)
