"""MCPOAuth on the Redis store while Redis is down: a still-valid token keeps being used, a refresh that cannot reach
the store gives up after its bound with a temporary error, nothing is deleted, and the client recovers (refreshing,
not authorizing again) once Redis is back."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from mcp_oauth_auth import MCPOAuth, RetryPolicy
from mcp_oauth_auth.exceptions import StoreUnavailableError, TemporaryOAuthError
from mcp_oauth_auth.storage.redis_store import RedisTokenStore
from mcp_oauth_auth.testing import FakeStackConfig, serve_stack
from tests.storage.redis_server import running_redis

pytestmark = pytest.mark.integration

PASSWORD = "outage-password"
LIFETIME = 3  # seconds; the client refreshes after half of it


@pytest.mark.timeout(60)
def test_an_outage_keeps_the_cached_token_then_is_a_temporary_error_and_loses_nothing(tmp_path: Path) -> None:
    config = FakeStackConfig(access_token_lifetime=LIFETIME, rotate_refresh_tokens=True)
    with serve_stack(config) as stack, running_redis(tmp_path) as server:
        store = RedisTokenStore(server.url, password=PASSWORD, retry_for=0.5, timeout=0.5)
        auth = MCPOAuth(stack.server_url, store=store, authorizer=stack.authorizer, retry=RetryPolicy(attempts=1))
        with httpx.Client(auth=auth) as client:
            assert client.get(stack.server_url).status_code == 200
            [key] = store.list_keys()
            signed_in = store.load(key)
            server.stop()

            time.sleep(LIFETIME / 2 + 0.2)  # the refresh is due, the token still valid
            assert client.get(stack.server_url).status_code == 200
            assert len(stack.token_requests) == 1  # (the authorization code's): no refresh without the lock

            time.sleep(LIFETIME / 2)  # now expired: without the store the refresh cannot happen
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="stayed unreachable") as caught:
                client.get(stack.server_url)
            assert isinstance(caught.value, TemporaryOAuthError)
            assert 0.4 < time.monotonic() - started < 10  # it waited for the store, within its bound

            server.start()  # AOF: the record is still there
            assert store.load(key) == signed_in
            assert client.get(stack.server_url).status_code == 200
        refreshed = store.load(key)
        assert refreshed is not None
        assert refreshed.tokens != signed_in.tokens if signed_in else False
    assert [request["grant_type"] for request in stack.token_requests] == ["authorization_code", "refresh_token"]
    assert stack.count("authorize") == 1
    assert not [request for request in stack.token_requests if request.get("error")]


@pytest.mark.timeout(60)
def test_the_async_client_also_keeps_the_cached_token_through_an_outage(tmp_path: Path) -> None:
    import anyio

    config = FakeStackConfig(access_token_lifetime=LIFETIME, rotate_refresh_tokens=True)
    with serve_stack(config) as stack, running_redis(tmp_path) as server:
        store = RedisTokenStore(server.url, password=PASSWORD, retry_for=0.3, timeout=0.5)
        auth = MCPOAuth(stack.server_url, store=store, authorizer=stack.authorizer, retry=RetryPolicy(attempts=1))

        async def scenario() -> list[int]:
            statuses = []
            async with httpx.AsyncClient(auth=auth) as client:
                statuses.append((await client.get(stack.server_url)).status_code)
                server.stop()
                await anyio.sleep(LIFETIME / 2 + 0.2)
                statuses.append((await client.get(stack.server_url)).status_code)
                await anyio.sleep(LIFETIME / 2)
                with pytest.raises(StoreUnavailableError):
                    await client.get(stack.server_url)
                server.start()
                statuses.append((await client.get(stack.server_url)).status_code)
            return statuses

        assert anyio.run(scenario) == [200, 200, 200]
    assert [request["grant_type"] for request in stack.token_requests] == ["authorization_code", "refresh_token"]
