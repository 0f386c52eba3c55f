"""Machine-to-machine access: the ``client_credentials`` grant (RFC 6749 §4.4).

The client authenticates as registered (:mod:`mcp_oauth_auth.flow.client_auth`): ``client_secret_basic`` or
``client_secret_post`` with its secret, or ``private_key_jwt`` with a short-lived JWT signed by its private key
(:class:`~mcp_oauth_auth.flow.private_key_jwt.PrivateKeyJWT`, or anything with the same ``assertion`` method, see
:class:`~mcp_oauth_auth.flow.client_auth.ClientAssertionSigner`). A public client (``none``) cannot use this grant.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.client_auth import PRIVATE_KEY_JWT, ClientAssertionSigner
from mcp_oauth_auth.flow.effects import Effect
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.tokens import grant_request
from mcp_oauth_auth.flow.urls import safe_url
from mcp_oauth_auth.records import ClientRegistration, TokenSet

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.dpop import DPoPState

__all__ = ["request_client_credentials"]

logger = logging.getLogger("mcp_oauth_auth")

_SECRET_METHODS = ("client_secret_basic", "client_secret_post")


def request_client_credentials(
    token_endpoint: str,
    client: ClientRegistration,
    scopes: tuple[str, ...],
    resource: str | None,
    retry: RetryPolicy,
    *,
    private_key: ClientAssertionSigner | None = None,
    issuer: str | None = None,
    now: Callable[[], float] = time.time,
    dpop: DPoPState | None = None,
) -> Generator[Effect, Any, TokenSet]:
    """Obtain tokens with the ``client_credentials`` grant (RFC 6749 §4.4).

    ``client.token_endpoint_auth_method`` selects the authentication: ``client_secret_basic``,
    ``client_secret_post`` or ``private_key_jwt`` (then ``private_key`` and ``issuer``, the authorization
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
    logger.debug("requesting a client_credentials token at %s (%s)", safe_url(token_endpoint), method)
    return (
        yield from grant_request(
            token_endpoint,
            client,
            {"grant_type": "client_credentials"},
            scopes,
            resource,
            retry,
            "client credentials grant",
            "the token endpoint refused the client credentials grant",
            private_key=private_key,
            issuer=issuer,
            now=now,
            dpop=dpop,
        )
    )
