"""Scenarios of tests/unit/test_mcpoauth.py (and a few more), written with the pytest plugin's fixtures.

The plugin is loaded through its ``pytest11`` entry point, as in any project that installs the package.
"""

from __future__ import annotations

import time

import anyio
import httpx
import pytest

from mcp_oauth_auth import (
    ClientRegistrationRequiredError,
    DeviceAuthorizer,
    IssuerMismatchError,
    MCPOAuth,
    MemoryTokenStore,
    PKCENotSupportedError,
    ResourceMismatchError,
    TemporaryOAuthError,
)
from mcp_oauth_auth.testing import (
    FakeMCPStack,
    FakeStackConfig,
    StackClock,
    assert_counts,
    assert_grants,
    assert_no_violations,
    assert_scopes_requested,
    assert_token_requests,
)
from mcp_oauth_auth.testing.pytest_plugin import AuthFactory

ADMIN = pytest.mark.mcp_oauth_stack(required_scopes_by_path={"/mcp/admin": ["admin"]})


def test_first_request_runs_the_whole_flow(mcp_oauth_stack: FakeMCPStack, mcp_oauth_client: httpx.Client) -> None:
    response = mcp_oauth_client.post(mcp_oauth_stack.server_url, json={"jsonrpc": "2.0"})
    assert response.status_code == 200
    assert response.json()["body_length"] > 0  # the body was replayed intact
    assert_counts(mcp_oauth_stack, register=1, authorize=1, token=1, resource=2)
    query = mcp_oauth_stack.authorization_requests[0]
    assert query["code_challenge_method"] == "S256"
    assert query["resource"] == mcp_oauth_stack.server_url
    assert_scopes_requested(mcp_oauth_stack, "mcp:read mcp:write offline_access")
    assert_grants(mcp_oauth_stack, ["authorization_code"])
    assert mcp_oauth_stack.token_requests[0]["resource"] == mcp_oauth_stack.server_url
    assert_no_violations(mcp_oauth_stack)


def test_later_requests_reuse_the_token(mcp_oauth_stack: FakeMCPStack, mcp_oauth_client: httpx.Client) -> None:
    assert [mcp_oauth_client.get(mcp_oauth_stack.server_url).status_code for _ in range(5)] == [200] * 5
    assert_token_requests(mcp_oauth_stack, 1)
    assert_counts(mcp_oauth_stack, resource=6)  # one 401, then five successes


DISCOVERY_VARIANTS = [
    (prm, as_mode, path)
    for prm in ("header", "path", "root")
    for as_mode, path in [("oauth", ""), ("oidc", ""), ("oauth", "/tenant1"), ("oidc_append_only", "/tenant1")]
] + [("none", "oauth", "")]


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(
            variant,
            marks=pytest.mark.mcp_oauth_stack(prm_mode=variant[0], as_metadata_mode=variant[1], issuer_path=variant[2]),
            id="-".join(filter(None, variant)),
        )
        for variant in DISCOVERY_VARIANTS
    ],
)
def test_discovery_variants(
    variant: tuple[str, str, str],
    mcp_oauth_stack: FakeMCPStack,
    mcp_oauth_client: httpx.Client,
    mcp_oauth_auth: MCPOAuth,
) -> None:
    prm_mode, as_metadata_mode, issuer_path = variant
    assert (mcp_oauth_stack.config.prm_mode, mcp_oauth_stack.config.as_metadata_mode) == (prm_mode, as_metadata_mode)
    assert mcp_oauth_stack.config.issuer_path == issuer_path
    assert mcp_oauth_client.get(mcp_oauth_stack.server_url).status_code == 200
    assert mcp_oauth_auth.record is not None
    assert mcp_oauth_auth.record.issuer == mcp_oauth_stack.issuer
    assert mcp_oauth_auth.record.token_endpoint == mcp_oauth_stack.token_endpoint
    assert_no_violations(mcp_oauth_stack)


@pytest.mark.mcp_oauth_stack(prm_mode="none", as_metadata_mode="none")
def test_a_server_without_any_metadata_gets_the_default_endpoints(
    mcp_oauth_stack: FakeMCPStack, mcp_oauth_auth_factory: AuthFactory
) -> None:
    """MCP 2025-03-26 default endpoints: used without an opt-in, with PKCE S256 (mandatory in that revision)."""
    auth = mcp_oauth_auth_factory()
    with httpx.Client(auth=auth, transport=mcp_oauth_stack.httpx_transport()) as client:
        assert client.get(mcp_oauth_stack.server_url).status_code == 200
    assert auth.record is not None
    assert auth.record.token_endpoint == f"{mcp_oauth_stack.base_url}/token"
    assert mcp_oauth_stack.authorization_requests[-1]["code_challenge_method"] == "S256"
    assert_no_violations(mcp_oauth_stack)


@pytest.mark.parametrize(
    ("mcp_oauth_stack_config", "error"),
    [
        (FakeStackConfig(prm_resource="https://evil.test/mcp"), ResourceMismatchError),
        (FakeStackConfig(metadata_issuer="https://evil.test"), IssuerMismatchError),
        (FakeStackConfig(code_challenge_methods_supported=["plain"]), PKCENotSupportedError),
        (FakeStackConfig(registration_enabled=False), ClientRegistrationRequiredError),
    ],
    ids=["prm-resource", "metadata-issuer", "pkce-plain-only", "no-dcr"],
)
def test_refusals_before_authorization(
    mcp_oauth_stack: FakeMCPStack, mcp_oauth_client: httpx.Client, error: type[Exception]
) -> None:
    with pytest.raises(error):
        mcp_oauth_client.get(mcp_oauth_stack.server_url)
    assert_counts(mcp_oauth_stack, authorize=0, token=0)


@pytest.mark.mcp_oauth_stack(callback_iss="wrong")
def test_wrong_callback_iss_stops_before_the_token_exchange(
    mcp_oauth_stack: FakeMCPStack, mcp_oauth_client: httpx.Client
) -> None:
    with pytest.raises(IssuerMismatchError):
        mcp_oauth_client.get(mcp_oauth_stack.server_url)
    assert_counts(mcp_oauth_stack, authorize=1, token=0)


@pytest.mark.mcp_oauth_stack(registration_enabled=False)
@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_pre_registered_confidential_client(
    mcp_oauth_stack: FakeMCPStack, mcp_oauth_auth_factory: AuthFactory, method: str
) -> None:
    redirect = "http://127.0.0.1:8765/callback"
    mcp_oauth_stack.add_client(
        "pre", client_secret="s e+c%/ret", token_endpoint_auth_method=method, redirect_uris=[redirect]
    )
    auth = mcp_oauth_auth_factory(
        client_id="pre", client_secret="s e+c%/ret", redirect_uri=redirect, token_endpoint_auth_method=method
    )
    with httpx.Client(auth=auth, transport=mcp_oauth_stack.httpx_transport()) as client:
        assert client.get(mcp_oauth_stack.server_url).status_code == 200
    assert [(r["client_id"], r["auth_method"]) for r in mcp_oauth_stack.token_requests] == [("pre", method)]
    assert_counts(mcp_oauth_stack, register=0)


@pytest.mark.mcp_oauth_stack(client_id_metadata_document_supported=True)
def test_client_id_metadata_document(mcp_oauth_stack: FakeMCPStack, mcp_oauth_auth_factory: AuthFactory) -> None:
    auth = mcp_oauth_auth_factory(client_metadata_url="https://client.example/oauth/metadata.json")
    with httpx.Client(auth=auth, transport=mcp_oauth_stack.httpx_transport()) as client:
        assert client.get(mcp_oauth_stack.server_url).status_code == 200
    assert mcp_oauth_stack.authorization_requests[0]["client_id"] == "https://client.example/oauth/metadata.json"
    assert_counts(mcp_oauth_stack, register=0)


# -- expiry, refresh, restart --------------------------------------------------------------------------------------


def test_401_with_refresh_token_refreshes_without_asking(
    mcp_oauth_stack: FakeMCPStack, mcp_oauth_client: httpx.Client, mcp_oauth_clock: StackClock
) -> None:
    mcp_oauth_client.get(mcp_oauth_stack.server_url)
    mcp_oauth_clock.advance(7200)  # the server now considers the token expired
    assert mcp_oauth_client.get(mcp_oauth_stack.server_url).status_code == 200
    assert_grants(mcp_oauth_stack, ["authorization_code", "refresh_token"])
    assert_counts(mcp_oauth_stack, authorize=1)


@pytest.mark.mcp_oauth_stack(rotate_refresh_tokens=True)
def test_rotated_refresh_tokens_are_persisted_and_used(
    mcp_oauth_stack: FakeMCPStack, mcp_oauth_auth_factory: AuthFactory
) -> None:
    auth = mcp_oauth_auth_factory(refresh_skew=10_000)  # every request finds the token expiring
    with httpx.Client(auth=auth, transport=mcp_oauth_stack.httpx_transport()) as client:
        for _ in range(3):
            assert client.get(mcp_oauth_stack.server_url).status_code == 200
    assert_grants(mcp_oauth_stack, ["authorization_code", "refresh_token", "refresh_token"])
    assert all(r["status"] == 200 for r in mcp_oauth_stack.token_requests)  # never reused a retired refresh token


def test_restart_with_the_same_store_needs_no_authorization(
    mcp_oauth_stack: FakeMCPStack, mcp_oauth_client: httpx.Client, mcp_oauth_auth_factory: AuthFactory
) -> None:
    mcp_oauth_client.get(mcp_oauth_stack.server_url)
    mcp_oauth_stack.reset_log()
    restarted = mcp_oauth_auth_factory(authorizer=lambda url: pytest.fail("asked to authorize again"))
    with httpx.Client(auth=restarted, transport=mcp_oauth_stack.httpx_transport()) as client:
        assert client.get(mcp_oauth_stack.server_url).status_code == 200
    assert_counts(mcp_oauth_stack, prm=0, as_metadata=0, token=0)


def test_a_separate_store_means_a_separate_authorization(
    mcp_oauth_stack: FakeMCPStack, mcp_oauth_client: httpx.Client, mcp_oauth_auth_factory: AuthFactory
) -> None:
    mcp_oauth_client.get(mcp_oauth_stack.server_url)
    other_user = mcp_oauth_auth_factory(store=MemoryTokenStore())
    with httpx.Client(auth=other_user, transport=mcp_oauth_stack.httpx_transport()) as client:
        assert client.get(mcp_oauth_stack.server_url).status_code == 200
    assert_counts(mcp_oauth_stack, authorize=2, register=2)


def test_invalid_grant_falls_back_to_a_new_authorization(
    mcp_oauth_stack: FakeMCPStack, mcp_oauth_client: httpx.Client, mcp_oauth_clock: StackClock
) -> None:
    mcp_oauth_client.get(mcp_oauth_stack.server_url)
    mcp_oauth_clock.advance(7200)
    mcp_oauth_stack.fail_next("refresh", status=400, json={"error": "invalid_grant"})
    assert mcp_oauth_client.get(mcp_oauth_stack.server_url).status_code == 200
    assert_grants(mcp_oauth_stack, ["authorization_code", "refresh_token", "authorization_code"])
    assert_counts(mcp_oauth_stack, authorize=2)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_temporary_refresh_failure_keeps_credentials(
    mcp_oauth_stack: FakeMCPStack,
    mcp_oauth_client: httpx.Client,
    mcp_oauth_auth: MCPOAuth,
    mcp_oauth_clock: StackClock,
    status: int,
) -> None:
    mcp_oauth_client.get(mcp_oauth_stack.server_url)
    record_before = mcp_oauth_auth.record
    assert record_before is not None
    mcp_oauth_clock.advance(7200)
    mcp_oauth_stack.fail_next("refresh", status=status, times=3)  # as many as the fixture's retry attempts
    with pytest.raises(TemporaryOAuthError):
        mcp_oauth_client.get(mcp_oauth_stack.server_url)
    assert mcp_oauth_auth.store.load(record_before.key) == record_before
    assert_token_requests(mcp_oauth_stack, 3, grant_type="refresh_token")
    # Once the server recovers, the kept refresh token works.
    assert mcp_oauth_client.get(mcp_oauth_stack.server_url).status_code == 200
    assert_counts(mcp_oauth_stack, authorize=1)


def test_one_token_endpoint_failure_is_retried_without_waiting(
    mcp_oauth_stack: FakeMCPStack, mcp_oauth_client: httpx.Client
) -> None:
    mcp_oauth_stack.fail_next("token", status=503, headers={"Retry-After": "30"})
    started = time.monotonic()
    assert mcp_oauth_client.get(mcp_oauth_stack.server_url).status_code == 200
    assert time.monotonic() - started < 5  # the fixture's retry policy ignores Retry-After
    assert_grants(mcp_oauth_stack, ["authorization_code", "authorization_code"])
    assert [r["status"] for r in mcp_oauth_stack.token_requests] == [503, 200]


# -- step-up, logout -----------------------------------------------------------------------------------------------


@ADMIN
def test_step_up_on_insufficient_scope(mcp_oauth_stack: FakeMCPStack, mcp_oauth_client: httpx.Client) -> None:
    assert mcp_oauth_client.get(mcp_oauth_stack.server_url).status_code == 200
    response = mcp_oauth_client.post(f"{mcp_oauth_stack.server_url}/admin", json={"x": 1})
    assert response.status_code == 200
    assert "admin" in response.json()["scopes"]
    assert response.json()["body_length"] > 0
    assert_scopes_requested(
        mcp_oauth_stack, "mcp:read mcp:write offline_access", "mcp:read mcp:write offline_access admin"
    )


@ADMIN
@pytest.mark.mcp_oauth_stack(challenge_scope="mcp:read")
def test_markers_combine_challenge_scope_and_step_up(
    mcp_oauth_stack: FakeMCPStack, mcp_oauth_client: httpx.Client
) -> None:
    mcp_oauth_client.get(mcp_oauth_stack.server_url)
    mcp_oauth_client.get(f"{mcp_oauth_stack.server_url}/admin")
    assert_scopes_requested(mcp_oauth_stack, {"mcp:read", "offline_access"}, {"mcp:read", "offline_access", "admin"})


def test_logout_revokes_both_tokens(
    mcp_oauth_stack: FakeMCPStack, mcp_oauth_client: httpx.Client, mcp_oauth_auth: MCPOAuth
) -> None:
    mcp_oauth_client.get(mcp_oauth_stack.server_url)
    mcp_oauth_auth.logout(mcp_oauth_client)
    assert_counts(mcp_oauth_stack, revoke=2)
    assert [r["token_kind"] for r in mcp_oauth_stack.revocation_requests] == ["refresh_token", "access_token"]
    assert mcp_oauth_auth.store.list_keys() == []


# -- headless grants -----------------------------------------------------------------------------------------------


@pytest.mark.mcp_oauth_stack(
    device_authorization_enabled=True, device_poll_interval=1, device_auto_approve_after_polls=0
)
def test_device_flow(mcp_oauth_stack: FakeMCPStack, mcp_oauth_auth_factory: AuthFactory) -> None:
    prompts: list[str] = []
    auth = mcp_oauth_auth_factory(
        authorizer=DeviceAuthorizer(on_prompt=lambda device: prompts.append(device.user_code))
    )
    with httpx.Client(auth=auth, transport=mcp_oauth_stack.httpx_transport()) as client:
        assert client.get(mcp_oauth_stack.server_url).status_code == 200
    assert len(prompts) == 1
    assert_grants(mcp_oauth_stack, ["device_code"])
    assert_counts(mcp_oauth_stack, device_authorization=1, authorize=0)


@pytest.mark.mcp_oauth_stack(client_credentials_enabled=True)
def test_client_credentials(mcp_oauth_stack: FakeMCPStack, mcp_oauth_auth_factory: AuthFactory) -> None:
    mcp_oauth_stack.add_client(
        "bot",
        client_secret="s3cret",
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["client_credentials"],
    )
    auth = mcp_oauth_auth_factory(grant_type="client_credentials", client_id="bot", client_secret="s3cret")
    with httpx.Client(auth=auth, transport=mcp_oauth_stack.httpx_transport()) as client:
        assert [client.get(mcp_oauth_stack.server_url).status_code for _ in range(3)] == [200] * 3
    assert_grants(mcp_oauth_stack, ["client_credentials"])
    assert_counts(mcp_oauth_stack, authorize=0, register=0)


# -- respx, async, a real server -----------------------------------------------------------------------------------


def test_respx_serves_clients_the_code_builds_itself(mcp_oauth_respx: object, mcp_oauth_stack: FakeMCPStack) -> None:
    auth = MCPOAuth(mcp_oauth_stack.server_url, store=MemoryTokenStore(), authorizer=mcp_oauth_stack.authorizer)

    async def main() -> int:
        async with httpx.AsyncClient(auth=auth) as client:  # no transport: respx answers
            return (await client.get(mcp_oauth_stack.server_url)).status_code

    assert anyio.run(main) == 200
    assert_grants(mcp_oauth_stack, ["authorization_code"])


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_client_with_the_transport_fixture(
    mcp_oauth_stack: FakeMCPStack,
    mcp_oauth_auth: MCPOAuth,
    mcp_oauth_httpx_transport: httpx.MockTransport,
    backend: str,
) -> None:
    async def main() -> list[int]:
        async with httpx.AsyncClient(auth=mcp_oauth_auth, transport=mcp_oauth_httpx_transport) as client:
            statuses: list[int] = []

            async def one() -> None:
                statuses.append((await client.get(mcp_oauth_stack.server_url)).status_code)

            async with anyio.create_task_group() as group:
                for _ in range(10):
                    group.start_soon(one)
            return statuses

    assert anyio.run(main, backend=backend) == [200] * 10
    assert_counts(mcp_oauth_stack, authorize=1, register=1)


def test_real_loopback_server(
    mcp_oauth_server: FakeMCPStack, mcp_oauth_stack: FakeMCPStack, mcp_oauth_client: httpx.Client
) -> None:
    assert mcp_oauth_stack is mcp_oauth_server
    assert mcp_oauth_server.server_url.startswith("http://127.0.0.1:")
    assert mcp_oauth_client.get(mcp_oauth_server.server_url).status_code == 200
    assert_grants(mcp_oauth_server, ["authorization_code"])
    assert_no_violations(mcp_oauth_server)
