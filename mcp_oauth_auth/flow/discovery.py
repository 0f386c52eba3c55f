"""Discovery: protected resource metadata (RFC 9728) and authorization server metadata (RFC 8414, OpenID).

The order of URLs follows the MCP specification; every refusal names the rule it enforces. A server of the
2025-03-26 revision publishes no protected resource metadata: then its origin is the authorization server, with
the default endpoints as the last resort.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mcp_oauth_auth.exceptions import DiscoveryError, IssuerMismatchError, ResourceMismatchError
from mcp_oauth_auth.flow.addresses import MAX_AUTHORIZATION_SERVERS
from mcp_oauth_auth.flow.effects import Effect, HttpRequest
from mcp_oauth_auth.flow.fetch import RetryPolicy, fetch
from mcp_oauth_auth.flow.printable import has_controls
from mcp_oauth_auth.flow.urls import (
    authorization_server_metadata_urls,
    origin_of,
    protected_resource_metadata_urls,
    require_secure_url,
    resource_identifies_server,
    safe_url,
    same_issuer,
    same_resource,
)

__all__ = [
    "AuthorizationServerMetadata",
    "ProtectedResourceMetadata",
    "discover_authorization_server",
    "discover_protected_resource",
    "find_authorization_server",
    "legacy_authorization_server",
]

logger = logging.getLogger("mcp_oauth_auth")


@dataclass(frozen=True)
class ProtectedResourceMetadata:
    """RFC 9728 metadata of the MCP server."""

    resource: str
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...] = ()
    url: str = ""
    #: RFC 9449 §5.2: the resource accepts DPoP-bound access tokens only.
    dpop_bound_access_tokens_required: bool = False


@dataclass(frozen=True)
class AuthorizationServerMetadata:
    """The parts of RFC 8414 / OpenID Provider metadata this client uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None = None
    revocation_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    scopes_supported: tuple[str, ...] = ()
    code_challenge_methods_supported: tuple[str, ...] | None = None
    token_endpoint_auth_methods_supported: tuple[str, ...] | None = None
    grant_types_supported: tuple[str, ...] | None = None
    authorization_response_iss_parameter_supported: bool = False
    client_id_metadata_document_supported: bool = False
    is_openid_provider: bool = False
    #: True when no metadata was published and the 2025-03-26 default endpoints are assumed.
    assumed_defaults: bool = False
    url: str = ""
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _string_tuple(document: dict[str, Any], name: str) -> tuple[str, ...] | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DiscoveryError(f"metadata field {name!r} must be a list of strings")
    return tuple(value)


def discover_protected_resource(
    server_url: str,
    from_challenge: str | None,
    retry: RetryPolicy,
    *,
    allow_insecure_http: bool = False,
    allow_parent_resource: bool = False,
) -> Generator[Effect, Any, ProtectedResourceMetadata | None]:
    """Fetch and validate the server's protected resource metadata; None when it publishes none.

    Its ``resource`` must be the server's URL (RFC 9728 §3.3); with ``allow_parent_resource``, a parent of it on the
    same origin is accepted too (a gateway naming one resource for several servers: the token then covers them
    all)."""
    for url in protected_resource_metadata_urls(server_url, from_challenge):
        require_secure_url(url, "protected resource metadata URL", allow_insecure_http=allow_insecure_http)
        response = yield from fetch(HttpRequest.get(url), retry, "protected resource metadata")
        document = response.json_object() if response.status == 200 else None
        if document is None:
            logger.debug("protected resource metadata: %s answered %s, trying next", url, response.status)
            continue
        metadata = _parse_protected_resource(document, url)
        if not same_resource(metadata.resource, server_url):
            if not resource_identifies_server(metadata.resource, server_url):
                raise ResourceMismatchError(
                    f"protected resource metadata names resource {metadata.resource!r}, which does not identify "
                    f"the MCP server {server_url!r} (RFC 9728 §3.3); refusing to authorize",
                    url=url,
                )
            if not allow_parent_resource:
                raise ResourceMismatchError(
                    f"protected resource metadata names resource {metadata.resource!r}, a parent of the MCP server "
                    f"{server_url!r}, not the server itself (RFC 9728 §3.3: identical); a token for it would be "
                    "valid for every server below it. Pass allow_parent_resource=True (CLI --allow-parent-resource) "
                    "if this server is a gateway that really names one resource for several endpoints",
                    url=url,
                )
        logger.debug(
            "protected resource metadata from %s: authorization servers %s", url, list(metadata.authorization_servers)
        )
        return metadata
    logger.debug("no protected resource metadata for %s: assuming a 2025-03-26 server", server_url)
    return None


def _parse_protected_resource(document: dict[str, Any], url: str) -> ProtectedResourceMetadata:
    resource = document.get("resource")
    if not isinstance(resource, str) or not resource:
        raise DiscoveryError("protected resource metadata has no 'resource' (RFC 9728 §2)", url=url)
    servers = _string_tuple(document, "authorization_servers") or ()
    if any(has_controls(server) for server in (resource, *servers)):
        raise DiscoveryError("protected resource metadata names URLs with control characters", url=url)
    if not servers:
        raise DiscoveryError("protected resource metadata lists no authorization_servers", url=url)
    scopes = _string_tuple(document, "scopes_supported") or ()
    return ProtectedResourceMetadata(
        resource=resource,
        authorization_servers=servers,
        scopes_supported=scopes,
        url=url,
        dpop_bound_access_tokens_required=document.get("dpop_bound_access_tokens_required") is True,
    )


def discover_authorization_server(
    issuer: str, retry: RetryPolicy, *, allow_insecure_http: bool = False
) -> Generator[Effect, Any, AuthorizationServerMetadata | None]:
    """Fetch metadata for ``issuer`` in the spec's order; refuse a document whose ``issuer`` differs."""
    for url, is_openid in authorization_server_metadata_urls(issuer):
        require_secure_url(url, "authorization server metadata URL", allow_insecure_http=allow_insecure_http)
        response = yield from fetch(HttpRequest.get(url), retry, "authorization server metadata")
        document = response.json_object() if response.status == 200 else None
        if document is None:
            logger.debug("authorization server metadata: %s answered %s, trying next", url, response.status)
            continue
        if not same_issuer(document.get("issuer"), issuer):
            raise IssuerMismatchError(
                f"authorization server metadata at {url} names issuer {document.get('issuer')!r}, expected "
                f"exactly {issuer!r} (RFC 8414 §3.3)",
                url=url,
            )
        metadata = _parse_authorization_server(document, url, is_openid, allow_insecure_http=allow_insecure_http)
        logger.debug("authorization server metadata for %s from %s", issuer, url)
        return metadata
    return None


def _parse_authorization_server(
    document: dict[str, Any], url: str, from_openid_url: bool, *, allow_insecure_http: bool
) -> AuthorizationServerMetadata:
    def endpoint(name: str, required: bool = False) -> str | None:
        value = document.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise DiscoveryError(f"authorization server metadata lacks a valid {name!r}", url=url)
        if has_controls(value):
            # Shown to people (the authorization URL is printed): a terminal would act on them.
            raise DiscoveryError(f"authorization server metadata's {name!r} has control characters", url=url)
        require_secure_url(value, name, allow_insecure_http=allow_insecure_http)
        return value

    authorization_endpoint = endpoint("authorization_endpoint", required=True)
    token_endpoint = endpoint("token_endpoint", required=True)
    assert authorization_endpoint is not None
    assert token_endpoint is not None
    return AuthorizationServerMetadata(
        issuer=document["issuer"],
        authorization_endpoint=authorization_endpoint,
        token_endpoint=token_endpoint,
        registration_endpoint=endpoint("registration_endpoint"),
        revocation_endpoint=endpoint("revocation_endpoint"),
        device_authorization_endpoint=endpoint("device_authorization_endpoint"),
        scopes_supported=_string_tuple(document, "scopes_supported") or (),
        code_challenge_methods_supported=_string_tuple(document, "code_challenge_methods_supported"),
        token_endpoint_auth_methods_supported=_string_tuple(document, "token_endpoint_auth_methods_supported"),
        grant_types_supported=_string_tuple(document, "grant_types_supported"),
        authorization_response_iss_parameter_supported=document.get("authorization_response_iss_parameter_supported")
        is True,
        client_id_metadata_document_supported=document.get("client_id_metadata_document_supported") is True,
        is_openid_provider=from_openid_url or "id_token_signing_alg_values_supported" in document,
        url=url,
        extra=dict(document),
    )


def legacy_authorization_server(
    server_url: str, retry: RetryPolicy, *, allow_insecure_http: bool = False
) -> Generator[Effect, Any, AuthorizationServerMetadata]:
    """The authorization server of a server without protected resource metadata (MCP 2025-03-26): metadata at the
    server's origin, else the default ``/authorize``, ``/token`` and ``/register`` endpoints there."""
    origin = origin_of(server_url)
    metadata = yield from discover_authorization_server(origin, retry, allow_insecure_http=allow_insecure_http)
    if metadata is not None:
        return metadata
    logger.info(
        "no protected resource metadata and no authorization server metadata at %s: using the MCP 2025-03-26 "
        "default endpoints %s/authorize, /token and /register, with PKCE S256",
        origin,
        origin,
    )
    return AuthorizationServerMetadata(
        issuer=origin,
        authorization_endpoint=f"{origin}/authorize",
        token_endpoint=f"{origin}/token",
        registration_endpoint=f"{origin}/register",
        assumed_defaults=True,
    )


def find_authorization_server(
    server_url: str,
    prm: ProtectedResourceMetadata | None,
    retry: RetryPolicy,
    *,
    allow_insecure_http: bool = False,
    issuer: str | None = None,
) -> Generator[Effect, Any, AuthorizationServerMetadata]:
    """The metadata of the first authorization server ``prm`` lists that publishes it; without ``prm``, the
    2025-03-26 fallback (the MCP server's origin). ``issuer`` pins the choice to that authorization server: one
    the server does not name is refused (:class:`IssuerMismatchError`)."""
    if prm is None:
        server = yield from legacy_authorization_server(server_url, retry, allow_insecure_http=allow_insecure_http)
        if issuer is not None and not same_issuer(server.issuer, issuer):
            raise _not_pinned(server_url, [server.issuer], issuer, server_url)
        return server
    issuers = prm.authorization_servers
    if issuer is not None:
        issuers = tuple(candidate for candidate in issuers if same_issuer(candidate, issuer))
        if not issuers:
            raise _not_pinned(server_url, prm.authorization_servers, issuer, prm.url)
    if len(issuers) > MAX_AUTHORIZATION_SERVERS:
        logger.warning(
            "%s lists %d authorization servers; trying the first %d", prm.url, len(issuers), MAX_AUTHORIZATION_SERVERS
        )
        issuers = issuers[:MAX_AUTHORIZATION_SERVERS]
    for candidate in issuers:
        metadata = yield from discover_authorization_server(candidate, retry, allow_insecure_http=allow_insecure_http)
        if metadata is not None:
            return metadata
        logger.debug("no metadata for authorization server %s", candidate)
    raise DiscoveryError(
        f"none of the authorization servers {list(prm.authorization_servers)} publishes metadata",
        url=prm.url,
    )


def _not_pinned(server_url: str, offered: Sequence[str], pinned: str, url: str) -> IssuerMismatchError:
    return IssuerMismatchError(
        f"{server_url} names the authorization server(s) {list(offered)}, but the client is pinned to "
        f"{pinned} (the issuer option); its credentials are never used with another "
        "authorization server. If the server has really moved, use a client registered at the new one, with "
        "that server's issuer",
        url=url,
    )


def confirm_protected_endpoint(server_url: str, retry: RetryPolicy) -> Generator[Effect, Any, None]:
    """Before the 2025-03-26 default endpoints are used without any 401 seen (``authenticate()`` sends nothing to
    the endpoint itself): one unauthenticated request must be answered 401, or the URL is not an OAuth-protected
    MCP endpoint and nothing is registered at its origin (a website's ``/register`` is not an authorization server).
    """
    response = yield from fetch(
        HttpRequest("GET", server_url, (("Accept", "application/json, text/event-stream"),)), retry, "endpoint check"
    )
    if response.status != 401:
        raise DiscoveryError(
            f"{safe_url(server_url)} publishes no authorization metadata and answered {response.status} without a "
            "401 challenge: it is not an OAuth-protected MCP endpoint (check the URL); nothing was registered",
            url=server_url,
            status_code=response.status,
        )
