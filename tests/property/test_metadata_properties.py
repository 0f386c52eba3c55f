"""Protected resource and authorization server metadata (flow/discovery.py): hostile documents and valid ones."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mcp_oauth_auth.exceptions import DiscoveryError, OAuthError
from mcp_oauth_auth.flow.discovery import (
    AuthorizationServerMetadata,
    ProtectedResourceMetadata,
    discover_authorization_server,
    discover_protected_resource,
)
from mcp_oauth_auth.flow.effects import HttpResponse
from mcp_oauth_auth.flow.fetch import RetryPolicy

from ..unit.flowkit import Harness
from .strategies import hostile_bodies, json_values, with_field

SERVER = "https://mcp.example.com/mcp"
PRM_URL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
ISSUER = "https://auth.example.com"
ASM_URL = "https://auth.example.com/.well-known/oauth-authorization-server"
POLICY = RetryPolicy(attempts=1)

PRM_FIELDS = ("resource", "authorization_servers", "scopes_supported")
ASM_FIELDS = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "registration_endpoint",
    "revocation_endpoint",
    "device_authorization_endpoint",
    "scopes_supported",
    "code_challenge_methods_supported",
    "token_endpoint_auth_methods_supported",
    "grant_types_supported",
    "authorization_response_iss_parameter_supported",
    "client_id_metadata_document_supported",
)


def discover_prm(body: bytes) -> ProtectedResourceMetadata | None:
    answer = HttpResponse(200, (("content-type", "application/json"),), body, PRM_URL)
    return Harness(routes={PRM_URL: answer}).run(discover_protected_resource(SERVER, None, POLICY))


def discover_asm(body: bytes) -> AuthorizationServerMetadata | None:
    answer = HttpResponse(200, (("content-type", "application/json"),), body, ASM_URL)
    return Harness(routes={ASM_URL: answer}).run(discover_authorization_server(ISSUER, POLICY))


def prm_document() -> dict[str, Any]:
    return {"resource": SERVER, "authorization_servers": [ISSUER]}


def asm_document() -> dict[str, Any]:
    return {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "code_challenge_methods_supported": ["S256"],
    }


@given(hostile_bodies)
@example(b"[" * 100_000 + b"]" * 100_000)
@example(b"\xff\xfe")
def test_any_protected_resource_metadata_body_is_a_result_or_a_typed_error(body: bytes) -> None:
    try:
        metadata = discover_prm(body)
    except OAuthError:
        return
    assert metadata is None or isinstance(metadata, ProtectedResourceMetadata)


@given(st.sampled_from(PRM_FIELDS), json_values)
def test_a_protected_resource_metadata_field_of_any_value_is_a_result_or_a_discovery_error(
    name: str, value: object
) -> None:
    try:
        metadata = discover_prm(json.dumps(with_field(prm_document(), name, value)).encode())
    except DiscoveryError:
        return
    assert isinstance(metadata, ProtectedResourceMetadata)
    assert isinstance(metadata.resource, str)
    assert all(isinstance(server, str) for server in metadata.authorization_servers)
    assert all(isinstance(scope, str) for scope in metadata.scopes_supported)


@given(hostile_bodies)
@example(b'{"issuer": "https://auth.example.com", "authorization_endpoint": "http://[::1", "token_endpoint": 1}')
def test_any_authorization_server_metadata_body_is_a_result_or_a_typed_error(body: bytes) -> None:
    try:
        metadata = discover_asm(body)
    except OAuthError:
        return
    assert metadata is None or isinstance(metadata, AuthorizationServerMetadata)


@given(st.sampled_from(ASM_FIELDS), json_values)
@example("authorization_endpoint", "http://[::1")
@example("token_endpoint", "https://auth.example.com:99999/token")
def test_an_authorization_server_metadata_field_of_any_value_is_a_result_or_a_typed_error(
    name: str, value: object
) -> None:
    try:
        metadata = discover_asm(json.dumps(with_field(asm_document(), name, value)).encode())
    except OAuthError:
        return
    assert isinstance(metadata, AuthorizationServerMetadata)
    for endpoint in (metadata.authorization_endpoint, metadata.token_endpoint):
        assert isinstance(endpoint, str)
        assert endpoint.startswith("https://")
    assert isinstance(metadata.authorization_response_iss_parameter_supported, bool)


paths = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=8), max_size=3).map(
    lambda segments: "".join(f"/{segment}" for segment in segments)
)
hosts = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8), min_size=1, max_size=3
).map(lambda labels: ".".join([*labels, "example"]))
https_urls = st.builds(lambda host, path: f"https://{host}{path}", hosts, paths)
scopes = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz:._-", min_size=1, max_size=12), max_size=4)
methods = st.one_of(st.none(), st.lists(st.sampled_from(["S256", "plain", "none", "client_secret_basic"]), max_size=3))


@given(
    st.lists(https_urls, min_size=1, max_size=3), scopes, st.dictionaries(st.text(max_size=10), json_values, max_size=3)
)
def test_valid_protected_resource_metadata_parses_to_its_fields(
    servers: list[str], scopes_supported: list[str], extra: dict[str, Any]
) -> None:
    document = {**extra, "resource": SERVER, "authorization_servers": servers, "scopes_supported": scopes_supported}
    assert discover_prm(json.dumps(document).encode()) == ProtectedResourceMetadata(
        resource=SERVER, authorization_servers=tuple(servers), scopes_supported=tuple(scopes_supported), url=PRM_URL
    )


@given(
    st.fixed_dictionaries(
        {"authorization_endpoint": https_urls, "token_endpoint": https_urls},
        optional={
            "registration_endpoint": https_urls,
            "revocation_endpoint": https_urls,
            "device_authorization_endpoint": https_urls,
            "scopes_supported": scopes,
            "code_challenge_methods_supported": methods,
            "token_endpoint_auth_methods_supported": methods,
            "grant_types_supported": methods,
            "authorization_response_iss_parameter_supported": st.booleans(),
            "client_id_metadata_document_supported": st.booleans(),
        },
    )
)
def test_valid_authorization_server_metadata_parses_to_its_fields(fields: dict[str, Any]) -> None:
    document = {"issuer": ISSUER, **fields}
    metadata = discover_asm(json.dumps(document).encode())

    def listed(name: str) -> tuple[str, ...] | None:
        return None if document.get(name) is None else tuple(document[name])

    assert metadata == AuthorizationServerMetadata(
        issuer=ISSUER,
        authorization_endpoint=document["authorization_endpoint"],
        token_endpoint=document["token_endpoint"],
        registration_endpoint=document.get("registration_endpoint"),
        revocation_endpoint=document.get("revocation_endpoint"),
        device_authorization_endpoint=document.get("device_authorization_endpoint"),
        scopes_supported=tuple(document.get("scopes_supported", ())),
        code_challenge_methods_supported=listed("code_challenge_methods_supported"),
        token_endpoint_auth_methods_supported=listed("token_endpoint_auth_methods_supported"),
        grant_types_supported=listed("grant_types_supported"),
        authorization_response_iss_parameter_supported=document.get("authorization_response_iss_parameter_supported")
        is True,
        client_id_metadata_document_supported=document.get("client_id_metadata_document_supported") is True,
        url=ASM_URL,
    )
    assert metadata is not None
    assert metadata.extra == document


@given(https_urls.filter(lambda url: url.rstrip("/") != ISSUER))
def test_metadata_naming_another_issuer_is_refused(issuer: str) -> None:
    with pytest.raises(DiscoveryError, match="names issuer"):
        discover_asm(json.dumps({**asm_document(), "issuer": issuer}).encode())
