"""The pieces behind the commands, in-process: which record a name means, and how things are shown."""

from __future__ import annotations

import pytest

from mcp_oauth_auth.cli.errors import ExitCode, NotLoggedInError
from mcp_oauth_auth.cli.lookup import RecordView, add_name, find_record
from mcp_oauth_auth.cli.output import describe_expiry, redact_token, render_table
from mcp_oauth_auth.records import ClientRegistration, CredentialRecord, TokenSet
from mcp_oauth_auth.storage.memory import MemoryTokenStore


def record(server: str, issuer: str, names: tuple[str, ...], updated_at: float) -> CredentialRecord:
    return CredentialRecord(
        issuer=issuer,
        resource=server,
        server_url=server,
        client=ClientRegistration(client_id="c", kind="dynamic"),
        token_endpoint=f"{issuer}/token",
        tokens=TokenSet(access_token="a" * 40),
        updated_at=updated_at,
        names=names,
    )


@pytest.fixture
def store() -> MemoryTokenStore:
    store = MemoryTokenStore()
    store.save(record("https://one.example/mcp", "https://as.example", ("work",), 100.0))
    store.save(record("https://two.example/mcp", "https://as.example", ("work", "two"), 200.0))
    store.save(record("https://one.example/mcp", "https://other-as.example", ("old",), 300.0))
    return store


def test_a_name_means_its_most_recently_updated_record(store: MemoryTokenStore) -> None:
    assert find_record(store, "work").server_url == "https://two.example/mcp"
    assert find_record(store, "two").server_url == "https://two.example/mcp"


def test_url_chooses_among_records_of_one_name(store: MemoryTokenStore) -> None:
    chosen = find_record(store, "work", "https://ONE.example:443/mcp")
    assert (chosen.server_url, chosen.issuer) == ("https://one.example/mcp", "https://as.example")


def test_a_server_url_is_a_name_too(store: MemoryTokenStore) -> None:
    assert find_record(store, "https://one.example/mcp").issuer == "https://other-as.example"


@pytest.mark.parametrize(("name", "url"), [("nobody", None), ("work", "https://three.example/mcp")])
def test_no_match_means_not_logged_in(store: MemoryTokenStore, name: str, url: str | None) -> None:
    with pytest.raises(NotLoggedInError) as failure:
        find_record(store, name, url)
    assert failure.value.code == ExitCode.NOT_LOGGED_IN


def test_add_name_keeps_the_others_and_makes_the_record_the_latest(store: MemoryTokenStore) -> None:
    key = find_record(store, "work", "https://one.example/mcp").key
    updated = add_name(store, key, "again")
    assert updated is not None
    assert updated.names == ("work", "again")
    assert find_record(store, "work").key == key  # now the most recently updated "work"
    again = add_name(store, key, "again")
    assert again is not None
    assert again.names == ("work", "again")


def test_a_record_view_shows_only_its_record(store: MemoryTokenStore) -> None:
    chosen = find_record(store, "work", "https://one.example/mcp")
    view = RecordView(store, chosen.key)
    assert view.list_keys() == [chosen.key]
    assert view.load(chosen.key) == chosen


@pytest.mark.parametrize(
    ("token", "shown"),
    [
        (None, "(none)"),
        ("short-secret", "********"),
        ("eyJhbGciOiJSUzI1NiJ9.payload.signature-x9Q", "eyJh…x9Q"),
    ],
)
def test_redaction(token: str | None, shown: str) -> None:
    assert redact_token(token) == shown


@pytest.mark.parametrize(
    ("expires_at", "text"),
    [(None, "no expiry"), (1000 + 52 * 60, "in 52 min"), (1000 - 3 * 3600, "expired 3 h ago"), (1030, "in 30 s")],
)
def test_expiry_in_human_terms(expires_at: float | None, text: str) -> None:
    assert describe_expiry(expires_at, now=1000) == text


def test_a_table_fits_the_width_by_shortening_the_chosen_columns() -> None:
    rows = [["work", "https://mcp.example.com/a/long/path/mcp", "https://login.example.com/tenant", "a b c d e f"]]
    lines = render_table(("NAME", "SERVER", "ISSUER", "SCOPES"), rows, 80, shrink_order=(3, 2, 1))
    assert all(len(line) <= 80 for line in lines)
    assert "https://mcp.example.com/a/long/path/mcp" in lines[1]
    assert "…" in lines[1]
    assert render_table(("A",), [["x" * 200]], None)[1] == "x" * 200
