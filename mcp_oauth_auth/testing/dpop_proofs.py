"""Checking DPoP proofs (RFC 9449 §4.3) as a server does: for the fake stack, and for tests of any DPoP client.

:class:`DPoPProofChecker` verifies one ``DPoP`` header against the request it came with: a single compact JWS,
``typ`` ``dpop+jwt``, an asymmetric ``alg`` among those accepted, a public ``jwk`` without private members whose
key verifies the signature, ``htm`` and ``htu`` matching the request (query and fragment left out), ``iat`` within
the window, a ``jti`` not seen before, the server's ``nonce`` when it demands one, and for a protected request the
``ath`` of the access token and the key's thumbprint equal to the token's ``cnf.jkt``. Each failure is a
:class:`DPoPProofError` whose ``error`` is ``invalid_dpop_proof`` or ``use_dpop_nonce``.
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Sequence
from typing import Any

from mcp_oauth_auth.flow.dpop import DPOP_ALGORITHMS, access_token_hash, htu_of

__all__ = ["DPoPProofChecker", "DPoPProofError", "jwk_thumbprint"]

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_REQUIRED = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}


class DPoPProofError(Exception):
    """A proof that a server must refuse; ``error`` is the OAuth error code to answer with."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK (what ``cnf.jkt`` holds)."""
    import hashlib

    names = _REQUIRED.get(str(jwk.get("kty")))
    if names is None:
        raise DPoPProofError("invalid_dpop_proof", "the jwk has an unsupported kty")
    canonical = json.dumps({name: jwk.get(name) for name in names}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def _registry(algorithm: str) -> Any:
    """joserfc's JWS registry for ``algorithm`` (EdDSA is not among its "recommended" ones), with room for a header
    carrying an RSA ``jwk`` (its default allows 512 bytes)."""
    from joserfc.jws import JWSRegistry

    registry = JWSRegistry(algorithms=[algorithm])
    registry.max_header_length = 4096
    return registry


class DPoPProofChecker:
    """Verifies proofs for one server, remembering the ``jti`` of every proof it accepted.

    ``iat_window``: seconds a proof's ``iat`` may lie before or after the server's clock.
    """

    def __init__(self, algorithms: Sequence[str] = DPOP_ALGORITHMS, iat_window: float = 60.0) -> None:
        self.algorithms = tuple(algorithms)
        self.iat_window = iat_window
        self._seen: dict[str, float] = {}

    def check(
        self,
        proofs: Sequence[str],
        method: str,
        url: str,
        now: float,
        *,
        nonce: str | None = None,
        access_token: str | None = None,
        bound_to: str | None = None,
    ) -> str:
        """The thumbprint of the key that signed the request's single proof; raises :class:`DPoPProofError`.

        ``nonce``: the nonce the server demands (None: none). ``access_token`` and ``bound_to`` (its ``cnf.jkt``):
        for a protected request.
        """
        if len(proofs) != 1:
            raise DPoPProofError("invalid_dpop_proof", f"expected one DPoP header, got {len(proofs)}")
        header, claims = self._verified(proofs[0])
        thumbprint = jwk_thumbprint(header["jwk"])
        if claims.get("htm") != method:
            raise DPoPProofError("invalid_dpop_proof", "htm does not match the request method")
        if claims.get("htu") != htu_of(url):
            raise DPoPProofError("invalid_dpop_proof", "htu does not match the request URL")
        iat = claims.get("iat")
        if not isinstance(iat, int) or isinstance(iat, bool) or abs(iat - now) > self.iat_window:
            raise DPoPProofError("invalid_dpop_proof", "iat is missing or outside the accepted window")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise DPoPProofError("invalid_dpop_proof", "jti is missing")
        if nonce is not None and claims.get("nonce") != nonce:
            raise DPoPProofError("use_dpop_nonce", "Authorization server requires nonce in DPoP proof")
        if access_token is not None:
            if claims.get("ath") != access_token_hash(access_token):
                raise DPoPProofError("invalid_dpop_proof", "ath does not match the access token")
            if bound_to is not None and thumbprint != bound_to:
                raise DPoPProofError("invalid_dpop_proof", "the proof's key is not the key the token is bound to")
        self._forget_before(now - 2 * self.iat_window)
        if jti in self._seen:
            raise DPoPProofError("invalid_dpop_proof", "jti was already used (replayed proof)")
        self._seen[jti] = now
        return thumbprint

    def _verified(self, proof: str) -> tuple[dict[str, Any], dict[str, Any]]:
        from joserfc import jws
        from joserfc.errors import JoseError, SecurityWarning
        from joserfc.jwk import JWKRegistry

        parts = proof.split(".")
        if len(parts) != 3:
            raise DPoPProofError("invalid_dpop_proof", "the proof is not a compact JWS")
        try:
            header = json.loads(_b64decode(parts[0]))
        except ValueError:
            raise DPoPProofError("invalid_dpop_proof", "the proof header is not JSON") from None
        if not isinstance(header, dict) or header.get("typ") != "dpop+jwt":
            raise DPoPProofError("invalid_dpop_proof", "typ must be dpop+jwt")
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise DPoPProofError("invalid_dpop_proof", f"alg {str(algorithm)[:20]!r} is not accepted")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or _PRIVATE_MEMBERS & set(jwk):
            raise DPoPProofError("invalid_dpop_proof", "jwk must be a public key")
        try:
            key = JWKRegistry.import_key(jwk)
            with warnings.catch_warnings():
                # joserfc flags "EdDSA" as deprecated by RFC 9864 (in favour of "Ed25519"); DPoP servers still use it.
                warnings.simplefilter("ignore", SecurityWarning)
                verified = jws.deserialize_compact(proof, key, algorithms=[algorithm], registry=_registry(algorithm))
            claims = json.loads(verified.payload)
        except (JoseError, ValueError, TypeError):
            raise DPoPProofError("invalid_dpop_proof", "the proof's signature does not verify") from None
        if not isinstance(claims, dict):
            raise DPoPProofError("invalid_dpop_proof", "the proof's claims are not an object")
        return header, claims

    def _forget_before(self, cutoff: float) -> None:
        for jti in [jti for jti, seen in self._seen.items() if seen < cutoff]:
            del self._seen[jti]
