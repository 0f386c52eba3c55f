"""DPoP keys and proofs (flow/dpop.py), checked with the test suite's own verifier (joserfc signature checks)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import pickle

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mcp_oauth_auth import DPoPKey
from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.dpop import (
    DPoPState,
    access_token_hash,
    choose_algorithm,
    dpop_challenge,
    dpop_fetch,
    htu_of,
    is_use_dpop_nonce,
    requires_dpop,
)
from mcp_oauth_auth.flow.effects import HttpRequest
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.testing.dpop_proofs import DPoPProofChecker, DPoPProofError, jwk_thumbprint

from .flowkit import Harness, json_response

NOW = 1_800_000_000.0


def _segments(proof: str) -> tuple[dict[str, object], dict[str, object]]:
    header, claims, _ = proof.split(".")

    def decode(segment: str) -> dict[str, object]:
        document: dict[str, object] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        return document

    return decode(header), decode(claims)


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "EdDSA"])
def test_a_proof_carries_what_rfc_9449_asks_and_verifies(algorithm: str) -> None:
    key = DPoPKey(algorithm=algorithm)
    proof = key.proof("POST", "https://as.test/token?a=1#frag", NOW, nonce="n-1", access_token="tok-123")
    header, claims = _segments(proof)
    assert header == {"typ": "dpop+jwt", "alg": algorithm, "jwk": key.public_jwk}
    assert set(claims) == {"jti", "htm", "htu", "iat", "nonce", "ath"}
    assert claims["htm"] == "POST"
    assert claims["htu"] == "https://as.test/token"
    assert claims["iat"] == int(NOW)
    assert claims["nonce"] == "n-1"
    assert claims["ath"] == base64.urlsafe_b64encode(hashlib.sha256(b"tok-123").digest()).rstrip(b"=").decode()
    checker = DPoPProofChecker()
    thumbprint = checker.check(
        [proof], "POST", "https://as.test/token", NOW, nonce="n-1", access_token="tok-123", bound_to=key.thumbprint
    )
    assert thumbprint == key.thumbprint == jwk_thumbprint(key.public_jwk)
    with pytest.raises(DPoPProofError, match="replayed"):
        checker.check([proof], "POST", "https://as.test/token", NOW, nonce="n-1")


def test_the_thumbprint_is_rfc_7638s() -> None:
    from joserfc.jwk import ECKey

    key = DPoPKey()
    assert key.algorithm == "ES256"
    assert key.thumbprint == ECKey.import_key(key.public_jwk).thumbprint()


def test_each_proof_has_a_new_jti_and_no_nonce_or_ath_unless_given() -> None:
    key = DPoPKey()
    first, second = (_segments(key.proof("GET", "https://mcp.test/mcp", NOW))[1] for _ in range(2))
    assert first["jti"] != second["jti"]
    assert "nonce" not in first
    assert "ath" not in first


def test_a_tampered_proof_or_a_wrong_request_is_refused() -> None:
    key = DPoPKey()
    proof = key.proof("GET", "https://mcp.test/mcp", NOW, access_token="tok")
    checker = DPoPProofChecker()
    header, _, signature = proof.split(".")
    forged = _segments(proof)[1] | {"htm": "POST"}
    forged_claims = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    cases = [
        ([f"{header}.{forged_claims}.{signature}"], "POST", {}, "signature"),
        ([proof], "POST", {}, "htm"),
        ([proof], "GET", {"url": "https://mcp.test/other"}, "htu"),
        ([proof], "GET", {"now": NOW + 3600}, "iat"),
        ([proof], "GET", {"nonce": "expected"}, "nonce"),
        ([proof], "GET", {"access_token": "other"}, "ath"),
        ([proof], "GET", {"access_token": "tok", "bound_to": "someone-else"}, "bound"),
        ([proof, proof], "GET", {}, "one DPoP header"),
    ]
    for proofs, method, options, message in cases:
        url = str(options.pop("url", "https://mcp.test/mcp"))
        now = float(options.pop("now", NOW))  # type: ignore[arg-type]
        with pytest.raises(DPoPProofError, match=message):
            checker.check(proofs, method, url, now, **options)  # type: ignore[arg-type]


def test_the_callers_keys_are_wrapped_and_checked() -> None:
    assert DPoPKey(ec.generate_private_key(ec.SECP256R1())).algorithm == "ES256"
    assert DPoPKey(rsa.generate_private_key(public_exponent=65537, key_size=2048)).algorithm == "RS256"
    assert DPoPKey(ed25519.Ed25519PrivateKey.generate()).algorithm == "EdDSA"
    with pytest.raises(ConfigurationError, match="P-256"):
        DPoPKey(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ConfigurationError, match="2048"):
        DPoPKey(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(ConfigurationError, match="does not fit"):
        DPoPKey(ed25519.Ed25519PrivateKey.generate(), algorithm="ES256")
    with pytest.raises(ConfigurationError, match="one of"):
        DPoPKey(algorithm="HS256")
    with pytest.raises(ConfigurationError, match="private key"):
        DPoPKey("not a key")  # type: ignore[arg-type]


def test_the_private_key_never_shows_and_survives_storage(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mcp_oauth_auth")
    key = DPoPKey()
    pem = key.private_pem()
    private_d = key._key.private_numbers().private_value  # type: ignore[union-attr]
    shown = repr(key) + repr(DPoPState(key, requested=True)) + str(key.public_jwk)
    assert "PRIVATE" not in shown
    assert "'d'" not in shown
    assert str(private_d) not in shown
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(key)
    restored = DPoPKey.from_pem(pem)
    assert restored == key
    assert hash(restored) == hash(key)
    with pytest.raises(ConfigurationError) as caught:
        DPoPKey.from_pem(pem[:60] + "garbage" + pem[60:])
    assert "garbage" not in str(caught.value)
    assert pem not in caplog.text


def test_htu_and_ath() -> None:
    assert htu_of("https://a.test/p?q=1#f") == "https://a.test/p"
    assert htu_of("https://a.test/p#f?q") == "https://a.test/p"
    assert htu_of("https://a.test/p") == "https://a.test/p"
    # RFC 9449 §7.1's example pair
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert access_token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


def test_the_algorithm_follows_the_authorization_servers_list() -> None:
    assert choose_algorithm(None, None) == "ES256"
    assert choose_algorithm(["RS256", "PS256"], None) == "RS256"
    assert choose_algorithm(["EdDSA", "RS256"], None) == "EdDSA"
    with pytest.raises(ConfigurationError, match="PS256"):
        choose_algorithm(["PS256"], None)
    rsa_key = DPoPKey(algorithm="RS256")
    assert choose_algorithm(["RS256"], rsa_key) == "RS256"
    assert choose_algorithm("not a list", rsa_key) == "RS256"
    with pytest.raises(ConfigurationError, match="signs RS256"):
        choose_algorithm(["ES256"], rsa_key)
    state = DPoPState(None, requested=True)
    assert state.key_for(["RS256"]).algorithm == "RS256"
    assert state.key_for(["RS256"]) is state.key  # kept while it fits
    assert state.key_for(["ES256"]).algorithm == "ES256"
    given = DPoPState(rsa_key, requested=True)
    assert given.key_for(None) is rsa_key


def test_nonces_are_kept_per_origin_and_only_sane_ones() -> None:
    state = DPoPState(DPoPKey(), requested=True)
    assert state.remember_nonce("https://as.test/token", "n1")
    assert not state.remember_nonce("https://as.test/other", "n1")  # same origin, same nonce
    assert state.nonce_for("https://as.test/x") == "n1"
    assert state.nonce_for("https://mcp.test/mcp") is None
    assert state.remember_nonce("https://mcp.test/mcp", "r1")
    assert state.nonce_for("https://as.test/token") == "n1"
    # One origin serving both: the authorization server's nonce and the resource's are kept apart.
    assert state.remember_nonce("https://as.test/mcp", "r2", resource=True)
    assert state.nonce_for("https://as.test/token") == "n1"
    assert state.nonce_for("https://as.test/mcp", resource=True) == "r2"
    assert 'nonce="r2"' not in DPoPKey().proof("GET", "https://as.test/x", NOW)
    with_ath = state.proof("GET", "https://as.test/mcp", NOW, access_token="tok")
    without = state.proof("POST", "https://as.test/token", NOW)
    assert _segments(with_ath)[1]["nonce"] == "r2"
    assert _segments(without)[1]["nonce"] == "n1"
    for bad in (None, "", "x" * 2000, "bad\nnonce", "é"):
        assert not state.remember_nonce("https://as.test/token", bad)
    assert state.nonce_for("https://as.test/token") == "n1"
    assert not state.adopt_stored(None)
    assert not state.adopt_stored("not a pem")


def test_challenges() -> None:
    nonce = 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"'
    assert is_use_dpop_nonce([nonce])
    assert not is_use_dpop_nonce(['Bearer error="use_dpop_nonce"'])
    assert requires_dpop(['DPoP algs="ES256", resource_metadata="https://m.test/prm"'])
    assert not requires_dpop(['Bearer realm="x", DPoP algs="ES256"'])
    assert not requires_dpop([])
    challenge = dpop_challenge(['Bearer, DPoP error="invalid_token", scope="a b", resource_metadata="https://m"'])
    assert challenge is not None
    assert challenge.scopes == ("a", "b")
    assert challenge.resource_metadata == "https://m"
    assert dpop_challenge(["Bearer"]) is None


def test_a_token_request_retries_use_dpop_nonce_once_with_the_servers_nonce() -> None:
    checker = DPoPProofChecker()
    seen_nonces: list[object] = []

    def token(request: HttpRequest) -> object:
        proofs = [value for name, value in request.headers if name == "DPoP"]
        seen_nonces.append(_segments(proofs[0])[1].get("nonce"))
        try:
            checker.check(proofs, "POST", request.url, NOW, nonce="server-nonce")
        except DPoPProofError as exc:
            return json_response(400, {"error": exc.error}, (("dpop-nonce", "server-nonce"),))
        return json_response(200, {"access_token": "t", "token_type": "DPoP"}, (("dpop-nonce", "next-nonce"),))

    harness = Harness(routes={"https://as.test/token": token})  # type: ignore[dict-item]
    state = DPoPState(DPoPKey(), requested=True)
    response = harness.run(
        dpop_fetch(
            lambda: HttpRequest.form("https://as.test/token", {"grant_type": "client_credentials"}),
            state,
            RetryPolicy(),
            "test",
            lambda: NOW,
        )
    )
    assert response.status == 200
    assert seen_nonces == [None, "server-nonce"]
    assert state.nonce_for("https://as.test/token") == "next-nonce"


def test_a_repeated_use_dpop_nonce_is_not_retried_forever() -> None:
    answer = json_response(400, {"error": "use_dpop_nonce"}, (("dpop-nonce", "same"),))
    harness = Harness(routes={"https://as.test/token": lambda request: answer})
    state = DPoPState(DPoPKey(), requested=True)
    response = harness.run(
        dpop_fetch(lambda: HttpRequest.form("https://as.test/token", {}), state, RetryPolicy(), "t", lambda: NOW)
    )
    assert response.status == 400
    assert len(harness.sent) == 2


class _Headers:
    def __init__(self, **values: list[str]) -> None:
        self._values = {name.replace("_", "-"): value for name, value in values.items()}

    def get_list(self, key: str) -> list[str]:
        return self._values.get(key, [])


class _Engine:
    """What an Exchange asks of its engine, recording recoveries."""

    server_url = "https://mcp.test/mcp"
    access_token = "tok"
    refresh_due_at = float("inf")
    loaded = True

    def __init__(self, dpop: DPoPState | None) -> None:
        self.dpop = dpop
        self.recovered: list[int] = []

    def clock(self) -> float:
        return NOW

    def require_dpop(self, *, requested: bool = False) -> DPoPState:
        self.dpop = self.dpop or DPoPState(None, requested=requested)
        return self.dpop

    def ensure_fresh(self, now: float | None = None) -> object:
        raise AssertionError("not expected")

    def recover(self, status: int, challenge: object, rejected: object, attempt: int) -> object:
        from mcp_oauth_auth.flow.exchange import Outcome

        self.recovered.append(status)
        return Outcome.REFRESHED
        yield


def test_a_resource_nonce_costs_one_retry_per_request_and_no_credential_work() -> None:
    from mcp_oauth_auth.flow.exchange import Exchange

    engine = _Engine(DPoPState(DPoPKey(), requested=True))
    nonce_answer = _Headers(
        www_authenticate=['DPoP error="use_dpop_nonce", algs="ES256"'], dpop_nonce=["resource-nonce"]
    )
    exchange = Exchange(engine)  # type: ignore[arg-type]
    retry = exchange.after_response(401, nonce_answer, "tok")
    assert retry is not None
    assert list(retry) == []  # sent again as it is, with a new proof
    assert engine.dpop is not None
    assert engine.dpop.nonce_for(engine.server_url, resource=True) == "resource-nonce"
    assert engine.dpop.nonce_for(engine.server_url) is None
    assert engine.recovered == []
    # The same answer again: no second nonce retry; the 401 is recovered from as any other.
    recovery = exchange.after_response(401, nonce_answer, "tok")
    assert recovery is not None
    with pytest.raises(StopIteration):
        next(recovery)
    assert engine.recovered == [401]


def test_a_dpop_only_challenge_turns_dpop_on_before_recovering() -> None:
    from mcp_oauth_auth.flow.exchange import Exchange

    engine = _Engine(None)
    exchange = Exchange(engine)  # type: ignore[arg-type]
    work = exchange.after_response(401, _Headers(www_authenticate=['DPoP algs="ES256"']), None)
    assert work is not None
    assert engine.dpop is not None
    assert engine.dpop.requested is False
    bearer_too = _Engine(None)
    Exchange(bearer_too).after_response(  # type: ignore[arg-type]
        401, _Headers(www_authenticate=['Bearer realm="x", DPoP algs="ES256"']), None
    )
    assert bearer_too.dpop is None
