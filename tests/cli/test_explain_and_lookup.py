"""The CLI's error explanations and record lookup, in-process (the commands using them run in child processes in
the other CLI tests)."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import httpx
import pytest

from mcp_oauth_auth import exceptions as errors
from mcp_oauth_auth.cli.errors import CLIError, ExitCode, NotLoggedInError, explain
from mcp_oauth_auth.cli.lookup import RecordView, add_name, find_record
from mcp_oauth_auth.cli.output import Terminal
from mcp_oauth_auth.records import CredentialRecord, RecordKey
from mcp_oauth_auth.storage import MemoryTokenStore
from tests.storage.contract import make_record


@pytest.mark.parametrize(
    ("exc", "hint", "code"),
    [
        (errors.ClientUnknownError("gone"), "no longer accepts this credential: log in again", ExitCode.NOT_LOGGED_IN),
        (errors.TemporaryOAuthError("503"), "the server failed temporarily", ExitCode.ERROR),
        (errors.StoreLockedError("locked"), "another process is using this credential", ExitCode.ERROR),
        (errors.RecordConflictError("changed"), "choose another store with --store", ExitCode.ERROR),
        (errors.ClientRegistrationRequiredError("who?"), "pass --client-id", ExitCode.ERROR),
        (errors.PKCENotSupportedError("no S256"), "run `mcp-oauth doctor URL`", ExitCode.ERROR),
        (errors.CallbackPortInUseError("busy"), "another program uses the callback port", ExitCode.ERROR),
        (errors.AuthorizationTimeoutError("slow"), "approve in the browser sooner", ExitCode.ERROR),
        (errors.AuthorizationDeniedError("no"), "the authorization was refused at the server", ExitCode.ERROR),
        (errors.StateMismatchError("state"), "log in with --no-browser", ExitCode.ERROR),
        (errors.ConfigurationError("bad URL"), "check the URL and the options given", ExitCode.ERROR),
        (errors.TokenExchangeError("refused"), None, ExitCode.ERROR),
    ],
)
def test_each_library_error_gets_its_hint_and_exit_code(
    exc: errors.OAuthError, hint: str | None, code: ExitCode
) -> None:
    failure = explain(exc)
    assert failure.message == str(exc)
    assert failure.code == code
    if hint is None:
        assert failure.hint is None
    else:
        assert failure.hint is not None
        assert hint in failure.hint


def test_network_errors_name_the_server_without_its_query() -> None:
    request = httpx.Request("GET", "https://auth.example.com/token?code=secret")
    slow = explain(httpx.ReadTimeout("timed out", request=request))
    assert slow.message == "https://auth.example.com/token did not answer in time (ReadTimeout)"
    refused = explain(httpx.ConnectError("refused", request=request))
    assert refused.message == "could not reach https://auth.example.com/token (ConnectError: refused)"
    assert "HTTPS_PROXY" in str(refused.hint)
    assert explain(httpx.ConnectError("refused")).message == "could not reach the server (ConnectError: refused)"


def test_anything_else_is_unexpected_and_a_cli_error_is_itself() -> None:
    failure = explain(KeyError("x"))
    assert failure.message == "unexpected KeyError: 'x'"
    assert "--debug" in str(failure.hint)
    own = CLIError("usage", "hint", ExitCode.USAGE)
    assert explain(own) is own


def terminal() -> tuple[Terminal, io.StringIO]:
    err = io.StringIO()
    return Terminal(out=io.StringIO(), err=err), err


def test_a_name_finds_the_most_recently_updated_of_its_records_and_says_so() -> None:
    store = MemoryTokenStore()
    old = replace(make_record(resource="https://one.example.com/mcp"), names=("work",), updated_at=1.0)
    new = replace(make_record(resource="https://two.example.com/mcp"), names=("work",), updated_at=2.0)
    store.save(old)
    store.save(new)
    term, err = terminal()
    assert find_record(store, "work", terminal=term) == new
    assert "'work' also names https://one.example.com/mcp; using https://two.example.com/mcp" in err.getvalue()
    assert find_record(store, "work", url="HTTPS://one.example.com/mcp") == old


def test_a_server_url_finds_its_record_without_a_name() -> None:
    store = MemoryTokenStore()
    record = make_record(resource="https://one.example.com/mcp")
    store.save(record)
    assert find_record(store, "HTTPS://ONE.example.com:443/mcp") == record
    with pytest.raises(NotLoggedInError, match=re.escape("no stored credential named 'https://two.example.com/mcp'")):
        find_record(store, "https://two.example.com/mcp")
    with pytest.raises(NotLoggedInError):
        find_record(store, "http://[bad/")


def test_no_match_explains_what_exists() -> None:
    store = MemoryTokenStore()
    store.save(replace(make_record(), names=("work",)))
    with pytest.raises(NotLoggedInError) as raised:
        find_record(store, "work", url="https://elsewhere.example.com/mcp")
    assert raised.value.message == (
        "no stored credential named 'work' for https://elsewhere.example.com/mcp in the memory store"
    )
    assert raised.value.hint is not None
    assert "`mcp-oauth list` shows the stored credentials" in raised.value.hint
    assert raised.value.code == ExitCode.NOT_LOGGED_IN


class LockLessStore:
    """A store without record locks (the TokenStore protocol makes them optional)."""

    def __init__(self) -> None:
        self.inner = MemoryTokenStore()

    def load(self, key: RecordKey) -> CredentialRecord | None:
        return self.inner.load(key)

    def save(self, record: CredentialRecord) -> None:
        self.inner.save(record)

    def delete(self, key: RecordKey) -> None:
        self.inner.delete(key)

    def list_keys(self) -> list[RecordKey]:
        return self.inner.list_keys()


def test_a_name_is_added_once_and_makes_the_record_the_latest() -> None:
    store = LockLessStore()
    record = replace(make_record(), names=("work",), updated_at=1.0)
    store.save(record)
    updated = add_name(store, record.key, "home")  # type: ignore[arg-type]
    assert updated is not None
    assert updated.names == ("work", "home")
    assert updated.updated_at > 1.0
    again = add_name(store, record.key, "home")  # type: ignore[arg-type]
    assert again is not None
    assert again.names == ("work", "home")
    store.delete(record.key)
    assert add_name(store, record.key, "home") is None  # type: ignore[arg-type]


def test_adding_a_name_gives_up_when_the_record_stays_locked(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp_oauth_auth.cli import lookup

    store = MemoryTokenStore()
    record = make_record()
    store.save(record)
    held = store.lock(record.key)
    assert held.try_acquire()
    clock = iter([0.0, 10.0, 31.0])
    monkeypatch.setattr(lookup.time, "monotonic", lambda: next(clock, 100.0))
    monkeypatch.setattr(lookup.time, "sleep", lambda seconds: None)
    with pytest.raises(errors.TokenStorageError, match="stayed locked; try again"):
        add_name(store, record.key, "home")
    held.release()
    assert store.load(record.key) == record


def test_a_record_view_shows_one_record_and_locks_even_without_store_locks() -> None:
    store = LockLessStore()
    record = make_record()
    store.save(record)
    store.save(make_record(resource="https://other.example.com/mcp"))
    view = RecordView(store, record.key)  # type: ignore[arg-type]
    assert view.list_keys() == [record.key]
    first, second = view.lock(record.key), view.lock(record.key)
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert repr(view) == repr(store)
