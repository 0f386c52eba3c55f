"""The fake OAuth 2.1 authorization server: metadata, /authorize, /token, /register, /revoke, /introspect, and
optionally the device authorization grant (RFC 8628: /device_authorization and the /device verification page)
and the client_credentials grant.

It is deliberately strict, like a real server, so that a client under test is caught when it is wrong: exact
redirect URI matching (loopback ports aside), PKCE S256 only, single-use codes bound to client, redirect URI,
challenge, scope and resource, client authentication exactly per the registered method (``private_key_jwt``
assertions included: signature, claims, lifetime and single-use ``jti``), refresh token rotation with reuse
detection, device polling with ``slow_down``. Sans-IO: it maps :class:`FakeRequest` to :class:`FakeResponse`,
driven (and locked) by :class:`~mcp_oauth_auth.testing.fake.FakeMCPStack`.

Each endpoint family is a module of this package; :class:`FakeAuthorizationServer` puts them together over one
:class:`~mcp_oauth_auth.testing.fake_as.state.AuthorizationServerState`.
"""

from __future__ import annotations

from mcp_oauth_auth.testing.fake_as.authorize import AuthorizationEndpoint
from mcp_oauth_auth.testing.fake_as.client_auth import CLIENT_ASSERTION_TYPE
from mcp_oauth_auth.testing.fake_as.device import DeviceAuthorizationEndpoint
from mcp_oauth_auth.testing.fake_as.keys import PublicKeyInput
from mcp_oauth_auth.testing.fake_as.metadata import DEVICE_CODE_GRANT
from mcp_oauth_auth.testing.fake_as.oidc import OIDCEndpoints
from mcp_oauth_auth.testing.fake_as.records import AccessTokenRecord, FakeClient
from mcp_oauth_auth.testing.fake_as.registration import RegistrationEndpoint
from mcp_oauth_auth.testing.fake_as.revocation import RevocationAndIntrospection
from mcp_oauth_auth.testing.fake_as.token import TokenEndpoint

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "DEVICE_CODE_GRANT",
    "AccessTokenRecord",
    "FakeAuthorizationServer",
    "FakeClient",
    "PublicKeyInput",
]


class FakeAuthorizationServer(
    AuthorizationEndpoint,
    TokenEndpoint,
    DeviceAuthorizationEndpoint,
    RegistrationEndpoint,
    RevocationAndIntrospection,
    OIDCEndpoints,
):
    """Authorization server state (clients, codes, grants, tokens) and its endpoint handlers."""

    def __repr__(self) -> str:
        return (
            f"FakeAuthorizationServer(issuer={self._context.issuer!r}, clients={len(self.clients)}, "
            f"access_tokens={len(self._access_tokens)}, refresh_tokens={len(self._refresh_tokens)})"
        )
