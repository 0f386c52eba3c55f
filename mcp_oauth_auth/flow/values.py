"""Reading the numbers that servers send, callers pass and stores hold: one rule for each kind of value.

JSON has one number type, which Python reads as ``int`` or ``float``; ``bool`` is an ``int`` in Python but never a
number here. Plain functions of the value, importing nothing from the package.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

__all__ = ["finite_number", "is_duration", "is_number", "is_whole_number", "parse_seconds"]


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
    return is_number(value) and math.isfinite(value) and value >= 0


def parse_seconds(value: Any) -> float | None:
    """A finite number of seconds, 0 or more, as a server sends it: a JSON number or a string of ASCII digits (a
    ``Retry-After`` header, or a token response that quotes ``expires_in``); else None."""
    if isinstance(value, str):
        text = value.strip()
        value = float(text) if text.isascii() and text.isdigit() else None
    seconds = finite_number(value)
    return seconds if seconds is not None and seconds >= 0 else None
