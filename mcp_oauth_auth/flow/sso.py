"""The enterprise identity provider's side of enterprise-managed authorization: where its token endpoint is, and the
person's ID token, from a single sign-on shared by every MCP server of the enterprise.

When the caller gives no ID token, the person signs in to the IdP with OpenID Connect (authorization code + PKCE
S256, ``scope=openid``, a ``nonce``) through the MCPOAuth authorizer (browser loopback, headless, paste-back), and
the IdP's answer (ID token, refresh token) is kept in the store as its own record: issuer = the IdP's, resource =
:func:`sso_resource` (the IdP's issuer and this client's ID there). Every MCPOAuth with the same store, IdP and
client finds it, so one sign-in serves every MCP server. When the ID token expires, the IdP session's refresh token
renews it; only when that is refused does the person sign in again.

The ID token is checked structurally (OpenID Connect Core §3.1.3.7): ``iss`` is the IdP's, ``aud`` names this
client, ``exp`` is in the future, and on sign-in ``nonce`` is the one sent. Its signature is the MCP authorization
server's to verify (through the ID-JAG the IdP signs); this client is not its audience's verifier.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from mcp_oauth_auth.exceptions import IdentityAssertionError, InvalidGrantError
from mcp_oauth_auth.flow.effects import (
    Effect,
    authorize,
    choose_redirect,
    load_record,
    lock_record,
    save_record,
    show_device_code,
    unlock_record,
)
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.records import ClientRegistration, CredentialRecord, RecordKey, TokenSet

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata
    from mcp_oauth_auth.flow.idp import EnterpriseIdP

__all__ = ["DEFAULT_SIGN_IN", "IdentityProvider", "SignInOptions", "id_token_claims", "sso_resource"]

logger = logging.getLogger("mcp_oauth_auth")

#: An ID token expiring within this many seconds is renewed first (the exchange and the grant take a moment).
ID_TOKEN_SKEW = 60.0


def sso_resource(issuer: str, client_id: str) -> str:
    """The ``resource`` of the IdP session's record: the IdP's issuer and this client's ID there."""
    return f"{issuer}#sso-client={quote(client_id, safe='')}"


def id_token_claims(id_token: str) -> dict[str, Any]:
    """The payload of a compact JWT, without verifying it; IdentityAssertionError when it is not one."""
    parts = id_token.split(".")
    if len(parts) != 3:
        raise IdentityAssertionError("the identity provider's ID token is not a JWT")
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except ValueError:
        raise IdentityAssertionError("the identity provider's ID token has an unreadable payload") from None
    if not isinstance(claims, dict):
        raise IdentityAssertionError("the identity provider's ID token payload is not a JSON object")
    return claims


@dataclass(frozen=True)
class SignInOptions:
    """How the person signs in to the IdP, from the MCPOAuth options: the device flow when the authorizer is a device
    one (``interaction``), or when no browser can be opened here (``headless``) and the IdP offers it; else a
    browser redirect. ``trust_unadvertised_pkce`` and ``allow_insecure_http`` as for the MCP side. ``account``:
    the MCP credential's account label, which the IdP session belongs to as well (two accounts never share one
    sign-in)."""

    interaction: str = "redirect"
    headless: bool = False
    trust_unadvertised_pkce: bool = False
    allow_insecure_http: bool = False
    account: str | None = None


DEFAULT_SIGN_IN = SignInOptions()


@dataclass(frozen=True)
class IdentityProvider:
    """One enterprise IdP as discovered (or as configured by its token endpoint), and this client there."""

    idp: EnterpriseIdP
    issuer: str | None
    token_endpoint: str
    client: ClientRegistration
    metadata: AuthorizationServerMetadata | None
    retry: RetryPolicy
    sign_in: SignInOptions = DEFAULT_SIGN_IN
    #: Sign in with the device flow (RFC 8628) rather than a browser redirect.
    device: bool = False

    @classmethod
    def find(
        cls, idp: EnterpriseIdP, retry: RetryPolicy, sign_in: SignInOptions = DEFAULT_SIGN_IN
    ) -> Generator[Effect, Any, IdentityProvider]:
        """The IdP's token endpoint: configured, or from its metadata (RFC 8414, OpenID Connect Discovery), and how
        a sign-in would go (:class:`SignInOptions`)."""
        allow_insecure_http = sign_in.allow_insecure_http
        if idp.issuer is None:
            assert idp.token_endpoint is not None
            return cls(idp, None, idp.token_endpoint, idp.client(), None, retry)
        from mcp_oauth_auth.flow.discovery import discover_authorization_server

        metadata = yield from discover_authorization_server(idp.issuer, retry, allow_insecure_http=allow_insecure_http)
        if metadata is None:
            raise IdentityAssertionError(
                f"the identity provider {idp.issuer} publishes no metadata (neither OpenID Connect Discovery nor "
                "RFC 8414): give EnterpriseIdP(token_endpoint=...) and an ID token instead",
                url=idp.issuer,
            )
        device = sign_in.interaction == "device" or (
            sign_in.interaction == "auto" and sign_in.headless and metadata.device_authorization_endpoint is not None
        )
        return cls(
            idp,
            metadata.issuer,
            metadata.token_endpoint,
            idp.client(metadata),
            metadata,
            retry,
            sign_in,
            device,
        )

    @property
    def key(self) -> RecordKey:
        assert self.issuer is not None
        return RecordKey(
            issuer=self.issuer, resource=sso_resource(self.issuer, self.idp.client_id), account=self.sign_in.account
        )

    def id_token(self, now: Callable[[], float] = time.time) -> Generator[Effect, Any, str]:
        """A current ID token of the person: the stored session's, renewed with its refresh token when expiring,
        else from a new sign-in (saved for every MCP server using this store)."""
        stored = yield from load_record(self.key)
        usable = self._usable(stored, now())
        if usable is not None:
            logger.debug("using the identity provider session of %s (single sign-on)", self.issuer)
            return usable
        if stored is not None and stored.tokens is not None and stored.tokens.refresh_token is not None:
            renewed = yield from self._renew(now)
            if renewed is not None:
                return renewed
        return (yield from self._sign_in(now))

    def _usable(self, record: CredentialRecord | None, at: float) -> str | None:
        """The stored ID token, when it exists and does not expire within :data:`ID_TOKEN_SKEW` seconds."""
        token = record.tokens.id_token if record is not None and record.tokens is not None else None
        if token is None:
            return None
        try:
            self._check(id_token_claims(token), at + ID_TOKEN_SKEW, None)
        except IdentityAssertionError:
            return None
        return token

    def _renew(self, now: Callable[[], float]) -> Generator[Effect, Any, str | None]:
        """A fresh ID token with the session's refresh token, under the record's lock (a peer may have done it)."""
        from mcp_oauth_auth.flow.tokens import refresh_tokens

        key = self.key
        yield from lock_record(key)
        try:
            current = yield from load_record(key)
            usable = self._usable(current, now())
            if usable is not None or current is None or current.tokens is None or not current.tokens.refresh_token:
                yield from unlock_record(key)
                return usable
            tokens = yield from refresh_tokens(
                self.token_endpoint,
                self.client,
                current.tokens.refresh_token,
                None,
                self.retry,
                previous_scope=current.tokens.scope,
                private_key=self.idp.private_key,
                issuer=self.issuer,
                now=now,
            )
        except InvalidGrantError as exc:
            yield from unlock_record(key)
            logger.info("the identity provider ended the session (%s); signing in again", exc.error)
            return None
        except Exception:
            yield from unlock_record(key)
            raise
        # Saved before anything else can fail: a rotated refresh token must never exist only in memory.
        yield from save_record(current.with_tokens(tokens))
        yield from unlock_record(key)
        if tokens.id_token is None:
            logger.info("the identity provider's refresh gave no ID token; signing in again")
            return None
        self._check(id_token_claims(tokens.id_token), now(), None)
        logger.debug("renewed the ID token with the identity provider session of %s", self.issuer)
        return tokens.id_token

    def _sign_in(self, now: Callable[[], float]) -> Generator[Effect, Any, str]:
        """OpenID Connect sign-in through the authorizer (a redirect with PKCE S256 and a nonce, or the device
        flow); the IdP's answer saved as the session record."""
        metadata = self.metadata
        assert metadata is not None
        assert self.issuer is not None
        scopes = tuple(dict.fromkeys(("openid", *self.idp.scopes)))
        if "offline_access" in metadata.scopes_supported and "offline_access" not in scopes:
            scopes = (*scopes, "offline_access")
        logger.info("signing in to the identity provider %s (single sign-on for its MCP servers)", self.issuer)
        if self.device:
            tokens, nonce = (yield from self._device_sign_in(metadata, scopes, now)), None
        else:
            tokens, nonce = yield from self._redirect_sign_in(metadata, scopes, now)
        if tokens.id_token is None:
            raise IdentityAssertionError(
                f"the identity provider {self.issuer} answered the sign-in without an ID token (is 'openid' among "
                "the client's allowed scopes?)",
                url=self.token_endpoint,
            )
        self._check(id_token_claims(tokens.id_token), now(), nonce)
        record = CredentialRecord(
            issuer=self.issuer,
            resource=self.key.resource,
            account=self.sign_in.account,
            server_url=self.issuer,
            client=self.client,
            token_endpoint=self.token_endpoint,
            tokens=tokens,
            requested_scopes=scopes,
            authorization_endpoint=metadata.authorization_endpoint,
            revocation_endpoint=metadata.revocation_endpoint,
        )
        yield from lock_record(record.key)
        yield from load_record(record.key)  # (a store with check-and-set versions learns the current one)
        yield from save_record(record)
        yield from unlock_record(record.key)
        return tokens.id_token

    def _redirect_sign_in(
        self, metadata: AuthorizationServerMetadata, scopes: tuple[str, ...], now: Callable[[], float]
    ) -> Generator[Effect, Any, tuple[TokenSet, str]]:
        """Authorization code + PKCE S256 with a ``nonce`` (OpenID Connect Core §3.1.2.1); the tokens and the nonce."""
        from mcp_oauth_auth.flow.authorization import check_pkce_support, start_authorization, validate_callback
        from mcp_oauth_auth.flow.tokens import exchange_code
        from mcp_oauth_auth.flow.urls import check_redirect_uri

        check_pkce_support(metadata, trust_unadvertised=self.sign_in.trust_unadvertised_pkce)
        redirect_uri = yield from choose_redirect(())
        check_redirect_uri(redirect_uri)
        pending = start_authorization(metadata, self.client, redirect_uri, scopes, None)
        nonce = secrets.token_urlsafe(24)
        callback = yield from authorize(f"{pending.url}&{urlencode({'nonce': nonce})}", redirect_uri)
        code = validate_callback(callback, pending, metadata)
        tokens = yield from exchange_code(
            self.token_endpoint,
            self.client,
            code,
            pending.code_verifier,
            redirect_uri,
            None,
            self.retry,
            private_key=self.idp.private_key,
            issuer=self.issuer,
            now=now,
        )
        return tokens, nonce

    def _device_sign_in(
        self, metadata: AuthorizationServerMetadata, scopes: tuple[str, ...], now: Callable[[], float]
    ) -> Generator[Effect, Any, TokenSet]:
        """The device flow (RFC 8628) at the IdP: the person approves on any device (no nonce in this flow)."""
        from mcp_oauth_auth.flow.device import poll_device_token, start_device_authorization

        device = yield from start_device_authorization(
            metadata,
            self.client,
            scopes,
            None,
            self.retry,
            private_key=self.idp.private_key,
            allow_insecure_http=self.sign_in.allow_insecure_http,
            now=now,
        )
        yield from show_device_code(device)
        return (
            yield from poll_device_token(
                self.token_endpoint,
                self.client,
                device,
                None,
                self.retry,
                now,
                private_key=self.idp.private_key,
                issuer=self.issuer,
            )
        )

    def _check(self, claims: dict[str, Any], at: float, nonce: str | None) -> None:
        """OpenID Connect Core §3.1.3.7, structurally: iss, aud (and azp), exp, and the sign-in's nonce."""
        if claims.get("iss") != self.issuer:
            raise IdentityAssertionError(
                f"the ID token's iss is not the identity provider's issuer {self.issuer}", url=self.issuer
            )
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
        if self.idp.client_id not in audiences:
            raise IdentityAssertionError("the ID token is not meant for this client (aud)", url=self.issuer)
        expires = claims.get("exp")
        if not isinstance(expires, (int, float)) or isinstance(expires, bool) or expires <= at:
            raise IdentityAssertionError("the ID token has expired or has no exp", url=self.issuer)
        if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise IdentityAssertionError(
                "the ID token's nonce is not the one of this sign-in (a replayed ID token?)", url=self.issuer
            )
