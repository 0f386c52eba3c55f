"""Hostile registration responses and misconfigured client settings: typed errors, never a raw traceback."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_oauth_auth import MCPOAuth, MemoryTokenStore
from mcp_oauth_auth.exceptions import ConfigurationError, RegistrationError
from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.registration import ClientSettings, identify_client
from mcp_oauth_auth.records import ClientRegistration

from .flowkit import Harness, json_response

REGISTER = "https://as.example/register"
REDIRECT = "http://127.0.0.1:9999/callback"
METADATA = AuthorizationServerMetadata(
    issuer="https://as.example",
    authorization_endpoint="https://as.example/authorize",
    token_endpoint="https://as.example/token",
    registration_endpoint=REGISTER,
)
REGISTERED = {"client_id": "new", "token_endpoint_auth_method": "none", "redirect_uris": [REDIRECT]}


def register(document: Any) -> ClientRegistration:
    harness = Harness(routes={REGISTER: json_response(201, document)})
    flow = identify_client(ClientSettings(), METADATA, None, REDIRECT, ("mcp:read",), RetryPolicy(attempts=1))
    result: ClientRegistration = harness.run(flow)
    return result


@pytest.mark.parametrize(
    "changes",
    [
        {"redirect_uris": 5},
        {"redirect_uris": REDIRECT},
        {"redirect_uris": [REDIRECT, 5]},
        {"grant_types": 7},
        {"grant_types": {"authorization_code": 1}},
        {"grant_types": "authorization_code"},
    ],
)
def test_list_fields_that_are_not_lists_of_strings_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(RegistrationError, match="not a list of strings"):
        register({**REGISTERED, **changes})


@pytest.mark.parametrize(
    "changes",
    [
        {"registration_access_token": 5, "registration_client_uri": ["https://as.example/c"]},
        {"client_secret_expires_at": True},
    ],
)
def test_wrongly_typed_optional_fields_are_left_out(changes: dict[str, Any]) -> None:
    client = register({**REGISTERED, **changes})
    assert client.registration_access_token is None
    assert client.registration_client_uri is None
    assert client.client_secret_expires_at is None


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example/c.json#frag",
        "https://app.example/c.json#",
        "https://user:pw@app.example/c.json",
        "https://user@app.example/c.json",
        "https://app.example/a/../c.json",
        "https://app.example/./c.json",
        "https://app.example/a/%2e%2E/c.json",
        "https://[::1/c.json",
        "https://app.example:99999/c.json",
        "https:///c.json",
    ],
)
def test_client_metadata_url_rules(url: str) -> None:
    with pytest.raises(ConfigurationError, match="client_metadata_url"):
        ClientSettings(client_metadata_url=url).validate()


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example/c.json",
        "https://app.example/c.json?v=1",
        "https://app.example/.well-known/c",
        "http://127.0.0.1:8000/c.json",
        "http://localhost/c.json",
        "http://[::1]/c.json",
    ],
)
def test_client_metadata_urls_that_are_fine(url: str) -> None:
    ClientSettings(client_metadata_url=url).validate()


@pytest.mark.parametrize("name", ["client_id", "client_secret", "client_metadata_url", "issuer", "client_name"])
@pytest.mark.parametrize("value", [5, ["x"]])
def test_settings_that_are_not_strings_are_configuration_errors(name: str, value: Any) -> None:
    options: dict[str, Any] = {name: value}
    if name == "client_secret":
        options["client_id"] = "pre"
    with pytest.raises(ConfigurationError, match=name):
        ClientSettings(**options).validate()


def test_mcpoauth_refuses_a_client_metadata_url_that_is_not_a_string() -> None:
    with pytest.raises(ConfigurationError, match="client_metadata_url"):
        MCPOAuth("https://mcp.example/mcp", store=MemoryTokenStore(), client_metadata_url=5)  # type: ignore[arg-type]
