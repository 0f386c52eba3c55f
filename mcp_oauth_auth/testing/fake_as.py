"""The fake OAuth 2.1 authorization server: metadata, /authorize, /token, /register, /revoke, /introspect, and
optionally the device authorization grant (RFC 8628: /device_authorization and the /device verification page)
and the client_credentials grant.

It is deliberately strict, like a real server, so that a client under test is caught when it is wrong: exact
redirect URI matching (loopback ports aside), PKCE S256 only, single-use codes bound to client, redirect URI,
challenge, scope and resource, client authentication exactly per the registered method (``private_key_jwt``
assertions included: signature, claims, lifetime and single-use ``jti``), refresh token rotation with reuse
detection, device polling with ``slow_down``. Sans-IO: it maps :class:`FakeRequest` to :class:`FakeResponse`,
driven (and locked) by :class:`~mcp_oauth_auth.testing.fake.FakeMCPStack`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from mcp_oauth_auth.testing.fake_config import KNOWN_AUTH_METHODS
from mcp_oauth_auth.testing.fake_context import StackContext
from mcp_oauth_auth.testing.fake_http import (
    LOOPBACK_HOSTS,
    FakeRequest,
    FakeResponse,
    add_query,
    bearer_challenge,
    is_loopback_http,
    json_response,
    oauth_error,
    parse_params,
)

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "DEVICE_CODE_GRANT",
    "AccessTokenRecord",
    "FakeAuthorizationServer",
    "FakeClient",
    "PublicKeyInput",
]

#: The ``iss`` sent in the callback when ``callback_iss="wrong"``.
WRONG_ISSUER = "https://wrong-issuer.test"
#: The subject of every authorization (there is one fake user).
FAKE_SUBJECT = "fake-user"

#: ``grant_type`` of the device authorization grant (RFC 8628 §3.4).
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: ``client_assertion_type`` of private_key_jwt client authentication (RFC 7523 §2.2).
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: A public key for private_key_jwt: PEM (SubjectPublicKeyInfo), a JWK, a JWK Set, or a cryptography key.
PublicKeyInput = str | bytes | Mapping[str, Any] | ec.EllipticCurvePublicKey | rsa.RSAPublicKey

_SUPPORTED_GRANTS = ("authorization_code", "refresh_token")
_CONFIDENTIAL_METHODS = ("client_secret_basic", "client_secret_post")
_JWT_METHOD = "private_key_jwt"
_ALL_AUTH_METHODS = (*KNOWN_AUTH_METHODS, _JWT_METHOD)
#: Characters of user codes: consonants only, so that no word can be spelled (RFC 8628 §6.1).
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
_CODE_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_CODE_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


@dataclass
class FakeClient:
    """A client known to the fake AS. ``kind``: "pre-registered", "dynamic" or "client-metadata-document"."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    token_endpoint_auth_method: str = "none"
    redirect_uris: list[str] = field(default_factory=list)
    grant_types: list[str] = field(default_factory=lambda: ["authorization_code", "refresh_token"])
    kind: str = "pre-registered"
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)
    #: Every client authentication method the client may use (the registered one first).
    auth_methods: list[str] = field(default_factory=list)
    #: The public key that verifies the client's private_key_jwt assertions, and its ``kid`` when known.
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey | None = field(default=None, repr=False)
    key_id: str | None = None

    def __post_init__(self) -> None:
        if not self.auth_methods:
            self.auth_methods = [self.token_endpoint_auth_method]


@dataclass
class _DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    client_id: str
    scopes: tuple[str, ...]
    resource: str | None
    expires_at: float
    #: The least number of seconds between two polls.
    interval: float
    status: Literal["pending", "approved", "denied"] = "pending"
    granted_scopes: tuple[str, ...] = ()
    used: bool = False
    last_poll: float | None = None
    #: Polls that were not answered slow_down.
    polls: int = 0


@dataclass
class _AuthorizationCode:
    code: str = field(repr=False)
    client_id: str
    redirect_uri: str
    code_challenge: str = field(repr=False)
    scopes: tuple[str, ...]
    resource: str | None
    expires_at: float
    used: bool = False
    grant_id: str | None = None


@dataclass
class _Grant:
    grant_id: str
    client_id: str
    scopes: tuple[str, ...]
    resource: str | None
    revoked: bool = False


@dataclass
class AccessTokenRecord:
    """An issued access token. ``active_at()`` says whether it is usable at a given time."""

    token: str = field(repr=False)
    grant: _Grant
    client_id: str
    scopes: tuple[str, ...]
    resource: str | None
    issued_at: float
    expires_at: float
    revoked: bool = False

    def problem_at(self, now: float) -> str | None:
        """Why the token is unusable at ``now`` (a description), or None when it is active."""
        if self.revoked or self.grant.revoked:
            return "The access token has been revoked"
        if now >= self.expires_at:
            return "The access token expired"
        return None


@dataclass
class _RefreshToken:
    token: str = field(repr=False)
    grant: _Grant
    client_id: str
    rotated_out: bool = False


class _Reject(Exception):
    """Raised inside a handler to answer with ``response`` at once."""

    def __init__(self, response: FakeResponse) -> None:
        super().__init__(response.status)
        self.response = response


def _token_error(error: str, description: str, status: int = 400) -> _Reject:
    return _Reject(oauth_error(status, error, description))


def _invalid_client(description: str, basic_attempted: bool) -> _Reject:
    headers = [("WWW-Authenticate", 'Basic realm="fake-as"')] if basic_attempted else []
    return _Reject(oauth_error(401, "invalid_client", description, headers))


def _method_not_allowed(allowed: str) -> FakeResponse:
    return json_response(
        405, {"error": "method_not_allowed", "error_description": f"use {allowed}"}, [("Allow", allowed)]
    )


def _not_found(path: str) -> FakeResponse:
    return json_response(404, {"error": "not_found", "error_description": f"nothing at {path}"})


def _split_scope(value: str | None) -> list[str]:
    return [scope for scope in (value or "").split(" ") if scope]


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class FakeAuthorizationServer:
    """Authorization server state (clients, codes, grants, tokens) and its endpoint handlers."""

    def __init__(self, context: StackContext) -> None:
        self._context = context
        self.clients: dict[str, FakeClient] = {}
        self._codes: dict[str, _AuthorizationCode] = {}
        self._grants: dict[str, _Grant] = {}
        self._access_tokens: dict[str, AccessTokenRecord] = {}
        self._refresh_tokens: dict[str, _RefreshToken] = {}
        self._device_codes: dict[str, _DeviceCode] = {}
        #: (client_id, jti) -> exp of every accepted private_key_jwt assertion (RFC 7523 §3 item 7).
        self._seen_jtis: dict[tuple[str, str], float] = {}
        #: {"client_id", "auth_method", "scope", "resource", "user_code", "status", "error"} per device
        #: authorization request.
        self.device_authorization_requests: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return (
            f"FakeAuthorizationServer(issuer={self._context.issuer!r}, clients={len(self.clients)}, "
            f"access_tokens={len(self._access_tokens)}, refresh_tokens={len(self._refresh_tokens)})"
        )

    # ------------------------------------------------------------------ clients

    def add_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        token_endpoint_auth_method: str = "none",  # noqa: S107 - not a password
        redirect_uris: Sequence[str] = (),
        grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
        *,
        kind: str = "pre-registered",
        metadata: dict[str, Any] | None = None,
        public_key: PublicKeyInput | None = None,
        also_allowed_auth_methods: Sequence[str] = (),
    ) -> FakeClient:
        """Register a client. ``public_key`` (PEM, JWK, JWK Set or key object) is required for ``private_key_jwt``;
        ``also_allowed_auth_methods`` lets a confidential client authenticate in more ways than the registered
        one (e.g. both secret methods, or a secret and a key)."""
        methods = list(dict.fromkeys([token_endpoint_auth_method, *also_allowed_auth_methods]))
        unknown = [method for method in methods if method not in _ALL_AUTH_METHODS]
        if unknown:
            raise ValueError(f"token endpoint auth methods must be among {_ALL_AUTH_METHODS}, not {unknown}")
        if "none" in methods and len(methods) > 1:
            raise ValueError("a public client ('none') cannot also use confidential authentication methods")
        uses_secret = any(method in _CONFIDENTIAL_METHODS for method in methods)
        if uses_secret and not client_secret:
            raise ValueError(f"{[m for m in methods if m in _CONFIDENTIAL_METHODS]} need a client_secret")
        if not uses_secret and client_secret is not None:
            raise ValueError(f"a client authenticating with {methods} has no client_secret")
        uses_key = _JWT_METHOD in methods
        if uses_key and public_key is None:
            raise ValueError("private_key_jwt needs the client's public_key")
        if not uses_key and public_key is not None:
            raise ValueError("a public_key is only for clients that use private_key_jwt")
        key, key_id = load_public_key(public_key) if public_key is not None else (None, None)
        client = FakeClient(
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint_auth_method=token_endpoint_auth_method,
            redirect_uris=list(redirect_uris),
            grant_types=list(grant_types),
            kind=kind,
            metadata=dict(metadata or {}),
            auth_methods=methods,
            public_key=key,
            key_id=key_id,
        )
        self.clients[client_id] = client
        return client

    def lookup_client(self, client_id: str) -> FakeClient | None:
        """A known client, or a Client ID Metadata Document client when that is enabled and the id fits."""
        client = self.clients.get(client_id)
        if client is not None:
            return client
        if self._context.config.client_id_metadata_document_supported and _is_cimd_client_id(client_id):
            return FakeClient(client_id=client_id, kind="client-metadata-document")
        return None

    def _redirect_allowed(self, client: FakeClient, redirect_uri: str) -> bool:
        if client.kind == "client-metadata-document":
            return is_loopback_http(redirect_uri) and "#" not in redirect_uri
        any_port = self._context.config.loopback_redirect_any_port
        return any(
            redirect_uri == registered or (any_port and _same_loopback_except_port(registered, redirect_uri))
            for registered in client.redirect_uris
        )

    # ------------------------------------------------------------------ URLs and metadata

    def endpoint_paths(self) -> dict[str, str]:
        """Path on the AS origin -> logical endpoint name."""
        prefix = self._context.config.issuer_path
        names = ("authorize", "token", "register", "revoke", "introspect", "userinfo", "jwks", "device_authorization")
        paths = {f"{prefix}/{name}": name for name in names}
        paths[f"{prefix}/device"] = "device_verification"
        return paths

    def supported_grants(self) -> tuple[str, ...]:
        """The grant types the token endpoint accepts, per the configuration."""
        config = self._context.config
        grants = list(_SUPPORTED_GRANTS)
        if config.device_authorization_enabled:
            grants.append(DEVICE_CODE_GRANT)
        if config.client_credentials_enabled:
            grants.append("client_credentials")
        return tuple(grants)

    @property
    def device_authorization_endpoint(self) -> str:
        return f"{self._context.issuer}/device_authorization"

    @property
    def verification_uri(self) -> str:
        return f"{self._context.issuer}/device"

    def metadata_paths(self) -> dict[str, str]:
        """Path on the AS origin -> "oauth" or "oidc", per ``as_metadata_mode``."""
        config = self._context.config
        prefix = config.issuer_path
        if config.as_metadata_mode == "oauth":
            return {f"/.well-known/oauth-authorization-server{prefix}": "oauth"}
        if config.as_metadata_mode == "oidc":
            return {
                f"/.well-known/openid-configuration{prefix}": "oidc",
                f"{prefix}/.well-known/openid-configuration": "oidc",
            }
        if config.as_metadata_mode == "oidc_append_only":
            return {f"{prefix}/.well-known/openid-configuration": "oidc"}
        return {}

    def metadata_document(self, kind: str) -> dict[str, Any]:
        config = self._context.config
        issuer = self._context.issuer
        document: dict[str, Any] = {
            "issuer": config.metadata_issuer if config.metadata_issuer is not None else issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "revocation_endpoint": f"{issuer}/revoke",
            "introspection_endpoint": f"{issuer}/introspect",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(self.supported_grants()),
            "scopes_supported": list(config.scopes_supported),
            "token_endpoint_auth_methods_supported": list(config.token_endpoint_auth_methods_supported),
            "revocation_endpoint_auth_methods_supported": list(config.token_endpoint_auth_methods_supported),
        }
        if config.registration_enabled:
            document["registration_endpoint"] = f"{issuer}/register"
        if config.device_authorization_enabled:
            document["device_authorization_endpoint"] = self.device_authorization_endpoint
        if _JWT_METHOD in config.token_endpoint_auth_methods_supported:
            document["token_endpoint_auth_signing_alg_values_supported"] = ["ES256", "RS256"]
        if config.code_challenge_methods_supported is not None:
            document["code_challenge_methods_supported"] = list(config.code_challenge_methods_supported)
        if config.iss_parameter_supported:
            document["authorization_response_iss_parameter_supported"] = True
        if config.client_id_metadata_document_supported:
            document["client_id_metadata_document_supported"] = True
        if kind == "oidc":
            document.update(
                userinfo_endpoint=f"{issuer}/userinfo",
                jwks_uri=f"{issuer}/jwks",
                subject_types_supported=["public"],
                id_token_signing_alg_values_supported=["RS256"],
            )
        return document

    def handle_metadata(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        if injected is not None:
            return injected
        kind = self.metadata_paths().get(request.path)
        if kind is None:
            return _not_found(request.path)
        if request.method != "GET":
            return _method_not_allowed("GET")
        return json_response(200, self.metadata_document(kind))

    # ------------------------------------------------------------------ /authorize

    def handle_authorize(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        if request.method != "GET":
            return _method_not_allowed("GET")
        first: dict[str, str] = {}
        for name, value in request.query:
            first.setdefault(name, value)
        self._context.log.authorization_requests.append(first)
        if injected is not None:
            return injected
        try:
            return self._authorize(request)
        except _Reject as reject:
            return reject.response

    def _authorize(self, request: FakeRequest) -> FakeResponse:
        config = self._context.config
        params, repeated = parse_params(request.query)
        repeated_without_resource = [name for name in repeated if name != "resource"]
        if repeated_without_resource:
            raise _Reject(_error_page("invalid_request", f"repeated parameters: {repeated_without_resource}"))
        client_id = params.get("client_id")
        if client_id is None:
            raise _Reject(_error_page("invalid_request", "client_id is required"))
        client = self.lookup_client(client_id)
        if client is None:
            raise _Reject(_error_page("invalid_client", "unknown client_id"))
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None:
            raise _Reject(_error_page("invalid_request", "redirect_uri is required"))
        if not self._redirect_allowed(client, redirect_uri):
            raise _Reject(_error_page("invalid_request", "redirect_uri is not registered for this client"))

        # From here on the redirect URI is trusted: errors go back to the client.
        state = params.get("state")

        def fail(error: str, description: str) -> _Reject:
            return _Reject(self._redirect(redirect_uri, [("error", error), ("error_description", description)], state))

        if params.get("response_type") != "code":
            raise fail("unsupported_response_type", "response_type must be 'code'")
        if state is None:
            raise fail("invalid_request", "state is required")
        if "authorization_code" not in client.grant_types:
            raise fail("unauthorized_client", "the client is not registered for authorization_code")
        challenge = params.get("code_challenge")
        if challenge is None:
            raise fail("invalid_request", "code_challenge is required (PKCE)")
        method = params.get("code_challenge_method")
        if method is None:
            raise fail("invalid_request", "code_challenge_method is required; only S256 is supported")
        if method != "S256":
            raise fail("invalid_request", "transform algorithm not supported; only S256 is supported")
        if not _CODE_CHALLENGE.match(challenge):
            raise fail("invalid_request", "code_challenge is not a BASE64URL-encoded SHA-256 digest")
        requested = _split_scope(params.get("scope"))
        unknown = [scope for scope in requested if scope not in config.scopes_supported]
        if unknown:
            raise fail("invalid_scope", f"unknown scope: {' '.join(unknown)}")
        scopes = tuple(dict.fromkeys(requested)) if requested else tuple(config.default_scopes)
        if "resource" in repeated:
            raise fail("invalid_target", "this server accepts one resource per request")
        resource = params.get("resource")
        if resource is not None and resource not in self._context.accepted_resources():
            raise fail("invalid_target", "unknown resource")
        if config.deny_authorization:
            raise fail("access_denied", "the user denied the request")

        code = secrets.token_urlsafe(32)
        self._codes[code] = _AuthorizationCode(
            code=code,
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            code_challenge=challenge,
            scopes=scopes,
            resource=resource,
            expires_at=self._context.now() + config.authorization_code_lifetime,
        )
        return self._redirect(redirect_uri, [("code", code)], state)

    def _redirect(self, redirect_uri: str, params: list[tuple[str, str]], state: str | None) -> FakeResponse:
        config = self._context.config
        if state is not None:
            params.append(("state", state))
        if config.callback_iss == "wrong":
            params.append(("iss", WRONG_ISSUER))
        elif config.callback_iss == "correct" and config.iss_parameter_supported:
            params.append(("iss", self._context.issuer))
        location = add_query(redirect_uri, params)
        return FakeResponse(302, [("Location", location), ("Cache-Control", "no-store"), ("Content-Length", "0")])

    # ------------------------------------------------------------------ client authentication

    def _authenticate(self, request: FakeRequest, form: dict[str, str]) -> tuple[FakeClient, str]:
        """The authenticated client and the method it used, per RFC 6749 §2.3; raises _Reject."""
        client_id, method, secret = _identify_client(request, form)
        basic = method == "client_secret_basic"
        client = self.lookup_client(client_id)
        if client is None:
            raise _invalid_client("unknown client", basic)
        if method not in client.auth_methods:
            raise _invalid_client(
                f"the client is registered for {' or '.join(client.auth_methods)}, not {method}", basic
            )
        if method in _CONFIDENTIAL_METHODS and not hmac.compare_digest(
            (secret or "").encode("utf-8"), (client.client_secret or "").encode("utf-8")
        ):
            raise _invalid_client("client authentication failed", basic)
        if method == _JWT_METHOD:
            assert secret is not None
            self._verify_client_assertion(client, secret, request)
        return client, method

    def _verify_client_assertion(self, client: FakeClient, assertion: str, request: FakeRequest) -> None:
        """RFC 7523 §3 checks of a private_key_jwt assertion; the ``jti`` is remembered once all pass."""
        now = self._context.now()
        header, claims, signing_input, signature = _split_jws(assertion)
        key = client.public_key
        assert key is not None
        expected_alg = "ES256" if isinstance(key, ec.EllipticCurvePublicKey) else "RS256"
        if header.get("alg") != expected_alg:
            raise _invalid_client(
                f"client_assertion alg {header.get('alg')!r} does not fit the registered key ({expected_alg})", False
            )
        kid = header.get("kid")
        if kid is not None and client.key_id is not None and kid != client.key_id:
            raise _invalid_client(f"client_assertion kid {kid!r} is not the registered key's", False)
        if not _signature_verifies(key, signing_input, signature):
            raise _invalid_client("client_assertion signature does not verify with the registered key", False)
        for claim in ("iss", "sub"):
            if claims.get(claim) != client.client_id:
                raise _invalid_client(f"client_assertion {claim} must be the client_id", False)
        audiences = claims.get("aud")
        audience_list = audiences if isinstance(audiences, list) else [audiences]
        issuer = self._context.issuer
        accepted = {issuer, f"{issuer}/token", request.url.split("?", 1)[0]}
        if not any(isinstance(item, str) and item in accepted for item in audience_list):
            raise _invalid_client("client_assertion aud must be the issuer or the token endpoint", False)
        exp = claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, (int, float)):
            raise _invalid_client("client_assertion has no numeric exp", False)
        if now >= exp:
            raise _invalid_client("client_assertion expired", False)
        max_lifetime = self._context.config.client_assertion_max_lifetime
        if exp - now > max_lifetime:
            raise _invalid_client(f"client_assertion exp is more than {max_lifetime} s away", False)
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and not isinstance(nbf, bool) and nbf > now:
            raise _invalid_client("client_assertion is not valid yet (nbf)", False)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise _invalid_client("client_assertion has no jti", False)
        self._seen_jtis = {seen: until for seen, until in self._seen_jtis.items() if until > now}
        if (client.client_id, jti) in self._seen_jtis:
            raise _invalid_client("client_assertion jti was already used", False)
        self._seen_jtis[(client.client_id, jti)] = float(exp)

    # ------------------------------------------------------------------ /token

    def handle_token(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        record: dict[str, Any] = dict.fromkeys(
            ("grant_type", "client_id", "auth_method", "resource", "scope", "status", "error")
        )
        self._context.log.token_requests.append(record)
        try:
            response = self._token(request, injected, record)
        except _Reject as reject:
            response = reject.response
        record["status"] = response.status
        if response.status >= 400:
            record["error"] = _error_code(response)
        return response

    def _token(self, request: FakeRequest, injected: FakeResponse | None, record: dict[str, Any]) -> FakeResponse:
        if request.method != "POST":
            return _method_not_allowed("POST")
        form, repeated = _parse_form(request)
        record.update(grant_type=form.get("grant_type"), resource=form.get("resource"), scope=form.get("scope"))
        with contextlib.suppress(_Reject):
            record["client_id"], record["auth_method"], _ = _identify_client(request, form)
        if injected is not None:
            return injected
        _check_form(request, repeated)
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise _token_error("invalid_request", "grant_type is required")
        if grant_type not in self.supported_grants():
            raise _token_error("unsupported_grant_type", f"unsupported grant_type {grant_type!r}")
        client, method = self._authenticate(request, form)
        if grant_type not in client.grant_types:
            raise _token_error("unauthorized_client", f"the client is not registered for {grant_type}")
        if grant_type == "authorization_code":
            return self._redeem_code(client, form)
        if grant_type == DEVICE_CODE_GRANT:
            return self._redeem_device_code(client, form)
        if grant_type == "client_credentials":
            return self._client_credentials(client, method, form)
        return self._refresh(client, form)

    def _redeem_code(self, client: FakeClient, form: dict[str, str]) -> FakeResponse:
        code_value = form.get("code")
        if code_value is None:
            raise _token_error("invalid_request", "code is required")
        code = self._codes.get(code_value)
        if code is None or code.client_id != client.client_id:
            raise _token_error("invalid_grant", "unknown authorization code")
        if code.used:
            # RFC 6749 §4.1.2: a code used twice revokes what it produced.
            if code.grant_id is not None:
                self._grants[code.grant_id].revoked = True
            raise _token_error("invalid_grant", "the authorization code was already used")
        code.used = True
        if self._context.now() >= code.expires_at:
            raise _token_error("invalid_grant", "the authorization code expired")
        redirect_uri = form.get("redirect_uri")
        if redirect_uri is None:
            raise _token_error("invalid_request", "redirect_uri is required")
        if redirect_uri != code.redirect_uri:
            raise _token_error("invalid_grant", "redirect_uri differs from the authorization request")
        verifier = form.get("code_verifier")
        if verifier is None:
            raise _token_error("invalid_request", "code_verifier is required (PKCE)")
        if not _CODE_VERIFIER.match(verifier):
            raise _token_error("invalid_request", "code_verifier is malformed (RFC 7636 §4.1)")
        if not hmac.compare_digest(_s256(verifier), code.code_challenge):
            raise _token_error("invalid_grant", "PKCE verification failed")
        resource = form.get("resource")
        if code.resource is not None and resource != code.resource:
            raise _token_error("invalid_target", "resource differs from the authorization request")
        if resource is not None and resource not in self._context.accepted_resources():
            raise _token_error("invalid_target", "unknown resource")
        grant = _Grant(secrets.token_hex(8), client.client_id, code.scopes, resource)
        self._grants[grant.grant_id] = grant
        code.grant_id = grant.grant_id
        return self._token_response(self._issue(grant, client, grant.scopes, new_grant=True))

    def _refresh(self, client: FakeClient, form: dict[str, str]) -> FakeResponse:
        config = self._context.config
        token_value = form.get("refresh_token")
        if token_value is None:
            raise _token_error("invalid_request", "refresh_token is required")
        refresh = self._refresh_tokens.get(token_value)
        if refresh is None or refresh.client_id != client.client_id:
            raise _token_error("invalid_grant", "unknown refresh token")
        grant = refresh.grant
        if grant.revoked:
            raise _token_error("invalid_grant", "the refresh token has been revoked")
        if refresh.rotated_out:
            grant.revoked = True  # reuse of a rotated-out token: assume theft, revoke the whole grant
            raise _token_error("invalid_grant", "refresh token reuse detected; the grant has been revoked")
        resource = form.get("resource")
        if resource is not None and resource != grant.resource:
            raise _token_error("invalid_target", "resource differs from the original grant")
        requested = _split_scope(form.get("scope"))
        beyond = [scope for scope in requested if scope not in grant.scopes]
        if beyond:
            raise _token_error("invalid_scope", f"scope beyond the original grant: {' '.join(beyond)}")
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
            raise _token_error("unauthorized_client", "client_credentials is for confidential clients only")
        scopes = self._requested_scopes(form.get("scope"))
        resource = self._checked_resource(form.get("resource"))
        grant = _Grant(secrets.token_hex(8), client.client_id, scopes, resource)
        self._grants[grant.grant_id] = grant
        return self._token_response(self._issue(grant, client, scopes, new_grant=True, refresh_allowed=False))

    def _requested_scopes(self, value: str | None) -> tuple[str, ...]:
        """The scopes of a ``scope`` parameter (the configured defaults when absent); raises invalid_scope."""
        config = self._context.config
        requested = _split_scope(value)
        unknown = [scope for scope in requested if scope not in config.scopes_supported]
        if unknown:
            raise _token_error("invalid_scope", f"unknown scope: {' '.join(unknown)}")
        return tuple(dict.fromkeys(requested)) if requested else tuple(config.default_scopes)

    def _checked_resource(self, resource: str | None) -> str | None:
        if resource is not None and resource not in self._context.accepted_resources():
            raise _token_error("invalid_target", "unknown resource")
        return resource

    def _issue(
        self,
        grant: _Grant,
        client: FakeClient,
        scopes: tuple[str, ...],
        *,
        new_grant: bool,
        refresh_allowed: bool = True,
    ) -> dict[str, Any]:
        config = self._context.config
        now = self._context.now()
        access = AccessTokenRecord(
            token=secrets.token_urlsafe(32),
            grant=grant,
            client_id=client.client_id,
            scopes=scopes,
            resource=grant.resource,
            issued_at=now,
            expires_at=now + config.access_token_lifetime,
        )
        self._access_tokens[access.token] = access
        document: dict[str, Any] = {
            "access_token": access.token,
            "token_type": "Bearer",
            "expires_in": config.access_token_lifetime,
        }
        if scopes:
            document["scope"] = " ".join(scopes)
        wants_refresh = (
            refresh_allowed
            and config.issue_refresh_tokens
            and "refresh_token" in client.grant_types
            and (not config.refresh_token_requires_offline_access or "offline_access" in grant.scopes)
        )
        if new_grant and wants_refresh:
            document["refresh_token"] = self._new_refresh_token(grant, client)
        return document

    def _new_refresh_token(self, grant: _Grant, client: FakeClient) -> str:
        refresh = _RefreshToken(secrets.token_urlsafe(32), grant, client.client_id)
        self._refresh_tokens[refresh.token] = refresh
        return refresh.token

    @staticmethod
    def _token_response(document: dict[str, Any]) -> FakeResponse:
        return json_response(200, document, no_store=True)

    def issue_tokens(self, client_id: str, scopes: Sequence[str], resource: str | None) -> dict[str, Any]:
        """Grant ``scopes`` to a known client without any HTTP exchange; returns the token response body."""
        client = self.clients.get(client_id)
        if client is None:
            raise KeyError(f"unknown client_id {client_id!r}")
        grant = _Grant(secrets.token_hex(8), client_id, tuple(scopes), resource)
        self._grants[grant.grant_id] = grant
        return self._issue(grant, client, grant.scopes, new_grant=True)

    # ------------------------------------------------------------------ device authorization (RFC 8628)

    def handle_device_authorization(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        if not self._context.config.device_authorization_enabled:
            return _not_found(request.path)
        if request.method != "POST":
            return _method_not_allowed("POST")
        record: dict[str, Any] = dict.fromkeys(
            ("client_id", "auth_method", "scope", "resource", "user_code", "status", "error")
        )
        self.device_authorization_requests.append(record)
        form, repeated = _parse_form(request)
        record.update(scope=form.get("scope"), resource=form.get("resource"))
        with contextlib.suppress(_Reject):
            record["client_id"], record["auth_method"], _ = _identify_client(request, form)
        if injected is not None:
            response = injected
        else:
            try:
                response = self._device_authorization(request, form, repeated, record)
            except _Reject as reject:
                response = reject.response
        record["status"] = response.status
        if response.status >= 400:
            record["error"] = _error_code(response)
        return response

    def _device_authorization(
        self, request: FakeRequest, form: dict[str, str], repeated: list[str], record: dict[str, Any]
    ) -> FakeResponse:
        config = self._context.config
        _check_form(request, repeated)
        client, _ = self._authenticate(request, form)
        if DEVICE_CODE_GRANT not in client.grant_types:
            raise _token_error("unauthorized_client", "the client is not registered for the device_code grant")
        scopes = self._requested_scopes(form.get("scope"))
        resource = self._checked_resource(form.get("resource"))
        now = self._context.now()
        active = {entry.user_code for entry in self._device_codes.values() if entry.expires_at > now}
        user_code = _new_user_code()
        while user_code in active:
            user_code = _new_user_code()
        entry = _DeviceCode(
            device_code=secrets.token_urlsafe(32),
            user_code=user_code,
            client_id=client.client_id,
            scopes=scopes,
            resource=resource,
            expires_at=now + config.device_code_lifetime,
            interval=float(config.device_poll_interval or 5),
        )
        self._device_codes[entry.device_code] = entry
        display_code = f"{user_code[:4]}-{user_code[4:]}"
        record["user_code"] = display_code
        document: dict[str, Any] = {
            "device_code": entry.device_code,
            "user_code": display_code,
            "verification_uri": self.verification_uri,
            "verification_uri_complete": f"{self.verification_uri}?{urlencode({'user_code': display_code})}",
            "expires_in": config.device_code_lifetime,
        }
        if config.device_poll_interval is not None:
            document["interval"] = config.device_poll_interval
        return json_response(200, document, no_store=True)

    def _redeem_device_code(self, client: FakeClient, form: dict[str, str]) -> FakeResponse:
        """One poll (RFC 8628 §3.4, §3.5): pending, slow_down, denied, expired, or the tokens (once)."""
        config = self._context.config
        device_code = form.get("device_code")
        if device_code is None:
            raise _token_error("invalid_request", "device_code is required")
        entry = self._device_codes.get(device_code)
        if entry is None or entry.client_id != client.client_id:
            raise _token_error("invalid_grant", "unknown device code")
        if entry.used:
            raise _token_error("invalid_grant", "the device code was already used")
        now = self._context.now()
        if now >= entry.expires_at:
            raise _token_error("expired_token", "the device code expired")
        # A poll sooner than the interval after the previous one is answered slow_down (RFC 8628 §3.5); the
        # client is then expected to add 5 seconds to its interval, so a client that ignores it never gets past.
        too_fast = entry.last_poll is not None and now - entry.last_poll < entry.interval
        entry.last_poll = now
        if too_fast:
            raise _token_error("slow_down", f"poll at most every {entry.interval:.0f} seconds")
        entry.polls += 1
        auto = config.device_auto_approve_after_polls
        if entry.status == "pending" and auto is not None and entry.polls > auto:
            entry.status = "denied" if config.deny_authorization else "approved"
            entry.granted_scopes = entry.scopes
        if entry.status == "denied":
            raise _token_error("access_denied", "the user denied the request")
        if entry.status == "pending":
            raise _token_error("authorization_pending", "the user has not decided yet")
        resource = form.get("resource")
        if entry.resource is not None and resource != entry.resource:
            raise _token_error("invalid_target", "resource differs from the device authorization request")
        self._checked_resource(resource)
        entry.used = True
        grant = _Grant(secrets.token_hex(8), client.client_id, entry.granted_scopes, resource)
        self._grants[grant.grant_id] = grant
        return self._token_response(self._issue(grant, client, grant.scopes, new_grant=True))

    def _find_device_code(self, user_code: str) -> _DeviceCode:
        """The undecided, unexpired device authorization of ``user_code`` (any case, punctuation ignored)."""
        wanted = _normalise_user_code(user_code)
        now = self._context.now()
        for entry in self._device_codes.values():
            if entry.user_code == wanted and not entry.used and now < entry.expires_at:
                if entry.status != "pending":
                    raise ValueError(f"user code {user_code!r} was already {entry.status}")
                return entry
        raise KeyError(f"no pending device authorization with user code {user_code!r}")

    def approve_device(self, user_code: str, scopes: Sequence[str] | None = None) -> None:
        """The user approves ``user_code``, granting ``scopes`` (default: those requested)."""
        entry = self._find_device_code(user_code)
        if scopes is not None:
            unknown = [scope for scope in scopes if scope not in self._context.config.scopes_supported]
            if unknown:
                raise ValueError(f"scopes not in scopes_supported: {unknown}")
        entry.status = "approved"
        entry.granted_scopes = tuple(dict.fromkeys(scopes)) if scopes is not None else entry.scopes

    def deny_device(self, user_code: str) -> None:
        """The user denies ``user_code``: the next poll gets access_denied."""
        self._find_device_code(user_code).status = "denied"

    def pending_user_codes(self) -> list[str]:
        """User codes (as shown to the user) that await a decision and have not expired, oldest first."""
        now = self._context.now()
        return [
            f"{entry.user_code[:4]}-{entry.user_code[4:]}"
            for entry in self._device_codes.values()
            if entry.status == "pending" and not entry.used and now < entry.expires_at
        ]

    def handle_device_verification(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        """The verification page: GET shows a form (``?user_code=`` prefills it, as in verification_uri_complete);
        a form POST with ``user_code`` and ``decision`` ("approve", the default, or "deny") decides."""
        if not self._context.config.device_authorization_enabled:
            return _not_found(request.path)
        if injected is not None:
            return injected
        if request.method == "GET":
            prefilled = next((value for name, value in request.query if name == "user_code"), "")
            return _html_page(
                200,
                "Connect a device",
                f'<form method="post"><input name="user_code" value="{escape(prefilled)}">'
                '<button name="decision" value="approve">Approve</button>'
                '<button name="decision" value="deny">Deny</button></form>',
            )
        if request.method != "POST":
            return _method_not_allowed("GET, POST")
        if request.content_type != "application/x-www-form-urlencoded":
            return _html_page(400, "Bad request", "The form must be application/x-www-form-urlencoded.")
        form, _ = _parse_form(request)
        decision = form.get("decision", "approve")
        if decision not in ("approve", "deny"):
            return _html_page(400, "Bad request", "decision must be approve or deny.")
        try:
            if decision == "approve":
                self.approve_device(form.get("user_code", ""))
            else:
                self.deny_device(form.get("user_code", ""))
        except (KeyError, ValueError):
            return _html_page(400, "Invalid code", "This code is unknown, expired or already used.")
        done = "approved" if decision == "approve" else "denied"
        return _html_page(200, f"Device {done}", f"You {done} the device. You can close this page.")

    # ------------------------------------------------------------------ /register

    def handle_register(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        if not self._context.config.registration_enabled:
            return _not_found(request.path)
        if request.method != "POST":
            return _method_not_allowed("POST")
        try:
            body: Any = json.loads(request.body)
        except ValueError:
            body = request.body.decode("utf-8", errors="replace")
        self._context.log.registration_requests.append(body)
        if injected is not None:
            return injected
        try:
            return self._register(request, body)
        except _Reject as reject:
            return reject.response

    def _register(self, request: FakeRequest, body: Any) -> FakeResponse:
        config = self._context.config
        if request.content_type != "application/json":
            raise _invalid_metadata("the request body must be application/json")
        if not isinstance(body, dict):
            raise _invalid_metadata("the request body must be a JSON object")
        grant_types, response_types, redirect_uris = _registration_lists(body, self.supported_grants())
        invalid = _invalid_metadata
        requested_method = body.get("token_endpoint_auth_method", "client_secret_basic")  # RFC 7591 §2
        if not isinstance(requested_method, str):
            raise invalid("token_endpoint_auth_method must be a string")
        method = config.registration_auth_method
        if method is None:
            if requested_method not in config.token_endpoint_auth_methods_supported:
                raise invalid(f"token_endpoint_auth_method {requested_method!r} is not supported")
            method = requested_method
        for name in ("scope", "client_name", "application_type"):
            if name in body and not isinstance(body[name], str):
                raise invalid(f"{name} must be a string")
        scope = body.get("scope")
        if scope is not None:
            unknown = [item for item in _split_scope(scope) if item not in config.scopes_supported]
            if unknown:
                raise invalid(f"unknown scope: {' '.join(unknown)}")
        public_key: PublicKeyInput | None = None
        if method == _JWT_METHOD:
            jwks = body.get("jwks")
            if not isinstance(jwks, dict):
                raise invalid("private_key_jwt needs the client's keys in 'jwks' (jwks_uri is not supported here)")
            try:
                load_public_key(jwks)
            except ValueError as exc:
                raise invalid(f"unusable jwks: {exc}") from None
            public_key = jwks

        client_id = f"dyn-{secrets.token_hex(8)}"
        secret = secrets.token_urlsafe(32) if method in _CONFIDENTIAL_METHODS else None
        response: dict[str, Any] = dict(body)
        response.update(
            client_id=client_id,
            client_id_issued_at=int(self._context.now()),
            token_endpoint_auth_method=method,
            redirect_uris=redirect_uris,
            grant_types=grant_types,
            response_types=response_types,
            application_type=body.get("application_type", "web"),
        )
        response.pop("client_secret", None)
        response.pop("client_secret_expires_at", None)
        if secret is not None:
            response.update(client_secret=secret, client_secret_expires_at=0)
        self.add_client(
            client_id,
            secret,
            method,
            redirect_uris=redirect_uris,
            grant_types=grant_types,
            kind="dynamic",
            metadata=response,
            public_key=public_key,
        )
        return json_response(201, response, no_store=True)

    # ------------------------------------------------------------------ /revoke

    def handle_revoke(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        record: dict[str, Any] = dict.fromkeys(
            ("client_id", "auth_method", "token", "token_type_hint", "token_kind", "revoked", "status")
        )
        record["revoked"] = False
        self._context.log.revocation_requests.append(record)
        try:
            response = self._revoke(request, injected, record)
        except _Reject as reject:
            response = reject.response
        record["status"] = response.status
        return response

    def _revoke(self, request: FakeRequest, injected: FakeResponse | None, record: dict[str, Any]) -> FakeResponse:
        if request.method != "POST":
            return _method_not_allowed("POST")
        form, repeated = _parse_form(request)
        record.update(token=form.get("token"), token_type_hint=form.get("token_type_hint"))
        with contextlib.suppress(_Reject):
            record["client_id"], record["auth_method"], _ = _identify_client(request, form)
        if injected is not None:
            return injected
        _check_form(request, repeated)
        client, _ = self._authenticate(request, form)
        token = form.get("token")
        if token is None:
            raise _token_error("invalid_request", "token is required")
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
            return _method_not_allowed("POST")
        if injected is not None:
            return injected
        form, _ = _parse_form(request)
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
                    "token_type": "Bearer",
                    "iss": self._context.issuer,
                    "sub": FAKE_SUBJECT,
                }
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

    # ------------------------------------------------------------------ resource support

    def find_access_token(self, token: str) -> AccessTokenRecord | None:
        return self._access_tokens.get(token)

    def token_counts(self) -> tuple[int, int]:
        return len(self._access_tokens), len(self._refresh_tokens)


# ---------------------------------------------------------------------- helpers


def _error_page(error: str, description: str) -> FakeResponse:
    """What the browser shows when the AS cannot trust the redirect URI (no redirect, RFC 6749 §4.1.2.1)."""
    return json_response(400, {"error": error, "error_description": description})


def _error_code(response: FakeResponse) -> str | None:
    try:
        document = response.json()
    except ValueError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, str) else None


def _parse_form(request: FakeRequest) -> tuple[dict[str, str], list[str]]:
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return {}, []
    return parse_params(parse_qsl(text, keep_blank_values=True))


def _check_form(request: FakeRequest, repeated: list[str]) -> None:
    if request.content_type != "application/x-www-form-urlencoded":
        raise _token_error("invalid_request", "the body must be application/x-www-form-urlencoded")
    try:
        request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise _token_error("invalid_request", "the body is not UTF-8") from None
    if repeated:
        raise _token_error("invalid_request", f"repeated parameters: {repeated}")


def _identify_client(request: FakeRequest, form: dict[str, str]) -> tuple[str, str, str | None]:
    """(client_id, auth method used, secret) from the request; raises _Reject when ambiguous or malformed."""
    authorizations = request.header_values("authorization")
    basic: tuple[str, str] | None = None
    if len(authorizations) > 1:
        raise _token_error("invalid_request", "more than one Authorization header")
    if authorizations:
        scheme, _, credentials = authorizations[0].strip().partition(" ")
        if scheme.lower() != "basic":
            raise _invalid_client(f"unsupported client authentication scheme {scheme!r}", False)
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except ValueError:
            raise _invalid_client("malformed HTTP Basic credentials", True) from None
        raw_id, colon, raw_secret = decoded.partition(":")
        if not colon:
            raise _invalid_client("malformed HTTP Basic credentials", True)
        # RFC 6749 §2.3.1: both parts are application/x-www-form-urlencoded before Base64.
        basic = (unquote_plus(raw_id), unquote_plus(raw_secret))
    form_id = form.get("client_id")
    form_secret = form.get("client_secret")
    assertion_type = form.get("client_assertion_type")
    assertion = form.get("client_assertion")
    if assertion_type is not None or assertion is not None:
        if basic is not None or form_secret is not None:
            raise _token_error("invalid_request", "more than one client authentication method")
        if assertion_type is None or assertion is None:
            raise _token_error("invalid_request", "client_assertion and client_assertion_type go together")
        if assertion_type != CLIENT_ASSERTION_TYPE:
            raise _invalid_client(f"unsupported client_assertion_type {assertion_type!r}", False)
        subject = _split_jws(assertion)[1].get("sub")
        if not isinstance(subject, str) or not subject:
            raise _invalid_client("client_assertion has no sub", False)
        if form_id is not None and form_id != subject:
            raise _invalid_client("client_id differs from the client_assertion's sub", False)
        return subject, _JWT_METHOD, assertion
    if basic is not None:
        if form_secret is not None:
            raise _token_error("invalid_request", "more than one client authentication method")
        if form_id is not None and form_id != basic[0]:
            raise _invalid_client("client_id differs from the HTTP Basic user name", True)
        return basic[0], "client_secret_basic", basic[1]
    if form_id is None:
        raise _invalid_client("no client authentication", False)
    if form_secret is not None:
        return form_id, "client_secret_post", form_secret
    return form_id, "none", None


def _new_user_code() -> str:
    return "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(8))


def _normalise_user_code(value: str) -> str:
    """What the user typed, as stored: upper case, punctuation and spaces dropped (RFC 8628 §6.1)."""
    return "".join(char for char in value.upper() if char.isalnum())


def _html_page(status: int, title: str, text: str) -> FakeResponse:
    body = f"<!doctype html><title>{escape(title)}</title><h1>{escape(title)}</h1><p>{text}</p>".encode()
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
    return FakeResponse(status, [*headers, ("Cache-Control", "no-store")], body)


def _b64url_decode(segment: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", segment):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _split_jws(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature) of a compact JWS; raises invalid_client when malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise _invalid_client("client_assertion is not a compact JWS (three segments)", False)
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except ValueError:
        raise _invalid_client("client_assertion is not valid base64url JSON", False) from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _invalid_client("client_assertion header and claims must be JSON objects", False)
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def _signature_verifies(
    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey, signing_input: bytes, signature: bytes
) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:  # JWS ES256: raw r || s, 32 bytes each (RFC 7518 §3.4)
                return False
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def load_public_key(value: PublicKeyInput) -> tuple[ec.EllipticCurvePublicKey | rsa.RSAPublicKey, str | None]:
    """(key, kid) from a PEM public key, a JWK, a JWK Set (its only key) or a key object; ValueError otherwise.

    Only EC P-256 (ES256) and RSA (RS256) keys are accepted.
    """
    kid: str | None = None
    key: Any
    if isinstance(value, (str, bytes)):
        key = serialization.load_pem_public_key(value.encode("ascii") if isinstance(value, str) else value)
    elif isinstance(value, Mapping):
        jwk: Mapping[str, Any] = value
        if "keys" in jwk:
            keys = jwk["keys"]
            if not isinstance(keys, list) or len(keys) != 1 or not isinstance(keys[0], Mapping):
                raise ValueError("a JWK Set for the fake must hold exactly one key")
            jwk = keys[0]
        key = _key_from_jwk(jwk)
        kid = jwk.get("kid") if isinstance(jwk.get("kid"), str) else None
    else:
        key = value
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("EC keys must be on P-256 (ES256)")
    elif not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the public key must be an EC P-256 or an RSA key")
    return key, kid


def _key_from_jwk(jwk: Mapping[str, Any]) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    def number(name: str) -> int:
        raw = jwk.get(name)
        if not isinstance(raw, str):
            raise ValueError(f"the JWK lacks {name!r}")
        return int.from_bytes(_b64url_decode(raw), "big")

    if jwk.get("kty") == "EC":
        if jwk.get("crv") != "P-256":
            raise ValueError("EC JWKs must use crv P-256")
        return ec.EllipticCurvePublicNumbers(number("x"), number("y"), ec.SECP256R1()).public_key()
    if jwk.get("kty") == "RSA":
        return rsa.RSAPublicNumbers(number("e"), number("n")).public_key()
    raise ValueError(f"unsupported JWK kty {jwk.get('kty')!r}")


def _invalid_metadata(description: str, error: str = "invalid_client_metadata") -> _Reject:
    return _token_error(error, description)


def _registration_lists(
    body: dict[str, Any], supported_grants: Sequence[str]
) -> tuple[list[str], list[str], list[str]]:
    """(grant_types, response_types, redirect_uris) of a registration request, with RFC 7591 defaults."""
    grant_types = body.get("grant_types", ["authorization_code"])
    if not _is_str_list(grant_types) or not grant_types:
        raise _invalid_metadata("grant_types must be a non-empty list of strings")
    unsupported = [grant for grant in grant_types if grant not in supported_grants]
    if unsupported:
        raise _invalid_metadata(f"unsupported grant_types: {unsupported}")
    response_types = body.get("response_types", ["code"])
    if not _is_str_list(response_types) or any(kind != "code" for kind in response_types):
        raise _invalid_metadata("response_types must be a list containing only 'code'")
    if "authorization_code" in grant_types and "code" not in response_types:
        raise _invalid_metadata("grant_type authorization_code needs response_type code (RFC 7591 §2.1)")
    redirect_uris = body.get("redirect_uris")
    if redirect_uris is None:
        if "authorization_code" in grant_types:
            raise _invalid_metadata("redirect_uris is required for the authorization_code grant")
        redirect_uris = []
    if not _is_str_list(redirect_uris) or ("authorization_code" in grant_types and not redirect_uris):
        raise _invalid_metadata("redirect_uris must be a non-empty list of strings")
    for uri in redirect_uris:
        problem = _redirect_uri_problem(uri)
        if problem is not None:
            raise _invalid_metadata(f"{uri!r}: {problem}", "invalid_redirect_uri")
    return list(grant_types), list(response_types), list(redirect_uris)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) and item for item in value)


def _redirect_uri_problem(uri: str) -> str | None:
    parts = urlsplit(uri)
    if not parts.scheme:
        return "not an absolute URI"
    if "#" in uri:
        return "must not contain a fragment"
    if parts.scheme == "http":
        if (parts.hostname or "") not in LOOPBACK_HOSTS:
            return "http is only allowed for loopback redirect URIs"
    elif parts.scheme == "https" and not parts.hostname:
        return "https redirect URI without a host"
    return None


def _same_loopback_except_port(registered: str, candidate: str) -> bool:
    """RFC 8252 §7.3: loopback redirect URIs match whatever the port."""
    if not (is_loopback_http(registered) and is_loopback_http(candidate)):
        return False
    a, b = urlsplit(registered), urlsplit(candidate)
    return (a.hostname, a.path, a.query) == (b.hostname, b.path, b.query) and not b.fragment


def _is_cimd_client_id(client_id: str) -> bool:
    parts = urlsplit(client_id)
    if parts.fragment or not parts.hostname:
        return False
    return parts.scheme == "https" or is_loopback_http(client_id)
