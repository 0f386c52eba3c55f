"""The authorization callback (flow/authorization.py validate_callback) is a URL the browser, or a person pasting,
hands back: hostile input. It yields the code only for this request's redirect URI, state and issuer."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mcp_oauth_auth.exceptions import AuthorizationDeniedError, AuthorizationError, IssuerMismatchError
from mcp_oauth_auth.flow.authorization import PendingAuthorization, validate_callback
from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata

from .strategies import MARKER, secrets

REDIRECT = "http://127.0.0.1:8765/callback"
ISSUER = "https://auth.example.com"
PENDING = PendingAuthorization(
    url=f"{ISSUER}/authorize?x", redirect_uri=REDIRECT, state="state-123", code_verifier="v" * 43, scopes=()
)


def metadata(iss_supported: bool) -> AuthorizationServerMetadata:
    return AuthorizationServerMetadata(
        ISSUER, f"{ISSUER}/authorize", f"{ISSUER}/token", authorization_response_iss_parameter_supported=iss_supported
    )


params = st.dictionaries(
    st.sampled_from(["code", "state", "iss", "error", "error_description", "x"]),
    st.one_of(st.text(max_size=20), st.sampled_from(["state-123", ISSUER, "access_denied", "c0de"])),
)


@given(st.one_of(st.text(max_size=80), params.map(lambda query: f"{REDIRECT}?{urlencode(query)}")), st.booleans())
@example("http://[::1/callback?code=x", False)
@example(f"{REDIRECT}?code=a&code=b&state=state-123", False)
def test_any_callback_is_a_code_or_an_authorization_error(callback: str, iss_supported: bool) -> None:
    try:
        code = validate_callback(callback, PENDING, metadata(iss_supported))
    except AuthorizationError:  # IssuerMismatchError is a DiscoveryError, raised before any error text is read
        return
    except IssuerMismatchError:
        return
    assert code
    assert parse_qs(urlsplit(callback).query)["state"] == ["state-123"]


@given(
    st.text(min_size=1, max_size=40), st.booleans(), st.dictionaries(st.sampled_from(["x", "y"]), st.text(max_size=5))
)
def test_the_right_callback_yields_its_code(code: str, iss_supported: bool, extra: dict[str, str]) -> None:
    query = {**extra, "code": code, "state": "state-123", **({"iss": ISSUER} if iss_supported else {})}
    assert validate_callback(f"{REDIRECT}?{urlencode(query)}", PENDING, metadata(iss_supported)) == code


@given(st.text(max_size=30).filter(lambda state: state != "state-123"))
def test_another_state_is_refused_whatever_else_the_callback_says(state: str) -> None:
    callback = f"{REDIRECT}?{urlencode({'code': 'c', 'state': state, 'error': 'access_denied'})}"
    with pytest.raises(AuthorizationError, match="state does not match"):
        validate_callback(callback, PENDING, metadata(False))


@given(st.text(max_size=30).filter(lambda iss: iss != ISSUER), secrets)
def test_another_issuer_is_refused_before_its_error_text_is_read(iss: str, description: str) -> None:
    query = {"state": "state-123", "iss": iss, "error": "access_denied", "error_description": description}
    with pytest.raises(IssuerMismatchError) as raised:
        validate_callback(f"{REDIRECT}?{urlencode(query)}", PENDING, metadata(True))
    assert MARKER not in str(raised.value)


@given(st.text(max_size=600))
def test_a_denial_is_reported_with_the_servers_words_cut_short(description: str) -> None:
    query = {"state": "state-123", "error": "access_denied", "error_description": description}
    with pytest.raises(AuthorizationDeniedError) as raised:
        validate_callback(f"{REDIRECT}?{urlencode(query)}", PENDING, metadata(False))
    assert raised.value.error == "access_denied"
    assert raised.value.error_description == (description[:500] or None)


@given(st.sampled_from(["code", "state", "iss", "error"]), st.text(max_size=10), st.text(max_size=10), st.booleans())
def test_a_repeated_parameter_is_refused(name: str, first: str, second: str, iss_supported: bool) -> None:
    """Which of two values counts is ambiguous: a parser in front of the client may have read the other one."""
    others = [(key, value) for key, value in (("code", "c"), ("state", "state-123"), ("iss", ISSUER)) if key != name]
    query = [*others, (name, first), (name, second)]
    with pytest.raises(AuthorizationError, match=f"the callback repeats the '{name}' parameter"):
        validate_callback(f"{REDIRECT}?{urlencode(query)}", PENDING, metadata(iss_supported))
