"""The token endpoint: one request log record per request, then the grants: authorization code (single use, bound
to client, redirect URI, PKCE challenge, scope and resource), refresh token (rotation with reuse detection),
client_credentials, the jwt-bearer grant of workloads (RFC 7523 §2.1), and the device code polls (RFC 8628 §3.4,
§3.5: pending, slow_down, denied, expired)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import secrets
from typing import Any

from mcp_oauth_auth.testing.fake_as.client_auth import ClientAuthentication, identify_client
from mcp_oauth_auth.testing.fake_as.issuing import TokenIssuer
from mcp_oauth_auth.testing.fake_as.jwt_bearer import verify_workload_assertion
from mcp_oauth_auth.testing.fake_as.metadata import DEVICE_CODE_GRANT, JWT_BEARER, MetadataEndpoint
from mcp_oauth_auth.testing.fake_as.oauth_http import (
    Reject,
    check_form,
    error_code,
    method_not_allowed,
    parse_form,
    split_scope,
    token_error,
)
from mcp_oauth_auth.testing.fake_as.records import FakeClient, Grant
from mcp_oauth_auth.testing.fake_http import FakeRequest, FakeResponse
from mcp_oauth_auth.testing.fake_idp import ID_JAG_TYP, verify_id_jag

__all__ = ["TokenEndpoint"]

_CODE_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


class TokenEndpoint(ClientAuthentication, TokenIssuer, MetadataEndpoint):
    """``/token``."""

    def handle_token(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        record: dict[str, Any] = dict.fromkeys(
            (
                "grant_type",
                "client_id",
                "auth_method",
                "resource",
                "scope",
                "status",
                "error",
                "workload",
                "dpop_jkt",
                "id_jag",
            )
        )
        self._context.log.token_requests.append(record)
        try:
            response = self._token(request, injected, record)
        except Reject as reject:
            response = reject.response
        finally:
            record["dpop_jkt"], self._dpop_jkt = self._dpop_jkt, None
        response = self._with_dpop_nonce(response)
        record["status"] = response.status
        if response.status >= 400:
            record["error"] = error_code(response)
        return response

    def _token(self, request: FakeRequest, injected: FakeResponse | None, record: dict[str, Any]) -> FakeResponse:
        if request.method != "POST":
            return method_not_allowed("POST")
        form, repeated = parse_form(request)
        record.update(grant_type=form.get("grant_type"), resource=form.get("resource"), scope=form.get("scope"))
        with contextlib.suppress(Reject):
            record["client_id"], record["auth_method"], _ = identify_client(request, form)
        if injected is not None:
            return injected
        check_form(request, repeated)
        self._dpop_jkt = self._dpop_proof_key(request)
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise token_error("invalid_request", "grant_type is required")
        if grant_type not in self.supported_grants():
            raise token_error("unsupported_grant_type", f"unsupported grant_type {grant_type!r}")
        client, method = self._authenticate(request, form)
        if grant_type not in client.grant_types:
            raise token_error("unauthorized_client", f"the client is not registered for {grant_type}")
        if grant_type == "authorization_code":
            return self._redeem_code(client, form)
        if grant_type == DEVICE_CODE_GRANT:
            return self._redeem_device_code(client, form)
        if grant_type == "client_credentials":
            return self._client_credentials(client, method, form)
        if grant_type == JWT_BEARER:
            return self._jwt_bearer(client, form, record)
        return self._refresh(client, form)

    def _redeem_code(self, client: FakeClient, form: dict[str, str]) -> FakeResponse:
        code_value = form.get("code")
        if code_value is None:
            raise token_error("invalid_request", "code is required")
        code = self._codes.get(code_value)
        if code is None or code.client_id != client.client_id:
            raise token_error("invalid_grant", "unknown authorization code")
        if code.used:
            # RFC 6749 §4.1.2: a code used twice revokes what it produced.
            if code.grant_id is not None:
                self._grants[code.grant_id].revoked = True
            raise token_error("invalid_grant", "the authorization code was already used")
        code.used = True
        if self._context.now() >= code.expires_at:
            raise token_error("invalid_grant", "the authorization code expired")
        redirect_uri = form.get("redirect_uri")
        if redirect_uri is None:
            raise token_error("invalid_request", "redirect_uri is required")
        if redirect_uri != code.redirect_uri:
            raise token_error("invalid_grant", "redirect_uri differs from the authorization request")
        verifier = form.get("code_verifier")
        if verifier is None:
            raise token_error("invalid_request", "code_verifier is required (PKCE)")
        if not _CODE_VERIFIER.match(verifier):
            raise token_error("invalid_request", "code_verifier is malformed (RFC 7636 §4.1)")
        if not hmac.compare_digest(_s256(verifier), code.code_challenge):
            raise token_error("invalid_grant", "PKCE verification failed")
        resource = form.get("resource")
        if code.resource is not None and resource != code.resource:
            raise token_error("invalid_target", "resource differs from the authorization request")
        if resource is not None and resource not in self._context.accepted_resources():
            raise token_error("invalid_target", "unknown resource")
        grant = Grant(secrets.token_hex(8), client.client_id, code.scopes, resource)
        self._grants[grant.grant_id] = grant
        code.grant_id = grant.grant_id
        return self._token_response(self._issue(grant, client, grant.scopes, new_grant=True))

    def _refresh(self, client: FakeClient, form: dict[str, str]) -> FakeResponse:
        config = self._context.config
        token_value = form.get("refresh_token")
        if token_value is None:
            raise token_error("invalid_request", "refresh_token is required")
        refresh = self._refresh_tokens.get(token_value)
        if refresh is None or refresh.client_id != client.client_id:
            raise token_error("invalid_grant", "unknown refresh token")
        grant = refresh.grant
        if grant.revoked:
            raise token_error("invalid_grant", "the refresh token has been revoked")
        if refresh.rotated_out:
            grant.revoked = True  # reuse of a rotated-out token: assume theft, revoke the whole grant
            raise token_error("invalid_grant", "refresh token reuse detected; the grant has been revoked")
        if refresh.jkt is not None and refresh.jkt != self._dpop_jkt:
            raise token_error("invalid_grant", "the refresh token is bound to another DPoP key (RFC 9449 §5)")
        resource = form.get("resource")
        if resource is not None and resource != grant.resource:
            raise token_error("invalid_target", "resource differs from the original grant")
        requested = split_scope(form.get("scope"))
        beyond = [scope for scope in requested if scope not in grant.scopes]
        if beyond:
            raise token_error("invalid_scope", f"scope beyond the original grant: {' '.join(beyond)}")
        scopes = tuple(dict.fromkeys(requested)) if requested else grant.scopes
        document = self._issue(grant, client, scopes, new_grant=False)
        if config.rotate_refresh_tokens:
            refresh.rotated_out = True
            document["refresh_token"] = self._new_refresh_token(grant, client)
        elif config.return_refresh_token_on_refresh:
            document["refresh_token"] = token_value
        return self._token_response(document)

    def _client_credentials(self, client: FakeClient, method: str, form: dict[str, str]) -> FakeResponse:
        """RFC 6749 §4.4: confidential clients only; the access token's audience is ``resource``; no refresh
        token (§4.4.3)."""
        if method == "none":
            raise token_error("unauthorized_client", "client_credentials is for confidential clients only")
        scopes = self._requested_scopes(form.get("scope"))
        resource = self._checked_resource(form.get("resource"))
        grant = Grant(secrets.token_hex(8), client.client_id, scopes, resource)
        self._grants[grant.grant_id] = grant
        return self._token_response(self._issue(grant, client, scopes, new_grant=True, refresh_allowed=False))

    def _jwt_bearer(self, client: FakeClient, form: dict[str, str], record: dict[str, Any]) -> FakeResponse:
        """RFC 7523 §2.1: the workload's JWT (``assertion``) from a trusted issuer; tokens for the resource asked for,
        no refresh token (a new assertion renews). The workload (``sub``) goes to the request log."""
        assertion = form.get("assertion")
        if not assertion:
            raise token_error("invalid_request", "assertion is required")
        context = self._context
        resource = self._checked_resource(form.get("resource"))
        idp = context.idp
        if idp is not None and _header_typ(assertion) == ID_JAG_TYP:
            claims = verify_id_jag(assertion, idp, context.issuer, client.client_id, resource, context.now())
            record["id_jag"] = True
        else:
            audiences = (context.issuer, f"{context.issuer}/token")
            claims = verify_workload_assertion(assertion, context.config.workload_issuers, audiences, context.now())
        record["workload"] = claims["sub"]
        scopes = self._requested_scopes(form.get("scope"))
        grant = Grant(secrets.token_hex(8), client.client_id, scopes, resource)
        self._grants[grant.grant_id] = grant
        return self._token_response(self._issue(grant, client, scopes, new_grant=True, refresh_allowed=False))

    def _redeem_device_code(self, client: FakeClient, form: dict[str, str]) -> FakeResponse:
        """One poll (RFC 8628 §3.4, §3.5): pending, slow_down, denied, expired, or the tokens (once)."""
        config = self._context.config
        device_code = form.get("device_code")
        if device_code is None:
            raise token_error("invalid_request", "device_code is required")
        entry = self._device_codes.get(device_code)
        if entry is None or entry.client_id != client.client_id:
            raise token_error("invalid_grant", "unknown device code")
        if entry.used:
            raise token_error("invalid_grant", "the device code was already used")
        now = self._context.now()
        if now >= entry.expires_at:
            raise token_error("expired_token", "the device code expired")
        # A poll sooner than the interval after the previous one is answered slow_down (RFC 8628 §3.5); the
        # client is then expected to add 5 seconds to its interval, so a client that ignores it never gets past.
        too_fast = entry.last_poll is not None and now - entry.last_poll < entry.interval
        entry.last_poll = now
        if too_fast:
            raise token_error("slow_down", f"poll at most every {entry.interval:.0f} seconds")
        entry.polls += 1
        auto = config.device_auto_approve_after_polls
        if entry.status == "pending" and auto is not None and entry.polls > auto:
            entry.status = "denied" if config.deny_authorization else "approved"
            entry.granted_scopes = entry.scopes
        if entry.status == "denied":
            raise token_error("access_denied", "the user denied the request")
        if entry.status == "pending":
            raise token_error("authorization_pending", "the user has not decided yet")
        resource = form.get("resource")
        if entry.resource is not None and resource != entry.resource:
            raise token_error("invalid_target", "resource differs from the device authorization request")
        self._checked_resource(resource)
        entry.used = True
        grant = Grant(secrets.token_hex(8), client.client_id, entry.granted_scopes, resource)
        self._grants[grant.grant_id] = grant
        return self._token_response(self._issue(grant, client, grant.scopes, new_grant=True))


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _header_typ(token: str) -> object:
    """The ``typ`` of a compact JWS's header, unverified (None when unreadable)."""
    try:
        encoded = token.split(".", maxsplit=1)[0]
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except ValueError:
        return None
    return header.get("typ") if isinstance(header, dict) else None
