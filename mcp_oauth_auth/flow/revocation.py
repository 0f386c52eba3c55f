"""Token revocation (RFC 7009): telling the authorization server that a token will not be used again.

Logging out revokes the refresh token first — most servers then revoke the access tokens of the same grant as
well (RFC 7009 §2.1) — and then the access token, so that a server that does not cascade still ends both.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from mcp_oauth_auth.exceptions import OAuthError, TemporaryOAuthError, TokenRevocationError
from mcp_oauth_auth.flow.client_auth import ClientAssertionSigner, authenticated_fetch
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.tokens import token_error
from mcp_oauth_auth.flow.urls import safe_url
from mcp_oauth_auth.records import ClientRegistration, TokenSet

__all__ = ["RevocationOutcome", "revoke_token", "revoke_tokens"]

logger = logging.getLogger("mcp_oauth_auth")


@dataclass(frozen=True)
class RevocationOutcome:
    """What happened to one token: ``revoked``, or the error that prevented it (never the token itself)."""

    token_type_hint: str
    revoked: bool
    error: OAuthError | None = None


def revoke_token(
    endpoint: str,
    client: ClientRegistration,
    token: str,
    token_type_hint: str | None,
    retry: RetryPolicy,
    *,
    assertion_signer: ClientAssertionSigner | None = None,
    issuer: str | None = None,
) -> Generator[Any, Any, None]:
    """Revoke ``token`` at ``endpoint`` (RFC 7009 §2.1), authenticated as the client is registered.

    A 200 means revoked — also for a token the server did not know (RFC 7009 §2.2). Anything else raises
    :class:`TokenRevocationError` (or :class:`TemporaryOAuthError` after retries for 5xx and 429).
    """
    fields = {"token": token}
    if token_type_hint:
        fields["token_type_hint"] = token_type_hint
    response = yield from authenticated_fetch(
        endpoint, client, fields, retry, "token revocation", assertion_signer=assertion_signer, issuer=issuer
    )
    if response.status != 200:
        raise token_error(
            TokenRevocationError, "the authorization server refused to revoke a token", response, endpoint
        )


def revoke_tokens(
    endpoint: str | None,
    client: ClientRegistration,
    tokens: TokenSet,
    retry: RetryPolicy,
    *,
    assertion_signer: ClientAssertionSigner | None = None,
    issuer: str | None = None,
) -> Generator[Any, Any, list[RevocationOutcome]]:
    """Revoke the refresh token, then the access token; report each outcome instead of raising."""
    candidates = [("refresh_token", tokens.refresh_token), ("access_token", tokens.access_token)]
    outcomes: list[RevocationOutcome] = []
    for hint, token in candidates:
        if token is None:
            continue
        if endpoint is None:
            error = TokenRevocationError("the authorization server publishes no revocation_endpoint (RFC 7009)")
            outcomes.append(RevocationOutcome(hint, False, error))
            continue
        try:
            yield from revoke_token(
                endpoint, client, token, hint, retry, assertion_signer=assertion_signer, issuer=issuer
            )
        except (TokenRevocationError, TemporaryOAuthError) as exc:
            logger.warning("could not revoke the %s at %s: %s", hint, safe_url(endpoint), exc)
            outcomes.append(RevocationOutcome(hint, False, exc))
        else:
            logger.debug("revoked the %s at %s", hint, safe_url(endpoint))
            outcomes.append(RevocationOutcome(hint, True))
    return outcomes
