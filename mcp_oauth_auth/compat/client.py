"""MCPOAuthClient: the authorization flow step by step, each step one call of the flow's public functions, run by
the shared driver (:mod:`mcp_oauth_auth.driving`)."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any

from mcp_oauth_auth.authorizers.base import Authorizer, AuthorizerLike, as_authorizer
from mcp_oauth_auth.compat.http import HttpClientSource, http_client, network_error
from mcp_oauth_auth.compat.tokens import OAuthTokens
from mcp_oauth_auth.driving.loop import adrive
from mcp_oauth_auth.driving.perform import Performer, choose_redirect
from mcp_oauth_auth.exceptions import ConfigurationError, TokenRevocationError
from mcp_oauth_auth.flow.addresses import AddressPolicy
from mcp_oauth_auth.flow.discovery import (
    AuthorizationServerMetadata,
    ProtectedResourceMetadata,
    discover_protected_resource,
    find_authorization_server,
)
from mcp_oauth_auth.flow.effects import Effect, Flow
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.grants import code_grant
from mcp_oauth_auth.flow.guard import guarded
from mcp_oauth_auth.flow.registration import ClientSettings, identify_client
from mcp_oauth_auth.flow.revocation import revoke_token
from mcp_oauth_auth.flow.tokens import refresh_tokens
from mcp_oauth_auth.flow.urls import canonical_resource
from mcp_oauth_auth.flow.values import scope_tuple
from mcp_oauth_auth.presets import ProviderPreset, settings_with_preset
from mcp_oauth_auth.records import ClientRegistration

__all__ = ["MCPOAuthClient"]


class MCPOAuthClient:
    """The authorization flow step by step, for one MCP server: discovery, registration, authorization, refresh
    and revocation, each one call. Nothing is stored: keeping the tokens is up to you (or use
    :class:`OAuthHandler`).

    Args:
        server_url: the MCP endpoint.
        redirect_uri: the redirect URI to register and authorize with; default: the authorizer's choice (a free
            loopback port for the browser authorizer).
        authorizer: how the person approves in :meth:`authorize`; default
            :class:`~mcp_oauth_auth.LoopbackBrowserAuthorizer`.
        http_client: as for :class:`OAuthHandler`.
        client_id: a pre-registered client (then :meth:`register_client` is not needed).
        client_secret: its secret, for a confidential client.
        allow_private_networks: as for :class:`~mcp_oauth_auth.MCPOAuth`: let the servers name non-public
            addresses for the flow to fetch.
        extra_authorize_params: as for :class:`~mcp_oauth_auth.MCPOAuth`: a provider's extra parameters of the
            authorization request (docs/providers.md).
        extra_token_params: as for :class:`~mcp_oauth_auth.MCPOAuth`: its extra fields of the token requests.
        preset: as for :class:`~mcp_oauth_auth.MCPOAuth`: a provider's settings; a preset's device flow preference
            does not apply here (:meth:`authorize` is the browser flow).
    """

    def __init__(
        self,
        server_url: str,
        redirect_uri: str | None = None,
        *,
        authorizer: AuthorizerLike | None = None,
        http_client: HttpClientSource = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        client_name: str = "mcp-oauth-auth",
        retry: RetryPolicy | None = None,
        send_resource_indicator: bool | None = None,
        trust_unadvertised_pkce: bool | None = None,
        allow_insecure_http: bool = False,
        allow_private_networks: bool = False,
        extra_authorize_params: Mapping[str, str] | None = None,
        extra_token_params: Mapping[str, str] | None = None,
        preset: str | ProviderPreset | None = None,
    ) -> None:
        provider = settings_with_preset(
            preset,
            send_resource_indicator=send_resource_indicator,
            trust_unadvertised_pkce=trust_unadvertised_pkce,
            extra_authorize_params=extra_authorize_params,
            extra_token_params=extra_token_params,
            has_client=bool(client_id),
        )
        self.server_url = canonical_resource(server_url)
        self._address_policy = AddressPolicy(self.server_url, allow_private_networks)
        self.redirect_uri = redirect_uri
        self._authorizer: Authorizer = (
            as_authorizer(authorizer) if authorizer is not None else _default_browser_authorizer()
        )
        self._http_source = http_client
        self._settings = ClientSettings(client_id=client_id, client_secret=client_secret, client_name=client_name)
        self._settings.validate()
        self._retry = retry or RetryPolicy()
        self._send_resource_indicator = provider.send_resource_indicator
        self._trust_unadvertised_pkce = provider.trust_unadvertised_pkce
        self._request_rules = provider.request_rules
        self._allow_insecure_http = allow_insecure_http
        self._resource_metadata: ProtectedResourceMetadata | None = None
        self._metadata: AuthorizationServerMetadata | None = None
        self._registration: ClientRegistration | None = None
        self._tokens: OAuthTokens | None = None

    def __repr__(self) -> str:
        return (
            f"MCPOAuthClient({self.server_url!r}, issuer={self.issuer!r}, "
            f"client_id={self.client_id!r}, authorized={self._tokens is not None})"
        )

    # -- what discovery found ------------------------------------------------------------------------------------

    @property
    def issuer(self) -> str | None:
        return None if self._metadata is None else self._metadata.issuer

    @property
    def authorization_url(self) -> str | None:
        """The authorization endpoint (None before :meth:`discover_authorization_server`)."""
        return None if self._metadata is None else self._metadata.authorization_endpoint

    @property
    def token_url(self) -> str | None:
        return None if self._metadata is None else self._metadata.token_endpoint

    @property
    def registration_endpoint(self) -> str | None:
        return None if self._metadata is None else self._metadata.registration_endpoint

    @property
    def revocation_endpoint(self) -> str | None:
        return None if self._metadata is None else self._metadata.revocation_endpoint

    @property
    def scopes_supported(self) -> list[str]:
        """The authorization server's ``scopes_supported`` (empty before discovery or when not published)."""
        return [] if self._metadata is None else list(self._metadata.scopes_supported)

    @property
    def code_challenge_methods_supported(self) -> list[str] | None:
        """The PKCE methods the authorization server advertises; None when it does not say (or before
        discovery)."""
        methods = None if self._metadata is None else self._metadata.code_challenge_methods_supported
        return None if methods is None else list(methods)

    @property
    def resource(self) -> str:
        """The resource indicator (RFC 8707) for this server: its protected resource metadata's ``resource``."""
        return self._resource_metadata.resource if self._resource_metadata is not None else self.server_url

    @property
    def resource_scopes_supported(self) -> list[str]:
        """The protected resource metadata's ``scopes_supported``: what :meth:`authorize` asks for by default."""
        return [] if self._resource_metadata is None else list(self._resource_metadata.scopes_supported)

    @property
    def client_id(self) -> str | None:
        if self._registration is not None:
            return self._registration.client_id
        return self._settings.client_id

    @property
    def tokens(self) -> OAuthTokens | None:
        """The tokens of the last :meth:`authorize` or :meth:`refresh_token`."""
        return self._tokens

    # -- the steps -----------------------------------------------------------------------------------------------

    async def discover_authorization_server(self) -> dict[str, Any]:
        """Find the server's authorization server (RFC 9728, then RFC 8414 / OpenID discovery; the 2025-03-26
        fallbacks for servers without resource metadata). Returns its metadata document."""
        self._resource_metadata, self._metadata = await self._run(
            _discover(self.server_url, self._retry, self._allow_insecure_http)
        )
        metadata = self._metadata
        if metadata.extra:
            return dict(metadata.extra)
        return {
            "issuer": metadata.issuer,
            "authorization_endpoint": metadata.authorization_endpoint,
            "token_endpoint": metadata.token_endpoint,
            "registration_endpoint": metadata.registration_endpoint,
        }

    async def register_client(
        self, client_name: str | None = None, redirect_uris: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Dynamic client registration (RFC 7591) as a native public client with one redirect URI. Returns the
        registration (``client_id``, ``redirect_uris``, ...)."""
        server = await self._server()
        if redirect_uris is not None and len(redirect_uris) != 1:
            raise ConfigurationError(f"register_client takes exactly one redirect URI, got {len(redirect_uris)}")
        redirect_uri = redirect_uris[0] if redirect_uris else self.redirect_uri or choose_redirect(self._authorizer, ())
        settings = ClientSettings(client_name=client_name or self._settings.client_name)
        self._registration = await self._run(identify_client(settings, server, None, redirect_uri, (), self._retry))
        self.redirect_uri = redirect_uri
        return self._registration.to_dict()

    async def authorize(self, scopes: Sequence[str] | str | None = None) -> OAuthTokens:
        """Authorization code + PKCE S256 through the authorizer, then the code exchange.

        ``scopes`` default to the resource's ``scopes_supported``; ``offline_access`` is added when the
        authorization server lists it (so that a refresh token is issued). Registers the client first when
        needed.
        """
        server = await self._server()
        chosen = scope_tuple(scopes)
        if chosen is None:
            chosen = tuple(self.resource_scopes_supported)
        if "offline_access" in server.scopes_supported and "offline_access" not in chosen:
            chosen = (*chosen, "offline_access")
        chosen = self._request_rules.scopes(chosen)
        client, tokens = await self._run(
            code_grant(
                server,
                self._settings,
                self._registration,
                self.redirect_uri,
                chosen,
                self._resource_parameter(),
                self._retry,
                trust_unadvertised_pkce=self._trust_unadvertised_pkce,
            )
        )
        self._registration = client
        self._tokens = OAuthTokens.from_token_set(tokens)
        return self._tokens

    async def refresh_token(self, refresh_token: str) -> OAuthTokens:
        """A new access token for ``refresh_token`` (RFC 6749 §6). A rejected refresh token raises
        :class:`~mcp_oauth_auth.InvalidGrantError`: authorize again."""
        server = await self._server()
        client = await self._client_registration(server)
        tokens = await self._run(
            refresh_tokens(server.token_endpoint, client, refresh_token, self._resource_parameter(), self._retry)
        )
        self._tokens = OAuthTokens.from_token_set(tokens)
        return self._tokens

    async def revoke_token(self, token: str, token_type_hint: str | None = None) -> bool:
        """Revoke ``token`` (RFC 7009). True when revoked; a refusal, or a server without a revocation endpoint,
        raises :class:`~mcp_oauth_auth.TokenRevocationError`."""
        server = await self._server()
        if server.revocation_endpoint is None:
            raise TokenRevocationError(
                f"the authorization server {server.issuer} publishes no revocation_endpoint (RFC 7009)",
                url=server.url or server.issuer,
            )
        client = await self._client_registration(server)
        await self._run(
            revoke_token(server.revocation_endpoint, client, token, token_type_hint, self._retry, issuer=server.issuer)
        )
        return True

    # -- helpers -------------------------------------------------------------------------------------------------

    async def _server(self) -> AuthorizationServerMetadata:
        if self._metadata is None:
            await self.discover_authorization_server()
        assert self._metadata is not None
        return self._metadata

    def _resource_parameter(self) -> str | None:
        return self.resource if self._send_resource_indicator else None

    async def _client_registration(self, server: AuthorizationServerMetadata) -> ClientRegistration:
        if self._registration is None:
            if not self._settings.client_id:
                raise ConfigurationError(
                    "no client registration yet: call register_client() or authorize() first, or pass client_id="
                )
            self._registration = await self._run(
                identify_client(self._settings, server, None, self.redirect_uri, (), self._retry)
            )
        return self._registration

    async def _run(self, flow: Flow) -> Any:
        """Drive a sans-IO flow: its HTTP requests through the client, its sleeps and its authorizer calls."""
        # Every request checked against the address policy, as MCPOAuth's flows are (flow/guard.py).
        flow = guarded(
            flow,
            self._address_policy,
            allow_insecure_http=self._allow_insecure_http,
            rewrite=self._request_rules.rewriter(self.server_url),
        )
        async with http_client(self._http_source) as client:
            return await adrive(flow, client, Performer(authorizer=self._authorizer), _unreachable)


def _unreachable(exc: Exception, request: Any) -> Exception:
    error = network_error(exc, str(request.url))
    error.__cause__ = exc
    return error


def _discover(
    server_url: str, retry: RetryPolicy, allow_insecure_http: bool
) -> Generator[Effect, Any, tuple[ProtectedResourceMetadata | None, AuthorizationServerMetadata]]:
    """Protected resource metadata, then the first listed authorization server that publishes metadata."""
    prm = yield from discover_protected_resource(server_url, None, retry, allow_insecure_http=allow_insecure_http)
    server = yield from find_authorization_server(server_url, prm, retry, allow_insecure_http=allow_insecure_http)
    return prm, server


def _default_browser_authorizer() -> Authorizer:
    from mcp_oauth_auth.authorizers.loopback import LoopbackBrowserAuthorizer

    return LoopbackBrowserAuthorizer()
