"""The OpenID Connect endpoints that ``as_metadata_mode="oidc"`` names: ``/userinfo`` (the one fake user's subject,
for a valid access token) and ``/jwks`` (empty: the fake issues no ID tokens)."""

from __future__ import annotations

from mcp_oauth_auth.testing.fake_as.records import FAKE_SUBJECT
from mcp_oauth_auth.testing.fake_as.state import AuthorizationServerState
from mcp_oauth_auth.testing.fake_http import FakeRequest, FakeResponse, bearer_challenge, json_response

__all__ = ["OIDCEndpoints"]


class OIDCEndpoints(AuthorizationServerState):
    """``/userinfo`` and ``/jwks``."""

    def handle_userinfo(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        if injected is not None:
            return injected
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        access = self._access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if access is None or access.problem_at(self._context.now()) is not None:
            challenge = bearer_challenge([("error", "invalid_token")])
            return json_response(401, {"error": "invalid_token"}, [("WWW-Authenticate", challenge)])
        return json_response(200, {"sub": FAKE_SUBJECT})

    def handle_jwks(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        if injected is not None:
            return injected
        return json_response(200, {"keys": []})
