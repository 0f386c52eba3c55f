"""Point 1 (requests per flow) and the loops of point 8: httpx and httpx2 count every response an auth flow receives
toward ``max_redirects`` (20), so a legitimate long flow run inside a protected request was cut off with
``TooManyRedirects``. The flow's own OAuth responses no longer count (nor appear in the caller's
``response.history``); what still hits the cap, a redirect loop under ``follow_redirects=True``, surfaces as
``TooManyRedirectsError``, typed, with the client's exception as its cause."""

from __future__ import annotations

import importlib
import io
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from mcp_oauth_auth import DeviceAuthorizer, OAuthError, TemporaryOAuthError, TooManyRedirectsError
from mcp_oauth_auth.driving import perform
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig

from .hostile import PRM_URL, SERVER, HostileServer, answer, make_auth

#: More authorization_pending answers than httpx's max_redirects: the flow needs over 30 requests in all.
PENDING_POLLS = 25


@pytest.fixture
def device_stack(monkeypatch: pytest.MonkeyPatch) -> FakeMCPStack:
    """A stack whose device flow is approved on the 26th poll; the flow's sleeps advance the stack's clock instead
    of waiting (so its slow_down rule still holds)."""
    stack = FakeMCPStack(
        FakeStackConfig(
            device_authorization_enabled=True,
            device_poll_interval=5,
            device_code_lifetime=3600,
            device_auto_approve_after_polls=PENDING_POLLS,
        )
    )
    now = [stack.clock()]
    stack.clock = lambda: now[0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    async def asleep(seconds: float) -> None:
        sleep(seconds)

    monkeypatch.setattr(perform, "time", SimpleNamespace(sleep=sleep))
    monkeypatch.setattr(anyio, "sleep", asleep)
    return stack


def _transport(stack: FakeMCPStack, library: str) -> Any:
    return stack.httpx_transport() if library == "httpx" else stack.httpx2_transport()


def test_a_device_flow_with_many_polls_completes_inside_a_request(
    kind: tuple[str, str], device_stack: FakeMCPStack
) -> None:
    library_name, mode = kind
    library = importlib.import_module(library_name)
    auth = make_auth(device_stack.server_url, authorizer=DeviceAuthorizer(stream=io.StringIO()))
    transport = _transport(device_stack, library_name)
    if mode == "sync":
        with library.Client(transport=transport) as client:
            response = client.get(device_stack.server_url, auth=auth)
    else:

        async def main() -> Any:
            async with library.AsyncClient(transport=transport) as client:
                return await client.get(device_stack.server_url, auth=auth)

        response = anyio.run(main, backend=mode)
    assert response.status_code == 200
    assert device_stack.count("token") > PENDING_POLLS  # every poll went through the caller's client
    assert set(device_stack.grants_used()) == {"urn:ietf:params:oauth:grant-type:device_code"}
    # Only the protected request's own 401 is history: no OAuth response (tokens!) is handed to the caller.
    assert [hop.status_code for hop in response.history] == [401]


def test_a_device_flow_with_many_polls_completes_in_authenticate(
    kind: tuple[str, str], device_stack: FakeMCPStack
) -> None:
    library_name, mode = kind
    library = importlib.import_module(library_name)
    auth = make_auth(device_stack.server_url, authorizer=DeviceAuthorizer(stream=io.StringIO()))
    transport = _transport(device_stack, library_name)
    if mode == "sync":
        with library.Client(transport=transport) as client:
            tokens = auth.authenticate(client)
    else:

        async def main() -> Any:
            async with library.AsyncClient(transport=transport) as client:
                return await auth.aauthenticate(client)

        tokens = anyio.run(main, backend=mode)
    assert tokens.access_token
    assert device_stack.count("token") > PENDING_POLLS


def test_a_redirect_loop_is_a_typed_error(kind: tuple[str, str]) -> None:
    server = HostileServer.protected({"resource": SERVER, "authorization_servers": ["https://auth.example"]})
    server.routes[PRM_URL] = answer(302, {"location": PRM_URL})
    with pytest.raises(TooManyRedirectsError, match="too many redirects") as caught:
        server.request(kind, make_auth(), follow_redirects=True)
    assert isinstance(caught.value, TemporaryOAuthError)  # credentials are kept
    assert type(caught.value.__cause__).__name__ == "TooManyRedirects"
    assert caught.value.url == PRM_URL
    assert server.urls().count(PRM_URL) > 5


def test_the_protected_requests_own_redirect_loop_stays_the_clients(kind: tuple[str, str]) -> None:
    """A loop of the caller's own request is no OAuth failure: httpx's exception, as without auth."""
    server = HostileServer()
    server.routes[SERVER] = answer(302, {"location": SERVER})
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the client library's own class, either library
        server.request(kind, make_auth(), follow_redirects=True)
    assert type(caught.value).__name__ == "TooManyRedirects"
    assert not isinstance(caught.value, OAuthError)
