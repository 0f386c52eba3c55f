"""MCPOAuth: the MCP authorization flow as an ``httpx.Auth`` (and, where ``httpx2`` is installed, an ``httpx2.Auth``).

The protocol lives in :mod:`mcp_oauth_auth.flow`; this module only drives it:

* the hot path (a valid token) sets one header and yields the request, with no lock and no allocation beyond the
  header string;
* credential work (loading, refreshing, authorizing) runs under a lock that is never held across the caller's
  protected request, and every OAuth request it needs is yielded through the caller's own client, so their proxies,
  TLS settings, timeouts, event hooks and test transports apply;
* the same object serves ``httpx.Client``, ``httpx.AsyncClient``, ``httpx2.Client`` and ``httpx2.AsyncClient``, on
  asyncio and trio, from many tasks and threads at once.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from contextlib import aclosing, closing
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import httpx

from mcp_oauth_auth.authorizers.base import Authorizer, AuthorizerLike, as_authorizer
from mcp_oauth_auth.authorizers.environment import browser_decision
from mcp_oauth_auth.driving.credential_lock import CredentialLock
from mcp_oauth_auth.exceptions import ConfigurationError, OAuthError, RequestNotReplayableError
from mcp_oauth_auth.flow.effects import DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_RESPONSE_DEADLINE, Flow
from mcp_oauth_auth.flow.engine import FlowConfig, FlowEngine
from mcp_oauth_auth.flow.exchange import STATUSES_WITH_WORK, sends_as_is
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.jwt_bearer import JWT_BEARER, AssertionSource
from mcp_oauth_auth.flow.registration import ClientSettings
from mcp_oauth_auth.flow.values import is_duration, scope_tuple
from mcp_oauth_auth.presets import ProviderPreset, settings_with_preset
from mcp_oauth_auth.records import CredentialRecord, TokenSet
from mcp_oauth_auth.storage.auto import AutoTokenStore
from mcp_oauth_auth.storage.base import TokenStore

__all__ = ["MCPOAuth"]

logger = logging.getLogger("mcp_oauth_auth")


if TYPE_CHECKING:
    import httpx2

    from mcp_oauth_auth.driving.perform import Performer
    from mcp_oauth_auth.flow.client_auth import ClientAssertionSigner
    from mcp_oauth_auth.flow.dpop import DPoPKey
    from mcp_oauth_auth.flow.idp import EnterpriseIdP
    from mcp_oauth_auth.flow.revocation import RevocationOutcome

    class _AuthBase(httpx.Auth, httpx2.Auth):  # type: ignore[misc]
        """For type checkers: instances are accepted by httpx and httpx2 clients (see ``MCPOAuth.__new__``)."""

else:
    _AuthBase = httpx.Auth


class MCPOAuth(_AuthBase):
    """OAuth 2.1 for one MCP server, as an ``httpx.Auth`` / ``httpx2.Auth``.

    ``httpx.AsyncClient(auth=MCPOAuth("https://mcp.example.com/mcp"))`` is all it takes: on a 401 the client
    discovers the authorization server (RFC 9728, RFC 8414), identifies itself (pre-registered, Client ID Metadata
    Document or RFC 7591), has the person authorize (PKCE S256, ``resource``, RFC 9207 ``iss`` checks), stores the
    tokens, refreshes them before they expire and steps up on ``insufficient_scope``.

    Args:
        server_url: the MCP endpoint. Bearer tokens go only to this origin, at or below this path (or below the
            ``resource`` the server's metadata names, when that is a parent of it and ``allow_parent_resource``).
        scopes: scopes to request (instead of the server's ``scopes_supported``), together with the 401
            challenge's ``scope``, which the MCP specification makes authoritative for the request at hand. By
            default the challenge's ``scope``, else the server's ``scopes_supported``. A new authorization also asks
            again for the scopes the credential it replaces had (step-ups are not lost).
        store: where credential records persist (a :class:`~mcp_oauth_auth.storage.TokenStore`). By default the OS
            keyring when usable, else encrypted files under ``~/.mcp_oauth`` (chosen on the first request).
        authorizer: how the person approves: an :class:`~mcp_oauth_auth.authorizers.Authorizer` (e.g.
            :class:`~mcp_oauth_auth.DeviceAuthorizer`, :class:`~mcp_oauth_auth.PasteBackAuthorizer`) or any callable,
            sync or async, taking the authorization URL and returning the callback URL. Default: the system
            browser with a loopback callback, or the device flow where no browser can be opened (SSH, CI,
            containers, no display) and the server offers it.
        client_id: a pre-registered client's ID.
        client_secret: a pre-registered confidential client's secret.
        client_metadata_url: a Client ID Metadata Document URL, used when the server supports them.
        issuer: use this authorization server only (its issuer identifier, e.g. ``https://login.example.com``),
            typically the one ``client_id`` is registered at. Among several that the server lists, it is chosen; a
            server naming only others is refused (:class:`~mcp_oauth_auth.exceptions.IssuerMismatchError`), and
            stored credentials from others are not used. Without it, a pre-registered client is still never used with an
            authorization server other than the one it was first used with for this server.
        client_name: the name shown to the person on dynamic registration.
        redirect_uri: a fixed redirect URI (it must match a pre-registered one); by default the authorizer's.
        token_endpoint_auth_method: for a pre-registered confidential client, force ``client_secret_basic`` or
            ``client_secret_post``; by default chosen from what the server supports.
        send_resource_indicator: send RFC 8707 ``resource`` (turn off only for providers that reject it); default
            True (the ``entra`` preset: False).
        trust_unadvertised_pkce: proceed when the server's metadata omits ``code_challenge_methods_supported``
            (Entra ID, Cognito). A server listing methods without ``S256`` is refused regardless. Default False
            (the ``entra`` and ``cognito`` presets: True).
        resource_metadata_url: explicit protected resource metadata URL for servers that publish it elsewhere.
        refresh_skew: refresh this many seconds before expiry; by default 60 s, but never before half of the
            token's lifetime (so that short-lived tokens are not refreshed on every request).
        retry: retry policy for temporary failures (5xx, 429) of OAuth requests.
        allow_insecure_http: accept plain-HTTP OAuth endpoints on non-loopback hosts.
        allow_parent_resource: accept metadata whose ``resource`` is a parent of ``server_url`` (a gateway's); by
            default it must be ``server_url`` itself (RFC 9728 §3.3): no token valid for sibling servers.
        allow_private_networks: let servers name non-public addresses (private, loopback, link-local) for the flow
            to fetch; refused by default (:class:`~mcp_oauth_auth.exceptions.UnsafeURLError`) unless the MCP server
            is on one or you named the host.
        max_response_size: the largest OAuth response body read (1 MiB); response_deadline: the longest it may
            take to arrive (30 s); past either: :class:`~mcp_oauth_auth.exceptions.ResponseLimitError`.
        max_step_up: how many insufficient_scope step-ups one request may trigger.
        lock_timeout: how long to wait for another process's refresh of the same record before raising
            :class:`~mcp_oauth_auth.exceptions.StoreLockedError`.
        grant_type: ``"authorization_code"`` (a person approves) or ``"client_credentials"`` (machine to machine,
            no person: needs ``client_id`` with ``client_secret`` or ``private_key``; no refresh token is assumed,
            a new token is requested before the old one expires).
        private_key: a :class:`~mcp_oauth_auth.PrivateKeyJWT` (or any ``ClientAssertionSigner``): the pre-registered
            client (``client_id``) authenticates with ``private_key_jwt`` (RFC 7523) at the token, device
            authorization and revocation endpoints, in every grant.
        name: a label stored with the credential (``record.names``), for listing and lookup by people and tools.
        assertion: workload identity (RFC 7523 jwt-bearer grant, MCP SEP-1933): the workload's JWT as a ``str``, a
            ``pathlib.Path`` of a file holding it (re-read for every token request: Kubernetes rotates projected
            service-account tokens), or a function returning it, sync or async (a CI or cloud OIDC token). Needs
            ``client_id``; selects the jwt-bearer grant (``grant_type`` then defaults to it). No registration, no
            refresh token assumed; a refusal raises :class:`~mcp_oauth_auth.exceptions.TokenExchangeError` without
            a retry. The assertion is never logged or stored.
        dpop: DPoP (RFC 9449): ``True`` binds the tokens to a key pair generated for this credential (ES256, or
            what the authorization server's ``dpop_signing_alg_values_supported`` allows), a
            :class:`~mcp_oauth_auth.DPoPKey` to the caller's own key. Every token request and every protected
            request then carries a proof; the key is stored with the credential. Without it, DPoP is still used
            when the server accepts DPoP-bound tokens only. See docs/dpop.md.
        extra_authorize_params: more parameters of the authorization request (also sent with the device
            authorization request), e.g. ``{"audience": "https://api.example.com"}``. Parameters the flow sets
            itself (``state``, ``scope``, ``resource``, ``client_id``, ``code_challenge``, ...) are refused
            (:class:`~mcp_oauth_auth.exceptions.ConfigurationError`); values must be strings and are never logged.
        extra_token_params: more form fields of every token request to the authorization server (code exchange,
            refresh, device code polls, client credentials, jwt-bearer), with the same rules.
        preset: a provider's settings: a name (``"entra"``, ``"auth0"``, ``"cognito"``, ``"google"``,
            ``"github"``, ``"okta"``, ``"keycloak"``) or a :class:`~mcp_oauth_auth.ProviderPreset` (e.g.
            ``presets.auth0(audience=...)``). It only sets defaults: the arguments given here win. See
            docs/providers.md.
        identity_assertion: enterprise-managed authorization (ID-JAG): an :class:`~mcp_oauth_auth.EnterpriseIdP`.
            The person's ID token (given, or from a single sign-on at the IdP shared by every MCP server using the
            same store) is exchanged at the IdP for an ID-JAG (RFC 8693), presented to the MCP authorization server
            in the jwt-bearer grant with ``client_id`` and ``client_secret`` or ``private_key``. A new ID-JAG is
            minted when the token expires. See docs/enterprise-managed-authorization.md.
        account: a label for one of several credentials for the same server and authorization server (a personal
            and a work account, two tenants), part of the stored record's identity: each account's record is
            loaded, refreshed, stepped up and revoked on its own, and a request never carries another account's
            token. None (the default) is the default account, that of every record stored before accounts existed.
            A new authorization for a named account asks an OpenID provider to let the person choose the account
            (``prompt=select_account``), unless ``login_hint`` names it. See docs/accounts.md.
        login_hint: sent as ``login_hint`` in the authorization request (OpenID Connect): the account to sign in
            with, e.g. an e-mail address; never sent unless given.
    """

    _with_httpx2: ClassVar[dict[type[MCPOAuth], type[MCPOAuth]]] = {}

    def __new__(cls, *args: Any, **kwargs: Any) -> MCPOAuth:
        # httpx2 clients accept only httpx2.Auth instances, httpx clients only httpx.Auth ones: where httpx2 is
        # installed, instances also derive from httpx2.Auth. Deciding here (not at import) keeps httpx2's import
        # cost away from programs that never create an MCPOAuth.
        return super().__new__(_with_httpx2_base(cls))

    def __init__(
        self,
        server_url: str,
        scopes: Sequence[str] | str | None = None,
        store: TokenStore | None = None,
        authorizer: AuthorizerLike | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        client_metadata_url: str | None = None,
        client_name: str = "mcp-oauth-auth",
        redirect_uri: str | None = None,
        *,
        issuer: str | None = None,
        token_endpoint_auth_method: str | None = None,
        send_resource_indicator: bool | None = None,
        trust_unadvertised_pkce: bool | None = None,
        resource_metadata_url: str | None = None,
        refresh_skew: float | None = None,
        retry: RetryPolicy | None = None,
        allow_insecure_http: bool = False,
        allow_parent_resource: bool = False,
        allow_private_networks: bool = False,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        response_deadline: float = DEFAULT_RESPONSE_DEADLINE,
        max_step_up: int = 2,
        lock_timeout: float = 60.0,
        grant_type: str = "authorization_code",
        private_key: ClientAssertionSigner | None = None,
        name: str | None = None,
        assertion: AssertionSource | None = None,
        dpop: bool | DPoPKey = False,
        extra_authorize_params: Mapping[str, str] | None = None,
        extra_token_params: Mapping[str, str] | None = None,
        preset: str | ProviderPreset | None = None,
        identity_assertion: EnterpriseIdP | None = None,
        account: str | None = None,
        login_hint: str | None = None,
    ) -> None:
        provider = settings_with_preset(
            preset,
            send_resource_indicator=send_resource_indicator,
            trust_unadvertised_pkce=trust_unadvertised_pkce,
            extra_authorize_params=extra_authorize_params,
            extra_token_params=extra_token_params,
            has_client=bool(client_id or client_metadata_url),
        )
        if authorizer is not None:
            self._authorizer: Authorizer = as_authorizer(authorizer)
            interaction, headless_reason = self._authorizer.interaction, None
        else:
            self._authorizer = _default_authorizer()
            interaction, headless_reason = "auto", _headless_reason()
            if provider.prefers_device_flow:
                interaction = "device"
        config = FlowConfig(
            server_url=server_url,
            scopes=scope_tuple(scopes),
            client=ClientSettings(
                client_id=client_id,
                client_secret=client_secret,
                client_metadata_url=client_metadata_url,
                client_name=client_name,
                token_endpoint_auth_method=token_endpoint_auth_method,
                issuer=issuer,
            ),
            redirect_uri=redirect_uri,
            retry=retry or RetryPolicy(),
            refresh_skew=refresh_skew,
            send_resource_indicator=provider.send_resource_indicator,
            trust_unadvertised_pkce=provider.trust_unadvertised_pkce,
            resource_metadata_url=resource_metadata_url,
            allow_insecure_http=allow_insecure_http,
            allow_parent_resource=allow_parent_resource,
            allow_private_networks=allow_private_networks,
            max_response_size=max_response_size,
            response_deadline=response_deadline,
            max_step_up=max_step_up,
            grant_type=JWT_BEARER
            if (assertion is not None or identity_assertion is not None) and grant_type == "authorization_code"
            else grant_type,
            interaction=interaction,
            headless_reason=headless_reason,
            private_key=private_key,
            name=name,
            assertion=assertion,
            dpop=dpop,
            request_rules=provider.request_rules,
            identity_assertion=identity_assertion,
            account=account,
            login_hint=login_hint,
        )
        self._engine = FlowEngine(config)
        self._store: TokenStore = store if store is not None else AutoTokenStore()
        if not is_duration(lock_timeout):
            raise ConfigurationError(f"lock_timeout must be a number of seconds (0 or more), not {lock_timeout!r}")
        self._lock_timeout = lock_timeout
        self._lock = CredentialLock()

    # -- public state ------------------------------------------------------------------------------------------

    @property
    def server_url(self) -> str:
        """The canonical URI of the MCP server."""
        return self._engine.server_url

    @property
    def account(self) -> str | None:
        """The account label of the credential this object uses (None: the default account)."""
        return self._engine.config.account

    @property
    def store(self) -> TokenStore:
        """The store credential records are loaded from and saved to."""
        return self._store

    @property
    def record(self) -> CredentialRecord | None:
        """The credential record in use (loaded lazily on the first request), or None."""
        return self._engine.record

    @property
    def tokens(self) -> TokenSet | None:
        """The tokens of the credential record in use, or None (see :attr:`record`)."""
        record = self._engine.record
        return record.tokens if record else None

    # -- credential operations without a protected request ------------------------------------------------------

    def authenticate(self, client: Any = None, *, scopes: Sequence[str] | str | None = None) -> TokenSet:
        """Make sure a usable token exists — stored, refreshed, or newly authorized — and return it.

        For logging in ahead of time (a CLI ``login``, a start-up check) rather than on the first 401. ``scopes``
        the credential was never requested with cause one new authorization for the union of old and new scopes.
        The OAuth requests go through ``client`` (an ``httpx.Client`` or ``httpx2.Client``; by default a new
        ``httpx.Client``) with its own auth disabled for them.
        """
        self._drive(self._engine.authenticate(scope_tuple(scopes) or ()), client)
        return self._current_tokens()

    async def aauthenticate(self, client: Any = None, *, scopes: Sequence[str] | str | None = None) -> TokenSet:
        """Async form of :meth:`authenticate` (an ``httpx.AsyncClient`` or ``httpx2.AsyncClient``)."""
        await self._adrive(self._engine.authenticate(scope_tuple(scopes) or ()), client)
        return self._current_tokens()

    def logout(self, client: Any = None, *, revoke: bool = True) -> list[RevocationOutcome]:
        """Forget the credential: revoke its tokens at the authorization server (RFC 7009, refresh token first)
        when ``revoke`` and the server allows it, then delete the record from the store.

        Revocation failures do not stop the local removal; they are returned (and logged) per token.
        """
        outcomes: list[RevocationOutcome] = self._drive(self._engine.logout(revoke), client)
        return outcomes

    async def alogout(self, client: Any = None, *, revoke: bool = True) -> list[RevocationOutcome]:
        """Async form of :meth:`logout`."""
        outcomes: list[RevocationOutcome] = await self._adrive(self._engine.logout(revoke), client)
        return outcomes

    def _current_tokens(self) -> TokenSet:
        tokens = self.tokens
        if tokens is None:  # the flows raise rather than finish without a token
            raise OAuthError(f"no token could be obtained for {self.server_url}", url=self.server_url)
        return tokens

    def _drive(self, flow: Flow, client: Any) -> Any:
        from mcp_oauth_auth.driving.loop import drive

        owned = client is None
        http = httpx.Client() if owned else client
        try:
            with self._lock.held(), closing(self._performer()) as performer:
                return drive(flow, http, performer)
        finally:
            if owned:
                http.close()

    async def _adrive(self, flow: Flow, client: Any) -> Any:
        from mcp_oauth_auth.driving.loop import adrive

        owned = client is None
        http = httpx.AsyncClient() if owned else client
        try:
            async with self._lock.held_async(), aclosing(self._performer()) as performer:
                return await adrive(flow, http, performer)
        finally:
            if owned:
                await http.aclose()

    def _performer(self) -> Performer:
        """What performs the effects of one credential operation (the driver is imported on first use: start-up)."""
        from mcp_oauth_auth.driving.perform import Performer
        from mcp_oauth_auth.driving.session import StoreSession

        return Performer(StoreSession(self._store, self._lock_timeout), self._authorizer)

    def __repr__(self) -> str:
        return (
            f"{MCPOAuth.__name__}({self.server_url!r}, store={self._store!r}, "
            f"authorizer={self._authorizer!r}, authenticated={self._engine.access_token is not None})"
        )

    # -- httpx / httpx2 Auth ---------------------------------------------------------------------------------

    # One auth flow (_auth_flow) serves both shells, as httpx's own Auth does: it yields the request to send (and
    # receives its response), _ReadBody (receives the body) or _Run (credential work, run by the shell under the
    # lock). The hot path (a covered request, a token neither expired nor due for refresh, a response that needs
    # nothing) creates no Exchange: one is made when before_request or a response has work for it, with the same
    # state a request's first Exchange always has.

    def sync_auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        flow = self._auth_flow(request)
        step = next(flow)
        ran = False
        while True:
            if type(step) is _Run:
                from mcp_oauth_auth.driving.loop import run

                with self._lock.held(), closing(self._performer()) as performer:
                    yield from run(step.work, performer, type(request))
                answer, ran = None, True
            elif type(step) is _ReadBody:
                answer = step.response.read()
            else:
                answer = yield step
                if ran:  # the credential work's last response is not the caller's history (driving/in_auth_flow.py)
                    _forget_oauth_responses(answer)
            try:
                step = flow.send(answer)
            except StopIteration:
                return

    async def async_auth_flow(self, request: Any) -> AsyncGenerator[Any, Any]:
        flow = self._auth_flow(request)
        step = next(flow)
        ran = False
        while True:
            if type(step) is _Run:
                from mcp_oauth_auth.driving.in_auth_flow import raise_in_flight_failure
                from mcp_oauth_auth.driving.loop import run_async

                async with (
                    self._lock.held_async(),
                    aclosing(self._performer()) as performer,
                    aclosing(run_async(step.work, performer, type(request))) as steps,
                ):
                    try:
                        oauth_request = await steps.__anext__()
                        while True:
                            closed = False  # as in driving.loop.run: the client failed while it was in flight
                            try:
                                oauth_response = yield oauth_request
                            except GeneratorExit:
                                closed = True
                            if closed:
                                raise_in_flight_failure(oauth_request)
                            _forget_oauth_responses()
                            oauth_request = await steps.asend(oauth_response)
                    except StopAsyncIteration:
                        pass
                answer, ran = None, True
            elif type(step) is _ReadBody:
                answer = await step.response.aread()
            else:
                answer = yield step
                if ran:
                    _forget_oauth_responses(answer)
            try:
                step = flow.send(answer)
            except StopIteration:
                return

    def _auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        """The protected request's flow for both shells (see above): send it with the current token; run the
        credential work the engine asks for before it or after its response; send it again while there is some."""
        if not self._covers(request):
            yield request
            return
        exchange = None if sends_as_is(self._engine) else self._engine.exchange()
        work = None if exchange is None else exchange.before_request()
        replayable = True
        while True:
            if work is not None:
                yield _Run(work)
                if not replayable:
                    raise _not_replayable(request)
            sent_token = self._authorize_request(request)
            response = yield request
            status = response.status_code
            dpop = self._engine.dpop_bound
            if dpop is not None:
                dpop.remember_nonce(self._engine.server_url, response.headers.get("dpop-nonce"), resource=True)
            if status not in STATUSES_WITH_WORK:
                return
            exchange = exchange or self._engine.exchange()
            from mcp_oauth_auth.driving.resolution import peer_address

            self._engine.note_server_peer(peer_address(response))  # a proxy's address: see flow/resolved.py
            headers = response.headers
            body = (
                (yield _ReadBody(response))
                if status == 500 and exchange.needs_body(status, headers, sent_token)
                else None
            )
            work = exchange.after_response(status, headers, sent_token, body)
            if work is None:
                return
            replayable = _is_replayable(request)

    # -- bearer scoping ---------------------------------------------------------------------------------------

    def _covers(self, request: Any) -> bool:
        url = request.url
        scope = self._engine.bearer_scope
        as_sent = scope.as_sent
        sent = getattr(url, "_uri_reference", None)
        if as_sent is not None and sent is not None:
            # The components httpx and httpx2 URLs keep as parsed (what goes on the wire): reading them costs a
            # fraction of the decoding properties, and equal to the scope's they imply covers() (BearerScope.as_sent).
            # A path with a "%" or a "/." may hide a dot segment: covers() decides it, as any other URL, or a URL
            # class without these components.
            scheme, host, port, prefix, below = as_sent
            path = sent.path
            if (
                sent.host == host
                and (path == prefix or path.startswith(below))
                and "%" not in path
                and "/." not in path
                and sent.scheme == scheme
                and sent.port == port
            ):
                return True
        raw_path = sent.path if sent is not None else None
        return scope.covers(url.scheme, url.host, url.port, url.path, raw_path)

    def _authorize_request(self, request: Any) -> str | None:
        engine = self._engine
        token = engine.access_token
        if token is not None:
            dpop = engine.dpop_bound
            if dpop is None:
                request.headers["Authorization"] = f"Bearer {token}"
            else:
                request.headers["Authorization"] = f"DPoP {token}"
                request.headers["DPoP"] = dpop.proof(request.method, str(request.url), engine.clock(), token)
        else:
            request.headers.pop("Authorization", None)
            request.headers.pop("DPoP", None)
        return token


def _forget_oauth_responses(response: Any = None) -> None:
    """The client's send history without the credential work's responses (see driving/in_auth_flow.py), and
    ``response``'s; called from the shells themselves, whose caller is the client's frame."""
    from mcp_oauth_auth.driving.in_auth_flow import forget_oauth_responses

    forget_oauth_responses(depth=2, response=response)


class _Run(NamedTuple):
    """A step of :meth:`MCPOAuth._auth_flow`: credential work for the shell to run (under the lock)."""

    work: Flow


class _ReadBody(NamedTuple):
    """A step of :meth:`MCPOAuth._auth_flow`: the shell reads this response's body and sends it back."""

    response: Any


def _is_replayable(request: Any) -> bool:
    """Whether the request body is in memory (bytes, form, JSON) rather than a one-shot stream."""
    try:
        request.content  # noqa: B018 - raises RequestNotRead for an unread stream
    except Exception:
        return False
    return True


def _not_replayable(request: Any) -> RequestNotReplayableError:
    # httpx would hand the caller the last response its auth flow saw, which is an OAuth response here: raise.
    return RequestNotReplayableError(
        "credentials were renewed, but the request body is a one-shot stream that cannot be sent again; "
        "send the request again",
        url=str(request.url.copy_with(query=None)),
    )


def _headless_reason() -> str | None:
    """Why no browser can be opened here (the flow then prefers the device flow), or None; the signal that decided
    is logged."""
    decision = browser_decision()
    if decision.overridden is not None:
        logger.info("opening the browser that $BROWSER names, although %s", decision.overridden)
    else:
        logger.debug("browser %s: %s", "available" if decision.available else "unavailable", decision.signal)
    return None if decision.available else decision.signal


def _default_authorizer() -> Authorizer:
    from mcp_oauth_auth.authorizers.loopback import LoopbackBrowserAuthorizer

    return LoopbackBrowserAuthorizer()


def _with_httpx2_base(cls: type[MCPOAuth]) -> type[MCPOAuth]:
    dual = MCPOAuth._with_httpx2.get(cls)
    if dual is not None:
        return dual
    if importlib.util.find_spec("httpx2") is None:
        MCPOAuth._with_httpx2[cls] = cls  # decided once: no filesystem lookup per instance
        return cls
    import httpx2

    dual = type(cls.__name__, (cls, httpx2.Auth), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
    MCPOAuth._with_httpx2[cls] = dual
    MCPOAuth._with_httpx2[dual] = dual
    return dual
