"""Tests of the authorizers: LoopbackBrowserAuthorizer (driven by a fake browser) and HeadlessAuthorizer."""

from __future__ import annotations

import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from urllib.parse import urljoin

import anyio
import anyio.abc
import httpx
import pytest

from mcp_oauth_auth.authorizers import (
    DEFAULT_REDIRECT_URI,
    Authorizer,
    CallableAuthorizer,
    HeadlessAuthorizer,
    LoopbackBrowserAuthorizer,
    as_authorizer,
)
from mcp_oauth_auth.authorizers.callback_http import MAX_REQUEST_HEAD, _HeadBuffer, _HeadTooLarge, _parse_head
from mcp_oauth_auth.authorizers.callback_listener import _is_loopback_peer
from mcp_oauth_auth.exceptions import (
    AuthorizationError,
    AuthorizationTimeoutError,
    CallbackPortInUseError,
    ConfigurationError,
)

STATE = "SECRETSTATE77"
AUTH_URL = f"https://as.example/authorize?client_id=c&state={STATE}&code_challenge=xyz"
CODE = "SECRETCODE42"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_bindable(port: int, *, connections_were_made: bool = True) -> None:
    """No socket listens on the port any more: it can be bound and listened on again.

    After connections, the closed ones linger in TIME_WAIT, which SO_REUSEADDR (POSIX) lets a new listener
    ignore; a socket still listening would make the bind fail regardless.
    """
    with socket.socket() as sock:
        if connections_were_made and sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def redirect(port: int) -> str:
    return f"http://127.0.0.1:{port}/callback"


Step = Callable[[httpx.Client], object]


class ThreadBrowser:
    """An ``open_browser`` that plays the browser in a thread: runs ``steps``, each given an httpx client."""

    def __init__(self, *steps: Step, returns: bool = True) -> None:
        self.steps = steps
        self.returns = returns
        self.opened: list[str] = []
        self.results: list[object] = []
        self.thread: threading.Thread | None = None

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        self.start()
        return self.returns

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(trust_env=False, timeout=5) as client:
            for step in self.steps:
                try:
                    self.results.append(step(client))
                except Exception as exc:  # recorded for the test to see
                    self.results.append(exc)

    def join(self) -> list[object]:
        assert self.thread is not None
        self.thread.join(10)
        assert not self.thread.is_alive()
        return self.results


def get(url: str, **kwargs: object) -> Step:
    return lambda client: client.get(url, **kwargs)  # type: ignore[arg-type]


def responses(results: list[object]) -> list[httpx.Response]:
    assert all(isinstance(r, httpx.Response) for r in results), results
    return [r for r in results if isinstance(r, httpx.Response)]


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on a raw connection and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


# ----------------------------------------------------------------------------------------------------
# Exports


def test_package_exports() -> None:
    loopback = LoopbackBrowserAuthorizer()
    assert as_authorizer(loopback) is loopback
    assert isinstance(as_authorizer(lambda url: url), CallableAuthorizer)
    assert issubclass(HeadlessAuthorizer, Authorizer)
    assert DEFAULT_REDIRECT_URI.startswith("http://127.0.0.1:")


# ----------------------------------------------------------------------------------------------------
# LoopbackBrowserAuthorizer: redirect_uri()


def test_redirect_uri_fixed_port(port: int) -> None:
    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=lambda url: True)
    assert authorizer.redirect_uri([]) == f"http://127.0.0.1:{port}/callback"
    assert authorizer.redirect_uri(["http://127.0.0.1:1/callback"]) == f"http://127.0.0.1:{port}/callback"
    assert LoopbackBrowserAuthorizer(port=port, path="/cb").redirect_uri([]) == f"http://127.0.0.1:{port}/cb"


def test_redirect_uri_reuses_registered_port_when_free(port: int) -> None:
    registered = f"http://127.0.0.1:{port}/callback"
    authorizer = LoopbackBrowserAuthorizer()
    assert authorizer.redirect_uri(["https://other.example/cb", registered]) == registered


def test_redirect_uri_picks_another_port_when_registered_one_is_busy(port: int) -> None:
    registered = f"http://127.0.0.1:{port}/callback"
    with socket.socket() as occupier:
        occupier.bind(("127.0.0.1", port))
        occupier.listen()
        uri = LoopbackBrowserAuthorizer().redirect_uri([registered])
    match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/callback", uri)
    assert match is not None
    assert int(match.group(1)) not in (0, port)


def test_redirect_uri_ignores_registered_uris_of_another_shape(port: int) -> None:
    others = [
        f"http://localhost:{port}/callback",
        f"http://127.0.0.1:{port}/other",
        f"https://127.0.0.1:{port}/callback",
        f"http://127.0.0.1:{port}/callback?x=1",
        "http://127.0.0.1/callback",
    ]
    uri = LoopbackBrowserAuthorizer().redirect_uri(others)
    assert uri not in others
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/callback", uri)
    new_port = int(uri.rsplit(":", 1)[1].split("/")[0])
    assert_bindable(new_port, connections_were_made=False)


def test_redirect_uri_ipv6() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    uri = LoopbackBrowserAuthorizer(host="::1").redirect_uri([])
    assert re.fullmatch(r"http://\[::1\]:\d+/callback", uri)


@pytest.mark.parametrize("host", ["example.com", "10.0.0.1", "0.0.0.0"])
def test_non_loopback_host_is_refused(host: str) -> None:
    with pytest.raises(ConfigurationError):
        LoopbackBrowserAuthorizer(host=host)


@pytest.mark.parametrize(
    "uri", ["https://127.0.0.1:5000/callback", "http://10.1.2.3:5000/callback", "http://127.0.0.1:0/callback"]
)
def test_unusable_redirect_uri_is_refused(uri: str) -> None:
    browser = ThreadBrowser()
    with pytest.raises(ConfigurationError):
        LoopbackBrowserAuthorizer(open_browser=browser).authorize(AUTH_URL, uri)
    assert browser.opened == []


# ----------------------------------------------------------------------------------------------------
# LoopbackBrowserAuthorizer: blocking


def test_authorize_returns_callback_url_and_serves_page(port: int, redirect: str) -> None:
    callback = f"{redirect}?code={CODE}&state={STATE}&iss=https%3A%2F%2Fas.example%2F"
    browser = ThreadBrowser(get(callback))
    prompts: list[str] = []
    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=browser, on_prompt=prompts.append, timeout=10)

    assert authorizer.authorize(AUTH_URL, redirect) == callback

    (page,) = responses(browser.join())
    assert browser.opened == [AUTH_URL]
    assert prompts == [AUTH_URL]
    assert page.status_code == 200
    assert "Authorization received" in page.text
    assert CODE not in page.text
    assert STATE not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["connection"] == "close"
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert_bindable(port)


def test_callback_url_keeps_origin_and_target_exactly(port: int) -> None:
    redirect = f"http://localhost:{port}/callback"
    target = b"/callback?code=a%2fb+c&state=%7E&iss=https%3A%2F%2Fas.example"
    request = b"GET " + target + b" HTTP/1.1\r\nHost: localhost:" + str(port).encode() + b"\r\n\r\n"
    browser = ThreadBrowser(lambda client: raw_exchange(port, request))
    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=browser, on_prompt=lambda url: None, timeout=10)

    # The request's state is "~", which the callback carries percent-encoded.
    authorization_url = "https://as.example/authorize?client_id=c&state=~"
    assert authorizer.authorize(authorization_url, redirect) == f"http://localhost:{port}" + target.decode()

    (answer,) = browser.join()
    assert isinstance(answer, bytes)
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_other_requests_do_not_end_the_wait(port: int, redirect: str) -> None:
    callback = f"{redirect}?code={CODE}&state={STATE}"
    browser = ThreadBrowser(
        get(f"http://127.0.0.1:{port}/favicon.ico"),
        get(f"http://127.0.0.1:{port}/callbackEVIL?code=x&state=y"),
        lambda client: client.post(callback),
        get(callback, headers={"Host": "evil.example"}),  # e.g. DNS rebinding
        lambda client: raw_exchange(port, b"NOT AN HTTP REQUEST\r\n\r\n"),
        lambda client: raw_exchange(port, b"GET /callback?code=1 HTTP/1.1\r\n" + b"X: " + b"a" * MAX_REQUEST_HEAD),
        get(callback),
    )
    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=browser, on_prompt=lambda url: None, timeout=10)

    assert authorizer.authorize(AUTH_URL, redirect) == callback

    results = browser.join()
    statuses = [r.status_code if isinstance(r, httpx.Response) else r for r in results]
    assert statuses[:4] == [404, 404, 405, 400]
    garbage, huge = statuses[4:6]
    assert isinstance(garbage, bytes)
    assert garbage.startswith(b"HTTP/1.1 400 ")
    assert isinstance(huge, bytes)
    assert huge.startswith(b"HTTP/1.1 431 ")
    assert statuses[6:] == [200]


def test_callbacks_for_other_authorization_requests_do_not_end_the_wait(port: int, redirect: str) -> None:
    """A tab left over from an earlier attempt (another state) is told so; the wait goes on for the real one."""
    callback = f"{redirect}?code={CODE}&state={STATE}"
    browser = ThreadBrowser(
        get(f"{redirect}?code=OLDCODE&state=EARLIERSTATE"),
        get(f"{redirect}?error=access_denied&state=EARLIERSTATE"),
        get(f"{redirect}?code=OLDCODE&state={STATE}&state=EARLIERSTATE"),
        get(f"{redirect}?code=OLDCODE&state="),
        get(callback),
    )
    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=browser, on_prompt=lambda url: None, timeout=10)

    assert authorizer.authorize(AUTH_URL, redirect) == callback

    *stale, page = responses(browser.join())
    assert [r.status_code for r in stale] == [400, 400, 400, 400]
    assert all("Not the current authorization" in r.text for r in stale)
    assert all(r.headers["cache-control"] == "no-store" for r in stale)
    assert page.status_code == 200


def test_a_callback_without_state_does_not_end_the_wait(port: int, redirect: str) -> None:
    """Any web page can send a callback without state (issue 14, point 7): it is ignored like one with another state,
    and the real callback still arrives."""
    callback = f"{redirect}?code={CODE}&state={STATE}"
    browser = ThreadBrowser(get(f"{redirect}?error=server_error"), get(f"{redirect}?code=PLANTED"), get(callback))
    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=browser, on_prompt=lambda url: None, timeout=10)
    assert authorizer.authorize(AUTH_URL, redirect) == callback
    *ignored, page = responses(browser.join())
    assert [r.status_code for r in ignored] == [400, 400]
    assert all("Not the current authorization" in r.text for r in ignored)
    assert page.status_code == 200


def test_without_state_in_the_request_any_callback_ends_the_wait(port: int, redirect: str) -> None:
    callback = f"{redirect}?code={CODE}&state=whatever"
    browser = ThreadBrowser(get(callback))
    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=browser, on_prompt=lambda url: None, timeout=10)
    assert authorizer.authorize("https://as.example/authorize?client_id=c", redirect) == callback
    browser.join()


def test_error_callback_page_shows_none_of_the_unverified_error_texts(port: int, redirect: str) -> None:
    """The page is served before the flow checks the response's iss (RFC 9207); the MCP specification forbids
    displaying the error of a response that fails that check, so the default page displays none."""
    callback = f"{redirect}?error=access_denied&error_description=Call+%2B1-555-PHISH+now&state={STATE}"
    browser = ThreadBrowser(get(callback))
    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=browser, on_prompt=lambda url: None, timeout=10)

    assert authorizer.authorize(AUTH_URL, redirect) == callback

    (page,) = responses(browser.join())
    assert "Authorization not completed" in page.text
    assert "access_denied" not in page.text
    assert "PHISH" not in page.text
    assert STATE not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_custom_pages(port: int, redirect: str) -> None:
    browser = ThreadBrowser(get(f"{redirect}?error=%3Cb%3E&state={STATE}"))
    authorizer = LoopbackBrowserAuthorizer(
        port=port,
        open_browser=browser,
        on_prompt=lambda url: None,
        failure_html="<p>Nope: $error ($error_description)</p>",
        timeout=10,
    )
    authorizer.authorize(AUTH_URL, redirect)
    (page,) = responses(browser.join())
    assert page.text == "<p>Nope: &lt;b&gt; ()</p>"


def test_idle_connection_does_not_delay_the_callback(port: int, redirect: str) -> None:
    callback = f"{redirect}?code=c&state={STATE}"
    idle: list[socket.socket] = []

    def open_idle(client: httpx.Client) -> None:
        idle.append(socket.create_connection(("127.0.0.1", port)))  # like a browser's speculative connection
        time.sleep(0.2)  # let the server accept it first

    browser = ThreadBrowser(open_idle, get(callback))
    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=browser, on_prompt=lambda url: None, timeout=30)
    started = time.monotonic()
    try:
        assert authorizer.authorize(AUTH_URL, redirect) == callback
        assert time.monotonic() - started < 5
        browser.join()
        idle[0].settimeout(5)
        assert idle[0].recv(10) == b""  # the server closed the idle connection too
    finally:
        for sock in idle:
            sock.close()


def test_port_in_use(port: int, redirect: str) -> None:
    browser = ThreadBrowser()
    prompts: list[str] = []
    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=browser, on_prompt=prompts.append)
    with socket.socket() as occupier:
        occupier.bind(("127.0.0.1", port))
        occupier.listen()
        with pytest.raises(CallbackPortInUseError) as caught:
            authorizer.authorize(AUTH_URL, redirect)
    assert str(port) in str(caught.value)
    assert "port=0" in str(caught.value)
    assert browser.opened == []  # bound before showing the URL
    assert prompts == []


def test_timeout(port: int, redirect: str) -> None:
    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=lambda url: True, on_prompt=lambda url: None)
    authorizer.timeout = 0.3
    started = time.monotonic()
    with pytest.raises(AuthorizationTimeoutError) as caught:
        authorizer.authorize(AUTH_URL, redirect)
    assert 0.25 <= time.monotonic() - started < 5
    assert "0.3 seconds" in str(caught.value)
    assert_bindable(port, connections_were_made=False)


def test_socket_closed_when_prompt_fails(port: int, redirect: str) -> None:
    def failing_prompt(url: str) -> None:
        raise RuntimeError("boom")

    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=lambda url: True, on_prompt=failing_prompt)
    with pytest.raises(RuntimeError):
        authorizer.authorize(AUTH_URL, redirect)
    assert_bindable(port, connections_were_made=False)


@pytest.mark.parametrize("failure", ["returns False", "raises"])
def test_browser_failure_falls_back_to_prompt(
    port: int, redirect: str, failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    callback = f"{redirect}?code=c&state={STATE}"
    person = ThreadBrowser(get(callback))

    def browser(url: str) -> bool:
        if failure == "raises":
            raise RuntimeError("no display")
        return False

    authorizer = LoopbackBrowserAuthorizer(
        port=port, open_browser=browser, on_prompt=lambda url: person.start(), timeout=10
    )
    with caplog.at_level(logging.INFO, logger="mcp_oauth_auth"):
        assert authorizer.authorize(AUTH_URL, redirect) == callback
    person.join()
    assert any("open the URL shown instead" in r.getMessage() for r in caplog.records)


def test_default_prompt_writes_to_stderr(port: int, redirect: str, capsys: pytest.CaptureFixture[str]) -> None:
    browser = ThreadBrowser(get(f"{redirect}?code=c&state={STATE}"))
    LoopbackBrowserAuthorizer(port=port, open_browser=browser, timeout=10).authorize(AUTH_URL, redirect)
    browser.join()
    assert capsys.readouterr().err == f"Open this URL to authorize: {AUTH_URL}\n"


def test_no_secret_is_logged(port: int, redirect: str, caplog: pytest.LogCaptureFixture) -> None:
    callback = f"{redirect}?code={CODE}&state={STATE}"
    browser = ThreadBrowser(get(f"http://127.0.0.1:{port}/favicon.ico"), get(callback))
    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=browser, on_prompt=lambda url: None, timeout=10)
    with caplog.at_level(logging.DEBUG, logger="mcp_oauth_auth"):
        authorizer.authorize(AUTH_URL, redirect)
    browser.join()
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("mcp_oauth_auth"))
    assert "/callback" in logged  # something was logged...
    for secret in (CODE, STATE, "AUTHSTATE123"):
        assert secret not in logged  # ...but no secret


# ----------------------------------------------------------------------------------------------------
# LoopbackBrowserAuthorizer: request parsing (shared by both I/O loops)


def test_parse_head() -> None:
    method, target, headers = _parse_head(b"GET /callback?a=1 HTTP/1.1\r\nHost: 127.0.0.1:5\r\nX-A:  b \r\n\r\n")
    assert (method, target, headers) == ("GET", "/callback?a=1", {"host": "127.0.0.1:5", "x-a": "b"})
    for bad in [
        b"GET /callback\r\n\r\n",
        b"GET http://evil/callback HTTP/1.1\r\n\r\n",
        b"GET /a b HTTP/1.1\r\n\r\n",
        b"GET /callback HTTP/2.0\r\n\r\n",
        b"GET /callback HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET /callback HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",
    ]:
        with pytest.raises(ValueError):  # noqa: PT011 - the various reasons share one type
            _parse_head(bad)


def test_head_buffer_is_bounded() -> None:
    buffer = _HeadBuffer()
    assert buffer.feed(b"GET / HTTP/1.1\r\n") is None
    assert buffer.feed(b"\r\nextra") == b"GET / HTTP/1.1\r\n\r\n"
    buffer = _HeadBuffer()
    assert buffer.feed(b"a" * MAX_REQUEST_HEAD) is None
    with pytest.raises(_HeadTooLarge):
        buffer.feed(b"a")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (("127.0.0.1", 5), True),
        (("127.8.9.10", 5), True),
        (("::1", 5, 0, 0), True),
        (("::ffff:127.0.0.1", 5, 0, 0), True),
        (("10.0.0.1", 5), False),
        (("::ffff:10.0.0.1", 5, 0, 0), False),
        (("fe80::1%eth0", 5, 0, 2), False),
        (None, False),
        ("garbage", False),
    ],
)
def test_only_loopback_peers_are_served(address: object, expected: bool) -> None:
    assert _is_loopback_peer(address) is expected


# ----------------------------------------------------------------------------------------------------
# LoopbackBrowserAuthorizer: async (asyncio and trio)


class TaskBrowser:
    """An ``open_browser`` that plays the browser in a task of ``task_group``."""

    def __init__(self, task_group: anyio.abc.TaskGroup, *urls: str) -> None:
        self.task_group = task_group
        self.urls = urls
        self.opened: list[str] = []
        self.pages: list[httpx.Response] = []

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        self.task_group.start_soon(self._run)
        return True

    async def _run(self) -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
            for url in self.urls:
                self.pages.append(await client.get(url))


@pytest.mark.anyio
async def test_async_authorize(port: int, redirect: str) -> None:
    callback = f"{redirect}?code={CODE}&state={STATE}"
    async with anyio.create_task_group() as task_group:
        browser = TaskBrowser(task_group, f"http://127.0.0.1:{port}/favicon.ico", callback)
        authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=browser, on_prompt=lambda url: None, timeout=10)
        assert await authorizer.authorize_async(AUTH_URL, redirect) == callback
    favicon, page = browser.pages
    assert browser.opened == [AUTH_URL]
    assert favicon.status_code == 404
    assert page.status_code == 200
    assert "Authorization received" in page.text
    assert CODE not in page.text
    assert STATE not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["connection"] == "close"
    assert_bindable(port)


@pytest.mark.anyio
async def test_async_callback_for_another_request_does_not_end_the_wait(port: int, redirect: str) -> None:
    callback = f"{redirect}?code={CODE}&state={STATE}"
    async with anyio.create_task_group() as task_group:
        browser = TaskBrowser(task_group, f"{redirect}?code=OLD&state=EARLIER", callback)
        authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=browser, on_prompt=lambda url: None, timeout=10)
        assert await authorizer.authorize_async(AUTH_URL, redirect) == callback
    stale, page = browser.pages
    assert stale.status_code == 400
    assert "Not the current authorization" in stale.text
    assert page.status_code == 200


@pytest.mark.anyio
async def test_async_error_page_is_escaped(port: int, redirect: str) -> None:
    callback = f"{redirect}?error=access_denied&error_description=%3Cscript%3Ex%3C%2Fscript%3E&state={STATE}"
    async with anyio.create_task_group() as task_group:
        browser = TaskBrowser(task_group, callback)
        authorizer = LoopbackBrowserAuthorizer(
            port=port,
            open_browser=browser,
            on_prompt=lambda url: None,
            timeout=10,
            failure_html="<p>$error: $error_description</p>",
        )
        assert await authorizer.authorize_async(AUTH_URL, redirect) == callback
    (page,) = browser.pages
    assert "&lt;script&gt;x&lt;/script&gt;" in page.text
    assert "<script>" not in page.text


@pytest.mark.anyio
async def test_async_port_in_use(port: int, redirect: str) -> None:
    opened: list[str] = []
    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=opened.append, on_prompt=opened.append)  # type: ignore[arg-type]
    with socket.socket() as occupier:
        occupier.bind(("127.0.0.1", port))
        occupier.listen()
        with pytest.raises(CallbackPortInUseError) as caught:
            await authorizer.authorize_async(AUTH_URL, redirect)
    assert str(port) in str(caught.value)
    assert opened == []


@pytest.mark.anyio
async def test_async_timeout(port: int, redirect: str) -> None:
    authorizer = LoopbackBrowserAuthorizer(
        port=port, open_browser=lambda url: True, on_prompt=lambda url: None, timeout=0.3
    )
    started = anyio.current_time()
    with pytest.raises(AuthorizationTimeoutError) as caught:
        await authorizer.authorize_async(AUTH_URL, redirect)
    assert 0.25 <= anyio.current_time() - started < 5
    assert "0.3 seconds" in str(caught.value)
    assert_bindable(port, connections_were_made=False)


@pytest.mark.anyio
async def test_async_idle_connection_does_not_delay_the_callback(port: int, redirect: str) -> None:
    callback = f"{redirect}?code=c&state={STATE}"
    idle: list[anyio.abc.SocketStream] = []

    async def run_browser() -> None:
        idle.append(await anyio.connect_tcp("127.0.0.1", port))
        await anyio.sleep(0.2)
        async with httpx.AsyncClient(trust_env=False) as client:
            await client.get(callback)

    async with anyio.create_task_group() as task_group:

        def open_browser(url: str) -> bool:
            task_group.start_soon(run_browser)
            return True

        authorizer = LoopbackBrowserAuthorizer(
            port=port, open_browser=open_browser, on_prompt=lambda url: None, timeout=30
        )
        with anyio.fail_after(5):
            assert await authorizer.authorize_async(AUTH_URL, redirect) == callback
    with anyio.fail_after(5), pytest.raises(anyio.EndOfStream):
        await idle[0].receive()  # the server closed the idle connection too
    await idle[0].aclose()


@pytest.mark.anyio
async def test_async_cancellation_closes_everything(port: int, redirect: str) -> None:
    clients: list[socket.socket] = []

    def open_browser(url: str) -> bool:
        clients.append(socket.create_connection(("127.0.0.1", port)))  # an open, idle connection
        return True

    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=open_browser, on_prompt=lambda url: None)
    with anyio.move_on_after(0.3) as scope:
        await authorizer.authorize_async(AUTH_URL, redirect)
    assert scope.cancelled_caught
    try:
        clients[0].settimeout(5)
        assert clients[0].recv(10) == b""  # the accepted connection was closed
    finally:
        clients[0].close()
    assert_bindable(port)


@pytest.mark.anyio
async def test_async_cancellation_without_connections_frees_port(port: int, redirect: str) -> None:
    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=lambda url: True, on_prompt=lambda url: None)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(authorizer.authorize_async, AUTH_URL, redirect)
            await anyio.sleep(0.1)
            scope.cancel()
    assert_bindable(port, connections_were_made=False)


# ----------------------------------------------------------------------------------------------------
# HeadlessAuthorizer

HEADLESS_REDIRECT = "http://127.0.0.1:1234/callback"
CALLBACK = f"{HEADLESS_REDIRECT}?code={CODE}&state={STATE}"
LOGIN_FORM = '<html><form method="post" action="/login/submit"><input name="user"></form></html>'


class FakeAS:
    """An authorization server: /authorize sets a session cookie and redirects to a login page; the login
    form's POST redirects to the redirect URI. Records every request it sees."""

    def __init__(self, callback: str = CALLBACK) -> None:
        self.callback = callback
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        path = request.url.path
        if request.url.host != "as.example":
            return httpx.Response(404)
        if path == "/authorize":
            return httpx.Response(302, headers={"Location": "/login", "Set-Cookie": "session=s1; Path=/"})
        if request.headers.get("Cookie") != "session=s1":
            return httpx.Response(400, json={"error": "invalid_request", "error_description": "no session"})
        if path == "/login" and request.method == "GET":
            return httpx.Response(200, html=LOGIN_FORM)
        if path == "/login/submit" and request.method == "POST":
            if request.content != b"user=alice":
                return httpx.Response(403)
            return httpx.Response(303, headers={"Location": self.callback})
        return httpx.Response(404)


def submit_login_form(response: httpx.Response) -> httpx.Request:
    match = re.search(r'action="([^"]+)"', response.text)
    assert match is not None
    return httpx.Request("POST", urljoin(str(response.url), match.group(1)), data={"user": "alice"})


def test_headless_redirect_uri_is_left_to_the_caller() -> None:
    assert HeadlessAuthorizer().redirect_uri(["http://127.0.0.1:1/callback"]) is None


def test_headless_through_login_page() -> None:
    server = FakeAS()
    authorizer = HeadlessAuthorizer(transport=httpx.MockTransport(server), page_handler=submit_login_form)

    assert authorizer.authorize(AUTH_URL, HEADLESS_REDIRECT) == CALLBACK

    assert [(r.method, r.url.path) for r in server.seen] == [
        ("GET", "/authorize"),
        ("GET", "/login"),
        ("POST", "/login/submit"),
    ]
    assert all(r.url.host == "as.example" for r in server.seen)  # the callback itself was not requested


@pytest.mark.anyio
async def test_headless_async_through_login_page() -> None:
    server = FakeAS()
    authorizer = HeadlessAuthorizer(async_transport=httpx.MockTransport(server), page_handler=submit_login_form)

    assert await authorizer.authorize_async(AUTH_URL, HEADLESS_REDIRECT) == CALLBACK
    assert len(server.seen) == 3


def test_headless_direct_redirect() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": CALLBACK})

    authorizer = HeadlessAuthorizer(transport=httpx.MockTransport(server))
    assert authorizer.authorize(AUTH_URL, HEADLESS_REDIRECT) == CALLBACK


def test_headless_relative_location_is_resolved() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "../cb?code=1&state=2"})

    authorizer = HeadlessAuthorizer(transport=httpx.MockTransport(server))
    assert authorizer.authorize("https://as.example/oauth/authorize", "https://as.example/cb") == (
        "https://as.example/cb?code=1&state=2"
    )


@pytest.mark.parametrize(
    "handler", [None, lambda response: None], ids=["without page_handler", "page_handler gives up"]
)
def test_headless_interactive_page_without_handler(handler: Callable[[httpx.Response], None] | None) -> None:
    authorizer = HeadlessAuthorizer(transport=httpx.MockTransport(FakeAS()), page_handler=handler)
    with pytest.raises(AuthorizationError) as caught:
        authorizer.authorize(AUTH_URL, HEADLESS_REDIRECT)
    assert "page_handler" in str(caught.value)
    assert caught.value.url == "https://as.example/login"


def test_headless_page_handler_get_to_redirect_uri_is_not_sent() -> None:
    seen: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, html=f'<a href="{CALLBACK}">continue</a>')

    authorizer = HeadlessAuthorizer(
        transport=httpx.MockTransport(server), page_handler=lambda response: httpx.Request("GET", CALLBACK)
    )
    assert authorizer.authorize(AUTH_URL, HEADLESS_REDIRECT) == CALLBACK
    assert len(seen) == 1


@pytest.mark.parametrize("status", [400, 401, 500, 503])
def test_headless_error_status(status: int) -> None:
    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": "invalid_request", "error_description": "bad client_id"})

    authorizer = HeadlessAuthorizer(transport=httpx.MockTransport(server))
    with pytest.raises(AuthorizationError) as caught:
        authorizer.authorize(AUTH_URL, HEADLESS_REDIRECT)
    error = caught.value
    assert error.status_code == status
    assert error.error == "invalid_request"
    assert error.url == "https://as.example/authorize"
    assert str(status) in str(error)
    assert "AUTHSTATE123" not in str(error)  # no query string in the message


def test_headless_redirect_without_location() -> None:
    authorizer = HeadlessAuthorizer(transport=httpx.MockTransport(lambda request: httpx.Response(302)))
    with pytest.raises(AuthorizationError, match="Location"):
        authorizer.authorize(AUTH_URL, HEADLESS_REDIRECT)


def test_headless_transport_error() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    authorizer = HeadlessAuthorizer(transport=httpx.MockTransport(server))
    with pytest.raises(AuthorizationError, match="ConnectError") as caught:
        authorizer.authorize(AUTH_URL, HEADLESS_REDIRECT)
    assert "AUTHSTATE123" not in str(caught.value)


def test_headless_hop_limit_on_redirect_loop() -> None:
    seen: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "/a" if request.url.path != "/a" else "/b"})

    authorizer = HeadlessAuthorizer(transport=httpx.MockTransport(server), max_hops=3)
    with pytest.raises(AuthorizationError, match="3 hops"):
        authorizer.authorize(AUTH_URL, HEADLESS_REDIRECT)
    assert len(seen) == 4  # the first request and 3 hops


@pytest.mark.parametrize(("max_hops", "succeeds"), [(2, True), (1, False)])
def test_headless_hop_limit_boundary(max_hops: int, succeeds: bool) -> None:
    def server(request: httpx.Request) -> httpx.Response:
        following = {"/authorize": "/one", "/one": "/two", "/two": CALLBACK}[request.url.path]
        return httpx.Response(302, headers={"Location": following})

    authorizer = HeadlessAuthorizer(transport=httpx.MockTransport(server), max_hops=max_hops)
    if succeeds:
        assert authorizer.authorize(AUTH_URL, HEADLESS_REDIRECT) == CALLBACK
    else:
        with pytest.raises(AuthorizationError, match="hops"):
            authorizer.authorize(AUTH_URL, HEADLESS_REDIRECT)


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:1234/callbackEVIL?code=x&state=y",
        "http://127.0.0.1:1235/callback?code=x&state=y",
        "http://127.0.0.1/callback?code=x&state=y",
        "https://127.0.0.1:1234/callback?code=x&state=y",
        "http://127.0.0.2:1234/callback?code=x&state=y",
        "http://127.0.0.1:1234@evil.example/callback?code=x&state=y",
        "http://127.0.0.1:1234/callback/?code=x&state=y",
        "http://127.0.0.1:1234/Callback?code=x&state=y",
    ],
)
def test_headless_redirect_uri_match_is_not_fooled(location: str) -> None:
    seen: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.host == "as.example":
            return httpx.Response(302, headers={"Location": location})
        return httpx.Response(404)

    authorizer = HeadlessAuthorizer(transport=httpx.MockTransport(server))
    with pytest.raises(AuthorizationError) as caught:
        authorizer.authorize(AUTH_URL, HEADLESS_REDIRECT)
    assert caught.value.status_code == 404
    assert len(seen) == 2  # the look-alike was followed as an ordinary hop, not returned


@pytest.mark.parametrize(
    "location",
    [
        "HTTP://127.0.0.1:1234/callback?code=x&state=y",
        "http://127.0.0.1:1234/callback?code=x&state=y#frag",
        "http://127.0.0.1:1234/callback",
    ],
)
def test_headless_redirect_uri_match_equivalent_forms(location: str) -> None:
    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": location})

    authorizer = HeadlessAuthorizer(transport=httpx.MockTransport(server))
    assert authorizer.authorize(AUTH_URL, HEADLESS_REDIRECT) == location


def test_headless_default_port_match() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://127.0.0.1:80/callback?code=x"})

    authorizer = HeadlessAuthorizer(transport=httpx.MockTransport(server))
    assert authorizer.authorize(AUTH_URL, "http://127.0.0.1/callback") == "http://127.0.0.1:80/callback?code=x"


def test_headless_307_repeats_the_post_and_303_turns_it_into_get() -> None:
    seen: list[tuple[str, str, bytes]] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.content))
        if request.url.path == "/authorize":
            return httpx.Response(200, html=LOGIN_FORM)
        if request.url.path == "/login/submit":
            return httpx.Response(307, headers={"Location": "/login/again"})
        if request.url.path == "/login/again":
            return httpx.Response(303, headers={"Location": "/consent"})
        return httpx.Response(302, headers={"Location": CALLBACK})

    authorizer = HeadlessAuthorizer(transport=httpx.MockTransport(server), page_handler=submit_login_form)
    assert authorizer.authorize(AUTH_URL, HEADLESS_REDIRECT) == CALLBACK
    assert seen == [
        ("GET", "/authorize", b""),
        ("POST", "/login/submit", b"user=alice"),
        ("POST", "/login/again", b"user=alice"),
        ("GET", "/consent", b""),
    ]


def test_headless_negative_max_hops_refused() -> None:
    with pytest.raises(ConfigurationError):
        HeadlessAuthorizer(max_hops=-1)


@pytest.fixture(autouse=True)
def _no_real_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may open a real browser."""

    def refuse(*args: object, **kwargs: object) -> bool:
        raise AssertionError("a real browser was about to be opened")

    monkeypatch.setattr("webbrowser.open", refuse)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_headless_authorizer_bypasses_environment_proxies_for_loopback(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp_oauth_auth.authorizers import HeadlessAuthorizer
    from mcp_oauth_auth.testing import serve_stack

    # A proxy that does not exist: a loopback authorization must not go through it (browsers bypass it too).
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    with serve_stack() as stack:
        client = stack.add_client("pre", redirect_uris=["http://127.0.0.1:9999/callback"])
        url = (
            f"{stack.issuer}/authorize?response_type=code&client_id={client.client_id}"
            "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2Fcallback&state=s&code_challenge="
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
            f"&resource={stack.server_url}"
        )
        authorizer = HeadlessAuthorizer(timeout=5)
        if mode == "sync":
            callback = authorizer.authorize(url, "http://127.0.0.1:9999/callback")
        else:
            callback = anyio.run(authorizer.authorize_async, url, "http://127.0.0.1:9999/callback")
    assert callback.startswith("http://127.0.0.1:9999/callback?code=")
