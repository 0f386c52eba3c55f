"""Point 7: the loopback listener cannot be locked out by a local process holding idle connections: when every slot
is taken, a new connection replaces the oldest silent one, so the browser's callback still gets through."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from mcp_oauth_auth import CallbackPortInUseError, LoopbackBrowserAuthorizer
from mcp_oauth_auth.authorizers.callback_listener import MAX_CONNECTIONS

STATE = "s" * 43
AUTH_URL = f"https://as.example/authorize?client_id=c&state={STATE}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_flood_of_idle_connections_does_not_lock_the_browser_out() -> None:
    port = _free_port()
    redirect = f"http://127.0.0.1:{port}/callback"
    callback = f"{redirect}?code=c&state={STATE}"
    flood: list[socket.socket] = []
    answers: list[int] = []

    def browser(url: str) -> bool:
        def run() -> None:
            for _ in range(MAX_CONNECTIONS + 8):  # a local process holds more connections than the listener serves
                flood.append(socket.create_connection(("127.0.0.1", port)))
            talker = flood[0]
            talker.sendall(b"GET /callback?code=x HTTP/1.1\r\n")  # a slow talker: heard, so evicted last
            time.sleep(0.3)
            with httpx.Client(trust_env=False, timeout=5) as client:
                answers.append(client.get(callback).status_code)

        threading.Thread(target=run, daemon=True).start()
        return True

    authorizer = LoopbackBrowserAuthorizer(port=port, open_browser=browser, on_prompt=lambda url: None, timeout=20)
    started = time.monotonic()
    try:
        assert authorizer.authorize(AUTH_URL, redirect) == callback
        assert time.monotonic() - started < 8  # not after the 10 s connection timeout
        for _ in range(50):
            if answers:
                break
            time.sleep(0.05)
        assert answers == [200]
        # The oldest silent connections were closed to make room.
        flood[1].settimeout(5)
        assert flood[1].recv(10) == b""
    finally:
        for sock in flood:
            sock.close()


def test_localhost_listens_on_both_loopback_addresses() -> None:
    port = _free_port()
    redirect = f"http://localhost:{port}/callback"
    callback = f"{redirect}?code=c&state={STATE}"
    answers: list[int] = []

    def browser(url: str) -> bool:
        def run() -> None:
            # A browser resolving localhost to ::1 (the address another program could otherwise have taken).
            with httpx.Client(trust_env=False, timeout=5) as client:
                answers.append(
                    client.get(
                        f"http://[::1]:{port}/callback?code=c&state={STATE}", headers={"host": f"localhost:{port}"}
                    ).status_code
                )

        threading.Thread(target=run, daemon=True).start()
        return True

    authorizer = LoopbackBrowserAuthorizer(
        host="localhost", port=port, open_browser=browser, on_prompt=lambda u: None, timeout=10
    )
    assert authorizer.authorize(AUTH_URL, redirect) == callback


def test_localhost_is_refused_when_another_program_holds_the_other_address() -> None:
    port = _free_port()
    squatter = socket.socket(socket.AF_INET6)
    try:
        squatter.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        squatter.bind(("::1", port))
        squatter.listen(1)
        authorizer = LoopbackBrowserAuthorizer(host="localhost", port=port, on_prompt=lambda u: None, timeout=2)
        with pytest.raises(CallbackPortInUseError, match=r"\[::1\]"):
            authorizer.authorize(AUTH_URL, f"http://localhost:{port}/callback")
    finally:
        squatter.close()


def test_without_an_ipv6_loopback_localhost_listens_on_127_0_0_1(monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from mcp_oauth_auth.authorizers import callback_listener

    real_bind = callback_listener._bind

    def bind(host: str, port: int) -> socket.socket:
        if host == "::1":
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        return real_bind(host, port)

    monkeypatch.setattr(callback_listener, "_bind", bind)
    socks = callback_listener._bind_all("localhost", 0)
    try:
        assert [sock.family for sock in socks] == [socket.AF_INET]
    finally:
        for sock in socks:
            sock.close()
