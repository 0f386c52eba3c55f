"""OAuth requests that carry credentials are never silently resent elsewhere by a redirect-following client."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mcp_oauth_auth import ConfigurationError, MCPOAuth, MemoryTokenStore, OAuthError, RetryPolicy
from mcp_oauth_auth.testing import FakeMCPStack

FAST_RETRY = RetryPolicy(attempts=1)


def redirecting_token_endpoint(stack: FakeMCPStack, seen_elsewhere: list[httpx.Request]) -> httpx.MockTransport:
    """The stack, except that its token endpoint answers 307 to another origin, which records what it gets."""
    inner = stack.httpx_transport()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "elsewhere.test":
            request.read()
            seen_elsewhere.append(request)
            return httpx.Response(400, json={"error": "invalid_grant"})
        if request.url.path == "/token":
            return httpx.Response(307, headers={"Location": "https://elsewhere.test/steal"})
        response = inner.handle_request(request)
        response.read()
        return response

    return httpx.MockTransport(handler)


def test_a_followed_redirect_of_a_token_request_is_an_error_not_a_result() -> None:
    stack = FakeMCPStack()
    seen: list[httpx.Request] = []
    store = MemoryTokenStore()
    auth = MCPOAuth(stack.server_url, store=store, authorizer=stack.authorizer, retry=FAST_RETRY)
    transport = redirecting_token_endpoint(stack, seen)
    with (
        httpx.Client(auth=auth, transport=transport, follow_redirects=True) as client,
        pytest.raises(ConfigurationError, match=r"followed it to https://elsewhere\.test/steal") as caught,
    ):
        client.get(stack.server_url)
    # httpx resent the request before the flow could see the redirect; what the flow does is refuse the answer
    # (elsewhere.test's invalid_grant is not taken for the token endpoint's) and say what happened.
    assert len(seen) == 1
    assert "code" not in str(caught.value)
    assert store.list_keys() == []


@pytest.mark.parametrize("follow", [True, False])
def test_authenticate_never_follows_redirects_of_oauth_requests(follow: bool) -> None:
    stack = FakeMCPStack()
    seen: list[httpx.Request] = []
    auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), authorizer=stack.authorizer, retry=FAST_RETRY)
    with (
        httpx.Client(transport=redirecting_token_endpoint(stack, seen), follow_redirects=follow) as client,
        pytest.raises(OAuthError) as caught,
    ):
        auth.authenticate(client)
    assert seen == []  # the code and the PKCE verifier went nowhere else
    assert not isinstance(caught.value, ConfigurationError)  # a token endpoint answering 307 is a refusal


def test_metadata_requests_may_be_redirected() -> None:
    """GETs carry no credentials, and what they return is checked (issuer, resource) wherever it came from."""
    stack = FakeMCPStack()
    inner = stack.httpx_transport()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/oauth-authorization-server" and "moved" not in request.url.query.decode():
            return httpx.Response(301, headers={"Location": f"{request.url}?moved=1"})
        if "moved" in request.url.query.decode():
            request = httpx.Request(request.method, request.url.copy_with(query=None), headers=request.headers)
        response = inner.handle_request(request)
        response.read()
        return response

    options: dict[str, Any] = {"store": MemoryTokenStore(), "authorizer": stack.authorizer, "retry": FAST_RETRY}
    auth = MCPOAuth(stack.server_url, **options)
    with httpx.Client(auth=auth, transport=httpx.MockTransport(handler), follow_redirects=True) as client:
        assert client.get(stack.server_url).status_code == 200
