"""Reading the numbers that servers send, callers pass and stores hold: one rule for each kind of value.

JSON has one number type, which Python reads as ``int`` or ``float``; ``bool`` is an ``int`` in Python but never a
number here. Plain functions of the value, importing nothing from the package but its exceptions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, TypeGuard

from mcp_oauth_auth.exceptions import ConfigurationError

__all__ = ["finite_number", "is_duration", "is_number", "is_whole_number", "parse_seconds", "scope_tuple"]


def is_number(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is a number (an ``int`` or a ``float``; a bool is not one)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_whole_number(value: object, minimum: int) -> TypeGuard[int]:
    """Whether ``value`` is an integer (a bool is not one) of ``minimum`` or more."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def finite_number(value: object) -> float | None:
    """``value`` as a float when it is a finite number (not NaN, not an infinity, within the float range), else
    None."""
    if not is_number(value):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range
        return None
    return number if math.isfinite(number) else None


def is_duration(value: object) -> bool:
    """Whether ``value``, given by a caller, is a finite, non-negative number of seconds."""
    seconds = finite_number(value)  # an integer beyond the float range is not finite here, not an OverflowError
    return seconds is not None and seconds >= 0


def parse_seconds(value: Any) -> float | None:
    """A finite number of seconds, 0 or more, as a server sends it: a JSON number or a string of ASCII digits (a
    ``Retry-After`` header, or a token response that quotes ``expires_in``); else None."""
    if isinstance(value, str):
        text = value.strip()
        value = float(text) if text.isascii() and text.isdigit() else None
    seconds = finite_number(value)
    return seconds if seconds is not None and seconds >= 0 else None


def scope_tuple(scopes: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """Scopes as given by a caller (a space-separated string or a sequence) as a tuple; None stays None."""
    if scopes is None:
        return None
    if isinstance(scopes, str):
        result = tuple(scopes.split())
    elif isinstance(scopes, (bytes, bytearray)) or not isinstance(scopes, Iterable):
        raise ConfigurationError(f"scopes must be a string or a sequence of strings, not {type(scopes).__name__}")
    else:
        result = tuple(scopes)
    for scope in result:
        # RFC 6749 §3.3: scope tokens are non-empty, printable ASCII, without spaces, quotes or backslashes.
        if not isinstance(scope, str) or not scope or not all(0x21 <= ord(c) <= 0x7E and c not in '"\\' for c in scope):
            raise ConfigurationError(f"each scope must be a non-empty scope token (RFC 6749 §3.3), not {scope!r}")
    return result
