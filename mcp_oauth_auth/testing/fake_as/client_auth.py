"""Client authentication at the token, device authorization and revocation endpoints (RFC 6749 §2.3): which
client a request names and by which method (HTTP Basic, form secret, ``private_key_jwt`` assertion or none), and
the checks of that method against the registration, ``private_key_jwt`` assertions included (RFC 7523 §3:
signature, claims, lifetime, single-use ``jti``). The JWS parsing and signature check are joserfc's (see
:mod:`mcp_oauth_auth.flow.private_key_jwt` for why joserfc), imported on the first assertion; the claims checks
are RFC 7523's, here."""

from __future__ import annotations

import base64
import hmac
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mcp_oauth_auth.testing.fake_as.oauth_http import invalid_client, token_error
from mcp_oauth_auth.testing.fake_as.records import CONFIDENTIAL_METHODS, JWT_METHOD, FakeClient
from mcp_oauth_auth.testing.fake_as.state import AuthorizationServerState
from mcp_oauth_auth.testing.fake_http import FakeRequest

if TYPE_CHECKING:
    from joserfc.jws import CompactSignature

__all__ = ["CLIENT_ASSERTION_TYPE", "ClientAuthentication", "identify_client"]

#: ``client_assertion_type`` of private_key_jwt client authentication (RFC 7523 §2.2).
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class ClientAuthentication(AuthorizationServerState):
    """Authenticates the client of a request; the jti of every accepted assertion is remembered until it expires."""

    def _authenticate(self, request: FakeRequest, form: dict[str, str]) -> tuple[FakeClient, str]:
        """The authenticated client and the method it used, per RFC 6749 §2.3; raises Reject."""
        client_id, method, secret = identify_client(request, form)
        basic = method == "client_secret_basic"
        client = self.lookup_client(client_id)
        if client is None:
            raise invalid_client("unknown client", basic)
        if method not in client.auth_methods:
            raise invalid_client(
                f"the client is registered for {' or '.join(client.auth_methods)}, not {method}", basic
            )
        if method in CONFIDENTIAL_METHODS and not hmac.compare_digest(
            (secret or "").encode("utf-8"), (client.client_secret or "").encode("utf-8")
        ):
            raise invalid_client("client authentication failed", basic)
        if method == JWT_METHOD:
            assert secret is not None
            self._verify_client_assertion(client, secret, request)
        return client, method

    def _verify_client_assertion(self, client: FakeClient, assertion: str, request: FakeRequest) -> None:
        """RFC 7523 §3 checks of a private_key_jwt assertion; the ``jti`` is remembered once all pass."""
        now = self._context.now()
        signed, claims = _split_jws(assertion)
        header = signed.headers()
        key = client.public_key
        assert key is not None
        expected_alg = "ES256" if isinstance(key, ec.EllipticCurvePublicKey) else "RS256"
        if header.get("alg") != expected_alg:
            raise invalid_client(
                f"client_assertion alg {header.get('alg')!r} does not fit the registered key ({expected_alg})", False
            )
        kid = header.get("kid")
        if kid is not None and client.key_id is not None and kid != client.key_id:
            raise invalid_client(f"client_assertion kid {kid!r} is not the registered key's", False)
        _verify_signature(signed, key, expected_alg)
        for claim in ("iss", "sub"):
            if claims.get(claim) != client.client_id:
                raise invalid_client(f"client_assertion {claim} must be the client_id", False)
        audiences = claims.get("aud")
        audience_list = audiences if isinstance(audiences, list) else [audiences]
        issuer = self._context.issuer
        accepted = {issuer, f"{issuer}/token", request.url.split("?", 1)[0]}
        if not any(isinstance(item, str) and item in accepted for item in audience_list):
            raise invalid_client("client_assertion aud must be the issuer or the token endpoint", False)
        exp = claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, (int, float)):
            raise invalid_client("client_assertion has no numeric exp", False)
        if now >= exp:
            raise invalid_client("client_assertion expired", False)
        max_lifetime = self._context.config.client_assertion_max_lifetime
        if exp - now > max_lifetime:
            raise invalid_client(f"client_assertion exp is more than {max_lifetime} s away", False)
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and not isinstance(nbf, bool) and nbf > now:
            raise invalid_client("client_assertion is not valid yet (nbf)", False)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise invalid_client("client_assertion has no jti", False)
        self._seen_jtis = {seen: until for seen, until in self._seen_jtis.items() if until > now}
        if (client.client_id, jti) in self._seen_jtis:
            raise invalid_client("client_assertion jti was already used", False)
        self._seen_jtis[(client.client_id, jti)] = float(exp)


def identify_client(request: FakeRequest, form: dict[str, str]) -> tuple[str, str, str | None]:
    """(client_id, auth method used, secret) from the request; raises Reject when ambiguous or malformed."""
    authorizations = request.header_values("authorization")
    basic: tuple[str, str] | None = None
    if len(authorizations) > 1:
        raise token_error("invalid_request", "more than one Authorization header")
    if authorizations:
        scheme, _, credentials = authorizations[0].strip().partition(" ")
        if scheme.lower() != "basic":
            raise invalid_client(f"unsupported client authentication scheme {scheme!r}", False)
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except ValueError:
            raise invalid_client("malformed HTTP Basic credentials", True) from None
        raw_id, colon, raw_secret = decoded.partition(":")
        if not colon:
            raise invalid_client("malformed HTTP Basic credentials", True)
        # RFC 6749 §2.3.1: both parts are application/x-www-form-urlencoded before Base64.
        basic = (unquote_plus(raw_id), unquote_plus(raw_secret))
    form_id = form.get("client_id")
    form_secret = form.get("client_secret")
    assertion_type = form.get("client_assertion_type")
    assertion = form.get("client_assertion")
    if assertion_type is not None or assertion is not None:
        if basic is not None or form_secret is not None:
            raise token_error("invalid_request", "more than one client authentication method")
        if assertion_type is None or assertion is None:
            raise token_error("invalid_request", "client_assertion and client_assertion_type go together")
        if assertion_type != CLIENT_ASSERTION_TYPE:
            raise invalid_client(f"unsupported client_assertion_type {assertion_type!r}", False)
        subject = _split_jws(assertion)[1].get("sub")
        if not isinstance(subject, str) or not subject:
            raise invalid_client("client_assertion has no sub", False)
        if form_id is not None and form_id != subject:
            raise invalid_client("client_id differs from the client_assertion's sub", False)
        return subject, JWT_METHOD, assertion
    if basic is not None:
        if form_secret is not None:
            raise token_error("invalid_request", "more than one client authentication method")
        if form_id is not None and form_id != basic[0]:
            raise invalid_client("client_id differs from the HTTP Basic user name", True)
        return basic[0], "client_secret_basic", basic[1]
    if form_id is None:
        raise invalid_client("no client authentication", False)
    if form_secret is not None:
        return form_id, "client_secret_post", form_secret
    return form_id, "none", None


def _split_jws(token: str) -> tuple[CompactSignature, dict[str, Any]]:
    """The compact JWS, its signature not yet checked, and its claims; raises invalid_client when malformed."""
    from joserfc import jws
    from joserfc.errors import JoseError, MissingAlgorithmError

    if token.count(".") != 2:
        raise invalid_client("client_assertion is not a compact JWS (three segments)", False)
    try:
        signed = jws.extract_compact(token.encode("utf-8"))
        header, claims = signed.headers(), json.loads(signed.payload)
    except MissingAlgorithmError:
        raise invalid_client("client_assertion header has no alg", False) from None
    except (JoseError, ValueError):
        raise invalid_client("client_assertion is not valid base64url JSON", False) from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise invalid_client("client_assertion header and claims must be JSON objects", False)
    if header.get("b64", True) is not True:
        # RFC 7797 §7: a JWT's payload is always base64url-encoded.
        raise invalid_client("client_assertion must not use an unencoded payload (b64)", False)
    return signed, claims


def _verify_signature(
    signed: CompactSignature, key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey, algorithm: str
) -> None:
    """Raises invalid_client unless ``signed`` is signed by ``key`` with ``algorithm``."""
    from joserfc import jws
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey, RSAKey

    jose_key = ECKey.import_key(key) if isinstance(key, ec.EllipticCurvePublicKey) else RSAKey.import_key(key)
    # Header parameters the server does not know are ignored, as RFC 7515 §4 asks and real servers do; unknown
    # ``crit`` ones are refused (§4.1.11).
    registry = jws.JWSRegistry(algorithms=[algorithm], strict_check_header=False)
    try:
        verified = jws.validate_compact(signed, jose_key, registry=registry)
    except JoseError as exc:
        raise invalid_client(f"client_assertion header refused: {exc.description}", False) from None
    if not verified:
        raise invalid_client("client_assertion signature does not verify with the registered key", False)
