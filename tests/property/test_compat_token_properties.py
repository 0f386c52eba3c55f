"""OAuthTokens.from_dict (compat/tokens.py) reads what callers hand it: a stored dict or a token endpoint's body."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from mcp_oauth_auth.compat.tokens import OAuthTokens
from mcp_oauth_auth.exceptions import ConfigurationError

from .strategies import MARKER, json_values, secrets

FIELDS = ("access_token", "token_type", "expires_in", "refresh_token", "scope", "expires_at", "issued_at", "id_token")


@given(st.one_of(json_values, st.dictionaries(st.sampled_from(FIELDS), json_values)))
@example({"access_token": "at", "expires_in": "9" * 400})
@example({"access_token": "at", "issued_at": True})
@example({"access_token": "at", "expires_at": float("nan")})
def test_any_document_is_tokens_or_a_configuration_error(document: object) -> None:
    try:
        tokens = OAuthTokens.from_dict(document)  # type: ignore[arg-type]
    except ConfigurationError:
        return
    assert isinstance(tokens, OAuthTokens)
    assert OAuthTokens.from_dict(tokens.to_dict()) == tokens
    assert tokens.to_token_set().access_token == tokens.access_token


@given(
    secrets,
    st.one_of(st.none(), secrets),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10**9)),
    st.one_of(st.none(), st.text(max_size=20).filter(lambda text: MARKER not in text)),
    st.one_of(st.none(), secrets),
    st.floats(min_value=0, max_value=4e9),
)
def test_tokens_round_trip_and_never_show_their_secrets(
    access_token: str,
    refresh_token: str | None,
    expires_in: int | None,
    scope: str | None,
    id_token: str | None,
    issued_at: float,
) -> None:
    tokens = OAuthTokens(
        access_token, "Bearer", expires_in, refresh_token, scope, issued_at=issued_at, id_token=id_token
    )
    assert OAuthTokens.from_dict(tokens.to_dict()) == tokens
    assert OAuthTokens.from_token_set(tokens.to_token_set(), now=issued_at).to_token_set() == tokens.to_token_set()
    assert MARKER not in repr(tokens)
    assert tokens.get_authorization_header() == f"Bearer {access_token}"
