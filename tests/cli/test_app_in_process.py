"""``mcp-oauth``'s entry point called in-process (the other CLI tests run it in a child process, as people do):
argument checking, and how an unexpected failure, an interruption or a closed pipe end a command."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from mcp_oauth_auth.cli import app, commands
from mcp_oauth_auth.cli.errors import ExitCode
from mcp_oauth_auth.cli.output import Terminal, describe_expiry, format_duration, render_table


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """main() configures logging for the process, as a command does: undo it for the tests that follow."""
    root, package = logging.getLogger(), logging.getLogger("mcp_oauth_auth")
    saved = (root.level, list(root.handlers), package.level)
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    package.setLevel(saved[2])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["doctor", "https://mcp.example.com/mcp", "--timeout", "soon"], "not a number of seconds: 'soon'"),
        (["doctor", "https://mcp.example.com/mcp", "--timeout", "nan"], "must be more than 0 and at most"),
        (["demo", "--serve", "--port", "http"], "not a port number: 'http'"),
        (["demo", "--serve", "--port", "70000"], "must be from 1 to 65535 (or 0: any free port), not '70000'"),
    ],
)
def test_bad_option_values_are_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        app.main(argv)
    assert raised.value.code == ExitCode.USAGE
    assert message in capsys.readouterr().err


def fail_with(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """Make ``mcp-oauth list`` fail with ``exc``."""

    def handler(args: object, terminal: Terminal) -> int:
        raise exc

    monkeypatch.setattr(commands, "list_records", handler)


def test_an_unexpected_failure_is_one_line_and_a_hint_with_the_traceback_under_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fail_with(monkeypatch, ZeroDivisionError("division by zero"))
    assert app.main(["list"]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "error: unexpected ZeroDivisionError: division by zero"
    assert "Traceback" not in err
    assert app.main(["--debug", "list"]) == ExitCode.ERROR
    assert "Traceback (most recent call last):" in capsys.readouterr().err


def test_an_interruption_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fail_with(monkeypatch, KeyboardInterrupt())
    assert app.main(["list"]) == ExitCode.INTERRUPTED
    assert capsys.readouterr().err.strip() == "error: interrupted"


def test_no_command_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert app.main([]) == ExitCode.USAGE
    assert "usage: mcp-oauth" in capsys.readouterr().err


def test_durations_and_expiry_are_readable() -> None:
    assert [format_duration(s) for s in (45, 3000, 3 * 3600, 12 * 86400, -120)] == [
        "45 s",
        "50 min",
        "3 h",
        "12 d",
        "2 min",
    ]
    assert describe_expiry(None) == "no expiry"
    assert describe_expiry(1000.0, now=100.0) == "in 15 min"
    assert describe_expiry(100.0, now=1000.0) == "expired 15 min ago"


def test_a_table_shrinks_its_widest_columns_to_the_width_with_an_ellipsis() -> None:
    rows = [["work", "https://a-very-long-server-name.example.com/mcp", "in 5 min"]]
    lines = render_table(["NAME", "SERVER", "EXPIRES"], rows, width=40)
    assert all(len(line) <= 40 for line in lines)
    assert lines[1].startswith("work  https://a-very-long-se")
    assert "…" in lines[1]
    assert render_table(["NAME"], [["x"]], width=None) == ["NAME", "x"]


def test_a_closed_stream_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    closed = io.StringIO()
    closed.close()
    terminal = Terminal(out=closed, err=io.StringIO())
    assert terminal.width is None
    assert not terminal.out_color


def test_the_width_is_columns_when_set_and_times_are_utc_iso_8601(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp_oauth_auth.cli.output import format_time

    monkeypatch.setenv("COLUMNS", "77")
    assert Terminal(out=io.StringIO(), err=io.StringIO()).width == 77
    assert format_time(0) == "1970-01-01T00:00:00Z"
    assert format_time(1_700_000_000.4) == "2023-11-14T22:13:20Z"
    assert format_time(None) is None
