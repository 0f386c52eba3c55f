"""Hostile input for the parsers: JSON of any shape, text, bytes, deep nesting."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

#: JSON scalars, including the values JSON parsers accept beyond the standard (NaN, infinities, huge integers).
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)

#: Any JSON value.
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _nested(depth: int, opener: str, closer: str) -> bytes:
    return (opener * depth + closer * depth).encode()


#: Bodies a hostile or broken server sends: random bytes, text, any JSON, and nesting deeper than the parser's
#: recursion limit.
hostile_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.integers(min_value=1, max_value=200_000).map(lambda depth: _nested(depth, "[", "]")),
    st.integers(min_value=1, max_value=200_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
)


def with_field(document: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    return {**document, name: value}


#: Printable ASCII secrets, long enough to be redacted, with a marker no generated text is allowed to contain.
MARKER = "Zq9SECRET"
secrets = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", min_size=8, max_size=40
).map(lambda tail: MARKER + tail)
plain_text = st.text(max_size=40).filter(lambda text: MARKER not in text)
