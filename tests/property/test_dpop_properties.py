"""DPoP proofs (flow/dpop.py) for arbitrary requests, nonces and tokens: the claims decode to exactly what was
given, and a server's checks accept the proof; nonces from hostile headers are kept only when sane."""

from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_oauth_auth import DPoPKey
from mcp_oauth_auth.flow.dpop import DPoPState, access_token_hash, htu_of
from mcp_oauth_auth.testing.dpop_proofs import DPoPProofChecker

KEY = DPoPKey()
NOW = 1_800_000_000

methods = st.sampled_from(["GET", "POST", "DELETE", "PATCH"]) | st.text(min_size=1, max_size=10)
urls = st.builds(
    lambda path, query, fragment: f"https://mcp.test/{path}{query}{fragment}",
    st.text(max_size=30).filter(lambda s: "?" not in s and "#" not in s),
    st.just("") | st.text(max_size=10).map(lambda q: f"?{q}"),
    st.just("") | st.text(max_size=10).map(lambda f: f"#{f}"),
)
anything = st.text(max_size=60)


def claims_of(proof: str) -> dict[str, object]:
    segment = proof.split(".")[1]
    document: dict[str, object] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return document


@settings(max_examples=200, deadline=None)
@given(methods, urls, st.none() | anything, st.none() | anything.filter(bool))
def test_claims_decode_to_what_was_given(method: str, url: str, nonce: str | None, token: str | None) -> None:
    if token is not None and not token.isascii():
        token = token.encode("unicode_escape").decode("ascii")
    proof = KEY.proof(method, url, NOW, nonce=nonce, access_token=token)
    claims = claims_of(proof)
    assert claims["htm"] == method
    assert claims["htu"] == htu_of(url)
    assert "?" not in str(claims["htu"])
    assert "#" not in str(claims["htu"])
    assert claims["iat"] == NOW
    assert claims.get("nonce") == nonce
    assert claims.get("ath") == (None if token is None else access_token_hash(token))
    assert len(str(claims["jti"])) == 32
    DPoPProofChecker().check([proof], method, url, NOW, nonce=nonce, access_token=token)


@settings(max_examples=200, deadline=None)
@given(st.none() | st.text(max_size=2000))
def test_nonces_are_kept_only_when_sane(nonce: str | None) -> None:
    state = DPoPState(KEY, requested=True)
    kept = state.remember_nonce("https://as.test/token", nonce)
    assert kept == (state.nonce_for("https://as.test/x") is not None)
    if kept:
        assert nonce is not None
        assert nonce.isascii()
        assert nonce.isprintable()
        assert 0 < len(nonce) <= 1024
