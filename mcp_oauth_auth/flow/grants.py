"""The three ways this client obtains a first token from an authorization server, once discovery is done.

* :func:`code_grant` — authorization code + PKCE (OAuth 2.1 §4.1): the person approves in a browser and the
  authorization server redirects back with a code.
* :func:`device_grant` — the device authorization grant (RFC 8628): the person approves on any device, typing a
  short code, while this client polls. For machines without a usable browser.
* :func:`client_credentials_grant` — machine to machine (RFC 6749 §4.4, the MCP client credentials extension):
  no person at all; the client authenticates with a secret or a signed assertion (RFC 7523).
* :func:`jwt_bearer_grant` — workload identity (RFC 7523 §2.1, SEP-1933): the workload's platform-issued JWT is
  traded for a token; no person, no registration.

The last two are *machine grants* (:data:`MACHINE_GRANTS`): no refresh token is assumed, and a new grant replaces
an expiring token.

A pre-registered client given a signing key authenticates with ``private_key_jwt`` (RFC 7523) in all three.

Each returns the client registration it used and the tokens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from mcp_oauth_auth.exceptions import AuthorizationError
from mcp_oauth_auth.flow.authorization import check_pkce_support, start_authorization, validate_callback
from mcp_oauth_auth.flow.client_auth import ClientAssertionSigner
from mcp_oauth_auth.flow.client_credentials import request_client_credentials
from mcp_oauth_auth.flow.config import MACHINE_GRANTS
from mcp_oauth_auth.flow.device import DEVICE_CODE_GRANT, poll_device_token, start_device_authorization
from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata
from mcp_oauth_auth.flow.effects import Effect, authorize, choose_redirect, show_device_code
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.jwt_bearer import JWT_BEARER, AssertionSource, request_jwt_bearer
from mcp_oauth_auth.flow.registration import (
    ClientSettings,
    choose_secret_auth_method,
    identify_client,
    private_key_jwt_method,
)
from mcp_oauth_auth.flow.tokens import exchange_code
from mcp_oauth_auth.flow.urls import check_redirect_uri
from mcp_oauth_auth.records import ClientRegistration, TokenSet

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.config import FlowConfig
    from mcp_oauth_auth.flow.dpop import DPoPState

__all__ = [
    "MACHINE_GRANTS",
    "choose_grant",
    "client_credentials_grant",
    "code_grant",
    "device_grant",
    "jwt_bearer_grant",
    "machine_client",
]

logger = logging.getLogger("mcp_oauth_auth")

Grant = Generator[Effect, Any, tuple[ClientRegistration, TokenSet]]


def choose_grant(config: FlowConfig, server: AuthorizationServerMetadata) -> str:
    """A machine grant (as configured), ``"device"`` or ``"code"``: configured, or chosen for this machine."""
    if config.grant_type in MACHINE_GRANTS:
        return config.grant_type
    if config.interaction != "auto":
        return "device" if config.interaction == "device" else "code"
    if config.headless_reason is None:
        return "code"
    if server.device_authorization_endpoint:
        logger.info(
            "no browser can be opened here (%s); %s offers the device flow, using it",
            config.headless_reason,
            server.issuer,
        )
        return "device"
    raise AuthorizationError(
        f"cannot ask for authorization: no browser can be opened here ({config.headless_reason}), and "
        f"{server.issuer} does not offer the device flow (RFC 8628). Options: authorize once where a browser "
        "can open, with the same credential store (this process then uses the stored credential); pass "
        "authorizer=PasteBackAuthorizer() to open the URL on another machine and paste the redirected URL back; "
        "or, for a machine identity, grant_type='client_credentials' with client_id= and client_secret=",
        url=server.issuer,
    )


def code_grant(
    server: AuthorizationServerMetadata,
    settings: ClientSettings,
    existing: ClientRegistration | None,
    fixed_redirect_uri: str | None,
    scopes: tuple[str, ...],
    resource: str | None,
    retry: RetryPolicy,
    *,
    trust_unadvertised_pkce: bool,
    private_key: ClientAssertionSigner | None = None,
    now: Callable[[], float] = time.time,
    dpop: DPoPState | None = None,
    login_hint: str | None = None,
    select_account: bool = False,
) -> Grant:
    check_pkce_support(server, trust_unadvertised=trust_unadvertised_pkce)
    redirect_uri = fixed_redirect_uri or (yield from choose_redirect(existing.redirect_uris if existing else ()))
    check_redirect_uri(redirect_uri)
    client = yield from identify_client(
        settings, server, existing, redirect_uri, scopes, retry, has_private_key=private_key is not None, now=now
    )
    pending = start_authorization(
        server, client, redirect_uri, scopes, resource, login_hint=login_hint, select_account=select_account
    )
    callback_url = yield from authorize(pending.url, redirect_uri)
    code = validate_callback(callback_url, pending, server)
    tokens = yield from exchange_code(
        server.token_endpoint,
        client,
        code,
        pending.code_verifier,
        redirect_uri,
        resource,
        retry,
        private_key=private_key,
        issuer=server.issuer,
        now=now,
        dpop=dpop,
    )
    return client, tokens


def device_grant(
    server: AuthorizationServerMetadata,
    settings: ClientSettings,
    existing: ClientRegistration | None,
    scopes: tuple[str, ...],
    resource: str | None,
    retry: RetryPolicy,
    *,
    allow_insecure_http: bool,
    private_key: ClientAssertionSigner | None = None,
    now: Callable[[], float] = time.time,
    dpop: DPoPState | None = None,
) -> Grant:
    client = yield from identify_client(
        settings,
        server,
        existing,
        None,
        scopes,
        retry,
        grant_types=(DEVICE_CODE_GRANT, "refresh_token"),
        has_private_key=private_key is not None,
        now=now,
    )
    device = yield from start_device_authorization(
        server,
        client,
        scopes,
        resource,
        retry,
        private_key=private_key,
        allow_insecure_http=allow_insecure_http,
        now=now,
    )
    yield from show_device_code(device)
    tokens = yield from poll_device_token(
        server.token_endpoint,
        client,
        device,
        resource,
        retry,
        now,
        private_key=private_key,
        issuer=server.issuer,
        dpop=dpop,
    )
    return client, tokens


def machine_client(
    server: AuthorizationServerMetadata,
    settings: ClientSettings,
    private_key: ClientAssertionSigner | None,
    grant_type: str = "client_credentials",
) -> ClientRegistration:
    """The pre-registered client of a machine grant, with an agreed authentication: ``private_key_jwt`` or a secret;
    for the jwt-bearer grant a client without either is public (``none``: its ``client_id`` in the form)."""
    assert settings.client_id is not None
    if private_key is not None:
        method = private_key_jwt_method(server)
    elif grant_type == JWT_BEARER and not settings.client_secret:
        method = "none"
    else:
        method = choose_secret_auth_method(server, settings.token_endpoint_auth_method)
    return ClientRegistration(
        client_id=settings.client_id,
        kind="pre-registered",
        token_endpoint_auth_method=method,
        client_secret=settings.client_secret,
        grant_types=(grant_type,),
    )


def client_credentials_grant(
    token_endpoint: str,
    issuer: str,
    client: ClientRegistration,
    private_key: ClientAssertionSigner | None,
    scopes: tuple[str, ...],
    resource: str | None,
    retry: RetryPolicy,
    now: Callable[[], float] = time.time,
    dpop: DPoPState | None = None,
) -> Grant:
    tokens = yield from request_client_credentials(
        token_endpoint, client, scopes, resource, retry, private_key=private_key, issuer=issuer, now=now, dpop=dpop
    )
    return client, tokens


def jwt_bearer_grant(
    token_endpoint: str,
    issuer: str,
    client: ClientRegistration,
    private_key: ClientAssertionSigner | None,
    assertion: AssertionSource,
    scopes: tuple[str, ...],
    resource: str | None,
    retry: RetryPolicy,
    now: Callable[[], float] = time.time,
    dpop: DPoPState | None = None,
) -> Grant:
    tokens = yield from request_jwt_bearer(
        token_endpoint,
        client,
        assertion,
        scopes,
        resource,
        retry,
        private_key=private_key,
        issuer=issuer,
        now=now,
        dpop=dpop,
    )
    return client, tokens
