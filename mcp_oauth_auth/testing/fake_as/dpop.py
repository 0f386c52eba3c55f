"""DPoP at the fake authorization server (RFC 9449 §5, §8): proofs of token requests, the server's nonce, and the
key the tokens of one token request are bound to."""

from __future__ import annotations

import secrets

from mcp_oauth_auth.testing.dpop_proofs import DPoPProofChecker, DPoPProofError
from mcp_oauth_auth.testing.fake_as.oauth_http import Reject, token_error
from mcp_oauth_auth.testing.fake_as.state import AuthorizationServerState
from mcp_oauth_auth.testing.fake_http import FakeRequest, FakeResponse, oauth_error

__all__ = ["DPoPTokenChecks"]


class DPoPTokenChecks(AuthorizationServerState):
    """The token endpoint's DPoP checks. The stack handles one request at a time (under its lock), so the key of
    the request being handled is kept on the instance (:attr:`_dpop_jkt`) for the token issuer to bind to."""

    _dpop_checker: DPoPProofChecker | None = None
    #: The thumbprint of the current token request's proof key, or None (no proof).
    _dpop_jkt: str | None = None
    _dpop_nonce_value: str | None = None

    @property
    def dpop_nonce(self) -> str:
        """The nonce the authorization server currently demands (when ``dpop_nonce``)."""
        if self._dpop_nonce_value is None:
            self._dpop_nonce_value = secrets.token_urlsafe(16)
        return self._dpop_nonce_value

    def rotate_dpop_nonce(self) -> str:
        """Demand a new nonce from now on (proofs with the old one get ``use_dpop_nonce``)."""
        self._dpop_nonce_value = secrets.token_urlsafe(16)
        return self._dpop_nonce_value

    def _dpop_proof_key(self, request: FakeRequest) -> str | None:
        """The thumbprint of the request's valid proof, None without one (allowed unless ``dpop_required``);
        raises :class:`Reject` (``invalid_dpop_proof``, ``use_dpop_nonce``)."""
        config = self._context.config
        proofs = request.header_values("dpop")
        if not config.dpop or not proofs:
            if config.dpop_required:
                raise token_error("invalid_dpop_proof", "this authorization server requires DPoP proofs")
            return None
        checker = self._dpop_checker
        if checker is None or checker.algorithms != tuple(config.dpop_signing_alg_values_supported):
            checker = self._dpop_checker = DPoPProofChecker(config.dpop_signing_alg_values_supported)
        checker.iat_window = config.dpop_iat_window
        try:
            return checker.check(
                proofs,
                request.method,
                request.url,
                self._context.now(),
                nonce=self.dpop_nonce if config.dpop_nonce else None,
            )
        except DPoPProofError as exc:
            raise Reject(oauth_error(400, exc.error, exc.description, self._dpop_nonce_headers())) from None

    def _dpop_nonce_headers(self) -> list[tuple[str, str]]:
        return [("DPoP-Nonce", self.dpop_nonce)] if self._context.config.dpop_nonce else []

    def _with_dpop_nonce(self, response: FakeResponse) -> FakeResponse:
        """``response`` with the current ``DPoP-Nonce`` (RFC 9449 §8), once."""
        if self._context.config.dpop_nonce and response.header("dpop-nonce") is None:
            response.headers.append(("DPoP-Nonce", self.dpop_nonce))
        return response
