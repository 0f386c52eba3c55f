"""OAuthTokens is a view of the library's TokenSet (plus the seed's relative expires_in and token_type as given),
and still behaves as the immutable value the seed's API hands out."""

from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError

import pytest

from mcp_oauth_auth import OAuthTokens, TokenSet


def _tokens(**overrides: object) -> OAuthTokens:
    values: dict[str, object] = {
        "access_token": "access-VALUE",
        "token_type": "bearer",
        "expires_in": 3600,
        "refresh_token": "refresh-VALUE",
        "scope": "read write",
        "issued_at": 1_000.0,
        "id_token": "id-VALUE",
    }
    values.update(overrides)
    return OAuthTokens(**values)  # type: ignore[arg-type]


def test_it_reads_through_to_one_token_set() -> None:
    tokens = _tokens()
    stored = tokens.to_token_set()
    assert stored is tokens.to_token_set()  # no copy: the view's own token set
    assert stored == TokenSet(
        access_token="access-VALUE",
        token_type="Bearer",
        expires_at=4_600.0,
        refresh_token="refresh-VALUE",
        scope="read write",
        id_token="id-VALUE",
        issued_at=1_000.0,
    )
    assert (tokens.access_token, tokens.refresh_token, tokens.scope, tokens.id_token) == (
        stored.access_token,
        stored.refresh_token,
        stored.scope,
        stored.id_token,
    )
    assert (tokens.expires_at, tokens.issued_at) == (stored.expires_at, stored.issued_at)
    assert (tokens.token_type, tokens.expires_in) == ("bearer", 3600)  # as given


def test_a_view_of_a_stored_token_set_counts_from_now() -> None:
    stored = TokenSet(access_token="a-VALUE", expires_at=2_000.0, refresh_token="r-VALUE", issued_at=10.0)
    view = OAuthTokens.from_token_set(stored, now=1_500.0)
    assert (view.expires_in, view.issued_at, view.expires_at) == (500, 1_500.0, 2_000.0)
    assert view.to_token_set() == TokenSet(
        access_token="a-VALUE", expires_at=2_000.0, refresh_token="r-VALUE", issued_at=1_500.0
    )
    assert not view.is_expired(now=1_999.0)
    assert view.is_expired(now=2_000.0)


@pytest.mark.parametrize("name", ["access_token", "token_type", "expires_in", "scope", "expires_at", "_tokens"])
def test_it_is_immutable(name: str) -> None:
    tokens = _tokens()
    with pytest.raises(FrozenInstanceError):
        setattr(tokens, name, "x")
    with pytest.raises(FrozenInstanceError):
        delattr(tokens, name)
    assert tokens == _tokens()


def test_equality_and_hash_are_field_by_field() -> None:
    assert _tokens() == _tokens()
    assert hash(_tokens()) == hash(_tokens())
    assert len({_tokens(), _tokens()}) == 1
    for change in ({"token_type": "Bearer"}, {"expires_in": 3599}, {"scope": "read"}, {"issued_at": 1_001.0}):
        assert _tokens(**change) != _tokens()
    assert _tokens() != _tokens().to_token_set()


def test_it_survives_copy_and_pickle() -> None:
    tokens = _tokens()
    for clone in (copy.copy(tokens), copy.deepcopy(tokens), pickle.loads(pickle.dumps(tokens))):
        assert clone == tokens
        assert clone.token_type == "bearer"
        with pytest.raises(FrozenInstanceError):
            clone.scope = "x"  # type: ignore[misc]
