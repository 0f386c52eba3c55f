"""``private_key_jwt`` client authentication (RFC 7523 §2.2): a client's private key signing short-lived assertions.

Kept apart from the flow so that ``cryptography`` is imported only by programs that sign assertions. The JWS
(RFC 7515) and JWK (RFC 7517) work is joserfc's, imported on the first assertion or JWK rather than when the key is
loaded. joserfc, not ``authlib.jose``: it is the JOSE library of Authlib's authors, Authlib itself depends on it,
and Authlib 1.9 deprecates ``authlib.jose`` in its favour ("authlib.jose module is deprecated, please use joserfc
instead"). Its import (some 80 modules, 25 ms on a quiet machine) is paid once per process, before the first
request that carries an assertion; an assertion then takes about 1.2x (ES256) and 1.06x (RS256) the time of the
former hand-written signing, tens of microseconds next to a request to the authorization server
(benchmarks/authlib_helpers.py).
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.client_auth import ASSERTION_LIFETIME

if TYPE_CHECKING:
    from joserfc.jwk import ECKey, RSAKey

__all__ = ["PrivateKeyJWT"]

_MIN_RSA_BITS = 2048  # RFC 7518 §3.3


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

    __slots__ = ("_algorithm", "_jose_key", "_key", "_key_id")

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
        self._jose_key: ECKey | RSAKey | None = None

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
        from joserfc.jwk import ECKey, RSAKey

        public = self._key.public_key()
        key = ECKey.import_key(public) if isinstance(public, ec.EllipticCurvePublicKey) else RSAKey.import_key(public)
        # kty first, then crv, x, y or n, e (all strings in a public EC or RSA JWK)
        jwk = {"kty": key.key_type, **{name: value for name, value in key.as_dict().items() if isinstance(value, str)}}
        jwk.update(alg=self._algorithm, use="sig")
        if self._key_id is not None:
            jwk["kid"] = self._key_id
        return jwk

    def assertion(self, client_id: str, audience: str, now: float | None = None) -> str:
        """A compact JWS client assertion for ``client_id``, addressed to ``audience``, issued at ``now``."""
        from joserfc import jwt

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
        return jwt.encode(header, claims, self._signing_key(), algorithms=[self._algorithm])

    def _signing_key(self) -> ECKey | RSAKey:
        """The key as joserfc's, made once: joserfc derives its JWK members on first use and keeps them."""
        if self._jose_key is None:
            from joserfc.jwk import ECKey, RSAKey

            self._jose_key = (
                ECKey.import_key(self._key)
                if isinstance(self._key, ec.EllipticCurvePrivateKey)
                else RSAKey.import_key(self._key)
            )
        return self._jose_key
