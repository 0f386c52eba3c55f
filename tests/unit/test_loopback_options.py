"""LoopbackBrowserAuthorizer's options and its default browser opening, without a browser."""

from __future__ import annotations

import logging
import math
import threading
import webbrowser
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mcp_oauth_auth import LoopbackBrowserAuthorizer
from mcp_oauth_auth.authorizers import loopback
from mcp_oauth_auth.exceptions import ConfigurationError


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"host": "example.com"}, "host must be a loopback address"),
        ({"port": -1}, "port must be in 0..65535, not -1"),
        ({"port": 65536}, "port must be in 0..65535, not 65536"),
        ({"path": "callback"}, "path must be an absolute URL path"),
        ({"path": "/callback?x=1"}, "path must be an absolute URL path"),
        ({"path": "/a b"}, "path must be an absolute URL path"),
        ({"timeout": 0}, "timeout must be a positive number, not 0"),
        ({"timeout": math.inf}, "timeout must be a positive number, not inf"),
        ({"timeout": math.nan}, "timeout must be a positive number, not nan"),
    ],
)
def test_options_that_cannot_work_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        LoopbackBrowserAuthorizer(**options)  # type: ignore[arg-type]


def test_the_default_browser_is_opened_and_a_failure_only_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    with caplog.at_level(logging.INFO, logger="mcp_oauth_auth"):
        loopback._open_default_browser("https://auth.example.com/authorize")
        assert opened == ["https://auth.example.com/authorize"]
        assert caplog.records == []
        monkeypatch.setattr(webbrowser, "open", lambda url: False)
        loopback._open_default_browser("https://auth.example.com/authorize")

        def broken(url: str) -> bool:
            raise webbrowser.Error("no runnable browser")

        monkeypatch.setattr(webbrowser, "open", broken)
        loopback._open_default_browser("https://auth.example.com/authorize")
    assert [record.getMessage() for record in caplog.records] == [
        "no web browser could be opened; open the URL shown instead",
        "could not open a web browser (Error); open the URL shown instead",
    ]


def test_without_an_open_browser_option_the_default_browser_is_sent_to_the_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The person's default browser (webbrowser.open, here a stand-in that follows the redirect at once) gets the
    URL, which is also shown on stderr; the callback it brings back is the result."""
    authorizer = LoopbackBrowserAuthorizer()
    redirect_uri = authorizer.redirect_uri([])

    def browser(url: str) -> bool:
        state = parse_qs(urlsplit(url).query)["state"][0]
        callback = f"{redirect_uri}?code=abc&state={state}"
        threading.Thread(target=httpx.Client(trust_env=False).get, args=(callback,), daemon=True).start()
        return True

    monkeypatch.setattr(webbrowser, "open", browser)
    url = "https://auth.example.com/authorize?state=xyz"
    assert authorizer.authorize(url, redirect_uri) == f"{redirect_uri}?code=abc&state=xyz"
    assert capsys.readouterr().err == f"Open this URL to authorize: {url}\n"


def test_a_registered_redirect_uri_is_reused_only_when_it_is_exactly_ours_and_its_port_is_free() -> None:
    import socket

    authorizer = LoopbackBrowserAuthorizer()
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        busy = held.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        not_ours = [
            "http://127.0.0.1:99999/callback",  # not a port
            "http://[::1/callback",  # not a URL
            f"https://127.0.0.1:{free}/callback",
            f"http://localhost:{free}/callback",
            f"http://127.0.0.1:{free}/other",
            f"http://127.0.0.1:{free}/callback?x=1",
            f"http://user@127.0.0.1:{free}/callback",
            f"http://127.0.0.1:{busy}/callback",  # ours, but the port is taken
        ]
        chosen = authorizer.redirect_uri(not_ours)
        assert chosen not in not_ours
        assert chosen.startswith("http://127.0.0.1:")
        assert chosen.endswith("/callback")
        assert authorizer.redirect_uri([*not_ours, f"http://127.0.0.1:{free}/callback"]) == (
            f"http://127.0.0.1:{free}/callback"
        )
    assert LoopbackBrowserAuthorizer(port=free).redirect_uri([]) == f"http://127.0.0.1:{free}/callback"
