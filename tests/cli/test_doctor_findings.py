"""``doctor``'s findings for each kind of server, from its diagnosis run in-process against canned answers (the
command itself, in a child process against real servers, is tested in test_doctor.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mcp_oauth_auth.cli.doctor import DoctorReport, diagnose
from mcp_oauth_auth.cli.errors import CLIError

SERVER = "https://mcp.example.com/mcp"
PRM_URL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
ISSUER = "https://auth.example.com"
ASM_URL = f"{ISSUER}/.well-known/oauth-authorization-server"
CHALLENGE = f'Bearer resource_metadata="{PRM_URL}"'


def metadata(**fields: Any) -> dict[str, Any]:
    document = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "code_challenge_methods_supported": ["S256"],
        "registration_endpoint": f"{ISSUER}/register",
        "grant_types_supported": ["authorization_code", "refresh_token"],
    }
    document.update(fields)
    return {name: value for name, value in document.items() if value is not None}


Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


def run(routes: dict[str, Answer]) -> DoctorReport:
    def handler(request: httpx.Request) -> httpx.Response:
        url = str(request.url.copy_with(query=None))
        answer = routes.get(url, httpx.Response(404))
        return answer(request) if callable(answer) else answer

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        return diagnose(SERVER, http)


def oauth_server(prm: dict[str, Any] | None = None, **asm: Any) -> dict[str, Answer]:
    return {
        SERVER: httpx.Response(401, headers={"WWW-Authenticate": CHALLENGE}),
        PRM_URL: httpx.Response(200, json=prm or {"resource": SERVER, "authorization_servers": [ISSUER]}),
        ASM_URL: httpx.Response(200, json=metadata(**asm)),
    }


def findings(report: DoctorReport, severity: str | None = None) -> list[str]:
    return [
        finding.message
        for section in report.sections
        for finding in section.findings
        if severity is None or finding.severity == severity
    ]


def test_a_well_configured_server_can_be_authenticated_to() -> None:
    report = run(
        oauth_server(revocation_endpoint=f"{ISSUER}/revoke", authorization_response_iss_parameter_supported=True)
    )
    assert report.can_authenticate
    assert report.usable_issuers == [ISSUER]
    assert findings(report, "error") == []
    assert "authorization_code and refresh_token grants" in findings(report, "ok")
    assert f"token revocation (RFC 7009) at {ISSUER}/revoke" in findings(report, "ok")
    assert "RFC 9207 iss in authorization responses (mix-up protection)" in findings(report, "ok")
    assert report.to_json()["authorization_servers"][0]["refresh_token"] is True


def test_a_server_that_answers_without_credentials_needs_no_login() -> None:
    report = run({SERVER: httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "result": {}})})
    assert report.open_access
    assert report.can_authenticate
    assert "no protected resource metadata: the server does not use OAuth" in findings(report, "info")
    assert report.to_json()["requires_authorization"] is False


@pytest.mark.parametrize(
    ("answer", "what"),
    [
        (httpx.Response(200, html="<html><body>Welcome</body></html>"), "HTTP 200 OK with an HTML page"),
        (httpx.Response(204), "HTTP 204 No Content"),
        (httpx.Response(200, text="hello"), "HTTP 200 OK (text/plain)"),
    ],
    ids=["html", "empty", "text"],
)
def test_a_2xx_that_is_no_mcp_answer_is_not_open_access(answer: httpx.Response, what: str) -> None:
    # A web page at the URL (a typo, a landing page) is not "a server that needs no authorization".
    report = run({SERVER: answer})
    assert not report.open_access
    assert not report.can_authenticate
    assert [section.title for section in report.sections] == ["MCP server"]
    assert findings(report, "error") == [
        f"{SERVER} is not an MCP endpoint: it answered {what}; check the URL (path included)"
    ]


@pytest.mark.parametrize("status", [404, 405])
def test_a_url_that_is_not_an_mcp_endpoint_stops_the_diagnosis(status: int) -> None:
    report = run({SERVER: httpx.Response(status)})
    assert [section.title for section in report.sections] == ["MCP server"]
    assert any("does not look like an MCP endpoint" in message for message in findings(report, "error"))
    assert not report.can_authenticate


def test_an_unexpected_status_is_a_warning_and_a_401_without_challenge_too() -> None:
    report = run({SERVER: httpx.Response(403), **{k: v for k, v in oauth_server().items() if k != SERVER}})
    assert f"POST {SERVER} without credentials: HTTP 403" in findings(report, "warning")
    report = run({**oauth_server(), SERVER: httpx.Response(401)})
    assert "the 401 carries no Bearer challenge in WWW-Authenticate (RFC 6750 §3, MCP spec)" in findings(
        report, "warning"
    )
    assert report.can_authenticate  # the well-known URL still finds the metadata


def test_a_challenge_without_resource_metadata_but_with_a_scope_is_reported_as_such() -> None:
    routes = {**oauth_server(), SERVER: httpx.Response(401, headers={"WWW-Authenticate": 'Bearer scope="read write"'})}
    report = run(routes)
    assert "it names no resource_metadata: clients try the well-known URLs" in findings(report, "info")
    assert "it asks for scope: read write" in findings(report, "info")


def test_scopes_and_missing_ones_are_reported() -> None:
    prm = {"resource": SERVER, "authorization_servers": [ISSUER], "scopes_supported": ["mcp:read", "mcp:write"]}
    assert "scopes supported: mcp:read mcp:write" in findings(run(oauth_server(prm)), "info")
    assert "no scopes_supported: clients request no particular scope" in findings(run(oauth_server()), "info")


def test_an_authorization_server_without_pkce_or_the_code_grant_is_not_usable() -> None:
    report = run(oauth_server(code_challenge_methods_supported=None, grant_types_supported=["client_credentials"]))
    errors = findings(report, "error")
    assert any("S256" in message for message in errors)
    assert "the authorization_code grant is not offered (grant_types_supported: ['client_credentials'])" in errors
    assert "client credentials grant offered (machine-to-machine)" in findings(report, "info")
    assert report.usable_issuers == []
    assert not report.can_authenticate


def test_the_optional_features_are_reported_when_missing_and_when_present() -> None:
    report = run(
        oauth_server(
            grant_types_supported=["authorization_code"],
            registration_endpoint=None,
            device_authorization_endpoint=f"{ISSUER}/device",
        )
    )
    warnings = findings(report, "warning")
    assert "no refresh_token grant: people must log in again whenever a token expires" in warnings
    assert any("no dynamic registration and no Client ID Metadata Documents" in message for message in warnings)
    assert any("no RFC 9207 iss parameter" in message for message in warnings)
    assert f"device flow (RFC 8628) at {ISSUER}/device" in findings(report, "info")
    assert report.can_authenticate  # warnings only
    report = run(oauth_server(grant_types_supported=None, client_id_metadata_document_supported=True))
    assert any("grant_types_supported not published" in message for message in findings(report, "info"))
    assert "Client ID Metadata Documents supported (client_id_metadata_document_supported)" in findings(report, "ok")


def test_an_authorization_server_without_metadata_is_an_error() -> None:
    routes = oauth_server()
    del routes[ASM_URL]
    report = run(routes)
    assert f"no authorization server metadata for {ISSUER} at any of the URLs tried" in findings(report, "error")
    assert not report.can_authenticate


def test_a_2025_03_26_server_is_diagnosed_through_its_origin() -> None:
    origin_metadata = {**metadata(), "issuer": "https://mcp.example.com"}
    origin_metadata["authorization_endpoint"] = "https://mcp.example.com/authorize"
    origin_metadata["token_endpoint"] = "https://mcp.example.com/token"
    routes: dict[str, Answer] = {
        SERVER: httpx.Response(401, headers={"WWW-Authenticate": "Bearer"}),
        "https://mcp.example.com/.well-known/oauth-authorization-server": httpx.Response(200, json=origin_metadata),
    }
    report = run(routes)
    assert any("no protected resource metadata (RFC 9728)" in message for message in findings(report, "warning"))
    assert not findings(report, "error")
    assert report.can_authenticate  # as this library does, through the 2025-03-26 fallback
    assert report.sections[-1].title == "Authorization server (2025-03-26 fallback: the MCP server's origin)"
    assert "metadata found; its issuer is exactly https://mcp.example.com (RFC 8414 §3.3)" in findings(report, "ok")
    routes.pop("https://mcp.example.com/.well-known/oauth-authorization-server")
    report = run(routes)
    assert any(
        message.startswith("no metadata either: 2025-03-26 clients (this one included) use /authorize, /token")
        for message in findings(report, "warning")
    )
    assert not findings(report, "error")
    assert report.can_authenticate


def test_unusable_protected_resource_metadata_is_an_error_and_ends_the_diagnosis() -> None:
    report = run(oauth_server({"resource": "https://elsewhere.example.com/mcp", "authorization_servers": [ISSUER]}))
    assert any("does not identify the MCP server" in message for message in findings(report, "error"))
    assert [section.kind for section in report.sections] == ["server", "resource_metadata"]
    assert not report.can_authenticate


def test_every_url_tried_is_noted_with_its_answer_or_transport_error() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    routes = oauth_server()
    routes[ASM_URL] = unreachable
    report = run(routes)
    assert f"tried {PRM_URL}: HTTP 200" in findings(report, "info")
    assert f"tried {ASM_URL}: ConnectError" in findings(report, "info")
    assert len(findings(report, "error")) == 1
    assert not report.can_authenticate


def test_a_url_that_is_not_a_server_url_is_a_usage_error() -> None:
    with httpx.Client() as http, pytest.raises(CLIError) as raised:
        diagnose("mcp.example.com/mcp", http)
    assert "give the full URL of the MCP endpoint" in str(raised.value.hint)


def test_an_unreachable_server_is_explained() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with httpx.Client(transport=httpx.MockTransport(refused)) as http, pytest.raises(CLIError):
        diagnose(SERVER, http)


@pytest.mark.parametrize(
    ("issuer", "preset", "label", "reason"),
    [
        (
            "https://login.microsoftonline.com/tenant-id/v2.0",
            "entra",
            "Microsoft Entra ID",
            "the issuer's host login.microsoftonline.com",
        ),
        ("https://example.eu.auth0.com/", "auth0", "Auth0", "the issuer's host example.eu.auth0.com"),
        (
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
            "cognito",
            "AWS Cognito",
            "the issuer's host cognito-idp.eu-west-1.amazonaws.com",
        ),
        ("https://accounts.google.com", "google", "Google", "the issuer's host accounts.google.com"),
        ("https://github.com/login/oauth", "github", "GitHub", "the issuer's host github.com"),
        ("https://example.okta.com/oauth2/default", "okta", "Okta", "the issuer's host example.okta.com"),
        (
            "https://sso.example.com/realms/mcp",
            "keycloak",
            "Keycloak",
            "the issuer's path /realms/mcp, a Keycloak realm",
        ),
    ],
)
def test_known_providers_are_recognised_and_their_preset_suggested(
    issuer: str, preset: str, label: str, reason: str
) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    metadata_url = f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{path}"
    document = metadata(issuer=issuer, authorization_endpoint=f"{issuer}/authorize", token_endpoint=f"{issuer}/token")
    report = run(
        {
            SERVER: httpx.Response(401, headers={"WWW-Authenticate": CHALLENGE}),
            PRM_URL: httpx.Response(200, json={"resource": SERVER, "authorization_servers": [issuer]}),
            metadata_url: httpx.Response(200, json=document),
        }
    )
    suggestions = [message for message in findings(report, "info") if "--preset" in message]
    assert suggestions == [
        f"{label} ({reason}): log in with --preset {preset} "
        "(what it changes: https://github.com/mcp-oauth-auth/mcp-oauth-auth/tree/main/docs/providers.md)"
    ]
    assert report.details["suggested_presets"] == [preset]
    assert report.to_json()["suggested_presets"] == [preset]


def test_an_unknown_provider_gets_no_preset_suggestion() -> None:
    report = run(oauth_server())
    assert not [message for message in findings(report) if "--preset" in message]
    assert "suggested_presets" not in report.details
