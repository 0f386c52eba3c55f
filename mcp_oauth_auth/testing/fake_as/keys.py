"""The public keys of ``private_key_jwt`` clients: PEM, JWK, JWK Set or key object to a ``cryptography`` key.

JWKs are read by joserfc (RFC 7517), imported on the first JWK.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = ["PublicKeyInput", "load_public_key"]

#: A public key for private_key_jwt: PEM (SubjectPublicKeyInfo), a JWK, a JWK Set, or a cryptography key.
PublicKeyInput = str | bytes | Mapping[str, Any] | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


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
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey, RSAKey

    kty = jwk.get("kty")
    if kty == "EC" and jwk.get("crv") != "P-256":
        raise ValueError("EC JWKs must use crv P-256")
    if kty not in ("EC", "RSA"):
        raise ValueError(f"unsupported JWK kty {kty!r}")
    try:
        key = ECKey.import_key(dict(jwk)) if kty == "EC" else RSAKey.import_key(dict(jwk))
    except (JoseError, ValueError, TypeError) as exc:
        raise ValueError(f"unusable {kty} JWK: {exc}") from None
    public: ec.EllipticCurvePublicKey | rsa.RSAPublicKey = key.public_key
    return public
