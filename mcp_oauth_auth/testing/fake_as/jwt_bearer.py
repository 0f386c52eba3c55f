"""Workload identity at the fake token endpoint: the JWT bearer grant (RFC 7523 §2.1, §3; MCP SEP-1933).

The stack trusts the workload issuers of ``FakeStackConfig.workload_issuers`` (issuer → public key). An assertion
is accepted when it is a JWT signed by its issuer's key (ES256 for an EC key, RS256 for RSA), names this
authorization server (its issuer or token endpoint) in ``aud``, has not expired (``exp``), is already valid
(``nbf``, ``iat`` not in the future) and has a ``sub``: the workload. Anything else is ``invalid_grant``, as RFC 7523
§3.1 asks.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from mcp_oauth_auth.testing.fake_as.keys import PublicKeyInput, load_public_key
from mcp_oauth_auth.testing.fake_as.oauth_http import Reject, token_error

__all__ = ["verify_workload_assertion"]
#: Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
_LEEWAY = 5


def verify_workload_assertion(
    assertion: str, trusted: Mapping[str, PublicKeyInput], audiences: tuple[str, ...], now: float
) -> dict[str, Any]:
    """The verified claims of ``assertion``; raises :class:`Reject` (``invalid_grant``) for anything else."""
    from joserfc import jws
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey, RSAKey

    issuer = _unverified_claims(assertion).get("iss")
    if not isinstance(issuer, str) or issuer not in trusted:
        raise _refused("the assertion's issuer is not a trusted workload issuer")
    key, _ = load_public_key(trusted[issuer])
    is_ec = isinstance(key, ec.EllipticCurvePublicKey)
    jose_key = ECKey.import_key(key) if isinstance(key, ec.EllipticCurvePublicKey) else RSAKey.import_key(key)
    registry = jws.JWSRegistry(algorithms=["ES256" if is_ec else "RS256"], strict_check_header=False)
    try:
        verified = jws.deserialize_compact(assertion, jose_key, registry=registry)
        claims = json.loads(verified.payload)
    except (JoseError, ValueError):
        raise _refused("the assertion's signature does not verify with its issuer's key") from None
    if not isinstance(claims, dict):
        raise _refused("the assertion's claims are not a JSON object")
    audience = claims.get("aud")
    named = audience if isinstance(audience, list) else [audience]
    if not any(value in audiences for value in named):
        raise _refused("the assertion's aud does not name this authorization server")
    if not _number(claims.get("exp")) or claims["exp"] <= now - _LEEWAY:
        raise _refused("the assertion has expired (or has no exp)")
    for claim in ("nbf", "iat"):
        if claim in claims and (not _number(claims[claim]) or claims[claim] > now + _LEEWAY):
            raise _refused(f"the assertion's {claim} is in the future")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise _refused("the assertion has no sub")
    return claims


def _unverified_claims(assertion: str) -> dict[str, Any]:
    parts = assertion.split(".")
    if len(parts) != 3:
        raise _refused("the assertion is not a compact JWT (three segments)")
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeEncodeError):
        raise _refused("the assertion's claims are not base64url JSON") from None
    if not isinstance(claims, dict):
        raise _refused("the assertion's claims are not a JSON object")
    return claims


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _refused(reason: str) -> Reject:
    return token_error("invalid_grant", reason)
