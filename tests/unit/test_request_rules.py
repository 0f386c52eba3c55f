"""extra_authorize_params / extra_token_params and the request rules: what is refused, which requests get what,
and that values never reach logs or reprs."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

import pytest

from mcp_oauth_auth import ConfigurationError, MCPOAuth, ProviderPreset
from mcp_oauth_auth.flow.effects import Authorize, HttpRequest, SendHttp, Sleep
from mcp_oauth_auth.flow.request_rules import RESERVED_PARAMETERS, RequestRules
from mcp_oauth_auth.presets import PRESET_NAMES, preset_named, resolve_preset

SERVER = "https://mcp.example.test/mcp"
SECRET_LOOKING = "hint-0123456789abcdef0123456789"


@pytest.mark.parametrize("key", [*sorted(RESERVED_PARAMETERS), "client_assertion_jwt", "Scope"])
@pytest.mark.parametrize("option", ["extra_authorize_params", "extra_token_params"])
def test_parameters_the_flow_owns_are_refused(option: str, key: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{option}: '{key}' is set by the flow itself") as caught:
        MCPOAuth(SERVER, **{option: {key: SECRET_LOOKING}})
    assert SECRET_LOOKING not in str(caught.value)


@pytest.mark.parametrize(
    "parameters",
    [{"audience": 1}, {"audience": None}, {"": "x"}, {" audience": "x"}, {1: "x"}, [("audience", "x")], "audience=x"],
)
def test_malformed_parameters_are_refused(parameters: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        MCPOAuth(SERVER, extra_authorize_params=parameters)
    assert "extra_authorize_params" in str(caught.value)


def test_values_never_reach_the_repr_or_the_log(caplog: pytest.LogCaptureFixture) -> None:
    rules = RequestRules(authorize=(("login_hint", SECRET_LOOKING),), token=(("tenant_key", SECRET_LOOKING),))
    assert SECRET_LOOKING not in repr(rules)
    assert "login_hint" in repr(rules)
    with caplog.at_level(logging.DEBUG, logger="mcp_oauth_auth"):
        rules.rewrite(Authorize("https://as.test/authorize?state=s", "http://127.0.0.1/cb"), SERVER)
        rules.rewrite(SendHttp(HttpRequest.form("https://as.test/token", {"grant_type": "refresh_token"})), SERVER)
    assert "login_hint" in caplog.text
    assert "tenant_key" in caplog.text
    assert SECRET_LOOKING not in caplog.text


def _form(effect: Any) -> dict[str, str]:
    assert isinstance(effect, SendHttp)
    return dict(parse_qsl(effect.request.body.decode()))


@pytest.mark.parametrize(
    "grant_type",
    [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ],
)
def test_token_parameters_go_to_every_grant_of_this_client(grant_type: str) -> None:
    rules = RequestRules(authorize=(("a", "1"),), token=(("t", "2"),))
    effect = rules.rewrite(SendHttp(HttpRequest.form("https://as.test/token", {"grant_type": grant_type})), SERVER)
    assert _form(effect) == {"grant_type": grant_type, "t": "2"}


def test_which_requests_get_which_parameters() -> None:
    rules = RequestRules(authorize=(("a", "1"),), token=(("t", "2"),), audience=True)
    device = rules.rewrite(
        SendHttp(HttpRequest.form("https://as.test/device", {"client_id": "c", "scope": "s"})), SERVER
    )
    assert _form(device) == {"client_id": "c", "scope": "s", "a": "1", "audience": SERVER}
    # Not revocation, not a token exchange at another server, not JSON (registration), not GET (metadata).
    for untouched in (
        SendHttp(HttpRequest.form("https://as.test/revoke", {"token": "x", "client_id": "c"})),
        SendHttp(
            HttpRequest.form(
                "https://idp.test/token", {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange"}
            )
        ),
        SendHttp(HttpRequest.json("https://as.test/register", {"client_name": "x"})),
        SendHttp(HttpRequest.get("https://as.test/.well-known/oauth-authorization-server")),
        Sleep(1.0),
    ):
        assert rules.rewrite(untouched, SERVER) is untouched


def test_the_audience_is_the_requests_resource_else_the_server() -> None:
    rules = RequestRules(audience=True)
    with_resource = {"grant_type": "refresh_token", "resource": "https://mcp.example.test/"}
    effect = rules.rewrite(SendHttp(HttpRequest.form("https://as.test/token", with_resource)), SERVER)
    assert _form(effect)["audience"] == "https://mcp.example.test/"
    fixed = RequestRules(audience="https://api.test", token=(("audience", "https://given.test"),))
    effect = fixed.rewrite(SendHttp(HttpRequest.form("https://as.test/token", {"grant_type": "refresh_token"})), SERVER)
    assert _form(effect)["audience"] == "https://given.test"


def test_inactive_rules_rewrite_nothing() -> None:
    assert RequestRules().rewriter(SERVER) is None
    assert RequestRules(consent_prompt=False).rewriter(SERVER) is not None


def test_scopes_are_prefixed_and_omitted() -> None:
    rules = RequestRules(scope_prefix="api://app/", omitted_scopes=frozenset({"offline_access"}))
    assert rules.scopes(("read", "openid", "offline_access", "api://app/write", "https://graph.test/x")) == (
        "api://app/read",
        "openid",
        "api://app/write",
        "https://graph.test/x",
    )


def test_presets_by_name_and_object() -> None:
    assert set(PRESET_NAMES) == {"entra", "auth0", "cognito", "google", "github", "okta", "keycloak"}
    for name in PRESET_NAMES:
        preset = preset_named(name)
        assert preset.name == name
        assert preset.description
    assert resolve_preset(" Google ") == preset_named("google")
    custom = ProviderPreset("mine", "my provider", authorize_params={"tenant": "t1"})
    assert resolve_preset(custom) is custom
    with pytest.raises(ConfigurationError, match="unknown preset 'nope'; presets: entra, auth0"):
        MCPOAuth(SERVER, preset="nope")
    with pytest.raises(ConfigurationError, match="preset must be"):
        MCPOAuth(SERVER, preset=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="'state' is set by the flow"):
        ProviderPreset("bad", "refuses reserved keys", authorize_params={"state": "x"})


def test_a_preset_sets_defaults_and_the_callers_parameters_win() -> None:
    rules = preset_named("google").request_rules({"prompt": "select_account", "login_hint": "x"}, {"t": "1"})
    assert dict(rules.authorize) == {"access_type": "offline", "prompt": "select_account", "login_hint": "x"}
    assert dict(rules.token) == {"t": "1"}
    auth = MCPOAuth(SERVER, preset="entra")
    assert auth._engine.config.send_resource_indicator is False
    assert auth._engine.config.trust_unadvertised_pkce is True
    assert MCPOAuth(SERVER)._engine.config.send_resource_indicator is True
