"""Token revocation (RFC 7009): telling the authorization server that a token will not be used again.

Logging out revokes the refresh token first — most servers then revoke the access tokens of the same grant as
well (RFC 7009 §2.1) — and then the access token, so that a server that does not cascade still ends both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from mcp_oauth_auth.exceptions import OAuthError, TemporaryOAuthError, TokenRevocationError, UnsafeURLError
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
    private_key: ClientAssertionSigner | None = None,
    issuer: str | None = None,
    now: Callable[[], float] = time.time,
) -> Generator[Any, Any, None]:
    """Revoke ``token`` at ``endpoint`` (RFC 7009 §2.1), authenticated as the client is registered.

    A 200 means revoked — also for a token the server did not know (RFC 7009 §2.2). Anything else raises
    :class:`TokenRevocationError` (or :class:`TemporaryOAuthError` after retries for 5xx and 429).
    """
    fields = {"token": token}
    if token_type_hint:
        fields["token_type_hint"] = token_type_hint
    response = yield from authenticated_fetch(
        endpoint,
        client,
        fields,
        retry,
        "token revocation",
        private_key=private_key,
        issuer=issuer,
        now=now,
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
    private_key: ClientAssertionSigner | None = None,
    issuer: str | None = None,
    now: Callable[[], float] = time.time,
) -> Generator[Any, Any, list[RevocationOutcome]]:
    """Revoke the refresh token, then the access token; report each outcome instead of raising.

    This is logging out, which removes the credential whatever the outcomes: a temporary failure (after the retries)
    is reported as a :class:`TemporaryOAuthError` saying that the token stays valid at the server, not as the
    fetch's "credentials were kept, try again later".
    """
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
                endpoint, client, token, hint, retry, private_key=private_key, issuer=issuer, now=now
            )
        except (TokenRevocationError, TemporaryOAuthError, UnsafeURLError) as exc:
            failure = _not_revoked(exc, retry) if isinstance(exc, TemporaryOAuthError) else exc
            logger.warning("could not revoke the %s at %s: %s", hint, safe_url(endpoint), failure)
            outcomes.append(RevocationOutcome(hint, False, failure))
        else:
            logger.debug("revoked the %s at %s", hint, safe_url(endpoint))
            outcomes.append(RevocationOutcome(hint, True))
    return outcomes


def _not_revoked(exc: TemporaryOAuthError, retry: RetryPolicy) -> TemporaryOAuthError:
    """A temporary failure of a revocation, told as what it means for the token.

    The fetch's own message ("credentials were kept, try again later") holds for a refresh, not here: logging out
    removes the credential anyway, so the token stays valid at the server and cannot be revoked later from here.
    """
    if exc.status_code is None:  # unreachable: the message says where and how
        reason = f"{exc.message}, so the token was not revoked"
    else:
        reason = f"the authorization server failed temporarily ({retry.attempts} attempts) and did not revoke the token"
    error = TemporaryOAuthError(
        f"{reason}: it stays valid at the server until it expires",
        url=exc.url,
        error=exc.error,
        error_description=exc.error_description,
        status_code=exc.status_code,
    )
    error.__cause__ = exc
    return error
