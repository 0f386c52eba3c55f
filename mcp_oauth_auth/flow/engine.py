"""The MCP authorization flow for one protected resource: what to do when a token is missing, expiring, rejected
(401) or too narrow (403 ``insufficient_scope``).

:class:`FlowEngine` holds the in-memory credential state; its generator methods are the only code that changes
it, and a driver runs at most one of them at a time per engine (the credential lock). What a protected request
needs, before it is sent and after each response, the engine answers through an
:class:`~mcp_oauth_auth.flow.exchange.Exchange` (:meth:`FlowEngine.exchange`), lock-free on the hot path.
Time is read from the engine's ``clock`` only.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from mcp_oauth_auth.exceptions import (
    AuthorizationError,
    ClientUnknownError,
    InsufficientScopeError,
    InvalidGrantError,
    TemporaryOAuthError,
    TokenRefreshError,
)
from mcp_oauth_auth.flow.addresses import AddressPolicy
from mcp_oauth_auth.flow.config import MACHINE_GRANTS, FlowConfig
from mcp_oauth_auth.flow.effects import (
    Effect,
    delete_record,
    load_record,
    load_records,
    lock_record,
    save_record,
    unlock_record,
)
from mcp_oauth_auth.flow.exchange import Exchange, Outcome
from mcp_oauth_auth.flow.tokens import refresh_due_at, refresh_tokens
from mcp_oauth_auth.flow.urls import BearerScope, canonical_resource, same_issuer, same_resource
from mcp_oauth_auth.records import ClientRegistration, CredentialRecord, RecordKey, TokenSet

if TYPE_CHECKING:
    # Needed only when a request meets a 401 or a token must be revoked: imported there (start-up time).
    from mcp_oauth_auth.flow.challenge import BearerChallenge
    from mcp_oauth_auth.flow.client_auth import ClientAssertionSigner
    from mcp_oauth_auth.flow.discovery import ProtectedResourceMetadata
    from mcp_oauth_auth.flow.dpop import DPoPState
    from mcp_oauth_auth.flow.revocation import RevocationOutcome

__all__ = ["FlowConfig", "FlowEngine", "Outcome"]

logger = logging.getLogger("mcp_oauth_auth")

T = TypeVar("T")

#: Seconds after an authorization during which a rejected token does not start another one (a 401 storm).
AUTHORIZATION_COOL_DOWN = 60.0


class FlowEngine:
    """The credential state of one MCP server, and the flows that change it."""

    def __init__(self, config: FlowConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        #: Seconds since the epoch, now: every decision that depends on time reads it here.
        self.clock = clock
        self.server_url = canonical_resource(config.server_url)
        self.record: CredentialRecord | None = None
        self.loaded = False
        #: The current access token, or None; read lock-free by the drivers.
        self.access_token: str | None = None
        #: When the driver should refresh before sending (``expires_at - refresh_skew``); +inf if unknown.
        self.refresh_due_at = math.inf
        self.bearer_scope = BearerScope.for_resource(self.server_url)
        #: When the server last rejected a token on the request it was authorized for (see _check_not_looping).
        self.fresh_token_rejected_at = -math.inf
        self.address_policy = AddressPolicy.for_urls(
            self.server_url,
            (
                config.client.issuer,
                config.resource_metadata_url,
                *(
                    (config.identity_assertion.issuer, config.identity_assertion.token_endpoint)
                    if config.identity_assertion is not None
                    else ()
                ),
            ),
            config.allow_private_networks,
        )
        #: The addresses the MCP server's responses came from (see :meth:`note_server_peer`).
        self.server_peers: frozenset[str] = frozenset()
        #: DPoP (RFC 9449): the key and nonces when in use (asked for, or required by the resource), else None.
        self.dpop: DPoPState | None = None
        #: ``self.dpop`` while the current access token is DPoP-bound (sent as ``DPoP`` with a proof), else None.
        self.dpop_bound: DPoPState | None = None
        if config.dpop is not False:
            self.require_dpop(requested=True)

    def require_dpop(self, *, requested: bool = False) -> DPoPState:
        """Turn DPoP on (asked for by the caller, or because the resource accepts DPoP-bound tokens only)."""
        if self.dpop is None:
            from mcp_oauth_auth.flow.dpop import DPoPState

            self.dpop = DPoPState.for_config(self.config.dpop, self.server_url, requested=requested)
        return self.dpop

    # -- state -------------------------------------------------------------------------------------------------

    def _adopt(self, record: CredentialRecord | None) -> None:
        if record is not None and (record.dpop_key or (record.tokens and record.tokens.token_type == "DPoP")):
            from mcp_oauth_auth.flow.dpop import adopt_binding

            record = adopt_binding(record, self.require_dpop())
        self.record = record
        tokens = record.tokens if record else None
        self.dpop_bound = self.dpop if tokens is not None and tokens.token_type == "DPoP" else None
        self.access_token = tokens.access_token if tokens else None
        self.refresh_due_at = refresh_due_at(tokens, self.config.refresh_skew)
        if record is not None:
            # The record's resource, when it is a parent of the server URL, only where the caller accepts that.
            resource = record.resource if self.config.allow_parent_resource else self.server_url
            self.bearer_scope = BearerScope.for_resource(resource)

    def _commit(self, record: CredentialRecord) -> Generator[Effect, Any, None]:
        """Persist first, then use: a rotated refresh token must never exist only in memory."""
        yield from save_record(record)
        self._adopt(record)

    def load(self) -> Generator[Effect, Any, None]:
        """Adopt the most recently updated stored record for this server and this account, once per engine (a
        record of another account is never adopted: its tokens belong to another person or tenant)."""
        if self.loaded:
            return
        records = yield from load_records(self.server_url)
        pinned = self.config.client.issuer
        usable = [
            record
            for record in records
            if record.tokens is not None
            and record.account == self.config.account
            and (pinned is None or same_issuer(record.issuer, pinned))
            and (self.config.allow_parent_resource or same_resource(record.resource, self.server_url))
        ]
        if usable:
            latest = max(usable, key=lambda record: record.updated_at)
            logger.debug("using the stored credential for %s", latest.key)
            self._adopt(latest)
        self.loaded = True

    # -- entry points (run under the credential lock) ----------------------------------------------------------

    def exchange(self) -> Exchange:
        """What one protected request needs: credential work before it is sent and after each response."""
        return Exchange(self)

    # Each entry point runs its flow guarded: every request it makes is checked against the address policy.

    def ensure_fresh(self, now: float | None = None) -> Generator[Effect, Any, None]:
        """Before sending: load stored credentials and renew an expiring token when a refresh token exists."""
        return self._guarded(self._ensure_fresh(now))

    def recover(
        self, status: int, challenge: BearerChallenge, rejected_token: str | None, attempt: int
    ) -> Generator[Effect, Any, Outcome]:
        """After the server rejected ``rejected_token`` with 401, or with 403 ``insufficient_scope`` (``attempt``
        counts the earlier recoveries of the same kind for this request). Returns what was done: reused (another
        request or process had already renewed the credential), refreshed or authorized."""
        return self._guarded(self._recover(status, challenge, rejected_token, attempt))

    def authenticate(self, scopes: tuple[str, ...] = ()) -> Generator[Effect, Any, None]:
        """Make sure a usable token exists without a protected request: stored, refreshed, or newly obtained.
        ``scopes`` never requested before cause one new authorization for the union of the old and the new (the
        union is compared with what was *requested*: scopes a server chose not to grant are not asked for again)."""
        return self._guarded(self._authenticate(scopes))

    def logout(self, revoke: bool) -> Generator[Effect, Any, list[RevocationOutcome]]:
        """Revoke the stored tokens (RFC 7009; refresh token first) when ``revoke``, then delete the record, under
        the record's lock on what the store holds now (the current tokens, whoever rotated them). Revocation failures
        are reported, and the record is deleted anyway: the person asked to be logged out here."""
        return self._guarded(self._logout(revoke))

    def note_server_peer(self, address: str | None) -> None:
        """The address a response of the MCP server came from (when the client tells it): the flows' responses from
        the same address are not refused by the address policy (a proxy, or a front shared with the server)."""
        if address is not None and address not in self.server_peers:
            self.server_peers = self.server_peers | {address}

    def _guarded(self, flow: Generator[Effect, Any, T]) -> Generator[Effect, Any, T]:
        from mcp_oauth_auth.flow.guard import guarded

        config = self.config
        idp = config.identity_assertion
        elsewhere = tuple(url for url in (idp.issuer, idp.token_endpoint) if url) if idp is not None else ()
        return guarded(
            flow,
            self.address_policy,
            allow_insecure_http=config.allow_insecure_http,
            max_body=config.max_response_size,
            deadline=config.response_deadline,
            rewrite=config.request_rules.rewriter(self.server_url, elsewhere),
            server_peers=self.server_peers,
        )

    def _ensure_fresh(self, now: float | None) -> Generator[Effect, Any, None]:
        now = self.clock() if now is None else now
        yield from self.load()
        tokens = self.record.tokens if self.record else None
        renewable = tokens is not None and (
            tokens.refresh_token is not None or self.config.grant_type in MACHINE_GRANTS
        )
        if tokens is None or not renewable or now < self.refresh_due_at:
            return
        try:
            yield from self._renew(self.access_token, now)
        except TemporaryOAuthError:
            if tokens.expires_within(0, now):
                raise
            logger.warning("token refresh failed temporarily; the current token is still valid, using it")
        except InvalidGrantError as exc:
            logger.info("the refresh token was refused for good (%s); a new authorization will be needed", exc.error)

    def _recover(
        self, status: int, challenge: BearerChallenge, rejected_token: str | None, attempt: int
    ) -> Generator[Effect, Any, Outcome]:
        yield from self.load()
        if self.access_token is not None and self.access_token != rejected_token:
            logger.debug("another request already renewed the credential; reusing it")
            return Outcome.REUSED
        if status == 403:
            return (yield from self._step_up(challenge, attempt))
        if attempt == 0 and self.record is not None and self.record.tokens is not None:
            try:
                outcome = yield from self._renew(rejected_token, None)
            except InvalidGrantError as exc:
                logger.info("the refresh token was refused for good (%s); authorizing anew", exc.error)
            else:
                if outcome is not None:
                    return outcome
        self._check_not_looping()
        yield from self.authorize_new(challenge, None)
        return Outcome.AUTHORIZED

    def _step_up(self, challenge: BearerChallenge, attempt: int) -> Generator[Effect, Any, Outcome]:
        """A new authorization for the scopes asked for before and those the 403 challenge names (the union, in
        order: RFC 6749 §3.3 scopes are a set), unless that would only repeat a failure."""
        if attempt >= self.config.max_step_up:
            raise InsufficientScopeError(
                f"the server still requires more scope after {attempt} step-up authorizations",
                error=challenge.error,
                error_description=challenge.error_description,
                url=self.server_url,
            )
        previous = self.record.requested_scopes if self.record else ()
        if set(challenge.scopes) <= set(previous):
            # Asking again for what was already asked for would only repeat the failure (and, with a person,
            # the consent screen): the authorization server does not grant these scopes to this account.
            raise InsufficientScopeError(
                f"the server requires scopes {list(challenge.scopes) or '(unnamed)'}, but the authorization "
                f"already asked for {list(previous)} and was not granted enough: the account may lack the "
                "permission, or the consent left a scope out",
                error=challenge.error,
                error_description=challenge.error_description,
                url=self.server_url,
            )
        scopes = _union(previous, challenge.scopes)
        logger.info("step-up: the server asks for scopes %s", list(challenge.scopes))
        yield from self.authorize_new(challenge, scopes)
        return Outcome.AUTHORIZED

    def _authenticate(self, scopes: tuple[str, ...]) -> Generator[Effect, Any, None]:
        from mcp_oauth_auth.flow.challenge import BearerChallenge

        now = self.clock()
        yield from self._ensure_fresh(now)
        tokens = self.record.tokens if self.record else None
        if tokens is None or tokens.expires_within(0, now):
            # No token, or an expired one that could not be renewed (no refresh token, or it was refused).
            yield from self.authorize_new(BearerChallenge(), scopes or None, challenged=False)
            return
        requested = self.record.requested_scopes if self.record else ()
        if scopes and not set(scopes) <= set(requested):
            union = _union(requested, scopes)
            logger.info(
                "authorizing %s again for the new scopes %s", self.server_url, sorted(set(scopes) - set(requested))
            )
            yield from self.authorize_new(BearerChallenge(), union)

    def _logout(self, revoke: bool) -> Generator[Effect, Any, list[RevocationOutcome]]:
        yield from self.load()
        if self.record is None:
            return []
        key = self.record.key
        yield from lock_record(key)
        current = yield from load_record(key)
        outcomes: list[RevocationOutcome] = []
        if revoke and current is not None and current.tokens is not None:
            from mcp_oauth_auth.flow.revocation import revoke_tokens

            outcomes = yield from revoke_tokens(
                current.revocation_endpoint,
                current.client,
                current.tokens,
                self.config.retry,
                private_key=self._private_key_for(current.client),
                issuer=current.issuer,
                now=self.clock,
            )
        if current is not None:
            yield from delete_record(key)
        self._adopt(None)
        yield from unlock_record(key)
        logger.info("logged out of %s (%s)", self.server_url, key)
        return outcomes

    # -- the flows ---------------------------------------------------------------------------------------------

    def _renew(self, stale_token: str | None, now: float | None) -> Generator[Effect, Any, Outcome | None]:
        """Replace ``stale_token``: adopt what another process stored meanwhile, else refresh.

        Runs under the store's lock for the record, after re-reading it, so that processes sharing a store never
        spend the same (single-use, rotated) refresh token twice: the second one finds the first one's result.
        The rotated record is saved before the lock is released and before its access token is used.
        Returns reused or refreshed; None when the record cannot be renewed (no refresh token, or it is gone).
        """
        assert self.record is not None
        key = self.record.key
        waiting_since = self.clock()
        # A look without the lock first: when a peer has already renewed the credential (the common case in a fleet,
        # where one worker refreshes and all the others follow), its token is adopted without queueing for the lock.
        peek = yield from load_record(key)
        if peek is not None and self._renewed_by_peer(peek, stale_token, now):
            self._adopt(peek)
            if self.record is not None and self.record.tokens is not None:  # (not DPoP-bound tokens without key)
                logger.debug("another process already renewed the credential for %s; using its token", key)
                return Outcome.REUSED
        yield from lock_record(key)
        current = yield from load_record(key)
        if current is None or current.tokens is None:
            # Logged out, or a peer's refresh was refused: nothing to refresh with. Keep our registration.
            self._adopt(current or self.record.with_tokens(None))
            yield from unlock_record(key)
            return None
        self._adopt(current)
        if self.record is None or self.record.tokens is None:  # DPoP-bound tokens whose key is gone
            yield from unlock_record(key)
            return None
        # ``now`` plus the wait for the lock: the wait may have outlasted the token a peer saved (a peer that died
        # holding the lock right after saving it blocks the others for its lease).
        if self._renewed_by_peer(current, stale_token, None if now is None else now + self.clock() - waiting_since):
            logger.debug("another process already renewed the credential for %s; using its token", key)
            yield from unlock_record(key)
            return Outcome.REUSED
        if current.tokens.refresh_token is not None:
            yield from self._refresh(current, key)
            return Outcome.REFRESHED
        if self.config.grant_type in MACHINE_GRANTS:
            yield from self._reissue(current, key)
            return Outcome.REFRESHED
        yield from unlock_record(key)
        return None

    def _renewed_by_peer(self, record: CredentialRecord, stale_token: str | None, now: float | None) -> bool:
        """Whether ``record`` holds another token than ``stale_token``, not yet due for renewal at ``now``."""
        tokens = record.tokens
        if tokens is None or tokens.access_token == stale_token:
            return False
        return now is None or now < refresh_due_at(tokens, self.config.refresh_skew)

    def _reissue(self, record: CredentialRecord, key: RecordKey) -> Generator[Effect, Any, None]:
        """A new token by the machine grant, at the stored endpoint: no discovery, no refresh token needed."""
        from mcp_oauth_auth.flow.grants import machine_grant

        config = self.config
        resource = record.resource if config.send_resource_indicator else None
        _, tokens = yield from machine_grant(
            self.config,
            self.clock,
            self._private_key_for,
            record.token_endpoint,
            record.issuer,
            record.client,
            record.requested_scopes,
            resource,
            self.dpop and self.dpop.for_renewal(),
        )
        yield from self._commit(self._with_tokens(record, tokens))
        yield from unlock_record(key)
        logger.debug("renewed the %s token for %s", config.grant_type, key)

    def _refresh(self, record: CredentialRecord, key: RecordKey) -> Generator[Effect, Any, None]:
        assert record.tokens is not None
        assert record.tokens.refresh_token is not None
        resource = record.resource if self.config.send_resource_indicator else None
        try:
            tokens = yield from refresh_tokens(
                record.token_endpoint,
                record.client,
                record.tokens.refresh_token,
                resource,
                self.config.retry,
                previous_scope=record.tokens.scope,
                private_key=self._private_key_for(record.client),
                issuer=record.issuer,
                now=self.clock,
                dpop=self.dpop and self.dpop.for_renewal(),
            )
        except InvalidGrantError:
            # Final: this refresh token will never work again. Keep the registration, drop the tokens, and let
            # go of the lock before anyone starts a (long) new authorization.
            yield from self._commit(record.with_tokens(None))
            yield from unlock_record(key)
            raise
        except TokenRefreshError as exc:
            if exc.error != "invalid_client" or record.client.kind != "dynamic":
                raise
            # The server forgot our dynamic registration: the whole record is useless (we hold its lock and have
            # just re-read it, so no peer's newer record is lost).
            yield from delete_record(key)
            self._adopt(None)
            yield from unlock_record(key)
            raise ClientUnknownError(
                "the authorization server no longer knows the registered client; registering again",
                url=exc.url,
                error=exc.error,
                error_description=exc.error_description,
                status_code=exc.status_code,
            ) from exc
        yield from self._commit(self._with_tokens(record, tokens))
        yield from unlock_record(key)
        logger.debug("refreshed the access token for %s", key)

    def authorize_new(
        self, challenge: BearerChallenge, step_up_scopes: tuple[str, ...] | None, *, challenged: bool = True
    ) -> Generator[Effect, Any, None]:
        """Discovery, client identity, then a first token by the configured grant (code, device or client
        credentials). ``challenged``: the server answered 401 (False for ``authenticate()``, which asks first)."""
        from mcp_oauth_auth.flow.binding import check_client_stays_with, secret_bound
        from mcp_oauth_auth.flow.discovery import (
            confirm_protected_endpoint,
            discover_protected_resource,
            find_authorization_server,
        )
        from mcp_oauth_auth.flow.grants import choose_grant, first_grant

        config = self.config
        metadata_url = challenge.resource_metadata or config.resource_metadata_url
        prm = yield from discover_protected_resource(
            self.server_url,
            metadata_url,
            config.retry,
            allow_insecure_http=config.allow_insecure_http,
            allow_parent_resource=config.allow_parent_resource,
        )
        server = yield from find_authorization_server(
            self.server_url,
            secret_bound(config, self.server_url, prm),
            config.retry,
            allow_insecure_http=config.allow_insecure_http,
            issuer=config.client.issuer,
        )
        if server.assumed_defaults and not challenged:
            yield from confirm_protected_endpoint(self.server_url, config.retry)
        check_client_stays_with(config, self.record, self.server_url, server.issuer)
        if prm is not None and prm.dpop_bound_access_tokens_required:
            self.require_dpop()
        resource = prm.resource if prm else self.server_url
        resource_parameter = resource if config.send_resource_indicator else None
        scopes = config.request_rules.scopes(
            step_up_scopes or self._with_earlier_scopes(self._choose_scopes(challenge, prm))
        )
        existing = self.record.client if self.record and self.record.issuer == server.issuer else None
        grant = choose_grant(config, server)
        dpop = self.dpop and self.dpop.for_server(server.extra.get("dpop_signing_alg_values_supported"))
        client, tokens, scopes = yield from first_grant(
            config, self.clock, self._private_key_for, server, grant, existing, scopes, resource_parameter, dpop
        )
        record = CredentialRecord(
            issuer=server.issuer,
            resource=resource,
            server_url=self.server_url,
            client=client,
            token_endpoint=server.token_endpoint,
            tokens=tokens,
            requested_scopes=scopes,
            authorization_endpoint=server.authorization_endpoint,
            revocation_endpoint=server.revocation_endpoint,
            account=config.account,
        )
        record = self._with_tokens(record, tokens)
        yield from lock_record(record.key)
        # Also how a store with check-and-set versions (Vault) learns the current version before writing.
        previous = yield from load_record(record.key)
        names = (*(previous.names if previous else ()), *((config.name,) if config.name else ()))
        # The names and the CLI's note of how to renew (``renewal``) belong to the credential, not to one grant.
        record = replace(record, names=tuple(dict.fromkeys(names)), renewal=previous.renewal if previous else None)
        yield from self._commit(record)
        yield from unlock_record(record.key)
        logger.info("authorized %s with %s (%s, scopes %s)", self.server_url, server.issuer, grant, list(scopes))

    def _check_not_looping(self) -> None:
        """A server that rejects every token would otherwise start one authorization (a person's approval) per
        request: within :data:`AUTHORIZATION_COOL_DOWN` seconds of its rejecting a token just authorized (the
        Exchange notes it), asking again is an error instead."""
        since = self.clock() - self.fresh_token_rejected_at
        if since < AUTHORIZATION_COOL_DOWN:
            raise AuthorizationError(
                f"{self.server_url} rejected a token it had just been authorized for, {since:.0f} s ago; not "
                f"authorizing again within {AUTHORIZATION_COOL_DOWN:.0f} s (the server may reject every token: check "
                "its configuration)",
                url=self.server_url,
            )

    def _with_tokens(self, record: CredentialRecord, tokens: TokenSet) -> CredentialRecord:
        """``record`` with ``tokens``, and with the DPoP key they are bound to (none for bearer tokens)."""
        key = self.dpop.key if self.dpop is not None and tokens.token_type == "DPoP" else None
        return replace(record.with_tokens(tokens), dpop_key=key.private_pem() if key is not None else None)

    def _private_key_for(self, client: ClientRegistration) -> ClientAssertionSigner | None:
        """The signing key for ``client``'s requests: only a client that authenticates with private_key_jwt."""
        return self.config.private_key if client.token_endpoint_auth_method == "private_key_jwt" else None

    def _choose_scopes(self, challenge: BearerChallenge, prm: ProtectedResourceMetadata | None) -> tuple[str, ...]:
        """The caller's scopes with the challenge's ``scope`` (authoritative for the operation at hand, so never
        left out); without scopes from the caller, the challenge's, else the PRM ``scopes_supported``, else none."""
        if self.config.scopes is not None:
            return _union(self.config.scopes, challenge.scopes)
        if challenge.scopes:
            return challenge.scopes
        return prm.scopes_supported if prm else ()

    def _with_earlier_scopes(self, scopes: tuple[str, ...]) -> tuple[str, ...]:
        """``scopes`` and those of the credential being replaced, so that an authorization gained by a step-up is
        not lost by authorizing again (``offline_access`` is added afresh when the authorization server offers
        it)."""
        earlier = tuple(
            scope for scope in (self.record.requested_scopes if self.record else ()) if scope != "offline_access"
        )
        return _union(earlier, scopes)


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    """The scopes of ``first``, then those of ``second`` not among them."""
    return tuple(dict.fromkeys((*first, *second)))
