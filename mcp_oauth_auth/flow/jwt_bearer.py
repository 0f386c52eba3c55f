"""Workload identity federation: the JWT bearer grant (RFC 7523 §2.1; MCP SEP-1933).

A workload (a Kubernetes pod, a CI job, a cloud function) proves who it is with a JWT its platform issues (a
projected service-account token, a GitHub Actions or cloud-metadata OIDC token) and trades it for an access token:
no person, no registration, no refresh token. When the access token expires, a new grant with a fresh assertion
replaces it. The assertion is never logged or stored; it is obtained again for every token request (effect
:class:`~mcp_oauth_auth.flow.effects.ObtainAssertion`), so rotated platform tokens are picked up.

A refusal (``invalid_grant``, ``invalid_scope``, ``unauthorized_client``, ...) is final for this assertion: it is
raised as :class:`~mcp_oauth_auth.exceptions.TokenExchangeError` with the server's description, without a retry
and without falling back to another grant.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, TypeAlias

from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.client_auth import ClientAssertionSigner
from mcp_oauth_auth.flow.effects import Effect, obtain_assertion
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.tokens import grant_request
from mcp_oauth_auth.flow.urls import safe_url
from mcp_oauth_auth.records import ClientRegistration, TokenSet

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.dpop import DPoPState

__all__ = ["JWT_BEARER", "AssertionSource", "check_assertion_source", "present_assertion", "request_jwt_bearer"]

logger = logging.getLogger("mcp_oauth_auth")

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

#: Where the workload's JWT comes from: the JWT itself (``str``), a file re-read for every token request
#: (``os.PathLike``, e.g. ``Path("/var/run/secrets/tokens/mcp")``), or a function returning it, sync or async.
AssertionSource: TypeAlias = "str | os.PathLike[str] | Callable[[], str | Awaitable[str]]"


def check_assertion_source(source: object) -> None:
    """ConfigurationError unless ``source`` is a non-empty string, a path or a callable (never showing the value)."""
    if isinstance(source, str):
        if not source.strip():
            raise ConfigurationError("assertion must not be empty")
        return
    if isinstance(source, os.PathLike) or callable(source):
        return
    raise ConfigurationError(
        f"assertion must be the workload's JWT (str), a path to a file holding it (pathlib.Path) or a function "
        f"returning it, not {type(source).__name__}"
    )


def request_jwt_bearer(
    token_endpoint: str,
    client: ClientRegistration,
    source: AssertionSource,
    scopes: tuple[str, ...],
    resource: str | None,
    retry: RetryPolicy,
    *,
    private_key: ClientAssertionSigner | None = None,
    issuer: str | None = None,
    now: Callable[[], float] = time.time,
    dpop: DPoPState | None = None,
) -> Generator[Effect, Any, TokenSet]:
    """Trade the workload's JWT for tokens at ``token_endpoint`` (``grant_type`` jwt-bearer, ``assertion``, and
    ``scope`` and ``resource`` when given). The client authenticates as registered: ``none`` (its ``client_id`` in
    the form), a secret, or ``private_key_jwt``."""
    assertion = yield from obtain_assertion(source)
    logger.debug("requesting a token with the workload's assertion (jwt-bearer) at %s", safe_url(token_endpoint))
    return (
        yield from present_assertion(
            token_endpoint,
            client,
            assertion,
            scopes,
            resource,
            retry,
            "the token endpoint refused the workload's assertion (jwt-bearer grant); not retried",
            private_key=private_key,
            issuer=issuer,
            now=now,
            dpop=dpop,
        )
    )


def present_assertion(
    token_endpoint: str,
    client: ClientRegistration,
    assertion: str,
    scopes: tuple[str, ...],
    resource: str | None,
    retry: RetryPolicy,
    refusal: str,
    *,
    private_key: ClientAssertionSigner | None = None,
    issuer: str | None = None,
    now: Callable[[], float] = time.time,
    dpop: DPoPState | None = None,
) -> Generator[Effect, Any, TokenSet]:
    """The jwt-bearer grant's token request with ``assertion`` (a workload's JWT, or an ID-JAG): a refusal raises
    :class:`~mcp_oauth_auth.exceptions.TokenExchangeError` with ``refusal`` and the server's error, not retried."""
    return (
        yield from grant_request(
            token_endpoint,
            client,
            {"grant_type": JWT_BEARER, "assertion": assertion},
            scopes,
            resource,
            retry,
            "jwt-bearer grant",
            refusal,
            private_key=private_key,
            issuer=issuer,
            now=now,
            dpop=dpop,
        )
    )
