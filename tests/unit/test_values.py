"""The value parsers of flow/values.py: what counts as a number, a whole number, a duration, a number of seconds."""

from __future__ import annotations

import math

import pytest

from mcp_oauth_auth.flow.values import finite_number, is_duration, is_number, is_whole_number, parse_seconds

HUGE = 10**400  # beyond the float range


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, True), (-1.5, True), (math.nan, True), (HUGE, True), (True, False), ("1", False), (None, False)],
)
def test_a_bool_is_not_a_number(value: object, expected: bool) -> None:
    assert is_number(value) is expected


@pytest.mark.parametrize(
    ("value", "minimum", "expected"),
    [(1, 1, True), (0, 1, False), (0, 0, True), (-1, 0, False), (True, 0, False), (1.0, 0, False), ("2", 0, False)],
)
def test_whole_numbers(value: object, minimum: int, expected: bool) -> None:
    assert is_whole_number(value, minimum) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3.0), (-2.5, -2.5), (math.nan, None), (math.inf, None), (HUGE, None), (False, None), ("3", None)],
)
def test_finite_numbers(value: object, expected: float | None) -> None:
    assert finite_number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, True), (2.5, True), (-1, False), (math.inf, False), (math.nan, False), (True, False), (HUGE, False)],
)
def test_durations_given_by_callers(value: object, expected: bool) -> None:
    assert is_duration(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (120, 120.0),
        (0.5, 0.5),
        (" 30 ", 30.0),  # a header value, or a token response that quotes its expires_in
        ("1.5", None),  # a string is read only as ASCII digits
        ("٣", None),  # a non-ASCII digit
        ("-5", None),
        ("", None),
        (-1, None),
        (True, None),
        (math.inf, None),
        (HUGE, None),
        ("9" * 400, None),
        (None, None),
        ([60], None),
    ],
)
def test_seconds_sent_by_servers(value: object, expected: float | None) -> None:
    assert parse_seconds(value) == expected
