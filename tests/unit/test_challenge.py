from __future__ import annotations

import pytest

from mcp_oauth_auth.flow.challenge import (
    MAX_ERROR_DOCUMENT,
    is_unverified_token_answer,
    parse_bearer_challenge,
    parse_www_authenticate,
)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            ['Bearer resource_metadata="https://h/.well-known/oauth-protected-resource"'],
            {"resource_metadata": "https://h/.well-known/oauth-protected-resource"},
        ),
        (
            ['Basic realm="x", Bearer error="insufficient_scope", scope="a b"'],
            {"error": "insufficient_scope", "scope": "a b"},
        ),
        (
            ["Bearer scope=files, resource_metadata=https://h/m, error=invalid_token"],
            {"scope": "files", "resource_metadata": "https://h/m", "error": "invalid_token"},
        ),
        (["Negotiate abc==", 'DPoP algs="ES256", bearer ERROR="invalid_token"'], {"error": "invalid_token"}),
        (['Bearer realm="a, b", scope="x"'], {"scope": "x"}),
        (['Bearer error_description="say \\"hi\\""'], {"error_description": 'say "hi"'}),
        # Empty list elements are ignored (RFC 9110 §5.6.1), also right after the scheme.
        (['Bearer scope="a",, error="invalid_token"'], {"scope": "a", "error": "invalid_token"}),
        (
            ['Bearer , scope="a" ,,, resource_metadata="https://h/m",'],
            {"scope": "a", "resource_metadata": "https://h/m"},
        ),
        (['Basic realm="x",, Bearer ,error="insufficient_scope"'], {"error": "insufficient_scope"}),
    ],
)
def test_bearer_parameters_in_any_order_and_form(headers: list[str], expected: dict[str, str]) -> None:
    challenge = parse_bearer_challenge(headers)
    assert challenge is not None
    for name, value in expected.items():
        assert getattr(challenge, name) == value


def test_scope_splits_into_tuple() -> None:
    challenge = parse_bearer_challenge(['Bearer scope="mcp:read  admin"'])
    assert challenge is not None
    assert challenge.scopes == ("mcp:read", "admin")


def test_no_bearer_challenge() -> None:
    assert parse_bearer_challenge(['Basic realm="x"']) is None
    assert parse_bearer_challenge([]) is None


def test_several_challenges_and_token68() -> None:
    challenges = parse_www_authenticate(['Negotiate abc==, Basic realm="r", Bearer'])
    assert [c.scheme for c in challenges] == ["negotiate", "basic", "bearer"]
    assert challenges[0].token68 == "abc=="
    assert challenges[1].params == {"realm": "r"}


def test_empty_elements_do_not_move_parameters_to_another_challenge() -> None:
    challenges = parse_www_authenticate(['Bearer scope="a",, , Basic realm="r",,'])
    assert [(c.scheme, c.params) for c in challenges] == [("bearer", {"scope": "a"}), ("basic", {"realm": "r"})]


def test_garbage_does_not_raise() -> None:
    assert parse_www_authenticate(['"unterminated', ",,,"]) == []
    challenge = parse_bearer_challenge(['Bearer scope="unterminated'])
    assert challenge is not None
    assert challenge.scope is None


# -- a 500 from the authentication layer (the MCP TypeScript SDK's requireBearerAuth)

TS_SDK_500 = b'{"error":"server_error","error_description":"Internal Server Error"}'


def test_the_typescript_sdks_500_for_an_unverifiable_token_is_recognised() -> None:
    assert is_unverified_token_answer(500, "application/json; charset=utf-8", TS_SDK_500)


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (502, "application/json", TS_SDK_500),  # a gateway, not the authentication layer
        (500, "text/html", TS_SDK_500),
        (500, None, TS_SDK_500),
        (500, "application/json", b'{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"server_error"}}'),
        (500, "application/json", b'{"jsonrpc":"2.0","error":"server_error"}'),
        (500, "application/json", b'{"error":"temporarily_unavailable"}'),
        (500, "application/json", b'["server_error"]'),
        (500, "application/json", b"Internal Server Error"),
        (500, "application/json", b"\xff\xfe"),
        (500, "application/json", b"[" * 100_000),
        (500, "application/json", b'{"error":"server_error","pad":"' + b"x" * MAX_ERROR_DOCUMENT + b'"}'),
    ],
)
def test_other_server_errors_are_left_alone(status: int, content_type: str | None, body: bytes) -> None:
    assert not is_unverified_token_answer(status, content_type, body)
