"""OAuthHandler: OAuth for several MCP servers by name, each through its own :class:`~mcp_oauth_auth.MCPOAuth`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from mcp_oauth_auth.auth import MCPOAuth
from mcp_oauth_auth.authorizers.base import AuthorizerLike, as_authorizer
from mcp_oauth_auth.compat.http import HttpClientSource, http_client, in_worker, network_errors
from mcp_oauth_auth.compat.manager import TokenManager, check_name
from mcp_oauth_auth.compat.tokens import OAuthTokens
from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.config import check_account
from mcp_oauth_auth.flow.revocation import RevocationOutcome
from mcp_oauth_auth.flow.urls import BearerScope, canonical_resource, safe_url
from mcp_oauth_auth.flow.values import scope_tuple
from mcp_oauth_auth.records import RecordKey

__all__ = ["OAuthHandler"]

logger = logging.getLogger("mcp_oauth_auth")

#: MCPOAuth options an OAuthHandler passes through to every MCPOAuth it makes.
_MCPOAUTH_OPTIONS = frozenset(
    {
        "token_endpoint_auth_method",
        "send_resource_indicator",
        "trust_unadvertised_pkce",
        "resource_metadata_url",
        "refresh_skew",
        "retry",
        "allow_insecure_http",
        "allow_parent_resource",
        "allow_private_networks",
        "max_response_size",
        "response_deadline",
        "max_step_up",
        "lock_timeout",
        "grant_type",
        "private_key",
        "dpop",
        "issuer",
        "extra_authorize_params",
        "extra_token_params",
        "preset",
        "account",
        "login_hint",
    }
)


class OAuthHandler:
    """OAuth for several MCP servers by name: log in, keep tokens fresh, build headers, send requests, log out.

    One :class:`~mcp_oauth_auth.MCPOAuth` per (server name, server URL) does the work, so concurrent calls for one
    server share one refresh or authorization. Its credentials live in ``token_manager``'s store (by default the
    automatic store: the OS keyring when usable, else encrypted files).

    Args:
        token_manager: where credentials are stored; None: ``TokenManager()``.
        authorizer: how the person approves (default: the system browser with a loopback callback, or the device
            flow where no browser can open); e.g. :class:`~mcp_oauth_auth.HeadlessAuthorizer` or any callable
            taking the authorization URL and returning the callback URL.
        client_id: a pre-registered client ID, as for :class:`~mcp_oauth_auth.MCPOAuth` (the same for every
            server: give per-server credentials through separate handlers).
        client_secret: its secret, for a confidential client.
        client_metadata_url: a Client ID Metadata Document URL.
        client_name: the name shown to the person on dynamic registration.
        redirect_uri: a fixed redirect URI (it must match a pre-registered one).
        http_client: the ``httpx.AsyncClient`` (or ``httpx2.AsyncClient``) every OAuth and protected request goes
            through (left open), or a callable returning a new client per operation (closed afterwards). Default:
            a new ``httpx.AsyncClient`` per operation.
        **options: more :class:`~mcp_oauth_auth.MCPOAuth` options (``issuer`` for the pre-registered client,
            ``retry``, ``refresh_skew``, ``trust_unadvertised_pkce``, ``send_resource_indicator``,
            ``allow_insecure_http``, ``preset``, ``extra_authorize_params``, ``extra_token_params``, ...). ``account``
            makes every credential of this handler that account's (a handler per account: a personal and a work one
            over the same ``token_manager`` never see each other's tokens), ``login_hint`` names it to the
            authorization server.
    """

    def __init__(
        self,
        token_manager: TokenManager | None = None,
        *,
        authorizer: AuthorizerLike | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        client_metadata_url: str | None = None,
        client_name: str = "mcp-oauth-auth",
        redirect_uri: str | None = None,
        http_client: HttpClientSource = None,
        **options: Any,
    ) -> None:
        unknown = sorted(set(options) - _MCPOAUTH_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"OAuthHandler got unknown options {unknown}; MCPOAuth options are {sorted(_MCPOAUTH_OPTIONS)}"
            )
        self.token_manager = token_manager if token_manager is not None else TokenManager()
        self._auth_options: dict[str, Any] = {
            "authorizer": None if authorizer is None else as_authorizer(authorizer),
            "client_id": client_id,
            "client_secret": client_secret,
            "client_metadata_url": client_metadata_url,
            "client_name": client_name,
            "redirect_uri": redirect_uri,
            **options,
        }
        self._account: str | None = options.get("account")
        check_account(self._account)
        self._http_source = http_client
        self._mutex = threading.Lock()
        self._auths: dict[tuple[str, str], MCPOAuth] = {}
        #: The canonical server URL each name was last used for.
        self._last_url: dict[str, str] = {}
        #: (name, record key) pairs already labelled in the store by this handler.
        self._labelled: set[tuple[str, RecordKey]] = set()

    def __repr__(self) -> str:
        return f"OAuthHandler(token_manager={self.token_manager!r}, servers={sorted(self._last_url)})"

    def auth_for(self, server_name: str, server_url: str, scopes: Sequence[str] | str | None = None) -> MCPOAuth:
        """The :class:`~mcp_oauth_auth.MCPOAuth` this handler uses for ``server_name`` at ``server_url`` (made on
        first use, with ``scopes``): put it on your own client as ``auth=`` to share its credentials."""
        check_name(server_name)
        url = canonical_resource(server_url)
        with self._mutex:
            self._last_url[server_name] = url
            auth = self._auths.get((server_name, url))
            if auth is None:
                auth = MCPOAuth(
                    server_url,
                    scopes=scope_tuple(scopes),
                    store=self.token_manager.store,
                    name=server_name,
                    **self._auth_options,
                )
                self._auths[(server_name, url)] = auth
            return auth

    async def ensure_authenticated_mcp(
        self, server_name: str, server_url: str, scopes: Sequence[str] | str | None = None
    ) -> OAuthTokens:
        """Tokens for the MCP server: the stored ones while valid, else refreshed, else a new authorization.

        ``scopes`` that this credential was never requested with trigger one new authorization asking for the
        union of the old and the new scopes (scopes a server chose not to grant are not asked for again).
        """
        wanted = scope_tuple(scopes)
        auth = self.auth_for(server_name, server_url, wanted)
        with network_errors(auth.server_url):
            async with http_client(self._http_source) as client:
                tokens = await auth.aauthenticate(client, scopes=wanted)
        await self._label(server_name, auth)
        return OAuthTokens.from_token_set(tokens)

    async def prepare_headers_for_mcp_server(
        self,
        server_name: str,
        server_url: str,
        scopes: Sequence[str] | str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """``extra_headers`` plus ``Authorization: Bearer <token>`` with a valid token (an ``Authorization`` among
        ``extra_headers`` is replaced)."""
        tokens = await self.ensure_authenticated_mcp(server_name, server_url, scopes)
        headers = {name: value for name, value in (extra_headers or {}).items() if name.lower() != "authorization"}
        headers["Authorization"] = tokens.get_authorization_header()
        return headers

    def get_authorization_header(self, server_name: str) -> str | None:
        """``"Bearer <token>"`` for the server this handler last used under ``server_name``, or None.

        None when that server has no token yet, or its token has expired (this call cannot refresh: use
        :meth:`prepare_headers_for_mcp_server`). A handler that has not used the name yet looks in the store, and
        answers only when exactly one server credential carries the name.
        """
        check_name(server_name)
        with self._mutex:
            url = self._last_url.get(server_name)
            auth = None if url is None else self._auths.get((server_name, url))
        if url is not None:
            tokens = auth.tokens if auth is not None else None
        else:
            record = self.token_manager._unique_credential(server_name, self._account)
            tokens = record.tokens if record is not None else None
        if tokens is None or tokens.expires_within(0):
            return None
        return OAuthTokens.from_token_set(tokens).get_authorization_header()

    def clear_tokens(self, server_name: str) -> bool:
        """Forget ``server_name``'s credentials here and in the store, without telling any server. True when
        something was deleted."""
        deleted = self.token_manager._delete_named(server_name, None, self._account)
        self._forget(server_name, deleted)
        return bool(deleted)

    async def logout(self, server_name: str, server_url: str | None = None) -> list[RevocationOutcome]:
        """Log out of ``server_name``.

        With ``server_url``: revoke the refresh token, then the access token, at the authorization server
        (RFC 7009), then delete the credential locally. A revocation that fails (network, a temporary server
        failure, no revocation endpoint, a refusal) does not stop the local removal; each token's outcome is
        returned, and failures are logged.
        Without ``server_url``: local removal only, like :meth:`clear_tokens`.
        """
        manager = self.token_manager
        if server_url is None:
            deleted = await in_worker(manager.blocking, manager._delete_named, server_name, None, self._account)
            self._forget(server_name, deleted)
            return []
        auth = self.auth_for(server_name, server_url)
        async with http_client(self._http_source) as client:
            # An unreachable authorization server is reported per token (TemporaryOAuthError), not raised.
            outcomes = await auth.alogout(client, revoke=True)
        deleted = await in_worker(manager.blocking, manager._delete_named, server_name, server_url, self._account)
        self._forget(server_name, deleted, logged_out_url=auth.server_url)
        for outcome in outcomes:
            if not outcome.revoked:
                logger.warning("%s: the %s was not revoked: %s", server_name, outcome.token_type_hint, outcome.error)
        return outcomes

    async def authenticated_request(
        self, server_name: str, server_url: str, url: str, method: str = "GET", **kwargs: Any
    ) -> httpx.Response:
        """Send a request to the MCP server with its token; a 401 or 403 ``insufficient_scope`` is handled inline
        (refresh, new authorization, step-up) and the request sent again.

        ``url`` is absolute or relative to the server URL's origin (``"/mcp/tools"``), and must be on the server:
        its token is never sent anywhere else. ``kwargs`` go to ``client.request`` (``json=``, ``headers=``, ...).
        """
        auth = self.auth_for(server_name, server_url)
        target = httpx.URL(auth.server_url).join(url)
        scope = BearerScope.for_resource(auth.server_url)
        if not scope.covers(target.scheme, target.host, target.port, target.path):
            raise ConfigurationError(
                f"{safe_url(str(target))} is not on the MCP server {auth.server_url}: its token is never sent there",
                url=safe_url(str(target)),
            )
        with network_errors(str(target)):
            async with http_client(self._http_source) as client:
                response: httpx.Response = await client.request(method, str(target), auth=auth, **kwargs)
        await self._label(server_name, auth)
        return response

    # -- helpers -------------------------------------------------------------------------------------------------

    async def _label(self, name: str, auth: MCPOAuth) -> None:
        """Make the stored credential in use carry ``name`` (once per handler and credential)."""
        record = auth.record
        if record is None:
            return
        labelled = (name, record.key)
        with self._mutex:
            if labelled in self._labelled:
                return
            self._labelled.add(labelled)
        try:
            await in_worker(self.token_manager.blocking, self.token_manager._attach_name, name, record.key)
        except BaseException:
            with self._mutex:
                self._labelled.discard(labelled)
            raise
        with self._mutex:  # the label was taken off every other credential
            self._labelled = {(label, key) for label, key in self._labelled if label != name or key == record.key}

    def _forget(self, name: str, deleted: Sequence[RecordKey], logged_out_url: str | None = None) -> None:
        """Drop the in-memory state of ``name``, and of every name whose credential was just deleted (or whose
        server was just logged out of)."""
        with self._mutex:
            self._last_url.pop(name, None)
            for (label, url), auth in list(self._auths.items()):
                record = auth.record
                if label == name or url == logged_out_url or (record is not None and record.key in deleted):
                    del self._auths[(label, url)]
                    if self._last_url.get(label) == url:
                        del self._last_url[label]
            self._labelled = {(label, key) for label, key in self._labelled if label != name and key not in deleted}
