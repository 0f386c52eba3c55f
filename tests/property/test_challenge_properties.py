"""``WWW-Authenticate`` parsing (flow/challenge.py) on arbitrary and on well-formed headers."""

from __future__ import annotations

import json
import time

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mcp_oauth_auth.flow.challenge import (
    MAX_ERROR_DOCUMENT,
    BearerChallenge,
    Challenge,
    is_unverified_token_answer,
    parse_bearer_challenge,
    parse_www_authenticate,
)

from .strategies import hostile_bodies, json_values

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TOKEN68_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"

tokens = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12)
#: Parameter values: anything a header can carry (visible ASCII, spaces, tabs, obs-text), quotes and backslashes too.
param_values = st.text(
    alphabet=st.characters(min_codepoint=0x09, max_codepoint=0xFF, exclude_characters="\n\r\x0b\x0c"), max_size=30
)


def quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def challenges(draw: st.DrawFn) -> Challenge:
    scheme = draw(tokens).lower()
    if draw(st.booleans()):
        token68 = draw(st.text(alphabet=TOKEN68_CHARS, min_size=1, max_size=20)) + "=" * draw(st.integers(0, 2))
        return Challenge(scheme, {}, token68)
    names = draw(st.lists(tokens.map(str.lower), unique=True, max_size=5))
    return Challenge(scheme, {name: draw(param_values) for name in names})


@st.composite
def rendered(draw: st.DrawFn, challenge: Challenge) -> str:
    """``challenge`` as a server might write it: any case, quoted or bare values, optional whitespace."""
    scheme = "".join(char.upper() if draw(st.booleans()) else char for char in challenge.scheme)
    if challenge.token68 is not None:
        return f"{scheme} {challenge.token68}"
    space = st.sampled_from(["", " ", "  ", "\t"])
    params = []
    for name, value in challenge.params.items():
        bare = value and all(char in TOKEN_CHARS or char in ":/?@[]" for char in value) and draw(st.booleans())
        shown = value if bare else quoted(value)
        params.append(f"{name.upper() if draw(st.booleans()) else name}{draw(space)}={draw(space)}{shown}")
    separator = draw(st.sampled_from([", ", ",", " , ", ",, "]))
    return f"{scheme} {separator.join(params)}" if params else scheme


@given(st.lists(st.text(max_size=200), max_size=3))
@example(['Bearer error="unterminated'])
@example(["Bearer ,,,, , realm=x,, error=\\"])
@example(['Bearer realm="a\\'])
def test_any_header_parses_without_raising(values: list[str]) -> None:
    parsed = parse_www_authenticate(values)
    assert all(isinstance(challenge, Challenge) for challenge in parsed)
    assert all(challenge.scheme == challenge.scheme.lower() for challenge in parsed)
    bearer = parse_bearer_challenge(values)
    assert bearer is None or isinstance(bearer, BearerChallenge)
    assert (bearer is None) == all(challenge.scheme != "bearer" for challenge in parsed)


@given(st.lists(challenges(), min_size=1, max_size=4), st.data())
def test_challenges_round_trip(expected: list[Challenge], data: st.DataObject) -> None:
    header = ", ".join(data.draw(rendered(challenge)) for challenge in expected)
    assert parse_www_authenticate([header]) == expected


@given(st.lists(challenges(), min_size=1, max_size=4), st.data())
def test_challenges_across_header_lines_round_trip(expected: list[Challenge], data: st.DataObject) -> None:
    headers = [data.draw(rendered(challenge)) for challenge in expected]
    assert parse_www_authenticate(headers) == expected


@given(
    st.lists(challenges().filter(lambda challenge: challenge.scheme != "bearer"), max_size=3),
    st.dictionaries(
        st.sampled_from(["error", "error_description", "scope", "resource_metadata", "realm"]), param_values
    ),
    st.data(),
)
def test_the_bearer_parameters_are_read_wherever_the_challenge_is(
    before: list[Challenge], params: dict[str, str], data: st.DataObject
) -> None:
    bearer = Challenge("bearer", params)
    header = ", ".join(data.draw(rendered(challenge)) for challenge in [*before, bearer])
    assert parse_bearer_challenge([header]) == BearerChallenge(
        error=params.get("error"),
        error_description=params.get("error_description"),
        scope=params.get("scope"),
        resource_metadata=params.get("resource_metadata"),
    )


@given(
    st.lists(tokens.map(str.lower), min_size=1, max_size=4, unique=True),
    st.lists(st.tuples(param_values, param_values), min_size=1, max_size=4),
    st.data(),
)
def test_a_repeated_parameter_keeps_its_first_value(
    names: list[str], values: list[tuple[str, str]], data: st.DataObject
) -> None:
    params = [(data.draw(st.sampled_from(names)), first, second) for first, second in values]
    header = "Bearer " + ", ".join(
        f"{name}={quoted(first)}, {name.upper()}={quoted(second)}" for name, first, second in params
    )
    expected: dict[str, str] = {}
    for name, first, _ in params:
        expected.setdefault(name, first)
    assert parse_www_authenticate([header]) == [Challenge("bearer", expected)]


@settings(max_examples=20)
@given(st.integers(min_value=1_000, max_value=20_000), st.sampled_from(["a", "a=", "a ", ",", 'a="', "a=b ", "\\"]))
def test_long_repetitive_headers_parse_in_linear_time(repeats: int, unit: str) -> None:
    """No catastrophic backtracking: a header of tens of thousands of characters parses in well under a second."""
    start = time.perf_counter()
    parse_www_authenticate(
        [f"Bearer {unit * repeats}", unit * repeats, f"Bearer {unit * repeats}@", f"{unit * repeats}@"]
    )
    assert time.perf_counter() - start < 1.0


@given(st.integers(min_value=100, max_value=599), st.one_of(st.none(), st.text(max_size=40)), hostile_bodies)
@example(500, "application/json", b"[" * 2048)  # short enough to be parsed, deeper than json's recursion limit
def test_the_unverified_token_answer_check_never_raises(status: int, content_type: str | None, body: bytes) -> None:
    assert is_unverified_token_answer(status, content_type, body) in (True, False)


error_documents = st.fixed_dictionaries(
    {"error": st.sampled_from(["server_error", "invalid_token", "Server_Error"])},
    optional={"jsonrpc": st.just("2.0"), "error_description": st.text(max_size=20), "id": json_values},
)


@given(
    st.one_of(json_values, error_documents), st.sampled_from(["application/json", "Application/JSON; charset=utf-8"])
)
def test_only_a_server_error_document_is_an_unverified_token_answer(document: object, content_type: str) -> None:
    body = json.dumps(document).encode()
    expected = (
        isinstance(document, dict)
        and document.get("error") == "server_error"
        and "jsonrpc" not in document
        and len(body) <= MAX_ERROR_DOCUMENT
    )
    assert is_unverified_token_answer(500, content_type, body) is expected
    assert is_unverified_token_answer(401, content_type, body) is False
