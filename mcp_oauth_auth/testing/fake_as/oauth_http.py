"""What the authorization server's endpoints share: refusing a request from deep inside a handler (:class:`Reject`),
OAuth error responses, and reading the form of a POST request."""

from __future__ import annotations

from urllib.parse import parse_qsl

from mcp_oauth_auth.testing.fake_http import FakeRequest, FakeResponse, json_response, oauth_error, parse_params

__all__ = [
    "Reject",
    "check_form",
    "error_code",
    "invalid_client",
    "method_not_allowed",
    "not_found",
    "parse_form",
    "split_scope",
    "token_error",
]


class Reject(Exception):
    """Raised inside a handler to answer with ``response`` at once."""

    def __init__(self, response: FakeResponse) -> None:
        super().__init__(response.status)
        self.response = response


def token_error(error: str, description: str, status: int = 400) -> Reject:
    return Reject(oauth_error(status, error, description))


def invalid_client(description: str, basic_attempted: bool) -> Reject:
    headers = [("WWW-Authenticate", 'Basic realm="fake-as"')] if basic_attempted else []
    return Reject(oauth_error(401, "invalid_client", description, headers))


def method_not_allowed(allowed: str) -> FakeResponse:
    return json_response(
        405, {"error": "method_not_allowed", "error_description": f"use {allowed}"}, [("Allow", allowed)]
    )


def not_found(path: str) -> FakeResponse:
    return json_response(404, {"error": "not_found", "error_description": f"nothing at {path}"})


def split_scope(value: str | None) -> list[str]:
    return [scope for scope in (value or "").split(" ") if scope]


def error_code(response: FakeResponse) -> str | None:
    try:
        document = response.json()
    except ValueError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, str) else None


def parse_form(request: FakeRequest) -> tuple[dict[str, str], list[str]]:
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return {}, []
    return parse_params(parse_qsl(text, keep_blank_values=True))


def check_form(request: FakeRequest, repeated: list[str]) -> None:
    if request.content_type != "application/x-www-form-urlencoded":
        raise token_error("invalid_request", "the body must be application/x-www-form-urlencoded")
    try:
        request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise token_error("invalid_request", "the body is not UTF-8") from None
    if repeated:
        raise token_error("invalid_request", f"repeated parameters: {repeated}")
