"""Text from servers, as a terminal may show it: control characters refused where a value must be plain (URLs,
codes), escaped where text is printed.

A terminal acts on control sequences instead of showing them (moves the cursor, rewrites the line, sets the window
title, on some terminals the clipboard): an endpoint URL or a user code from a hostile server must never reach one
as it is. The CLI writes everything through the same escaping (:mod:`mcp_oauth_auth.cli.output`).
"""

from __future__ import annotations

import re

__all__ = ["escape_controls", "has_controls", "printable_text", "redact_url_passwords"]

#: What a terminal acts upon instead of showing it: the C0 controls (newline and tab too: every message is one
#: line), DEL, the C1 controls (CSI among them), and the Unicode controls that reorder text or break lines.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: ``scheme://user:password@``, wherever a URL appears in a text: the password is everything up to the userinfo's
#: last ``@`` (as ``urlsplit`` reads it), within the authority (which ends at ``/``, ``?``, ``#`` or a space).
_URL_PASSWORD = re.compile(r"(?i)([a-z][a-z0-9+.\-]*://[^/?#@:\s]*):[^/?#\s]*@")


def has_controls(value: str) -> bool:
    """Whether ``value`` has a character a terminal would act upon (see :data:`_UNPRINTABLE`)."""
    return _UNPRINTABLE.search(value) is not None


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with every control character as an escape (``\\x1b``, ``\\u202e``); applying it again changes
    nothing."""
    return _UNPRINTABLE.sub(_escape, text)


def redact_url_passwords(text: str) -> str:
    """``text`` with the password of every URL in it masked: ``https://alice:***@host/``."""
    return _URL_PASSWORD.sub(r"\1:***@", text)


def printable_text(text: str) -> str:
    """``text`` as the library prints it: passwords in URLs masked, control characters escaped."""
    return escape_controls(redact_url_passwords(text))
