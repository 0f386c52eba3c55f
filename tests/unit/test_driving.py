"""The one effect loop (mcp_oauth_auth.driving): what every driver of the flow gets from it alike."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import anyio
import httpx
import pytest

from mcp_oauth_auth.authorizers.base import DEFAULT_REDIRECT_URI, Authorizer, as_authorizer
from mcp_oauth_auth.driving.loop import adrive, drive
from mcp_oauth_auth.driving.perform import Performer
from mcp_oauth_auth.exceptions import ConfigurationError, TemporaryOAuthError
from mcp_oauth_auth.flow.effects import ChooseRedirect, Effect, HttpRequest, HttpResponse, SendHttp, Sleep

URL = "https://as.example/token"


def one_request(request: HttpRequest) -> Generator[Effect, Any, HttpResponse]:
    response = yield SendHttp(request)
    assert isinstance(response, HttpResponse)
    return response


class _AddsHeader(httpx.Auth):
    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = "Bearer protected-resource-token"
        yield request


def test_oauth_requests_go_without_the_clients_auth_and_redirects_are_not_followed() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "https://elsewhere.example/"})

    client = httpx.Client(transport=httpx.MockTransport(answer), auth=_AddsHeader(), follow_redirects=True)
    response = drive(one_request(HttpRequest.get(URL)), client, Performer())
    assert response.status == 302
    [sent] = seen
    assert "authorization" not in sent.headers
    assert response.url == URL


def test_a_redirected_credential_request_is_refused() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "as.example":
            return httpx.Response(307, headers={"Location": "https://elsewhere.example/token"})
        return httpx.Response(200, json={})

    class FollowingClient(httpx.Client):
        def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
            return super().send(request, follow_redirects=True)

    client = FollowingClient(transport=httpx.MockTransport(answer))
    with pytest.raises(ConfigurationError, match="followed it"):
        drive(one_request(HttpRequest.form(URL, {"grant_type": "x"})), client, Performer())


def test_an_unreachable_endpoint_is_thrown_into_the_flow_as_a_temporary_error() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def tolerant() -> Generator[Effect, Any, str]:
        try:
            yield from one_request(HttpRequest.get(URL))
        except TemporaryOAuthError as exc:
            return exc.message
        return "sent"

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        assert drive(tolerant(), client, Performer()) == f"could not reach {URL}: ConnectError: refused"

    async def main() -> str:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            result: str = await adrive(tolerant(), client, Performer())
            return result

    assert anyio.run(main) == f"could not reach {URL}: ConnectError: refused"


def test_the_clients_timeout_applies_to_oauth_requests() -> None:
    timeouts: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        return httpx.Response(200, json={})

    with httpx.Client(transport=httpx.MockTransport(answer), timeout=3.5) as client:
        drive(one_request(HttpRequest.get(URL)), client, Performer())
    assert timeouts == [httpx.Timeout(3.5).as_dict()]


def test_every_exchange_is_observed() -> None:
    noted: list[tuple[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if not noted else 200, json={})

    def retried() -> Generator[Effect, Any, int]:
        first = yield from one_request(HttpRequest.get(URL))
        yield Sleep(0)
        second = yield from one_request(HttpRequest.get(URL))
        return first.status * 1000 + second.status

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        result = drive(retried(), client, Performer(), observe=lambda r, o: noted.append((str(r.url), o.status_code)))
    assert result == 503200
    assert noted == [(URL, 503), (URL, 200)]


class _NoPreference(Authorizer):
    def redirect_uri(self, registered: Any) -> None:
        return None


@pytest.mark.parametrize("registered", [(), ("http://127.0.0.1:8765/callback",)])
def test_without_the_authorizers_choice_the_default_redirect_uri_is_used(registered: tuple[str, ...]) -> None:
    """One rule for MCPOAuth and MCPOAuthClient: an authorizer that prefers a registered URI says so itself."""
    for authorizer in (_NoPreference(), as_authorizer(lambda url: url)):
        assert Performer(authorizer=authorizer).perform(ChooseRedirect(registered)) == DEFAULT_REDIRECT_URI


def test_effects_a_run_cannot_perform_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot perform"):
        Performer().perform(ChooseRedirect(()))
