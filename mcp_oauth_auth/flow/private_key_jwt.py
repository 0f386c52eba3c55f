"""``private_key_jwt`` client authentication (RFC 7523 §2.2): a client's private key signing short-lived assertions.

Kept apart from the flow so that ``cryptography`` is imported only by programs that sign assertions.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.client_auth import ASSERTION_LIFETIME

__all__ = ["PrivateKeyJWT"]

_MIN_RSA_BITS = 2048  # RFC 7518 §3.3


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_segment(document: dict[str, Any]) -> str:
    return _b64url(json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8"))


def _int_bytes(value: int, length: int | None = None) -> bytes:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(size, "big")


class PrivateKeyJWT:
    """A client's private key for ``private_key_jwt`` client authentication.

    :param private_key: a PEM private key (``str`` or ``bytes``; PKCS#8 or traditional) or a ``cryptography``
        private key object: an EC key on P-256 (signs ES256) or an RSA key of 2048 bits or more (signs RS256).
    :param key_id: the ``kid`` put in every assertion's header, when the server holds several keys of the client.
    :param algorithm: ``"ES256"`` or ``"RS256"``; by default inferred from the key. It must fit the key.
    :param password: the password of an encrypted PEM key.

    Assertions carry ``iss`` = ``sub`` = the client ID, ``aud`` = the audience given (this library passes the
    authorization server's issuer identifier: RFC 7523 §3 accepts it, and unlike the token endpoint URL it cannot
    be confused between servers), ``iat``, ``exp`` = ``iat`` + 60 s and a random 256-bit ``jti``.
    The key never appears in a ``repr``.
    """

    __slots__ = ("_algorithm", "_key", "_key_id")

    def __init__(
        self,
        private_key: str | bytes | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
        *,
        key_id: str | None = None,
        algorithm: str | None = None,
        password: bytes | None = None,
    ) -> None:
        key: Any = private_key
        if isinstance(private_key, (str, bytes)):
            data = private_key.encode("utf-8") if isinstance(private_key, str) else private_key
            try:
                key = serialization.load_pem_private_key(data, password=password)
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(f"the private_key_jwt key is not a usable PEM private key: {exc}") from None
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if not isinstance(key.curve, ec.SECP256R1):
                raise ConfigurationError(f"private_key_jwt supports EC keys on P-256 only, not {key.curve.name}")
            inferred = "ES256"
        elif isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < _MIN_RSA_BITS:
                raise ConfigurationError(f"RSA keys for RS256 need at least {_MIN_RSA_BITS} bits (RFC 7518 §3.3)")
            inferred = "RS256"
        else:
            raise ConfigurationError("private_key_jwt needs an EC P-256 or an RSA private key")
        if algorithm is not None and algorithm != inferred:
            raise ConfigurationError(f"algorithm {algorithm!r} does not fit the key, which signs {inferred}")
        if key_id is not None and not key_id:
            raise ConfigurationError("key_id must not be empty")
        self._key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = key
        self._key_id = key_id
        self._algorithm = inferred

    def __repr__(self) -> str:
        return f"PrivateKeyJWT(algorithm={self._algorithm!r}, key_id={self._key_id!r})"

    def __reduce__(self) -> Any:
        raise TypeError("PrivateKeyJWT holds a private key and is not picklable")

    @property
    def algorithm(self) -> str:
        return self._algorithm

    @property
    def key_id(self) -> str | None:
        return self._key_id

    def public_key_pem(self) -> str:
        """The public key (SubjectPublicKeyInfo PEM), to register with the authorization server."""
        return (
            self._key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode("ascii")
        )

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK (RFC 7517), with ``kid``, ``alg`` and ``use``, e.g. for a ``jwks`` document."""
        jwk: dict[str, str]
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            numbers = self._key.public_key().public_numbers()
            jwk = {
                "kty": "EC",
                "crv": "P-256",
                "x": _b64url(_int_bytes(numbers.x, 32)),
                "y": _b64url(_int_bytes(numbers.y, 32)),
            }
        else:
            rsa_numbers = self._key.public_key().public_numbers()
            jwk = {"kty": "RSA", "n": _b64url(_int_bytes(rsa_numbers.n)), "e": _b64url(_int_bytes(rsa_numbers.e))}
        jwk.update(alg=self._algorithm, use="sig")
        if self._key_id is not None:
            jwk["kid"] = self._key_id
        return jwk

    def assertion(self, client_id: str, audience: str, now: float | None = None) -> str:
        """A compact JWS client assertion for ``client_id``, addressed to ``audience``, issued at ``now``."""
        issued_at = int(time.time() if now is None else now)
        header: dict[str, Any] = {"alg": self._algorithm, "typ": "JWT"}
        if self._key_id is not None:
            header["kid"] = self._key_id
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": issued_at,
            "exp": issued_at + ASSERTION_LIFETIME,
            "jti": secrets.token_urlsafe(32),
        }
        signing_input = f"{_json_segment(header)}.{_json_segment(claims)}"
        return f"{signing_input}.{_b64url(self._sign(signing_input.encode('ascii')))}"

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            # JWS ES256 signatures are the raw 32-byte r and s, not DER (RFC 7518 §3.4).
            r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
            return _int_bytes(r, 32) + _int_bytes(s, 32)
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
