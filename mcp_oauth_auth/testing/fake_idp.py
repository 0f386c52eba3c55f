"""The fake stack's enterprise identity provider (enterprise-managed authorization, ID-JAG), on its own origin
(``FakeStackConfig.idp_base_url``).

* OpenID Connect sign-in: ``/authorize`` (authorization code + PKCE S256 only, the person approves at once) and
  ``/token`` with ``authorization_code`` and ``refresh_token``, issuing ES256 ID tokens (``iss``, ``sub``, ``aud``
  = the client, ``exp``, ``iat``, the sign-in's ``nonce``) and rotating refresh tokens;
* RFC 8693 token exchange at ``/token``: an ID token it issued (signature, ``aud``, ``exp``) for an ID-JAG (``typ``
  ``oauth-id-jag+jwt``; ``iss``, ``sub``, ``aud`` = the ``audience`` asked for, ``client_id`` = the client at the
  MCP authorization server, ``resource``, ``scope``, ``jti``, ``iat``, ``exp``), answered with ``issued_token_type``
  id-jag and ``token_type`` ``N_A``;
* metadata at ``/.well-known/openid-configuration`` and its key at ``/jwks``.

The client is ``idp_client_id``, authenticated with ``idp_client_secret`` (HTTP Basic or the form), or public when
that is None. Every token request is logged in :attr:`FakeEnterpriseIdP.token_requests`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from mcp_oauth_auth.testing.fake_as.client_auth import identify_client
from mcp_oauth_auth.testing.fake_as.oauth_http import (
    Reject,
    error_code,
    invalid_client,
    method_not_allowed,
    not_found,
    parse_form,
    split_scope,
    token_error,
)
from mcp_oauth_auth.testing.fake_context import StackContext
from mcp_oauth_auth.testing.fake_http import FakeRequest, FakeResponse, add_query, json_response

__all__ = ["ID_JAG_PROFILE", "ID_JAG_TYP", "FakeEnterpriseIdP", "verify_id_jag"]

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_JAG_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ID_JAG_PROFILE = "urn:ietf:params:oauth:grant-profile:id-jag"
ID_JAG_TYP = "oauth-id-jag+jwt"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
#: The person who signs in.
IDP_SUBJECT = "alice@enterprise.test"


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    scopes: tuple[str, ...]
    used: bool = False


class FakeEnterpriseIdP:
    """The identity provider's endpoints and what it issued; sans-IO, driven by the stack."""

    def __init__(self, context: StackContext) -> None:
        self._context = context
        configured = context.config.idp_signing_key
        self.key: ec.EllipticCurvePrivateKey = configured or ec.generate_private_key(ec.SECP256R1())
        self._codes: dict[str, _Code] = {}
        self._refresh_tokens: dict[str, bool] = {}  # token -> still valid
        self._device_codes: dict[str, tuple[str, ...]] = {}  # device code -> scopes
        #: {"grant_type", "client_id", "auth_method", "audience", "resource", "scope", "subject_token_type",
        #: "requested_token_type", "status", "error"} per /token request.
        self.token_requests: list[dict[str, Any]] = []
        #: Every ID-JAG issued (tests check that none reaches a log).
        self.issued_id_jags: list[str] = []
        #: The parsed query of every /authorize request.
        self.authorization_requests: list[dict[str, str]] = []

    @property
    def issuer(self) -> str:
        base = self._context.config.idp_base_url
        assert base is not None
        return base.rstrip("/")

    def handle(self, request: FakeRequest) -> FakeResponse:
        routes = {
            "/.well-known/openid-configuration": self._metadata,
            "/authorize": self._authorize,
            "/token": self._token,
            "/device_authorization": self._device_authorization,
            "/jwks": self._jwks,
        }
        handler = routes.get(request.path)
        if handler is None:
            return not_found(request.path)
        try:
            return handler(request)
        except Reject as reject:
            return reject.response

    # -- metadata and keys -------------------------------------------------------------------------------------

    def _metadata(self, request: FakeRequest) -> FakeResponse:
        issuer = self.issuer
        secret = self._context.config.idp_client_secret
        return json_response(
            200,
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "device_authorization_endpoint": f"{issuer}/device_authorization",
                "jwks_uri": f"{issuer}/jwks",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_CODE, TOKEN_EXCHANGE],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "email", "offline_access"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "token_endpoint_auth_methods_supported": (
                    ["client_secret_basic", "client_secret_post"] if secret is not None else ["none"]
                ),
                "identity_chaining_requested_token_types_supported": [ID_JAG_TOKEN_TYPE],
            },
        )

    def _jwks(self, request: FakeRequest) -> FakeResponse:
        from joserfc.jwk import ECKey

        return json_response(200, {"keys": [ECKey.import_key(self.key.public_key()).as_dict(private=False)]})

    # -- sign-in -----------------------------------------------------------------------------------------------

    def _authorize(self, request: FakeRequest) -> FakeResponse:
        if request.method != "GET":
            return method_not_allowed("GET")
        query = dict(request.query)
        self.authorization_requests.append(query)
        config = self._context.config
        if query.get("client_id") != config.idp_client_id or not query.get("redirect_uri"):
            return json_response(400, {"error": "invalid_request", "error_description": "unknown client"})
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return json_response(400, {"error": "invalid_request", "error_description": "PKCE S256 is required"})
        scopes = tuple(split_scope(query.get("scope")))
        if "openid" not in scopes:
            return json_response(400, {"error": "invalid_scope", "error_description": "openid is required"})
        code = secrets.token_urlsafe(16)
        self._codes[code] = _Code(
            config.idp_client_id, query["redirect_uri"], query["code_challenge"], query.get("nonce"), scopes
        )
        params = [("code", code)] + ([("state", query["state"])] if "state" in query else [])
        return FakeResponse(302, [("Location", add_query(query["redirect_uri"], params))], b"")

    def _device_authorization(self, request: FakeRequest) -> FakeResponse:
        """RFC 8628 §3.1-3.2: a device code the person approves at once (the first poll gets the tokens)."""
        if request.method != "POST":
            return method_not_allowed("POST")
        form, _ = parse_form(request)
        self._client(request, form)
        scopes = tuple(split_scope(form.get("scope")))
        if "openid" not in scopes:
            raise token_error("invalid_scope", "openid is required")
        device_code = secrets.token_urlsafe(16)
        self._device_codes[device_code] = scopes
        document = {
            "device_code": device_code,
            "user_code": "WDJB-MJHT",
            "verification_uri": f"{self.issuer}/device",
            "expires_in": 600,
            "interval": 1,
        }
        return json_response(200, document, no_store=True)

    # -- the token endpoint ------------------------------------------------------------------------------------

    def _token(self, request: FakeRequest) -> FakeResponse:
        if request.method != "POST":
            return method_not_allowed("POST")
        form, _ = parse_form(request)
        record: dict[str, Any] = {
            name: form.get(name)
            for name in (
                "grant_type",
                "audience",
                "resource",
                "scope",
                "subject_token_type",
                "requested_token_type",
            )
        }
        record.update(client_id=None, auth_method=None, status=None, error=None)
        self.token_requests.append(record)
        try:
            response = self._grant(request, form, record)
        except Reject as reject:
            response = reject.response
        record["status"] = response.status
        record["error"] = error_code(response) if response.status >= 400 else None
        return response

    def _client(self, request: FakeRequest, form: dict[str, str]) -> tuple[str, str]:
        """The client's ID and authentication method; invalid_client unless it is the configured client."""
        config = self._context.config
        client_id, method, secret = identify_client(request, form)
        if client_id != config.idp_client_id:
            raise invalid_client("unknown client", method == "client_secret_basic")
        expected = config.idp_client_secret
        if expected is not None and (secret is None or not hmac.compare_digest(secret, expected)):
            raise invalid_client("wrong client secret", method == "client_secret_basic")
        return client_id, method

    def _grant(self, request: FakeRequest, form: dict[str, str], record: dict[str, Any]) -> FakeResponse:
        record["client_id"], record["auth_method"] = self._client(request, form)
        grant_type = form.get("grant_type")
        if grant_type == TOKEN_EXCHANGE:
            return self._exchange(form)
        if grant_type == "authorization_code":
            return self._redeem(form)
        if grant_type == "refresh_token":
            return self._refresh(form)
        if grant_type == DEVICE_CODE:
            scopes = self._device_codes.pop(form.get("device_code", ""), None)
            if scopes is None:
                raise token_error("invalid_grant", "unknown or used device code")
            return self._session_tokens(None, "offline_access" in scopes)
        raise token_error("unsupported_grant_type", f"unsupported grant_type {grant_type!r}")

    def _redeem(self, form: dict[str, str]) -> FakeResponse:
        code = self._codes.get(form.get("code", ""))
        if code is None or code.used:
            raise token_error("invalid_grant", "unknown or used code")
        code.used = True
        if form.get("redirect_uri") != code.redirect_uri:
            raise token_error("invalid_grant", "redirect_uri differs from the authorization request")
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not hmac.compare_digest(digest, code.challenge):
            raise token_error("invalid_grant", "PKCE verification failed")
        return self._session_tokens(code.nonce, "offline_access" in code.scopes)

    def _refresh(self, form: dict[str, str]) -> FakeResponse:
        token = form.get("refresh_token", "")
        if not self._refresh_tokens.get(token):
            raise token_error("invalid_grant", "unknown, rotated or revoked refresh token")
        self._refresh_tokens[token] = False
        return self._session_tokens(None, True)

    def _session_tokens(self, nonce: str | None, with_refresh: bool) -> FakeResponse:
        config = self._context.config
        now = int(self._context.now())
        claims = {
            "iss": self.issuer,
            "sub": IDP_SUBJECT,
            "aud": config.idp_client_id,
            "iat": now,
            "exp": now + config.idp_id_token_lifetime,
            **({"nonce": nonce} if nonce is not None else {}),
        }
        document: dict[str, Any] = {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": config.idp_id_token_lifetime,
            "id_token": self.sign(claims),
            "scope": "openid offline_access" if with_refresh else "openid",
        }
        if with_refresh:
            refresh = secrets.token_urlsafe(24)
            self._refresh_tokens[refresh] = True
            document["refresh_token"] = refresh
        return json_response(200, document, no_store=True)

    def revoke_sessions(self) -> None:
        """End every sign-in session: the refresh tokens issued so far are refused from now on."""
        self._refresh_tokens = dict.fromkeys(self._refresh_tokens, False)

    def _exchange(self, form: dict[str, str]) -> FakeResponse:
        """RFC 8693: an ID token this IdP issued for this client, traded for an ID-JAG."""
        config = self._context.config
        if form.get("requested_token_type") != ID_JAG_TOKEN_TYPE:
            raise token_error("invalid_request", "requested_token_type must be the ID-JAG token type")
        if form.get("subject_token_type") != ID_TOKEN_TYPE:
            raise token_error("invalid_request", "subject_token_type must be an ID token")
        audience, resource = form.get("audience"), form.get("resource")
        if not audience or not resource:
            raise token_error("invalid_request", "audience and resource are required")
        claims = verify_signed(form.get("subject_token", ""), self.key.public_key(), None)
        now = self._context.now()
        if claims is None or claims.get("iss") != self.issuer or claims.get("aud") != config.idp_client_id:
            raise token_error("invalid_grant", "the subject token is not an ID token of this IdP for this client")
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
            raise token_error("invalid_grant", "the ID token has expired")
        issued = int(now)
        id_jag = {
            "iss": self.issuer,
            "sub": claims["sub"],
            "aud": audience,
            "client_id": config.idp_mcp_client_id,
            "resource": resource,
            "jti": secrets.token_urlsafe(12),
            "iat": issued,
            "exp": issued + config.idp_id_jag_lifetime,
            **({"scope": form["scope"]} if form.get("scope") else {}),
        }
        self.issued_id_jags.append(self.sign(id_jag, ID_JAG_TYP))
        document = {
            "access_token": self.issued_id_jags[-1],
            "issued_token_type": ID_JAG_TOKEN_TYPE,
            "token_type": "N_A",
            "expires_in": config.idp_id_jag_lifetime,
        }
        return json_response(200, document, no_store=True)

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        from joserfc import jws
        from joserfc.jwk import ECKey

        header = {"alg": "ES256", "typ": typ}
        return jws.serialize_compact(header, json.dumps(claims).encode(), ECKey.import_key(self.key))


def verify_signed(token: str, key: ec.EllipticCurvePublicKey, typ: str | None) -> dict[str, Any] | None:
    """The claims of ``token`` when ES256-signed by ``key`` (and of header ``typ`` when given), else None."""
    from joserfc import jws
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey

    registry = jws.JWSRegistry(algorithms=["ES256"], strict_check_header=False)
    try:
        verified = jws.deserialize_compact(token, ECKey.import_key(key), registry=registry)
        claims = json.loads(verified.payload)
    except (JoseError, ValueError):
        return None
    if typ is not None and verified.headers().get("typ") != typ:
        return None
    return claims if isinstance(claims, dict) else None


def verify_id_jag(
    assertion: str, idp: FakeEnterpriseIdP, as_issuer: str, client_id: str, resource: str | None, now: float
) -> dict[str, Any]:
    """The MCP authorization server's checks of an ID-JAG (``invalid_grant`` otherwise): signed by the IdP with
    ``typ`` oauth-id-jag+jwt, ``iss`` the IdP, ``aud`` this server's issuer, not expired, ``client_id`` the client
    that authenticated, ``resource`` the one asked for."""
    claims = verify_signed(assertion, idp.key.public_key(), ID_JAG_TYP)
    if claims is None or claims.get("iss") != idp.issuer:
        raise token_error("invalid_grant", "the assertion is not an ID-JAG of the trusted identity provider")
    if claims.get("aud") != as_issuer:
        raise token_error("invalid_grant", "the ID-JAG's aud is not this authorization server")
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
        raise token_error("invalid_grant", "the ID-JAG has expired")
    if claims.get("client_id") != client_id:
        raise token_error("invalid_grant", "the ID-JAG's client_id is not the authenticated client")
    if resource is None or claims.get("resource") != resource:
        raise token_error("invalid_grant", "the ID-JAG's resource is not the resource asked for")
    return claims
