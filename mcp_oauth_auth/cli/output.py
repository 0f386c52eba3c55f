"""Writing to the terminal: colour only where it helps, tables that fit, a spinner, times and secrets for people.

Colour and the spinner are used only when the stream is a terminal, ``NO_COLOR`` is unset (https://no-color.org)
and ``TERM`` is not ``dumb``; otherwise the output is plain text that scripts and logs can take as it is.

Everything written goes through :func:`printable` on the way out, whoever supplied the text (a server's metadata,
a stored record, an exception's message, the command line): a password in a URL's userinfo is masked, and control
characters are shown as escapes (``\\x1b``) instead of reaching the terminal, which would act on them (move the
cursor, rewrite lines, set the window title). Escape sequences reach a terminal only as the colours of
:meth:`Terminal.style`, and only when it shows colour.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import IO, Any, TextIO, cast

from mcp_oauth_auth.flow.printable import escape_controls, printable_text, redact_url_passwords

__all__ = [
    "PrintableFormatter",
    "Terminal",
    "describe_expiry",
    "format_duration",
    "format_time",
    "printable",
    "redact_token",
    "redact_url_passwords",
    "render_table",
]

_STYLES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}
_SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_ASCII_SPINNER_FRAMES = "|/-\\"

#: A token shorter than this is masked entirely: a few characters of a short secret are a real part of it.
_REDACT_MIN_LENGTH = 24

_STYLE_CODES = "|".join(sorted(_STYLES.values(), key=len, reverse=True))
#: The escape sequences :meth:`Terminal.style` writes: the only ones let through, and only to a colour terminal.
_OWN_STYLE = re.compile(rf"\x1b\[(?:0|(?:{_STYLE_CODES})(?:;(?:{_STYLE_CODES}))*)m")


def printable(text: str, keep_styles: bool = False) -> str:
    """``text`` as it may be shown: passwords in URLs masked, control characters as escapes (``\\x1b``, ``\\u202e``).

    With ``keep_styles``, the colour sequences of :meth:`Terminal.style` stay (any other escape does not).
    Applying it again changes nothing.
    """
    if not keep_styles:
        return printable_text(text)
    text = redact_url_passwords(text)
    pieces = []
    shown = 0
    for match in _OWN_STYLE.finditer(text):
        pieces.append(escape_controls(text[shown : match.start()]))
        pieces.append(match.group())
        shown = match.end()
    pieces.append(escape_controls(text[shown:]))
    return "".join(pieces)


def _redact_document(value: Any) -> Any:
    """A JSON document with the passwords of the URLs in its strings masked; anything else as it is."""
    if isinstance(value, str):
        return redact_url_passwords(value)
    if isinstance(value, dict):
        return {_redact_document(key): _redact_document(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_document(item) for item in value]
    return value


class PrintableFormatter(logging.Formatter):
    """Log lines as the terminal writes everything else (:func:`printable`): a logged server answer cannot reach the
    terminal as control sequences either. A record's own line breaks (a traceback's) stay."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(printable(line) for line in super().format(record).split("\n"))


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class Terminal:
    """Where a command writes: results to ``out`` (stdout), progress, warnings and errors to ``err`` (stderr)."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        plain = bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"
        self.out_color = not plain and _is_terminal(self.out)
        self.err_color = not plain and _is_terminal(self.err)
        self.interactive = not plain and _is_terminal(self.err)
        unicode_ok = _can_encode(self.out, "✓✗…⠋·→") and _can_encode(self.err, "✓✗…⠋·→")
        self.ok_mark = "✓" if unicode_ok else "+"
        self.fail_mark = "✗" if unicode_ok else "x"
        self.warn_mark = "!"
        self.info_mark = "·" if unicode_ok else "-"
        self.ellipsis = "…" if unicode_ok else "..."
        self.arrow = "→" if unicode_ok else "->"
        self._frames = _SPINNER_FRAMES if unicode_ok else _ASCII_SPINNER_FRAMES

    # -- styling -----------------------------------------------------------------------------------------------

    def style(self, text: str, *styles: str, stream: str = "out") -> str:
        """``text`` in the given styles (``bold``, ``dim``, ``red``, ``green``, ``yellow``, ``cyan``) when the
        stream it goes to (``"out"`` or ``"err"``) shows colour; else unchanged."""
        enabled = self.out_color if stream == "out" else self.err_color
        if not enabled or not styles:
            return text
        codes = ";".join(_STYLES[name] for name in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    @property
    def width(self) -> int | None:
        """The columns of the terminal (or ``$COLUMNS``); None when output goes to a file or a pipe."""
        if not os.environ.get("COLUMNS") and not _is_terminal(self.out):
            return None
        return shutil.get_terminal_size((100, 24)).columns

    # -- writing -----------------------------------------------------------------------------------------------

    def printable(self, text: str, stream: str = "out") -> str:
        """``text`` as it is written to ``stream`` (``"out"`` or ``"err"``): see :func:`printable`."""
        return printable(text, keep_styles=self.out_color if stream == "out" else self.err_color)

    def print(self, text: str = "") -> None:
        print(self.printable(text), file=self.out, flush=True)

    def print_json(self, document: Any) -> None:
        """``document`` as JSON on stdout: exact (JSON escapes control characters; DEL as well, here), except that
        passwords in URLs are masked."""
        text = json.dumps(_redact_document(document), indent=2).replace("\x7f", "\\u007f")
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        """Progress and explanations, on stderr (stdout stays clean for results)."""
        print(self.printable(text, "err"), file=self.err, flush=True)

    def success(self, text: str) -> None:
        self.print(f"{self.style(self.ok_mark, 'green', 'bold')} {text}")

    def warning(self, text: str) -> None:
        self.note(f"{self.style('warning:', 'yellow', 'bold', stream='err')} {text}")

    def error(self, message: str, hint: str | None = None) -> None:
        print(self.printable(f"{self.style('error:', 'red', 'bold', stream='err')} {message}", "err"), file=self.err)
        if hint:
            print(self.printable(f"{self.style('hint:', 'cyan', stream='err')} {hint}", "err"), file=self.err)
        self.err.flush()

    def printable_stream(self) -> IO[str]:
        """A text stream to stderr for code that writes there itself (e.g. the paste-back authorizer's
        instructions): its lines are written as :meth:`note` writes them."""
        return cast(IO[str], _PrintableStream(self))

    @contextmanager
    def spinner(self, message: str) -> Iterator[None]:
        """An animated ``message`` on stderr while the block runs; nothing at all when stderr is not a terminal."""
        if not self.interactive:
            yield
            return
        message = self.printable(message, "err")
        stop = threading.Event()

        def spin() -> None:
            frame = 0
            while not stop.is_set():
                glyph = self.style(self._frames[frame % len(self._frames)], "cyan", stream="err")
                self.err.write(f"\r\x1b[K{glyph} {message}")
                self.err.flush()
                frame += 1
                stop.wait(0.1)
            self.err.write("\r\x1b[K")
            self.err.flush()

        thread = threading.Thread(target=spin, name="mcp-oauth-spinner", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


class _PrintableStream:
    """The minimal text stream of :meth:`Terminal.printable_stream`."""

    def __init__(self, terminal: Terminal) -> None:
        self._terminal = terminal

    def write(self, text: str) -> int:
        lines = text.split("\n")
        self._terminal.err.write("\n".join(self._terminal.printable(line, "err") for line in lines))
        return len(text)

    def flush(self) -> None:
        self._terminal.err.flush()


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int | None,
    ellipsis: str = "…",
    shrink_order: Sequence[int] = (),
) -> list[str]:
    """Left-aligned columns separated by two spaces, no wider than ``width`` (None: as wide as needed).

    Columns are shortened (cut with ``ellipsis``) in ``shrink_order`` (by default the widest first), each down to
    the width of its header (at least 8), until the table fits. Cells are measured as they will be shown
    (:func:`printable`).
    """
    rows = [[printable(cell) for cell in row] for row in rows]
    gap = 2
    widths = [max([len(header), *(len(row[index]) for row in rows)]) for index, header in enumerate(headers)]
    floors = [min(widths[index], max(len(header), 8)) for index, header in enumerate(headers)]
    excess = 0 if width is None else sum(widths) + gap * (len(widths) - 1) - width
    order = list(shrink_order) or sorted(range(len(headers)), key=lambda index: -widths[index])
    for index in order:
        if excess <= 0:
            break
        cut = min(excess, widths[index] - floors[index])
        widths[index] -= cut
        excess -= cut

    def fit(text: str, size: int) -> str:
        if len(text) <= size:
            return text.ljust(size)
        return text[: max(0, size - len(ellipsis))] + ellipsis

    return [
        (" " * gap).join(fit(cell, widths[index]) for index, cell in enumerate(cells)).rstrip()
        for cells in (headers, *rows)
    ]


def format_duration(seconds: float) -> str:
    """``seconds`` in the largest unit that keeps it readable: ``45 s``, ``52 min``, ``3 h``, ``12 d``."""
    seconds = abs(seconds)
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} d"


def describe_expiry(expires_at: float | None, now: float | None = None) -> str:
    """``in 52 min``, ``expired 3 h ago`` or ``no expiry`` (the server gave no lifetime)."""
    if expires_at is None:
        return "no expiry"
    remaining = expires_at - (time.time() if now is None else now)
    if remaining > 0:
        return f"in {format_duration(remaining)}"
    return f"expired {format_duration(remaining)} ago"


def format_time(timestamp: float | None) -> str | None:
    """An absolute time in ISO 8601 (UTC, whole seconds), or None."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def redact_token(token: str | None, ellipsis: str = "…") -> str:
    """What a person may see of a token: ``eyJh…x9Q`` for a long one, only asterisks for a short one.

    Four leading and three trailing characters of a long token identify it at a glance (which of two tokens is
    in use) without making it usable; a short token is masked entirely.
    """
    if token is None:
        return "(none)"
    if len(token) < _REDACT_MIN_LENGTH:
        return "********"
    return f"{token[:4]}{ellipsis}{token[-3:]}"
