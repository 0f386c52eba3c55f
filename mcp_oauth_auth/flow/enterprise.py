"""Enterprise-managed authorization: the Identity Assertion JWT Authorization Grant ("ID-JAG"; the MCP
``enterprise-managed-authorization`` extension, SEP-990).

An enterprise's identity provider (IdP), which its people already sign in to, decides which MCP servers they may
use. The client obtains a token for an MCP server in two legs, with no consent screen at the MCP side:

1. RFC 8693 token exchange at the IdP's token endpoint: the person's ID token (or SAML 2 assertion) is traded for
   an ID-JAG, a short-lived JWT signed by the IdP naming the MCP authorization server (``audience``, its issuer as
   discovered), the MCP server (``resource``, RFC 8707) and the ``scope``; the client authenticates with its
   credentials at the IdP.
2. The jwt-bearer grant (RFC 7523 §2.1) at the MCP authorization server with the ID-JAG as ``assertion``, the client
   authenticated with its credentials there (a secret or ``private_key_jwt``).

No refresh token is assumed: when the access token expires, a new ID-JAG is minted from the ID token (and the ID
token itself renewed with the IdP session's refresh token, :mod:`mcp_oauth_auth.flow.sso`), without asking the
person while the IdP session lasts. A refusal at either leg raises a typed error and is not retried.
The ID token, the SAML assertion, the ID-JAG and the secrets are never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from mcp_oauth_auth.exceptions import IdentityAssertionError
from mcp_oauth_auth.flow.client_auth import ClientAssertionSigner, authenticated_fetch
from mcp_oauth_auth.flow.effects import Effect, obtain_assertion
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.idp import (
    ID_JAG_PROFILE,
    ID_JAG_TOKEN_TYPE,
    ID_TOKEN_TYPE,
    SAML2_TOKEN_TYPE,
    TOKEN_EXCHANGE,
    EnterpriseIdP,
)
from mcp_oauth_auth.flow.jwt_bearer import JWT_BEARER, present_assertion
from mcp_oauth_auth.flow.sso import DEFAULT_SIGN_IN, IdentityProvider, SignInOptions
from mcp_oauth_auth.flow.tokens import token_error, with_scope_and_resource
from mcp_oauth_auth.flow.urls import safe_url
from mcp_oauth_auth.records import ClientRegistration, TokenSet

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata
    from mcp_oauth_auth.flow.dpop import DPoPState

__all__ = [
    "ID_JAG_PROFILE",
    "ID_JAG_TOKEN_TYPE",
    "ID_TOKEN_TYPE",
    "SAML2_TOKEN_TYPE",
    "TOKEN_EXCHANGE",
    "EnterpriseIdP",
    "check_id_jag_support",
    "enterprise_grant",
    "request_id_jag",
]

logger = logging.getLogger("mcp_oauth_auth")


def check_id_jag_support(server: AuthorizationServerMetadata) -> None:
    """Refuse an MCP authorization server whose metadata says it takes no ID-JAG: ``grant_types_supported``
    without the jwt-bearer grant, or ``authorization_grant_profiles_supported`` without the ID-JAG profile. Metadata
    silent on either is tried (logged): many servers list neither."""
    grants = server.grant_types_supported
    if grants is not None and JWT_BEARER not in grants:
        raise IdentityAssertionError(
            f"the MCP authorization server {server.issuer} does not offer the jwt-bearer grant (its "
            f"grant_types_supported lists {list(grants)[:10]}): it cannot accept an ID-JAG from the identity provider",
            url=server.url or server.issuer,
        )
    profiles = server.extra.get("authorization_grant_profiles_supported")
    if profiles is None:
        logger.info(
            "%s does not list authorization_grant_profiles_supported; trying the ID-JAG grant anyway", server.issuer
        )
        return
    if not isinstance(profiles, list) or ID_JAG_PROFILE not in profiles:
        shown = [str(profile)[:80] for profile in profiles][:10] if isinstance(profiles, list) else "no list"
        raise IdentityAssertionError(
            f"the MCP authorization server {server.issuer} does not support ID-JAGs: its "
            f"authorization_grant_profiles_supported ({shown}) lacks {ID_JAG_PROFILE}",
            url=server.url or server.issuer,
        )


def request_id_jag(
    idp_token_endpoint: str,
    idp_client: ClientRegistration,
    subject_token: str,
    subject_token_type: str,
    audience: str,
    resource: str | None,
    scopes: tuple[str, ...],
    retry: RetryPolicy,
    *,
    private_key: ClientAssertionSigner | None = None,
    idp_issuer: str | None = None,
    now: Callable[[], float] = time.time,
) -> Generator[Effect, Any, str]:
    """Leg 1: the RFC 8693 token exchange at the IdP; returns the ID-JAG. ``audience`` is the MCP authorization
    server's issuer, ``resource`` the MCP server. The answer must say ``issued_token_type`` id-jag and
    ``token_type`` ``N_A`` (RFC 8693 §2.2.1: not an access token), with the ID-JAG as ``access_token``."""
    fields = {
        "grant_type": TOKEN_EXCHANGE,
        "requested_token_type": ID_JAG_TOKEN_TYPE,
        "audience": audience,
        "subject_token": subject_token,
        "subject_token_type": subject_token_type,
    }
    logger.debug("requesting an ID-JAG for %s from the identity provider at %s", audience, safe_url(idp_token_endpoint))
    response = yield from authenticated_fetch(
        idp_token_endpoint,
        idp_client,
        with_scope_and_resource(fields, scopes, resource),
        retry,
        "token exchange (ID-JAG)",
        private_key=private_key,
        issuer=idp_issuer or idp_token_endpoint,
        now=now,
    )
    if response.status != 200:
        raise token_error(
            IdentityAssertionError,
            "the identity provider refused the token exchange for an ID-JAG; not retried",
            response,
            idp_token_endpoint,
        )
    document = response.json_object() or {}
    issued = document.get("issued_token_type")
    if issued != ID_JAG_TOKEN_TYPE:
        raise IdentityAssertionError(
            f"the identity provider's token exchange answer has issued_token_type {str(issued)[:80]!r}, not "
            f"{ID_JAG_TOKEN_TYPE!r}",
            url=idp_token_endpoint,
        )
    token_type = document.get("token_type")
    if not isinstance(token_type, str) or token_type.upper() != "N_A":
        raise IdentityAssertionError(
            f"the identity provider's token exchange answer has token_type {str(token_type)[:40]!r}, not 'N_A' "
            "(an ID-JAG is a grant, not an access token)",
            url=idp_token_endpoint,
        )
    id_jag = document.get("access_token")
    if not isinstance(id_jag, str) or id_jag.count(".") != 2:
        raise IdentityAssertionError(
            "the identity provider's token exchange answer carries no ID-JAG (access_token is missing or not a JWT)",
            url=idp_token_endpoint,
        )
    return id_jag


def enterprise_grant(
    idp: EnterpriseIdP,
    token_endpoint: str,
    issuer: str,
    client: ClientRegistration,
    private_key: ClientAssertionSigner | None,
    scopes: tuple[str, ...],
    resource: str | None,
    retry: RetryPolicy,
    now: Callable[[], float] = time.time,
    dpop: DPoPState | None = None,
    *,
    sign_in: SignInOptions = DEFAULT_SIGN_IN,
) -> Generator[Effect, Any, tuple[ClientRegistration, TokenSet]]:
    """Both legs: the subject token (given, or the IdP session's ID token), the ID-JAG for the MCP authorization
    server ``issuer`` and ``resource``, then the jwt-bearer grant at ``token_endpoint`` with ``client``'s
    credentials (and a DPoP proof with ``dpop``). ``sign_in`` says how the person signs in to the IdP when needed."""
    provider = yield from IdentityProvider.find(idp, retry, sign_in)
    if idp.subject_source is not None:
        subject_token = yield from obtain_assertion(idp.subject_source)
    else:
        subject_token = yield from provider.id_token(now)
    id_jag = yield from request_id_jag(
        provider.token_endpoint,
        provider.client,
        subject_token,
        idp.subject_token_type,
        issuer,
        resource,
        scopes,
        retry,
        private_key=idp.private_key,
        idp_issuer=provider.issuer,
        now=now,
    )
    logger.debug("presenting the ID-JAG to %s (jwt-bearer grant)", safe_url(token_endpoint))
    tokens = yield from present_assertion(
        token_endpoint,
        client,
        id_jag,
        scopes,
        resource,
        retry,
        "the MCP authorization server refused the ID-JAG (jwt-bearer grant); not retried",
        private_key=private_key,
        issuer=issuer,
        now=now,
        dpop=dpop,
    )
    return client, tokens
