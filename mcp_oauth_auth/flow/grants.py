"""The ways this client obtains a first token from an authorization server, once discovery is done.

* :func:`code_grant` — authorization code + PKCE (OAuth 2.1 §4.1): the person approves in a browser and the
  authorization server redirects back with a code.
* :func:`device_grant` — the device authorization grant (RFC 8628): the person approves on any device, typing a
  short code, while this client polls. For machines without a usable browser.
* :func:`client_credentials_grant` — machine to machine (RFC 6749 §4.4, the MCP client credentials extension):
  no person at all; the client authenticates with a secret or a signed assertion (RFC 7523).
* :func:`jwt_bearer_grant` — workload identity (RFC 7523 §2.1, SEP-1933): the workload's platform-issued JWT is
  traded for a token; no person, no registration. The same grant carries an ID-JAG from the enterprise's identity
  provider (enterprise-managed authorization, :mod:`mcp_oauth_auth.flow.enterprise`).

The last two are *machine grants* (:data:`MACHINE_GRANTS`, run by :func:`machine_grant`): no refresh token is
assumed, and a new grant replaces an expiring token. :func:`first_grant` runs the one :func:`choose_grant` picked.

A pre-registered client given a signing key authenticates with ``private_key_jwt`` (RFC 7523) in all of them.

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
    "first_grant",
    "jwt_bearer_grant",
    "machine_client",
    "machine_grant",
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


def machine_grant(
    config: FlowConfig,
    clock: Callable[[], float],
    private_key_for: Callable[[ClientRegistration], ClientAssertionSigner | None],
    token_endpoint: str,
    issuer: str,
    client: ClientRegistration,
    scopes: tuple[str, ...],
    resource: str | None,
    dpop: DPoPState | None,
) -> Generator[Effect, Any, tuple[ClientRegistration, TokenSet]]:
    """The machine grant ``config`` names (:data:`MACHINE_GRANTS`): client credentials, the jwt-bearer grant with
    the workload's assertion, or with an ID-JAG from the enterprise IdP (``identity_assertion``); with a DPoP proof
    when ``dpop``. ``private_key_for``: the signing key of ``client``'s requests, if it uses private_key_jwt."""
    private_key = private_key_for(client)
    if config.identity_assertion is not None:
        from mcp_oauth_auth.flow.enterprise import enterprise_grant
        from mcp_oauth_auth.flow.sso import SignInOptions

        sign_in = SignInOptions(
            config.interaction,
            config.headless_reason is not None,
            config.trust_unadvertised_pkce,
            config.allow_insecure_http,
            config.account,
        )
        return (
            yield from enterprise_grant(
                config.identity_assertion,
                token_endpoint,
                issuer,
                client,
                private_key,
                scopes,
                resource,
                config.retry,
                clock,
                dpop,
                sign_in=sign_in,
            )
        )
    if config.assertion is not None:
        return (
            yield from jwt_bearer_grant(
                token_endpoint,
                issuer,
                client,
                private_key,
                config.assertion,
                scopes,
                resource,
                config.retry,
                clock,
                dpop=dpop,
            )
        )
    return (
        yield from client_credentials_grant(
            token_endpoint, issuer, client, private_key, scopes, resource, config.retry, clock, dpop=dpop
        )
    )


def first_grant(
    config: FlowConfig,
    clock: Callable[[], float],
    private_key_for: Callable[[ClientRegistration], ClientAssertionSigner | None],
    server: AuthorizationServerMetadata,
    grant: str,
    existing: ClientRegistration | None,
    scopes: tuple[str, ...],
    resource: str | None,
    dpop: DPoPState | None,
) -> Generator[Effect, Any, tuple[ClientRegistration, TokenSet, tuple[str, ...]]]:
    """A first token from ``server`` by ``grant`` (:func:`choose_grant`): a machine grant, the device flow or the
    authorization code; the client it used, the tokens and the scopes asked for (``offline_access`` added where a
    person's grant can have it). ``existing``: this client's registration there, if any."""
    if grant in MACHINE_GRANTS:
        if config.identity_assertion is not None:
            from mcp_oauth_auth.flow.enterprise import check_id_jag_support

            check_id_jag_support(server)
        machine = machine_client(server, config.client, config.private_key, grant)
        client, tokens = yield from machine_grant(
            config,
            clock,
            private_key_for,
            server.token_endpoint,
            server.issuer,
            machine,
            scopes,
            resource,
            dpop,
        )
    else:
        if "offline_access" in server.scopes_supported and "offline_access" not in scopes:
            scopes = (*scopes, "offline_access")
        scopes = config.request_rules.scopes(scopes)
        if grant == "device":
            client, tokens = yield from device_grant(
                server,
                config.client,
                existing,
                scopes,
                resource,
                config.retry,
                allow_insecure_http=config.allow_insecure_http,
                private_key=config.private_key,
                now=clock,
                dpop=dpop,
            )
        else:
            client, tokens = yield from code_grant(
                server,
                config.client,
                existing,
                config.redirect_uri,
                scopes,
                resource,
                config.retry,
                trust_unadvertised_pkce=config.trust_unadvertised_pkce,
                private_key=config.private_key,
                now=clock,
                dpop=dpop,
                login_hint=config.login_hint,
                select_account=config.account is not None,
            )
    return client, tokens, scopes
