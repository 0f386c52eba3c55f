"""Each preset against the fake stack configured to behave like its provider: the provider's refusal without the
preset (the symptom users report), a working login with it, and what exactly was sent (docs/providers.md)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from mcp_oauth_auth import (
    AuthorizationDeniedError,
    AuthorizationError,
    ConfigurationError,
    MCPOAuth,
    PKCENotSupportedError,
    RegistrationPolicyError,
    TokenExchangeError,
)
from mcp_oauth_auth import presets as preset_module
from mcp_oauth_auth.flow.device import DEVICE_CODE_GRANT
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.storage.memory import MemoryTokenStore
from mcp_oauth_auth.testing import FakeMCPStack
from mcp_oauth_auth.testing.fake_provider import (
    AUTH0_AUDIENCE_REFUSAL,
    ENTRA_RESOURCE_REFUSAL,
    KEYCLOAK_POLICY_REFUSAL,
    like_provider,
)

FAST_RETRY = RetryPolicy(base_delay=0.0, max_delay=0.0)
REDIRECT = "http://127.0.0.1:8765/callback"


class Recorder:
    """The stack behind an httpx transport that keeps every request (to read the forms the flow sent)."""

    def __init__(self, stack: FakeMCPStack) -> None:
        self.stack = stack
        self.requests: list[httpx.Request] = []
        inner = stack.httpx_transport()

        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return inner.handle_request(request)

        self.client = httpx.Client(transport=httpx.MockTransport(handle))

    def token_forms(self) -> list[dict[str, str]]:
        return [
            dict(parse_qsl(request.content.decode()))
            for request in self.requests
            if request.url.path.endswith("/token") and request.method == "POST"
        ]

    def authorization_query(self) -> dict[str, str]:
        return self.stack.authorization_requests[-1]


def login(stack: FakeMCPStack, **options: Any) -> tuple[MCPOAuth, Recorder]:
    recorder = Recorder(stack)
    options.setdefault("authorizer", stack.authorizer)
    auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), retry=FAST_RETRY, **options)
    auth.authenticate(recorder.client)
    return auth, recorder


def preregistered(stack: FakeMCPStack, *grants: str) -> str:
    stack.add_client("app-1", redirect_uris=[REDIRECT], grant_types=grants or ("authorization_code", "refresh_token"))
    return "app-1"


# -- Microsoft Entra ID -------------------------------------------------------------------------------------------


def test_entra_without_the_preset_fails_as_users_report() -> None:
    stack = FakeMCPStack(like_provider("entra"))
    with pytest.raises(PKCENotSupportedError):
        login(stack)
    with pytest.raises(AuthorizationError) as caught:
        login(stack, trust_unadvertised_pkce=True)
    assert caught.value.error == "invalid_target"
    assert caught.value.error_description == ENTRA_RESOURCE_REFUSAL
    # Without resource, the forced prompt=consent of offline_access meets an admin-consented tenant.
    with pytest.raises(AuthorizationDeniedError) as denied:
        login(stack, trust_unadvertised_pkce=True, send_resource_indicator=False)
    assert "AADSTS90094" in str(denied.value.error_description)


def test_entra_preset_logs_in_without_resource_and_without_forced_consent() -> None:
    stack = FakeMCPStack(like_provider("entra"))
    auth, recorder = login(stack, preset="entra", refresh_skew=7200)  # (due for refresh at once)
    query = recorder.authorization_query()
    assert "resource" not in query
    assert "prompt" not in query
    assert "offline_access" in query["scope"].split()
    assert all("resource" not in form for form in recorder.token_forms())
    assert auth.tokens is not None
    assert auth.tokens.refresh_token
    # A refresh goes without resource too.
    auth.authenticate(recorder.client)
    assert recorder.token_forms()[-1]["grant_type"] == "refresh_token"
    assert "resource" not in recorder.token_forms()[-1]


def test_entra_application_id_qualifies_bare_scopes() -> None:
    stack = FakeMCPStack(like_provider("entra", scopes_supported=["api://app-1/mcp.read", "openid", "offline_access"]))
    _, recorder = login(stack, preset=preset_module.entra(app="api://app-1"), scopes=["mcp.read", "openid"])
    assert recorder.authorization_query()["scope"].split() == ["api://app-1/mcp.read", "openid", "offline_access"]


def test_explicit_arguments_win_over_the_preset() -> None:
    stack = FakeMCPStack(like_provider("entra"))
    with pytest.raises(AuthorizationError) as caught:
        login(stack, preset="entra", send_resource_indicator=True)
    assert caught.value.error == "invalid_target"
    with pytest.raises(PKCENotSupportedError):
        login(stack, preset="entra", trust_unadvertised_pkce=False)
    with pytest.raises(AuthorizationDeniedError):
        login(stack, preset="entra", extra_authorize_params={"prompt": "consent"})


# -- Auth0 and Cognito -------------------------------------------------------------------------------------------


def test_auth0_without_audience_is_refused() -> None:
    stack = FakeMCPStack(like_provider("auth0"))
    with pytest.raises(AuthorizationError) as caught:
        login(stack)
    assert caught.value.error == "invalid_request"
    assert "audience" in str(caught.value.error_description)


def test_auth0_preset_sends_the_resource_as_audience_on_every_request() -> None:
    stack = FakeMCPStack(like_provider("auth0"))
    _, recorder = login(stack, preset="auth0")
    query = recorder.authorization_query()
    assert query["audience"] == stack.server_url
    assert query["resource"] == stack.server_url
    assert [form["audience"] for form in recorder.token_forms()] == [stack.server_url]


def test_auth0_audience_override_and_the_callers_parameter_wins() -> None:
    api = "https://api.example.test"
    stack = FakeMCPStack(like_provider("auth0", extra_resources=[api, "https://other.test"]))
    _, recorder = login(stack, preset=preset_module.auth0(audience=api))
    assert recorder.authorization_query()["audience"] == api
    _, recorder = login(stack, preset="auth0", extra_authorize_params={"audience": "https://other.test"})
    assert recorder.authorization_query()["audience"] == "https://other.test"


def test_auth0_client_credentials_need_the_audience_on_the_token_request() -> None:
    stack = FakeMCPStack(like_provider("auth0", client_credentials_enabled=True))
    stack.add_client("svc", "s3cret-value", "client_secret_basic", grant_types=("client_credentials",))
    options: dict[str, Any] = {"client_id": "svc", "client_secret": "s3cret-value", "grant_type": "client_credentials"}
    with pytest.raises(TokenExchangeError) as caught:
        login(stack, **options)
    assert caught.value.error_description == AUTH0_AUDIENCE_REFUSAL
    _, recorder = login(stack, preset="auth0", **options)
    assert recorder.token_forms()[-1]["audience"] == stack.server_url


def test_auth0_device_flow_sends_the_audience_with_the_device_authorization_request() -> None:
    config = like_provider(
        "auth0", device_authorization_enabled=True, device_poll_interval=1, device_auto_approve_after_polls=0
    )
    stack = FakeMCPStack(config)
    from mcp_oauth_auth import DeviceAuthorizer

    _, recorder = login(stack, preset="auth0", authorizer=DeviceAuthorizer(on_prompt=lambda device: None))
    device_forms = [
        dict(parse_qsl(request.content.decode()))
        for request in recorder.requests
        if request.url.path.endswith("/device_authorization")
    ]
    assert [form["audience"] for form in device_forms] == [stack.server_url]
    assert stack.grants_used() == [DEVICE_CODE_GRANT]


def test_cognito_preset_trusts_the_unadvertised_pkce_and_sends_the_audience() -> None:
    stack = FakeMCPStack(like_provider("cognito"))
    with pytest.raises(PKCENotSupportedError):
        login(stack)
    _, recorder = login(stack, preset="cognito")
    assert recorder.authorization_query()["audience"] == stack.server_url


# -- Google ------------------------------------------------------------------------------------------------------


def test_google_refuses_offline_access_and_gives_no_refresh_token_without_access_type() -> None:
    stack = FakeMCPStack(like_provider("google"))
    with pytest.raises(AuthorizationError) as caught:
        login(stack, scopes=["mcp:read", "offline_access"])
    assert caught.value.error == "invalid_scope"
    auth, _ = login(stack, scopes=["mcp:read"])
    assert auth.tokens is not None
    assert auth.tokens.refresh_token is None


def test_google_preset_asks_for_offline_access_type_and_strips_the_scope() -> None:
    stack = FakeMCPStack(like_provider("google"))
    auth, recorder = login(stack, preset="google", scopes=["mcp:read", "offline_access"])
    query = recorder.authorization_query()
    assert query["scope"] == "mcp:read"
    assert (query["access_type"], query["prompt"]) == ("offline", "consent")
    assert auth.tokens is not None
    assert auth.tokens.refresh_token
    assert auth.record is not None
    assert "offline_access" not in auth.record.requested_scopes


# -- GitHub ------------------------------------------------------------------------------------------------------


def test_github_preset_needs_a_preregistered_client() -> None:
    with pytest.raises(ConfigurationError, match="no dynamic registration"):
        MCPOAuth("https://mcp.example.test/mcp", preset="github")


def test_github_preset_uses_the_device_flow_with_json_answers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CI", raising=False)
    stack = FakeMCPStack(like_provider("github", device_poll_interval=1))
    client_id = preregistered(stack, DEVICE_CODE_GRANT, "refresh_token")
    recorder = Recorder(stack)
    auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), retry=FAST_RETRY, preset="github", client_id=client_id)
    auth.authenticate(recorder.client)
    assert stack.grants_used() == [DEVICE_CODE_GRANT]
    assert stack.verification_uri in capsys.readouterr().err
    metadata = [str(request.url) for request in recorder.requests if "/.well-known/" in request.url.path]
    assert f"{stack.as_base_url}/.well-known/oauth-authorization-server/login/oauth" in metadata
    posts = [request for request in recorder.requests if request.method == "POST"]
    assert posts
    assert all(request.headers["accept"] == "application/json" for request in posts)
    assert stack.count("register") == 0


# -- Okta and Keycloak ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "path"), [("okta", "/oauth2/default"), ("keycloak", "/realms/mcp")])
def test_a_registration_refused_by_policy_says_to_preregister(provider: str, path: str) -> None:
    stack = FakeMCPStack(like_provider(provider))
    assert stack.issuer.endswith(path)
    with pytest.raises(RegistrationPolicyError) as caught:
        login(stack, preset=provider)
    assert caught.value.status_code == 403
    assert caught.value.error_description == KEYCLOAK_POLICY_REFUSAL
    assert "register a client with its administrator" in str(caught.value)


@pytest.mark.parametrize(
    ("provider", "metadata_path"),
    [
        ("okta", "/oauth2/default/.well-known/openid-configuration"),
        ("keycloak", "/realms/mcp/.well-known/openid-configuration"),
    ],
)
def test_custom_authorization_servers_at_a_path_with_a_preregistered_client(provider: str, metadata_path: str) -> None:
    stack = FakeMCPStack(like_provider(provider))
    client_id = preregistered(stack)
    auth, recorder = login(stack, preset=provider, client_id=client_id)
    assert auth.record is not None
    assert auth.record.issuer == stack.issuer
    metadata = [request.url.path for request in recorder.requests if "/.well-known/" in request.url.path]
    assert metadata_path in metadata
    assert "prompt" not in recorder.authorization_query()


# -- the seed façade -----------------------------------------------------------------------------------------------


def test_oauth_handler_passes_the_preset_and_extra_parameters() -> None:
    import anyio

    from mcp_oauth_auth import OAuthHandler, TokenManager

    stack = FakeMCPStack(like_provider("google"))
    handler = OAuthHandler(
        TokenManager(store=MemoryTokenStore()),
        authorizer=stack.authorizer,
        http_client=lambda: httpx.AsyncClient(transport=stack.httpx_transport()),
        preset="google",
        extra_authorize_params={"login_hint": "someone@example.test"},
        retry=FAST_RETRY,
    )
    tokens = anyio.run(handler.ensure_authenticated_mcp, "g", stack.server_url, ["mcp:read", "offline_access"])
    assert tokens.refresh_token
    query = stack.authorization_requests[-1]
    assert query["login_hint"] == "someone@example.test"
    assert query["access_type"] == "offline"
    assert "offline_access" not in query["scope"]


def test_authorization_url_keeps_the_endpoints_own_query() -> None:
    from mcp_oauth_auth.flow.effects import Authorize
    from mcp_oauth_auth.flow.request_rules import RequestRules

    rules = RequestRules(authorize=(("audience", "a"),))
    effect = rules.rewrite(Authorize("https://as.test/authorize?tenant=t1&state=s", REDIRECT), "https://mcp.test")
    assert isinstance(effect, Authorize)
    assert dict(parse_qsl(urlsplit(effect.url).query)) == {"tenant": "t1", "state": "s", "audience": "a"}


def test_the_step_by_step_client_takes_the_preset_and_extra_parameters() -> None:
    import anyio

    from mcp_oauth_auth import MCPOAuthClient

    stack = FakeMCPStack(like_provider("entra"))

    async def main() -> None:
        client = MCPOAuthClient(
            stack.server_url,
            authorizer=stack.authorizer,
            http_client=lambda: httpx.AsyncClient(transport=stack.httpx_transport()),
            preset="entra",
            extra_authorize_params={"domain_hint": "example.test"},
            extra_token_params={"client_info": "1"},
        )
        tokens = await client.authorize(scopes=["mcp:read"])
        assert tokens.refresh_token is not None
        query = stack.authorization_requests[-1]
        assert "resource" not in query
        assert "prompt" not in query
        assert query["domain_hint"] == "example.test"
        await client.refresh_token(tokens.refresh_token)

    anyio.run(main)
    assert stack.grants_used() == ["authorization_code", "refresh_token"]
    assert all(request["resource"] is None for request in stack.token_requests)
