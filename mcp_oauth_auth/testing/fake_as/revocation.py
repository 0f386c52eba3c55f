"""What a client can ask about a token it holds: revocation (RFC 7009) and introspection (RFC 7662)."""

from __future__ import annotations

import contextlib
from typing import Any

from mcp_oauth_auth.testing.fake_as.client_auth import ClientAuthentication, identify_client
from mcp_oauth_auth.testing.fake_as.oauth_http import Reject, check_form, method_not_allowed, parse_form, token_error
from mcp_oauth_auth.testing.fake_as.records import FAKE_SUBJECT
from mcp_oauth_auth.testing.fake_http import FakeRequest, FakeResponse, json_response, oauth_error

__all__ = ["RevocationAndIntrospection"]


class RevocationAndIntrospection(ClientAuthentication):
    """``/revoke`` and ``/introspect``."""

    def handle_revoke(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        record: dict[str, Any] = dict.fromkeys(
            ("client_id", "auth_method", "token", "token_type_hint", "token_kind", "revoked", "status")
        )
        record["revoked"] = False
        self._context.log.revocation_requests.append(record)
        try:
            response = self._revoke(request, injected, record)
        except Reject as reject:
            response = reject.response
        record["status"] = response.status
        return response

    def _revoke(self, request: FakeRequest, injected: FakeResponse | None, record: dict[str, Any]) -> FakeResponse:
        if request.method != "POST":
            return method_not_allowed("POST")
        form, repeated = parse_form(request)
        record.update(token=form.get("token"), token_type_hint=form.get("token_type_hint"))
        with contextlib.suppress(Reject):
            record["client_id"], record["auth_method"], _ = identify_client(request, form)
        if injected is not None:
            return injected
        check_form(request, repeated)
        client, _ = self._authenticate(request, form)
        token = form.get("token")
        if token is None:
            raise token_error("invalid_request", "token is required")
        access = self._access_tokens.get(token)
        refresh = self._refresh_tokens.get(token)
        if access is not None:
            record["token_kind"] = "access_token"
            if access.client_id == client.client_id:
                access.revoked = record["revoked"] = True
        elif refresh is not None:
            record["token_kind"] = "refresh_token"
            if refresh.client_id == client.client_id:
                refresh.grant.revoked = record["revoked"] = True
        return FakeResponse(200, [("Content-Length", "0"), ("Cache-Control", "no-store")])

    # ------------------------------------------------------------------ /introspect, /userinfo, /jwks

    def handle_introspect(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        if request.method != "POST":
            return method_not_allowed("POST")
        if injected is not None:
            return injected
        form, _ = parse_form(request)
        token = form.get("token")
        if token is None:
            return oauth_error(400, "invalid_request", "token is required")
        now = self._context.now()
        document: dict[str, Any] = {"active": False}
        kind: str | None = None
        access = self._access_tokens.get(token)
        refresh = self._refresh_tokens.get(token)
        if access is not None:
            kind = "access_token"
            if access.problem_at(now) is None:
                document = {
                    "active": True,
                    "scope": " ".join(access.scopes),
                    "client_id": access.client_id,
                    "exp": int(access.expires_at),
                    "iat": int(access.issued_at),
                    "token_type": "DPoP" if access.jkt is not None else "Bearer",
                    "iss": self._context.issuer,
                    "sub": FAKE_SUBJECT,
                }
                if access.jkt is not None:
                    document["cnf"] = {"jkt": access.jkt}
                if access.resource is not None:
                    document["aud"] = access.resource
        elif refresh is not None:
            kind = "refresh_token"
            if not (refresh.rotated_out or refresh.grant.revoked):
                document = {
                    "active": True,
                    "scope": " ".join(refresh.grant.scopes),
                    "client_id": refresh.client_id,
                    "token_type": "refresh_token",
                    "iss": self._context.issuer,
                    "sub": FAKE_SUBJECT,
                }
                if refresh.grant.resource is not None:
                    document["aud"] = refresh.grant.resource
        self._context.log.introspection_requests.append({"token_kind": kind, "active": document["active"]})
        return json_response(200, document, no_store=True)
