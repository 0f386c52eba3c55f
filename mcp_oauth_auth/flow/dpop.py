"""DPoP (RFC 9449): a key pair of the client that proves possession on every token request and protected request.

Sans-IO: :class:`DPoPKey` signs proofs; :class:`DPoPState` (one per :class:`~mcp_oauth_auth.flow.engine.FlowEngine`)
holds the key in use and the newest ``DPoP-Nonce`` of each origin (authorization server and resource apart);
:func:`dpop_fetch` sends a token endpoint request with a fresh proof per attempt and retries a ``use_dpop_nonce``
refusal once with the server's nonce.

A proof is a compact JWS with header ``{"typ": "dpop+jwt", "alg": ..., "jwk": <public key>}`` and claims ``jti``
(random, single use), ``htm``, ``htu`` (the URL without query and fragment), ``iat`` (the flow's clock), ``nonce``
when the server gave one and ``ath`` (base64url SHA-256 of the access token) on protected requests.
The header never changes for a key, so its encoding is made once; a proof then costs one signature plus the
encoding of a few claims (``benchmarks/dpop.py``). joserfc exports the public JWK; the signing is ``cryptography``'s
directly: joserfc's ``jws.serialize_compact`` costs 1.7x the bare signature of the same bytes, this 1.1x.

The private key never appears in a ``repr``, a log line or an error message; it is stored only inside the
credential record (:meth:`DPoPKey.private_pem`), which the stores encrypt like the tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any

from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.effects import Effect, HttpRequest, HttpResponse
from mcp_oauth_auth.flow.fetch import RetryPolicy, fetch
from mcp_oauth_auth.flow.urls import origin_of

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    from mcp_oauth_auth.flow.challenge import BearerChallenge
    from mcp_oauth_auth.records import CredentialRecord

    PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

__all__ = [
    "DPOP_ALGORITHMS",
    "DPoPKey",
    "DPoPState",
    "access_token_hash",
    "adopt_binding",
    "choose_algorithm",
    "dpop_challenge",
    "dpop_fetch",
    "htu_of",
    "is_use_dpop_nonce",
    "requires_dpop",
]

logger = logging.getLogger("mcp_oauth_auth")

#: The algorithms this client signs proofs with, in the order it prefers them.
DPOP_ALGORITHMS = ("ES256", "EdDSA", "RS256")
_MIN_RSA_BITS = 2048
_RSA_BITS = 2048
#: Strings that are their own JSON representation between quotes (no quote, backslash, control or non-ASCII).
_PLAIN_STRING = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
#: The longest ``DPoP-Nonce`` kept (RFC 9449 §8.1: a nonce is an opaque NQCHAR string).
_MAX_NONCE = 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_string(value: str) -> str:
    """``value`` as a JSON string (RFC 8259 §7)."""
    return f'"{value}"' if _PLAIN_STRING.fullmatch(value) else json.dumps(value)


def access_token_hash(access_token: str) -> str:
    """``ath``: base64url of the SHA-256 of the access token's ASCII (RFC 9449 §4.2)."""
    return _b64(hashlib.sha256(access_token.encode("ascii")).digest())


def htu_of(url: str) -> str:
    """The ``htu`` of a request to ``url``: the URL without query and fragment (RFC 9449 §4.2)."""
    end = len(url)
    for mark in ("?", "#"):
        position = url.find(mark)
        if position != -1 and position < end:
            end = position
    return url[:end]


class DPoPKey:
    """The client's DPoP key pair: ES256 (P-256) by default, or RS256, or EdDSA (Ed25519).

    ``DPoPKey()`` generates a new key for ``algorithm``; ``DPoPKey(private_key)`` wraps the caller's ``cryptography``
    private key (an EC P-256, an RSA of 2048 bits or more, or an Ed25519 key). :meth:`from_pem` loads a stored one.
    Its ``repr`` shows the algorithm and the public key's thumbprint, never the private key.
    """

    __slots__ = ("_algorithm", "_ath", "_header", "_key", "_public_jwk", "_sign", "_thumbprint")

    def __init__(self, private_key: PrivateKey | None = None, *, algorithm: str | None = None) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        if algorithm is not None and algorithm not in DPOP_ALGORITHMS:
            raise ConfigurationError(f"DPoP algorithm must be one of {', '.join(DPOP_ALGORITHMS)}, not {algorithm!r}")
        key: Any = private_key
        if key is None:
            key = _generate(algorithm or "ES256")
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if not isinstance(key.curve, ec.SECP256R1):
                raise ConfigurationError(f"DPoP supports EC keys on P-256 (ES256) only, not {key.curve.name}")
            inferred = "ES256"
        elif isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < _MIN_RSA_BITS:
                raise ConfigurationError(f"RSA keys for RS256 need at least {_MIN_RSA_BITS} bits (RFC 7518 §3.3)")
            inferred = "RS256"
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            inferred = "EdDSA"
        else:
            raise ConfigurationError("a DPoP key must be an EC P-256, RSA or Ed25519 private key of `cryptography`")
        if algorithm is not None and algorithm != inferred:
            raise ConfigurationError(f"algorithm {algorithm!r} does not fit the key, which signs {inferred}")
        self._key: PrivateKey = key
        self._algorithm = inferred
        self._public_jwk = _public_jwk(key)
        self._thumbprint = _thumbprint(self._public_jwk)
        header = {"typ": "dpop+jwt", "alg": inferred, "jwk": self._public_jwk}
        self._header = _b64(json.dumps(header, separators=(",", ":")).encode("ascii")) + "."
        self._sign = _signer(key)
        #: The last access token proved and its ``ath``: a token is used for many requests.
        self._ath: tuple[str | None, str] = (None, "")

    @classmethod
    def from_pem(cls, pem: str) -> DPoPKey:
        """A key stored with :meth:`private_pem` (unencrypted PKCS#8; the store encrypts the record)."""
        from cryptography.hazmat.primitives import serialization

        try:
            key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        except (ValueError, TypeError, UnicodeEncodeError):
            raise ConfigurationError("the stored DPoP key is not a usable PEM private key") from None
        return cls(key)  # type: ignore[arg-type]

    def private_pem(self) -> str:
        """The private key as unencrypted PKCS#8 PEM, for the credential record only (the store encrypts it)."""
        from cryptography.hazmat.primitives import serialization

        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii")

    def __repr__(self) -> str:
        return f"DPoPKey(algorithm={self._algorithm!r}, thumbprint={self._thumbprint!r})"

    def __reduce__(self) -> Any:
        raise TypeError("DPoPKey holds a private key and is not picklable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DPoPKey) and other._thumbprint == self._thumbprint

    def __hash__(self) -> int:
        return hash(self._thumbprint)

    @property
    def algorithm(self) -> str:
        return self._algorithm

    @property
    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK (RFC 7517): the members RFC 7638 hashes, nothing private."""
        return dict(self._public_jwk)

    @property
    def thumbprint(self) -> str:
        """The RFC 7638 SHA-256 thumbprint of the public key (a DPoP-bound token's ``cnf.jkt``, RFC 9449 §6)."""
        return self._thumbprint

    def proof(
        self,
        method: str,
        url: str,
        now: float | None = None,
        *,
        nonce: str | None = None,
        access_token: str | None = None,
    ) -> str:
        """A DPoP proof JWT for one request: ``method`` to ``url`` (its query and fragment left out), issued at
        ``now``, with the server's ``nonce`` and, for a protected request, the ``ath`` of ``access_token``."""
        # The claims' JSON is written directly: jti (hex), iat (an integer) and ath (base64url) never need escaping,
        # and the strings that might (htm, htu, nonce) go through json.dumps unless plainly safe.
        claims = (
            f'{{"jti":"{os.urandom(16).hex()}","htm":{_json_string(method)},"htu":{_json_string(htu_of(url))},'
            f'"iat":{int(time.time() if now is None else now)}'
        )
        if nonce is not None:
            claims += f',"nonce":{_json_string(nonce)}'
        if access_token is not None:
            cached = self._ath  # one read: other threads may prove other tokens with this key
            if cached[0] != access_token:
                cached = self._ath = (access_token, access_token_hash(access_token))
            claims += f',"ath":"{cached[1]}"'
        signing_input = self._header + _b64((claims + "}").encode("utf-8"))
        return signing_input + "." + _b64(self._sign(signing_input.encode("ascii")))


def _generate(algorithm: str) -> PrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    return ed25519.Ed25519PrivateKey.generate()


def _public_jwk(key: PrivateKey) -> dict[str, str]:
    """The public JWK's required members (RFC 7638 §3.2), lexicographically ordered, as joserfc exports them."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from joserfc.jwk import ECKey, OKPKey, RSAKey

    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        names: tuple[str, ...] = ("crv", "kty", "x", "y")
        exported = ECKey.import_key(public).as_dict(private=False)
    elif isinstance(public, rsa.RSAPublicKey):
        names = ("e", "kty", "n")
        exported = RSAKey.import_key(public).as_dict(private=False)
    else:
        names = ("crv", "kty", "x")
        exported = OKPKey.import_key(public).as_dict(private=False)
    return {name: str(exported[name]) for name in names}


def _thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, without whitespace (``jwk`` is already so ordered)."""
    canonical = json.dumps({name: jwk[name] for name in sorted(jwk)}, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode("utf-8")).digest())


def _signer(key: PrivateKey) -> Callable[[bytes], bytes]:
    """The JWS signature function of ``key`` (RFC 7518 §3.3, §3.4; RFC 8037 §3.1)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    if isinstance(key, ec.EllipticCurvePrivateKey):
        ecdsa = ec.ECDSA(hashes.SHA256())

        def sign_es256(data: bytes) -> bytes:
            r, s = decode_dss_signature(key.sign(data, ecdsa))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        return sign_es256
    if isinstance(key, rsa.RSAPrivateKey):
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
        return lambda data: key.sign(data, pkcs1, sha256)
    return key.sign


def choose_algorithm(supported: object, key: DPoPKey | None) -> str:
    """The proof algorithm for an authorization server advertising ``supported``
    (``dpop_signing_alg_values_supported``; None or absent: no preference known).

    With the caller's key, its algorithm, which the server must list when it lists any; else this client's
    preferred one among those listed. A server listing none this client signs is a
    :class:`~mcp_oauth_auth.exceptions.ConfigurationError`.
    """
    listed = tuple(value for value in supported if isinstance(value, str)) if isinstance(supported, list) else None
    if key is not None:
        if listed and key.algorithm not in listed:
            raise ConfigurationError(
                f"the DPoP key signs {key.algorithm}, but the authorization server accepts only {', '.join(listed)} "
                "DPoP proofs (dpop_signing_alg_values_supported)"
            )
        return key.algorithm
    if not listed:
        return DPOP_ALGORITHMS[0]
    for algorithm in DPOP_ALGORITHMS:
        if algorithm in listed:
            return algorithm
    raise ConfigurationError(
        f"the authorization server accepts only {', '.join(listed)} DPoP proofs; this client signs "
        f"{', '.join(DPOP_ALGORITHMS)}"
    )


def is_use_dpop_nonce(challenges: Iterable[str]) -> bool:
    """Whether ``WWW-Authenticate`` values hold a ``DPoP`` challenge with ``error="use_dpop_nonce"`` (§9)."""
    from mcp_oauth_auth.flow.challenge import parse_www_authenticate

    return any(
        challenge.scheme == "dpop" and challenge.params.get("error") == "use_dpop_nonce"
        for challenge in parse_www_authenticate(challenges)
    )


def dpop_challenge(challenges: Iterable[str]) -> BearerChallenge | None:
    """The parameters of the first ``DPoP`` challenge (the same as a ``Bearer`` one's, RFC 9449 §7.1), or None."""
    from mcp_oauth_auth.flow.challenge import first_challenge

    return first_challenge(challenges, "dpop")


def requires_dpop(challenges: Iterable[str]) -> bool:
    """Whether a 401's challenges use the ``DPoP`` scheme only (the resource accepts no bearer token, §7.1)."""
    from mcp_oauth_auth.flow.challenge import parse_www_authenticate

    schemes = {challenge.scheme for challenge in parse_www_authenticate(challenges)}
    return "dpop" in schemes and "bearer" not in schemes


class DPoPState:
    """The DPoP key of one engine and the newest nonce of each origin.

    ``key`` is None until the first token request (a key given by the caller is used from the start; else one is
    generated for the algorithm the authorization server supports, or adopted from the stored record).
    """

    __slots__ = ("given", "key", "nonces", "requested")

    def __init__(self, key: DPoPKey | None, *, requested: bool) -> None:
        self.key = key
        #: The caller's own key, if any: always the one used for new authorizations.
        self.given = key
        #: Whether the caller asked for DPoP (else it was turned on by a resource that requires it).
        self.requested = requested
        self.nonces: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"DPoPState(key={self.key!r}, origins_with_nonce={len(self.nonces)})"

    @classmethod
    def for_config(cls, option: bool | DPoPKey, server_url: str, *, requested: bool) -> DPoPState:
        """The state of an engine whose ``dpop`` option is ``option`` (a key given is used from the start)."""
        if not requested:
            logger.info("%s accepts DPoP-bound tokens only (RFC 9449); using DPoP", server_url)
        return cls(option if isinstance(option, DPoPKey) else None, requested=requested)

    def for_server(self, algorithms_supported: object) -> DPoPState:
        """This state, with the key for an authorization server advertising ``algorithms_supported``."""
        self.key_for(algorithms_supported)
        return self

    def for_renewal(self) -> DPoPState:
        """This state, with a key for a refresh or a new client credentials token (a record without one, from
        before DPoP was asked for, gets a new key: the renewed token is bound to it)."""
        if self.key is None:
            self.key_for(None)
        return self

    def key_for(self, algorithms_supported: object) -> DPoPKey:
        """The key to sign with at an authorization server advertising ``algorithms_supported``."""
        if self.given is not None:
            choose_algorithm(algorithms_supported, self.given)
            self.key = self.given
            return self.given
        algorithm = choose_algorithm(algorithms_supported, None)
        if self.key is None or self.key.algorithm != algorithm:
            self.key = DPoPKey(algorithm=algorithm)
        return self.key

    def adopt_stored(self, pem: str | None) -> bool:
        """Use the key a stored record's tokens are bound to; False when it is missing or unusable."""
        if pem is None:
            return False
        try:
            key = DPoPKey.from_pem(pem)
        except ConfigurationError:
            logger.warning("the stored DPoP key cannot be loaded; the credential will be authorized anew")
            return False
        self.key = key
        return True

    def remember_nonce(self, url: str, nonce: str | None, *, resource: bool = False) -> bool:
        """Keep ``nonce`` (a response's ``DPoP-Nonce``) for ``url``'s origin, as the authorization server's or (with
        ``resource``) the protected resource's: the two keep their own even on one origin. True when it is new."""
        if nonce is None or not nonce or len(nonce) > _MAX_NONCE or not nonce.isascii() or not nonce.isprintable():
            return False
        where = f"{'resource' if resource else 'as'} {origin_of(url)}"
        if self.nonces.get(where) == nonce:
            return False
        self.nonces[where] = nonce
        return True

    def nonce_for(self, url: str, *, resource: bool = False) -> str | None:
        return self.nonces.get(f"{'resource' if resource else 'as'} {origin_of(url)}") if self.nonces else None

    def proof(self, method: str, url: str, now: float, access_token: str | None = None) -> str:
        """A proof for a token request, or with ``access_token`` for a protected request (with its ``ath``)."""
        assert self.key is not None
        nonce = self.nonce_for(url, resource=access_token is not None)
        return self.key.proof(method, url, now, nonce=nonce, access_token=access_token)


def adopt_binding(record: CredentialRecord, state: DPoPState) -> CredentialRecord:
    """``record`` as an engine using ``state`` adopts it: its stored key becomes the key in use; DPoP-bound tokens
    whose key is missing or unusable are dropped (of no use: the credential is authorized anew, the client
    registration is kept)."""
    tokens = record.tokens
    adopted = state.adopt_stored(record.dpop_key)
    if adopted or tokens is None or tokens.token_type != "DPoP":
        return record
    logger.info("the DPoP key of the stored credential for %s is missing; authorizing anew", record.key)
    return record.with_tokens(None)


def dpop_fetch(
    request: Callable[[], HttpRequest],
    state: DPoPState,
    retry: RetryPolicy,
    what: str,
    now: Callable[[], float],
) -> Generator[Effect, Any, HttpResponse]:
    """:func:`~mcp_oauth_auth.flow.fetch.fetch` with a fresh DPoP proof on every attempt; a 400
    ``use_dpop_nonce`` answer carrying a new ``DPoP-Nonce`` is retried once with it (RFC 9449 §8)."""

    def with_proof() -> HttpRequest:
        sent = request()
        proof = state.proof(sent.method, sent.url, now())
        return HttpRequest(sent.method, sent.url, (*sent.headers, ("DPoP", proof)), sent.body)

    response = yield from fetch(with_proof, retry, what)
    url = response.request.url if response.request is not None else ""
    new_nonce = state.remember_nonce(url, response.header("dpop-nonce"))
    if response.status == 400 and new_nonce and (response.json_object() or {}).get("error") == "use_dpop_nonce":
        logger.debug("%s: the authorization server asks for a DPoP nonce; sending the proof again with it", what)
        response = yield from fetch(with_proof, retry, what)
        state.remember_nonce(url, response.header("dpop-nonce"))
    return response
