from __future__ import annotations

import json

import pytest

from mcp_oauth_auth.exceptions import ClientRegistrationRequiredError, ConfigurationError, RegistrationError
from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.registration import ClientSettings, identify_client
from mcp_oauth_auth.records import ClientRegistration

from .flowkit import Harness, json_response

POLICY = RetryPolicy(attempts=1)
REDIRECT = "http://127.0.0.1:9999/callback"
REGISTER = "https://as.example/register"


def server(**overrides: object) -> AuthorizationServerMetadata:
    fields: dict[str, object] = {
        "issuer": "https://as.example",
        "authorization_endpoint": "https://as.example/authorize",
        "token_endpoint": "https://as.example/token",
        "registration_endpoint": REGISTER,
        "client_id_metadata_document_supported": True,
    }
    fields.update(overrides)
    return AuthorizationServerMetadata(**fields)  # type: ignore[arg-type]


def identify(
    settings: ClientSettings,
    metadata: AuthorizationServerMetadata,
    harness: Harness,
    existing: ClientRegistration | None = None,
) -> ClientRegistration:
    result = harness.run(identify_client(settings, metadata, existing, REDIRECT, ("mcp:read",), POLICY))
    assert isinstance(result, ClientRegistration)
    return result


def test_pre_registered_wins_over_everything() -> None:
    harness = Harness()
    client = identify(ClientSettings(client_id="pre", client_metadata_url="https://c.example/meta"), server(), harness)
    assert (client.kind, client.client_id, client.token_endpoint_auth_method) == ("pre-registered", "pre", "none")
    assert harness.sent == []


def test_pre_registered_confidential_method_choice() -> None:
    settings = ClientSettings(client_id="pre", client_secret="s")
    assert identify(settings, server(), Harness()).token_endpoint_auth_method == "client_secret_basic"
    post_only = server(token_endpoint_auth_methods_supported=("client_secret_post",))
    assert identify(settings, post_only, Harness()).token_endpoint_auth_method == "client_secret_post"
    with pytest.raises(RegistrationError):
        identify(settings, server(token_endpoint_auth_methods_supported=("private_key_jwt",)), Harness())


def test_cimd_when_supported() -> None:
    client = identify(ClientSettings(client_metadata_url="https://c.example/meta.json"), server(), Harness())
    assert (client.kind, client.client_id) == ("client-metadata-document", "https://c.example/meta.json")


def test_cimd_not_supported_falls_to_dcr() -> None:
    harness = Harness(routes={REGISTER: json_response(201, {"client_id": "dyn", "token_endpoint_auth_method": "none"})})
    settings = ClientSettings(client_metadata_url="https://c.example/meta.json")
    client = identify(settings, server(client_id_metadata_document_supported=False), harness)
    assert client.kind == "dynamic"


def test_dcr_request_body() -> None:
    harness = Harness(routes={REGISTER: json_response(201, {"client_id": "dyn", "redirect_uris": [REDIRECT]})})
    client = identify(ClientSettings(client_name="My App"), server(), harness)
    assert client.client_id == "dyn"
    assert client.token_endpoint_auth_method == "none"
    body = json.loads(harness.sent[0].body)
    assert body["redirect_uris"] == [REDIRECT]
    assert body["application_type"] == "native"
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["token_endpoint_auth_method"] == "none"
    assert body["client_name"] == "My App"
    assert body["scope"] == "mcp:read"


@pytest.mark.parametrize(
    ("supported", "requested"),
    [
        # The MCP Python SDK's server (and FastMCP's): only the secret in the form lets the client revoke there.
        (("client_secret_post", "client_secret_basic"), "client_secret_post"),
        (("client_secret_basic", "client_secret_post"), "client_secret_post"),
        (("client_secret_basic",), "client_secret_basic"),
        (("client_secret_basic", "none"), "none"),
    ],
)
def test_dcr_secret_method_prefers_the_form_where_no_public_client_is_accepted(
    supported: tuple[str, ...], requested: str
) -> None:
    answer = {"client_id": "dyn", "client_secret": "s", "token_endpoint_auth_method": requested}
    harness = Harness(routes={REGISTER: json_response(201, answer)})
    client = identify(ClientSettings(), server(token_endpoint_auth_methods_supported=supported), harness)
    assert json.loads(harness.sent[0].body)["token_endpoint_auth_method"] == requested
    assert client.token_endpoint_auth_method == requested


def test_dcr_secret_method_asked_for_explicitly_is_kept() -> None:
    answer = {"client_id": "dyn", "client_secret": "s", "token_endpoint_auth_method": "client_secret_basic"}
    harness = Harness(routes={REGISTER: json_response(201, answer)})
    both = server(token_endpoint_auth_methods_supported=("client_secret_post", "client_secret_basic"))
    identify(ClientSettings(token_endpoint_auth_method="client_secret_basic"), both, harness)
    assert json.loads(harness.sent[0].body)["token_endpoint_auth_method"] == "client_secret_basic"


def test_pre_registered_client_keeps_basic_where_both_are_listed() -> None:
    both = server(token_endpoint_auth_methods_supported=("client_secret_post", "client_secret_basic"))
    settings = ClientSettings(client_id="pre", client_secret="s")
    assert identify(settings, both, Harness()).token_endpoint_auth_method == "client_secret_basic"


def test_dcr_confidential_assignment_needs_secret() -> None:
    harness = Harness(
        routes={REGISTER: json_response(201, {"client_id": "dyn", "token_endpoint_auth_method": "client_secret_basic"})}
    )
    with pytest.raises(RegistrationError, match="no client_secret"):
        identify(ClientSettings(), server(), harness)
    ok = Harness(
        routes={
            REGISTER: json_response(
                201, {"client_id": "dyn", "client_secret": "s", "token_endpoint_auth_method": "client_secret_post"}
            )
        }
    )
    assert identify(ClientSettings(), server(), ok).client_secret == "s"


def test_dcr_unusable_auth_method_refused() -> None:
    harness = Harness(
        routes={REGISTER: json_response(201, {"client_id": "dyn", "token_endpoint_auth_method": "private_key_jwt"})}
    )
    with pytest.raises(RegistrationError, match="private_key_jwt"):
        identify(ClientSettings(), server(), harness)


def test_dcr_error_carries_server_error() -> None:
    harness = Harness(
        routes={
            REGISTER: json_response(400, {"error": "invalid_redirect_uri", "error_description": "loopback not allowed"})
        }
    )
    with pytest.raises(RegistrationError) as caught:
        identify(ClientSettings(), server(), harness)
    assert caught.value.error == "invalid_redirect_uri"
    assert caught.value.status_code == 400


def test_existing_dynamic_registration_reused_only_when_it_fits() -> None:
    existing = ClientRegistration(client_id="old", kind="dynamic", redirect_uris=(REDIRECT,))
    harness = Harness()
    assert identify(ClientSettings(), server(), harness, existing) is existing
    assert harness.sent == []
    other_port = ClientRegistration(client_id="old", kind="dynamic", redirect_uris=("http://127.0.0.1:1/callback",))
    fresh = Harness(routes={REGISTER: json_response(201, {"client_id": "new"})})
    assert identify(ClientSettings(), server(), fresh, other_port).client_id == "new"


def test_nothing_possible_says_what_to_supply() -> None:
    with pytest.raises(ClientRegistrationRequiredError, match="client_id="):
        identify(ClientSettings(), server(registration_endpoint=None), Harness())


def test_settings_validation() -> None:
    with pytest.raises(ConfigurationError):
        ClientSettings(client_secret="s").validate()
    with pytest.raises(ConfigurationError):
        ClientSettings(client_metadata_url="http://c.example/meta").validate()
    with pytest.raises(ConfigurationError):
        ClientSettings(client_metadata_url="https://c.example").validate()
    assert "s3cr3t" not in repr(ClientSettings(client_id="a", client_secret="s3cr3t"))


def test_a_refused_scope_is_left_out_of_a_second_registration() -> None:
    bodies: list[dict[str, object]] = []

    def register(request: object) -> object:
        body = json.loads(request.body)  # type: ignore[attr-defined]
        bodies.append(body)
        if "scope" in body:
            return json_response(400, {"error": "invalid_client_metadata", "error_description": "unknown scope"})
        return json_response(201, {"client_id": "c-1"})

    harness = Harness(routes={REGISTER: register})  # type: ignore[dict-item]
    client = identify(ClientSettings(), server(), harness)
    assert [body.get("scope") for body in bodies] == ["mcp:read", None]
    assert client.client_id == "c-1"
    assert client.scope is None  # registered without a restriction


def test_other_registration_errors_are_not_retried() -> None:
    harness = Harness(routes={REGISTER: json_response(400, {"error": "invalid_redirect_uri"})})
    with pytest.raises(RegistrationError):
        identify(ClientSettings(), server(), harness)
    assert len(harness.sent) == 1


def test_registered_scope_is_kept_and_limits_reuse() -> None:
    harness = Harness(routes={REGISTER: json_response(201, {"client_id": "c-1", "scope": "mcp:read"})})
    client = identify(ClientSettings(), server(), harness)
    assert client.scope == "mcp:read"
    # The same scopes: reused. A step-up beyond the registered scope: a new registration including it.
    again = harness.run(identify_client(ClientSettings(), server(), client, REDIRECT, ("mcp:read",), POLICY))
    assert again is client
    step_up = Harness(routes={REGISTER: json_response(201, {"client_id": "c-2", "scope": "mcp:read mcp:admin"})})
    wider = step_up.run(
        identify_client(ClientSettings(), server(), client, REDIRECT, ("mcp:read", "mcp:admin"), POLICY)
    )
    assert wider.client_id == "c-2"
    assert json.loads(step_up.sent[0].body)["scope"] == "mcp:read mcp:admin"
    unrestricted = ClientRegistration(client_id="c-3", kind="dynamic", redirect_uris=(REDIRECT,))
    reused = Harness().run(identify_client(ClientSettings(), server(), unrestricted, REDIRECT, ("anything",), POLICY))
    assert reused is unrestricted


def test_registration_covers_every_scope_the_server_offers() -> None:
    harness = Harness(routes={REGISTER: json_response(201, {"client_id": "c-1"})})
    offered = server(scopes_supported=("mcp:read", "mcp:admin", "offline_access"))
    client = identify(ClientSettings(), offered, harness)
    assert json.loads(harness.sent[0].body)["scope"] == "mcp:read mcp:admin offline_access"
    assert client.scope == "mcp:read mcp:admin offline_access"
