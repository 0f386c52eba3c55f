"""HeadlessAuthorizer's user agent, hop by hop, against canned answers (httpx.MockTransport): how it follows
redirects like a browser, recognises the redirect URI, and what it reports when the walk cannot go on."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest

from mcp_oauth_auth import HeadlessAuthorizer
from mcp_oauth_auth.exceptions import AuthorizationError, ConfigurationError

AUTHORIZE = "https://auth.example.com/authorize?client_id=c&state=s"
REDIRECT = "http://127.0.0.1:8765/callback"


def walk(
    answer: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request] | None = None, **options: object
) -> str:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return answer(request)

    authorizer = HeadlessAuthorizer(transport=httpx.MockTransport(handler), **options)  # type: ignore[arg-type]
    return authorizer.authorize(AUTHORIZE, REDIRECT)


def test_a_redirect_to_the_redirect_uri_is_the_callback_even_with_default_port_or_empty_path() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": f"{REDIRECT}?code=abc&state=s"})

    assert walk(answer) == f"{REDIRECT}?code=abc&state=s"
    authorizer = HeadlessAuthorizer(
        transport=httpx.MockTransport(
            lambda r: httpx.Response(302, headers={"Location": "https://app.example.com:443?code=1"})
        )
    )
    assert authorizer.authorize(AUTHORIZE, "https://app.example.com/") == "https://app.example.com:443?code=1"


def test_307_and_308_repeat_the_request_and_other_redirects_become_gets() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/authorize":
            return httpx.Response(200, html="<form>")
        if path == "/login":
            return httpx.Response(307, headers={"Location": "/login2"})
        if path == "/login2":
            return httpx.Response(303, headers={"Location": "/consent"})
        if path == "/consent" and request.method == "HEAD":
            return httpx.Response(302, headers={"Location": f"{REDIRECT}?code=z"})
        return httpx.Response(301, headers={"Location": "/consent-head"})

    def submit(page: httpx.Response) -> httpx.Request:
        return httpx.Request(
            "POST",
            "https://auth.example.com/login",
            content=b"user=a",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    with pytest.raises(AuthorizationError):  # /consent answers GET with a redirect loop to /consent-head
        walk(answer, seen, page_handler=submit, max_hops=4)
    methods = [(request.method, request.url.path) for request in seen]
    assert methods[:4] == [("GET", "/authorize"), ("POST", "/login"), ("POST", "/login2"), ("GET", "/consent")]
    assert seen[2].content == b"user=a"
    assert seen[2].headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_a_page_handler_that_goes_to_the_redirect_uri_ends_the_walk_and_cookies_are_sent() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/authorize":
            return httpx.Response(200, html="<form>", headers={"Set-Cookie": "sid=42; Path=/"})
        return httpx.Response(200, html="<a href='callback'>")

    pages = iter(
        [
            httpx.Request("POST", "https://auth.example.com/approve"),
            httpx.Request("GET", f"{REDIRECT}?code=q"),
        ]
    )
    assert walk(answer, seen, page_handler=lambda page: next(pages)) == f"{REDIRECT}?code=q"
    assert seen[1].headers["Cookie"] == "sid=42"


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(302), "HTTP 302 without a Location header"),
        (httpx.Response(302, headers={"Location": "ftp://files.example.com/"}), "redirects to a non-HTTP URL"),
        (httpx.Response(302, headers={"Location": "https://[bad/"}), "redirects to an invalid URL"),
        (httpx.Response(200, html="<form>"), r"shows an interactive page \(HTTP 200\)"),
        (httpx.Response(304), "unexpected HTTP 304 during the authorization"),
        (httpx.Response(400, text="bad request"), "the authorization server answered HTTP 400"),
    ],
)
def test_a_walk_that_cannot_go_on_says_why(response: httpx.Response, message: str) -> None:
    with pytest.raises(AuthorizationError, match=message):
        walk(lambda request: response)


@pytest.mark.parametrize(
    ("body", "content_type", "error", "description"),
    [
        (
            b'{"error": "invalid_request", "error_description": "bad scope"}',
            "application/json",
            "invalid_request",
            "bad scope",
        ),
        (b'{"error": 1, "error_description": ["x"]}', "application/json", None, None),
        (b"[1]", "application/json", None, None),
        (b"{oops", "application/json", None, None),
        (b'{"error": "invalid_request"}', "text/html", None, None),
    ],
)
def test_an_error_page_carries_the_oauth_error_only_when_it_is_one(
    body: bytes, content_type: str, error: str | None, description: str | None
) -> None:
    with pytest.raises(AuthorizationError) as raised:
        walk(lambda request: httpx.Response(400, content=body, headers={"Content-Type": content_type}))
    assert (raised.value.error, raised.value.error_description, raised.value.status_code) == (error, description, 400)


def test_an_unreachable_server_and_too_many_hops_are_authorization_errors() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(
        AuthorizationError,
        match=r"could not complete the request to https://auth.example.com/authorize \(ConnectError\)",
    ):
        walk(refused)
    with pytest.raises(AuthorizationError, match="within 2 hops"):
        walk(lambda request: httpx.Response(302, headers={"Location": "/again"}), max_hops=2)


def test_bad_urls_and_options_are_refused_before_any_request() -> None:
    with pytest.raises(ConfigurationError, match="max_hops must not be negative"):
        HeadlessAuthorizer(max_hops=-1)
    with pytest.raises(ConfigurationError, match="redirect URI is not a valid absolute URL"):
        HeadlessAuthorizer(transport=httpx.MockTransport(lambda r: httpx.Response(500))).authorize(
            AUTHORIZE, "callback"
        )
    with pytest.raises(ConfigurationError, match="redirect URI is not a valid absolute URL"):
        HeadlessAuthorizer(transport=httpx.MockTransport(lambda r: httpx.Response(500))).authorize(
            AUTHORIZE, "http://[::1"
        )
    with pytest.raises(AuthorizationError, match="not a valid HTTP"):
        HeadlessAuthorizer(transport=httpx.MockTransport(lambda r: httpx.Response(500))).authorize(
            "https://auth.example.com:abc/", REDIRECT
        )
    assert repr(HeadlessAuthorizer(timeout=2.5, max_hops=3)) == "HeadlessAuthorizer(timeout=2.5, max_hops=3)"


def test_tls_verification_takes_a_ca_file_or_directory(tmp_path: Path) -> None:
    import certifi

    assert isinstance(HeadlessAuthorizer(verify=certifi.where())._ssl(None), ssl.SSLContext)
    assert isinstance(HeadlessAuthorizer(verify=str(tmp_path))._ssl(None), ssl.SSLContext)
    assert HeadlessAuthorizer(verify=False)._ssl(None) is False
    assert HeadlessAuthorizer(verify=str(tmp_path))._ssl(object()) is True  # a given transport brings its own TLS


def test_the_async_walk_follows_the_same_rules() -> None:
    anyio.run(_async_walk)


async def _async_walk() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/authorize":
            return httpx.Response(302, headers={"Location": "/next"})
        return httpx.Response(302, headers={"Location": f"{REDIRECT}?code=async"})

    authorizer = HeadlessAuthorizer(async_transport=httpx.MockTransport(answer))
    assert await authorizer.authorize_async(AUTHORIZE, REDIRECT) == f"{REDIRECT}?code=async"

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(AuthorizationError, match="could not complete the request"):
        await HeadlessAuthorizer(async_transport=httpx.MockTransport(refused)).authorize_async(AUTHORIZE, REDIRECT)
    looping = HeadlessAuthorizer(
        async_transport=httpx.MockTransport(lambda r: httpx.Response(302, headers={"Location": "/x"})), max_hops=1
    )
    with pytest.raises(AuthorizationError, match="within 1 hops"):
        await looping.authorize_async(AUTHORIZE, REDIRECT)
