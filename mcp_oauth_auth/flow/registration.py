"""Client identity, in the MCP specification's priority order.

1. Pre-registered credentials given by the user.
2. A Client ID Metadata Document URL, when the server says it supports them.
3. Dynamic client registration (RFC 7591), reusing a previous registration with this issuer when it still fits.
4. Otherwise a :class:`~mcp_oauth_auth.exceptions.ClientRegistrationRequiredError` saying what to supply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from mcp_oauth_auth.exceptions import (
    ClientRegistrationRequiredError,
    ConfigurationError,
    RegistrationError,
    RegistrationPolicyError,
)
from mcp_oauth_auth.flow.client_auth import PRIVATE_KEY_JWT
from mcp_oauth_auth.flow.effects import Effect, HttpRequest
from mcp_oauth_auth.flow.fetch import RetryPolicy, fetch
from mcp_oauth_auth.flow.urls import is_loopback_host, shown_url
from mcp_oauth_auth.flow.values import is_whole_number
from mcp_oauth_auth.records import ClientRegistration

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata

__all__ = ["USABLE_AUTH_METHODS", "ClientSettings", "choose_secret_auth_method", "identify_client"]

logger = logging.getLogger("mcp_oauth_auth")

#: Token endpoint client authentication methods this client implements.
USABLE_AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
_SECRET_METHODS = ("client_secret_basic", "client_secret_post")
#: The secret-based methods a dynamic registration asks for, in order, where the server accepts no public client.
#: ``client_secret_post`` first, unlike for a pre-registered client (whose method the server's administrator set,
#: RFC 8414's default being Basic): a registration makes the server expect whichever method was asked for, and the
#: authorization server built into the MCP Python SDK (hence FastMCP's), which lists both, requires the secret in
#: the form at its revocation endpoint even from a Basic client, so only ``client_secret_post`` can log out there
#: without sending the secret twice (RFC 6749 §2.3.1 allows one method per request). Its own client ends up with
#: ``client_secret_post`` too.
_REGISTRATION_SECRET_METHODS = ("client_secret_post", "client_secret_basic")
#: Registration errors that may mean "unknown scope value" (RFC 7591 §3.2.2).
_SCOPE_REFUSALS = ("invalid_client_metadata", "invalid_scope")


@dataclass(frozen=True)
class ClientSettings:
    """How the user asked this client to identify itself."""

    client_id: str | None = None
    client_secret: str | None = None
    client_metadata_url: str | None = None
    client_name: str = "mcp-oauth-auth"
    token_endpoint_auth_method: str | None = None
    #: The authorization server (its issuer identifier) this client belongs to: the client is used with no other.
    issuer: str | None = None

    def __repr__(self) -> str:
        return (
            f"ClientSettings(client_id={self.client_id!r}, client_secret={'***' if self.client_secret else None}, "
            f"client_metadata_url={self.client_metadata_url!r}, client_name={self.client_name!r}, "
            f"issuer={self.issuer!r})"
        )

    def validate(self) -> None:
        for name in ("client_id", "client_secret", "client_metadata_url", "token_endpoint_auth_method", "issuer"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigurationError(f"{name} must be a string, not {type(value).__name__}")
        if not isinstance(self.client_name, str):
            raise ConfigurationError(f"client_name must be a string, not {type(self.client_name).__name__}")
        if self.client_secret and not self.client_id:
            raise ConfigurationError("client_secret was given without client_id")
        if self.client_metadata_url is not None:
            _check_client_metadata_url(self.client_metadata_url)
        if self.issuer is not None:
            try:
                parts = urlsplit(self.issuer)
                usable = parts.scheme in ("https", "http") and bool(parts.hostname) and not parts.query
            except ValueError:
                usable = False
            if not usable or "#" in self.issuer:
                # RFC 8414 §2; whether plain http is acceptable is decided where the metadata is fetched.
                raise ConfigurationError(
                    f"issuer must be an authorization server's issuer identifier, an https URL without query or "
                    f"fragment, not {self.issuer!r}"
                )


def _check_client_metadata_url(url: str) -> None:
    """A Client ID Metadata Document URL: https with a path, no userinfo, fragment or dot segments (MCP client
    registration, draft-ietf-oauth-client-id-metadata-document §3); plain http only on a loopback host."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ConfigurationError(f"client_metadata_url is not a valid URL: {shown_url(url)}") from None
    if not host or not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host))):
        problem = "must be an https URL"
    elif parts.path in ("", "/"):
        problem = "must have a path"
    elif "@" in parts.netloc:
        problem = "must not contain a user name or password"
    elif "#" in url:
        problem = "must not have a fragment"
    elif any(unquote(segment) in (".", "..") for segment in parts.path.split("/")):
        problem = "must not contain '.' or '..' path segments"
    else:
        return
    raise ConfigurationError(f"client_metadata_url {problem} (a Client ID Metadata Document): {shown_url(url)}")


def choose_secret_auth_method(
    metadata: AuthorizationServerMetadata, preferred: str | None, order: tuple[str, ...] = _SECRET_METHODS
) -> str:
    """A secret-based method both sides support, ``preferred`` or the first of ``order`` the server lists;
    RFC 8414 §2 makes ``client_secret_basic`` the default when the server lists none."""
    supported = metadata.token_endpoint_auth_methods_supported or ("client_secret_basic",)
    candidates = [preferred] if preferred else list(order)
    for method in candidates:
        if method in supported and method in _SECRET_METHODS:
            return method
    raise RegistrationError(
        f"the authorization server supports none of {candidates} for client authentication "
        f"(it lists {list(supported)})",
        url=metadata.url or None,
    )


def private_key_jwt_method(metadata: AuthorizationServerMetadata) -> str:
    """``private_key_jwt``, unless the server's metadata lists the methods it accepts without it."""
    supported = metadata.token_endpoint_auth_methods_supported
    if supported is not None and PRIVATE_KEY_JWT not in supported:
        raise RegistrationError(
            f"the authorization server {metadata.issuer} does not accept private_key_jwt client authentication "
            f"(it lists {list(supported)})",
            url=metadata.url or metadata.issuer,
        )
    return PRIVATE_KEY_JWT


def identify_client(
    settings: ClientSettings,
    metadata: AuthorizationServerMetadata,
    existing: ClientRegistration | None,
    redirect_uri: str | None,
    scopes: tuple[str, ...],
    retry: RetryPolicy,
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token"),
    *,
    has_private_key: bool = False,
    now: Callable[[], float] = time.time,
) -> Generator[Effect, Any, ClientRegistration]:
    """The registration to use with this authorization server. ``existing`` belongs to the same issuer.

    ``redirect_uri`` is None for grants without a redirect (the device flow); ``grant_types`` are what a new
    dynamic registration asks for, and what an existing one must include to be reused. ``has_private_key``: the
    pre-registered client authenticates with ``private_key_jwt`` (a signing key was given).
    """
    redirect_uris = (redirect_uri,) if redirect_uri else ()
    if settings.client_id:
        if has_private_key:
            method = private_key_jwt_method(metadata)
        elif settings.client_secret:
            method = choose_secret_auth_method(metadata, settings.token_endpoint_auth_method)
        else:
            method = "none"
        logger.debug("client identity: pre-registered client, token endpoint auth %s", method)
        return ClientRegistration(
            client_id=settings.client_id,
            kind="pre-registered",
            token_endpoint_auth_method=method,
            client_secret=settings.client_secret,
            redirect_uris=redirect_uris,
        )
    if settings.client_metadata_url and metadata.client_id_metadata_document_supported:
        logger.debug("client identity: client ID metadata document %s", settings.client_metadata_url)
        return ClientRegistration(
            client_id=settings.client_metadata_url, kind="client-metadata-document", redirect_uris=redirect_uris
        )
    if _still_usable(existing, redirect_uri, grant_types, scopes, now()):
        assert existing is not None
        logger.debug("client identity: reusing the dynamic registration with %s", metadata.issuer)
        return existing
    if metadata.registration_endpoint:
        registration = yield from register_client(settings, metadata, redirect_uri, scopes, retry, grant_types)
        return registration
    hint = (
        " The server does not accept Client ID Metadata Documents."
        if settings.client_metadata_url
        else " Or pass client_metadata_url= if the server accepts Client ID Metadata Documents."
        if metadata.client_id_metadata_document_supported
        else ""
    )
    raise ClientRegistrationRequiredError(
        f"the authorization server {metadata.issuer} offers no dynamic client registration: register this "
        f"client there and pass client_id= (and client_secret= for a confidential client).{hint}",
        url=metadata.issuer,
    )


def _still_usable(
    existing: ClientRegistration | None,
    redirect_uri: str | None,
    grant_types: tuple[str, ...],
    scopes: tuple[str, ...],
    now: float,
) -> bool:
    if existing is None or existing.kind != "dynamic":
        return False
    if existing.scope is not None and not set(scopes) <= set(existing.scope.split()):
        # Servers may hold a client to the scope it registered (the MCP SDK's does; oidc-provider too): a step-up
        # beyond it needs a registration that includes the new scopes.
        return False
    if redirect_uri is not None and redirect_uri not in existing.redirect_uris:
        return False
    # A registration without recorded grant types was made for the code flow (the RFC 7591 default).
    granted = existing.grant_types or ("authorization_code", "refresh_token")
    if not set(grant_types) - {"refresh_token"} <= set(granted):
        return False
    expires_at = existing.client_secret_expires_at
    return expires_at is None or expires_at > now + 60


def register_client(
    settings: ClientSettings,
    metadata: AuthorizationServerMetadata,
    redirect_uri: str | None,
    scopes: tuple[str, ...],
    retry: RetryPolicy,
    grant_types: tuple[str, ...],
) -> Generator[Effect, Any, ClientRegistration]:
    """Dynamic client registration (RFC 7591 §3); without ``redirect_uri``, a client with no redirect (device)."""
    assert metadata.registration_endpoint is not None
    supported = metadata.token_endpoint_auth_methods_supported
    requested_method = (
        "none"
        if supported is None or "none" in supported
        else choose_secret_auth_method(metadata, settings.token_endpoint_auth_method, _REGISTRATION_SECRET_METHODS)
    )
    native = redirect_uri is None or is_loopback_host(urlsplit(redirect_uri).hostname)
    request_body: dict[str, Any] = {
        "client_name": settings.client_name,
        "redirect_uris": [redirect_uri] if redirect_uri else [],
        "grant_types": list(grant_types),
        "response_types": ["code"] if "authorization_code" in grant_types else [],
        "token_endpoint_auth_method": requested_method,
        "application_type": "native" if native else "web",
    }
    # The registration's scope is an upper bound some servers enforce on later requests (the MCP SDK's server,
    # oidc-provider): register for every scope the server offers, request only what is needed. A step-up then
    # keeps the same client — and MCP servers bind sessions to the client_id.
    registered_scopes = tuple(dict.fromkeys((*scopes, *metadata.scopes_supported)))
    if registered_scopes:
        request_body["scope"] = " ".join(registered_scopes)
    endpoint = metadata.registration_endpoint
    logger.debug("dynamic client registration at %s (token endpoint auth %s)", endpoint, requested_method)
    response = yield from fetch(HttpRequest.json(endpoint, request_body), retry, "client registration")
    document = response.json_object() or {}
    if response.status == 400 and "scope" in request_body and document.get("error") in _SCOPE_REFUSALS:
        # RFC 7591 §3.2.2 lets a server refuse scope values it does not know (MCP scopes may belong to the resource
        # server only): register without a scope restriction instead.
        logger.debug("the registration's scope was refused (%s); registering without scope", document.get("error"))
        del request_body["scope"]
        response = yield from fetch(HttpRequest.json(endpoint, request_body), retry, "client registration")
        document = response.json_object() or {}
    if response.status in (401, 403):
        # Anonymous registration refused by a policy (Keycloak's trusted hosts, Okta without an API token):
        # registering again will not help; an administrator must register the client.
        raise RegistrationPolicyError(
            "the authorization server's policy refused dynamic client registration: register a client with its "
            "administrator and use its client ID",
            url=endpoint,
            status_code=response.status,
            error=_text(document.get("error")),
            error_description=_text(document.get("error_description")),
        )
    if response.status not in (200, 201):
        raise RegistrationError(
            "dynamic client registration was refused",
            url=endpoint,
            status_code=response.status,
            error=_text(document.get("error")),
            error_description=_text(document.get("error_description")),
        )
    return _parse_registration(
        document, endpoint, redirect_uri, requested_method, grant_types, request_body.get("scope")
    )


def _text(value: Any) -> str | None:
    return value[:500] if isinstance(value, str) else None


def _parse_registration(
    document: dict[str, Any],
    endpoint: str,
    redirect_uri: str | None,
    requested_method: str,
    requested_grants: tuple[str, ...],
    requested_scope: str | None,
) -> ClientRegistration:
    client_id = document.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise RegistrationError("the registration response has no client_id", url=endpoint)
    method = document.get("token_endpoint_auth_method", requested_method)
    if method not in USABLE_AUTH_METHODS:
        raise RegistrationError(
            f"the server assigned token_endpoint_auth_method {method!r}, which this client cannot use "
            f"(usable: {', '.join(USABLE_AUTH_METHODS)})",
            url=endpoint,
        )
    secret = document.get("client_secret")
    if method in _SECRET_METHODS and not (isinstance(secret, str) and secret):
        raise RegistrationError(f"the server assigned {method} but issued no client_secret", url=endpoint)
    expires_at = document.get("client_secret_expires_at")
    if not is_whole_number(expires_at, 1):
        expires_at = None  # 0: the secret does not expire (RFC 7591 §3.2.1)
    return ClientRegistration(
        client_id=client_id,
        kind="dynamic",
        token_endpoint_auth_method=method,
        client_secret=secret if isinstance(secret, str) else None,
        redirect_uris=_strings(document, "redirect_uris", endpoint) or ((redirect_uri,) if redirect_uri else ()),
        grant_types=_strings(document, "grant_types", endpoint) or requested_grants,
        client_secret_expires_at=expires_at,
        registration_access_token=_optional_text(document.get("registration_access_token")),
        registration_client_uri=_optional_text(document.get("registration_client_uri")),
        scope=registered_scope if isinstance(registered_scope := document.get("scope"), str) else requested_scope,
    )


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _strings(document: dict[str, Any], name: str, endpoint: str) -> tuple[str, ...]:
    """A list-of-strings field of the registration response; empty when absent."""
    value = document.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RegistrationError(f"the registration response's {name!r} is not a list of strings", url=endpoint)
    return tuple(value)
