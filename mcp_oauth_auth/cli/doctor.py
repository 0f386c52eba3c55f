"""``mcp-oauth doctor URL``: what an MCP server publishes for authorization, checked against the specification,
without logging in.

The checks run the library's own discovery code (:mod:`mcp_oauth_auth.flow.discovery`, the URL rules of
:mod:`mcp_oauth_auth.flow.urls`, the challenge parser and the PKCE rule), driven here by a recorder that notes
every URL tried and what it answered, so the report shows exactly what a client would see.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import httpx

from mcp_oauth_auth.cli.errors import DOCUMENTATION, CLIError, ExitCode, explain
from mcp_oauth_auth.cli.output import Terminal
from mcp_oauth_auth.cli.probe import not_an_endpoint, send_probe
from mcp_oauth_auth.driving.loop import drive
from mcp_oauth_auth.driving.perform import Performer
from mcp_oauth_auth.exceptions import OAuthError, PKCENotSupportedError
from mcp_oauth_auth.flow.authorization import check_pkce_support
from mcp_oauth_auth.flow.challenge import BearerChallenge, parse_bearer_challenge
from mcp_oauth_auth.flow.discovery import (
    AuthorizationServerMetadata,
    ProtectedResourceMetadata,
    discover_authorization_server,
    discover_protected_resource,
    legacy_authorization_server,
)
from mcp_oauth_auth.flow.effects import DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_RESPONSE_DEADLINE, Effect
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.guard import guarded
from mcp_oauth_auth.flow.urls import canonical_resource, safe_url

__all__ = ["DoctorReport", "Finding", "check_redis_store", "diagnose", "print_report"]

_RETRY = RetryPolicy(attempts=2, base_delay=0.2, max_delay=1.0)
_SEVERITIES = ("ok", "info", "warning", "error")


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``ok``, ``info``, ``warning`` (works, but against a SHOULD or fragile) or
    ``error`` (a client cannot authenticate this way)."""

    severity: str
    message: str


@dataclass
class Section:
    title: str
    #: ``"server"``, ``"resource_metadata"`` or ``"authorization_server"``: an error in either of the first two
    #: stops every client; an authorization server with errors is just not usable (another one may be).
    kind: str
    findings: list[Finding] = field(default_factory=list)

    def add(self, severity: str, message: str) -> None:
        assert severity in _SEVERITIES
        self.findings.append(Finding(severity, message))

    @property
    def has_errors(self) -> bool:
        return any(finding.severity == "error" for finding in self.findings)


@dataclass
class DoctorReport:
    url: str
    sections: list[Section] = field(default_factory=list)
    #: Whether the server answered the unauthenticated probe with 2xx (no authorization needed).
    open_access: bool = False
    #: The issuers whose metadata passed every check that a client depends on.
    usable_issuers: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def can_authenticate(self) -> bool:
        blocking = any(section.has_errors for section in self.sections if section.kind != "authorization_server")
        return self.open_access or (not blocking and bool(self.usable_issuers))

    @property
    def problems(self) -> list[tuple[str, Finding]]:
        return [
            (section.title, finding)
            for section in self.sections
            for finding in section.findings
            if finding.severity in ("warning", "error")
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "can_authenticate": self.can_authenticate,
            "requires_authorization": not self.open_access,
            **self.details,
            "sections": [
                {
                    "title": section.title,
                    "findings": [{"severity": f.severity, "message": f.message} for f in section.findings],
                }
                for section in self.sections
            ],
            "problems": [
                {"section": title, "severity": finding.severity, "message": finding.message}
                for title, finding in self.problems
            ],
        }


class _Recorder:
    """Runs a sans-IO discovery flow with a real HTTP client, noting each request and its outcome."""

    def __init__(self, http: httpx.Client, limits: tuple[int, float]) -> None:
        self._http = http
        self._limits = limits

    def run(self, flow: Generator[Effect, Any, Any], section: Section) -> Any:
        def note(request: httpx.Request, outcome: httpx.Response | Exception) -> None:
            if isinstance(outcome, httpx.Response):
                section.add("info", f"tried {safe_url(str(request.url))}: HTTP {outcome.status_code}")
            elif isinstance(outcome, httpx.HTTPError):
                section.add("info", f"tried {safe_url(str(request.url))}: {type(outcome).__name__}")

        # Discovery only sends HTTP and sleeps between retries; a transport error is explained by the report.
        max_body, deadline = self._limits
        flow = guarded(flow, None, max_body=max_body, deadline=deadline)  # responses read within the limits
        return drive(flow, self._http, Performer(), unreachable=_as_it_is, observe=note)


def _as_it_is(exc: Exception, request: httpx.Request) -> Exception:
    return exc


def diagnose(
    url: str,
    http: httpx.Client,
    *,
    max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
    response_deadline: float = DEFAULT_RESPONSE_DEADLINE,
) -> DoctorReport:
    """Everything ``doctor`` checks about the MCP server at ``url``, its OAuth responses read within
    ``max_response_size`` bytes and ``response_deadline`` seconds each."""
    try:
        canonical_resource(url)
    except OAuthError as exc:
        raise CLIError(
            str(exc), "give the full URL of the MCP endpoint, e.g. https://mcp.example.com/mcp", ExitCode.USAGE
        ) from None
    report = DoctorReport(url=url)
    challenge = _probe(report, url, http)
    if report.sections[-1].has_errors:
        return report  # not an MCP endpoint: discovery from it would only add noise
    recorder = _Recorder(http, (max_response_size, response_deadline))
    prm, published = _protected_resource(report, url, challenge, recorder)
    if prm is not None:
        for issuer in prm.authorization_servers:
            section = Section(f"Authorization server {issuer}", "authorization_server")
            report.sections.append(section)
            metadata = _run_discovery(recorder, discover_authorization_server(issuer, _RETRY), section)
            if metadata is None and not section.has_errors:
                section.add("error", f"no authorization server metadata for {issuer} at any of the URLs tried")
            _check_authorization_server(report, section, metadata)
    elif not published and not report.open_access:
        section = Section("Authorization server (2025-03-26 fallback: the MCP server's origin)", "authorization_server")
        report.sections.append(section)
        metadata = _run_discovery(recorder, legacy_authorization_server(url, _RETRY), section)
        if metadata is not None and metadata.assumed_defaults:
            section.add(
                "warning",
                "no metadata either: 2025-03-26 clients (this one included) use /authorize, /token and /register at "
                "the origin, with PKCE S256 (that revision requires it of every server)",
            )
            report.usable_issuers.append(metadata.issuer)
        else:
            _check_authorization_server(report, section, metadata)
    return report


def _run_discovery(recorder: _Recorder, flow: Generator[Effect, Any, Any], section: Section) -> Any:
    try:
        return recorder.run(flow, section)
    except OAuthError as exc:
        section.add("error", str(exc))
    except httpx.HTTPError as exc:
        section.add("error", explain(exc).message)
    return None


def _probe(report: DoctorReport, url: str, http: httpx.Client) -> BearerChallenge:
    """An unauthenticated MCP ``initialize``, as a client's first request: expect 401 with a Bearer challenge."""
    section = Section("MCP server", "server")
    report.sections.append(section)
    try:
        response = send_probe(url, http, "mcp-oauth doctor")
    except httpx.HTTPError as exc:
        raise explain(exc) from exc
    status = response.status_code
    values = response.headers.get_list("www-authenticate")
    challenge = parse_bearer_challenge(values)
    report.details["probe"] = {"status": status, "www_authenticate": values}
    report.details["challenge"] = None if challenge is None else dataclasses.asdict(challenge)
    if 200 <= status < 300:
        problem = not_an_endpoint(url, response)
        if problem is not None:  # a web page (or anything but JSON and an event stream) is not an MCP answer
            section.add("error", f"{problem.message}; check the URL (path included)")
            return BearerChallenge()
        report.open_access = True
        section.add("info", f"POST {safe_url(url)} without credentials: HTTP {status} (no authorization required)")
        return challenge or BearerChallenge()
    expected = status in (401, 404, 405)  # 404 and 405 get their own error line
    section.add("info" if expected else "warning", f"POST {safe_url(url)} without credentials: HTTP {status}")
    if status in (404, 405):
        section.add("error", f"HTTP {status}: this does not look like an MCP endpoint; check the URL (path included)")
    for value in values:
        section.add("info", f"WWW-Authenticate: {value}")
    if status == 401 and challenge is None:
        section.add("warning", "the 401 carries no Bearer challenge in WWW-Authenticate (RFC 6750 §3, MCP spec)")
    elif challenge is not None:
        section.add("ok", "Bearer challenge (RFC 6750)")
        if challenge.resource_metadata:
            section.add("ok", "it names the resource metadata URL (RFC 9728 §5.1)")
        else:
            section.add("info", "it names no resource_metadata: clients try the well-known URLs")
        if challenge.scope:
            section.add("info", f"it asks for scope: {challenge.scope}")
    _dpop_challenge(section, values)
    return challenge or BearerChallenge()


def _protected_resource(
    report: DoctorReport, url: str, challenge: BearerChallenge, recorder: _Recorder
) -> tuple[ProtectedResourceMetadata | None, bool]:
    """The metadata when it is usable, and whether any was published (usable or not)."""
    section = Section("Protected resource metadata (RFC 9728)", "resource_metadata")
    report.sections.append(section)
    prm: ProtectedResourceMetadata | None = _run_discovery(
        recorder, discover_protected_resource(url, challenge.resource_metadata, _RETRY), section
    )
    if section.has_errors:
        return None, True
    if prm is None:
        if report.open_access:
            section.add("info", "no protected resource metadata: the server does not use OAuth")
        else:
            section.add(
                "warning",
                "no protected resource metadata (RFC 9728), which MCP requires since revision 2025-06-18: only "
                "clients with the 2025-03-26 fallback (this one included) find the authorization server",
            )
        return None, False
    report.details["protected_resource_metadata"] = {
        "url": prm.url,
        "resource": prm.resource,
        "authorization_servers": list(prm.authorization_servers),
        "scopes_supported": list(prm.scopes_supported),
    }
    section.add("ok", f"found at {prm.url}")
    section.add("ok", f"resource {prm.resource} identifies the server (RFC 9728 §3.3)")
    section.add("ok", f"authorization servers: {', '.join(prm.authorization_servers)}")
    if prm.scopes_supported:
        section.add("info", f"scopes supported: {' '.join(prm.scopes_supported)}")
    else:
        section.add("info", "no scopes_supported: clients request no particular scope")
    report.details["protected_resource_metadata"]["dpop_bound_access_tokens_required"] = (
        prm.dpop_bound_access_tokens_required
    )
    if prm.dpop_bound_access_tokens_required:
        section.add("info", "DPoP-bound access tokens required (RFC 9449 §5.2): MCPOAuth uses DPoP for this server")
    return prm, True


def _check_authorization_server(
    report: DoctorReport, section: Section, metadata: AuthorizationServerMetadata | None
) -> None:
    if metadata is None:
        return
    section.add("ok", f"metadata found; its issuer is exactly {metadata.issuer} (RFC 8414 §3.3)")
    _provider(report, section, metadata.issuer)
    try:
        check_pkce_support(metadata, trust_unadvertised=False)
    except PKCENotSupportedError as exc:
        section.add("error", exc.message)
    else:
        section.add("ok", "PKCE S256 advertised (code_challenge_methods_supported)")
    _registration(section, metadata)
    _grants(section, metadata)
    _dpop_support(section, metadata)
    if metadata.authorization_response_iss_parameter_supported:
        section.add("ok", "RFC 9207 iss in authorization responses (mix-up protection)")
    else:
        section.add("warning", "no RFC 9207 iss parameter in authorization responses: mix-ups cannot be detected")
    if metadata.revocation_endpoint:
        section.add("ok", f"token revocation (RFC 7009) at {metadata.revocation_endpoint}")
    else:
        section.add("info", "no revocation_endpoint (RFC 7009): logging out can only forget tokens locally")
    report.details.setdefault("authorization_servers", []).append(_metadata_json(metadata))
    if not section.has_errors:
        report.usable_issuers.append(metadata.issuer)


def _provider(report: DoctorReport, section: Section, issuer: str) -> None:
    """A provider with a preset (``docs/providers.md``), recognised from its issuer: suggest the preset."""
    from mcp_oauth_auth.presets import preset_named, recognise_provider

    recognised = recognise_provider(issuer)
    if recognised is None:
        return
    name, reason = recognised
    section.add(
        "info",
        f"{preset_named(name).description.partition(':')[0]} ({reason}): log in with --preset {name} "
        f"(what it changes: {DOCUMENTATION}/providers.md)",
    )
    report.details.setdefault("suggested_presets", []).append(name)


def _registration(section: Section, metadata: AuthorizationServerMetadata) -> None:
    if metadata.client_id_metadata_document_supported:
        section.add("ok", "Client ID Metadata Documents supported (client_id_metadata_document_supported)")
    if metadata.registration_endpoint:
        section.add("ok", f"dynamic client registration (RFC 7591) at {metadata.registration_endpoint}")
    if not (metadata.client_id_metadata_document_supported or metadata.registration_endpoint):
        section.add(
            "warning",
            "no dynamic registration and no Client ID Metadata Documents: clients need a pre-registered client_id "
            "(mcp-oauth login --client-id)",
        )


def _grants(section: Section, metadata: AuthorizationServerMetadata) -> None:
    grants = metadata.grant_types_supported
    if grants is None:
        section.add("info", "grant_types_supported not published (RFC 8414 default: authorization_code, implicit)")
    elif "authorization_code" not in grants:
        section.add("error", f"the authorization_code grant is not offered (grant_types_supported: {list(grants)})")
    elif "refresh_token" not in grants:
        section.add("warning", "no refresh_token grant: people must log in again whenever a token expires")
    else:
        section.add("ok", "authorization_code and refresh_token grants")
    if metadata.device_authorization_endpoint:
        section.add("info", f"device flow (RFC 8628) at {metadata.device_authorization_endpoint}")
    else:
        section.add("info", "no device flow (RFC 8628): machines without a browser log in with --no-browser")
    if grants is not None and "client_credentials" in grants:
        section.add("info", "client credentials grant offered (machine-to-machine)")
    _assertion_grants(section, metadata)


def _assertion_grants(section: Section, metadata: AuthorizationServerMetadata) -> None:
    """The jwt-bearer grant (RFC 7523: workload identity, and the ID-JAG of enterprise-managed authorization) and
    the ``authorization_grant_profiles_supported`` the server lists."""
    from mcp_oauth_auth.flow.enterprise import ID_JAG_PROFILE
    from mcp_oauth_auth.flow.jwt_bearer import JWT_BEARER

    grants = metadata.grant_types_supported
    if grants is not None and JWT_BEARER in grants:
        section.add("info", "jwt-bearer grant offered (RFC 7523): --assertion-file, --idp-issuer")
    profiles = metadata.extra.get("authorization_grant_profiles_supported")
    if not isinstance(profiles, list):
        section.add("info", "authorization_grant_profiles_supported not published")
        return
    shown = ", ".join(str(profile)[:80] for profile in profiles[:10]) or "(none)"
    section.add("info", f"authorization grant profiles: {shown}")
    if ID_JAG_PROFILE in profiles:
        if grants is not None and JWT_BEARER not in grants:
            section.add("warning", "the ID-JAG profile is listed, but not the jwt-bearer grant it is presented with")
        else:
            section.add("ok", "enterprise-managed authorization (ID-JAG) accepted: mcp-oauth login --idp-issuer")


def _dpop_challenge(section: Section, values: list[str]) -> None:
    """What the 401's challenges say about DPoP (RFC 9449 §7.1)."""
    from mcp_oauth_auth.flow.dpop import dpop_challenge, requires_dpop

    if requires_dpop(values):
        section.add("info", "DPoP challenge only: the server accepts DPoP-bound tokens only (RFC 9449), used unasked")
    elif dpop_challenge(values) is not None:
        section.add("info", "DPoP challenge too: the server accepts DPoP-bound tokens (mcp-oauth login --dpop)")


def _dpop_support(section: Section, metadata: AuthorizationServerMetadata) -> None:
    from mcp_oauth_auth.flow.dpop import DPOP_ALGORITHMS

    algorithms = metadata.extra.get("dpop_signing_alg_values_supported")
    if not isinstance(algorithms, list) or not algorithms:
        section.add("info", "DPoP (RFC 9449) not advertised (no dpop_signing_alg_values_supported)")
        return
    shown = ", ".join(str(algorithm) for algorithm in algorithms)
    if any(algorithm in DPOP_ALGORITHMS for algorithm in algorithms):
        section.add("ok", f"DPoP (RFC 9449) proofs accepted: {shown} (mcp-oauth login --dpop)")
    else:
        section.add(
            "warning", f"DPoP proofs accepted only with {shown}; this client signs {', '.join(DPOP_ALGORITHMS)}"
        )


def _metadata_json(metadata: AuthorizationServerMetadata) -> dict[str, Any]:
    methods = metadata.code_challenge_methods_supported
    grants = metadata.grant_types_supported
    return {
        "issuer": metadata.issuer,
        "metadata_url": metadata.url or None,
        "assumed_defaults": metadata.assumed_defaults,
        "authorization_endpoint": metadata.authorization_endpoint,
        "token_endpoint": metadata.token_endpoint,
        "pkce_s256": methods is not None and "S256" in methods,
        "dynamic_registration": metadata.registration_endpoint,
        "client_id_metadata_documents": metadata.client_id_metadata_document_supported,
        "device_authorization_endpoint": metadata.device_authorization_endpoint,
        "client_credentials": grants is not None and "client_credentials" in grants,
        "jwt_bearer": grants is not None and "urn:ietf:params:oauth:grant-type:jwt-bearer" in grants,
        "authorization_grant_profiles_supported": metadata.extra.get("authorization_grant_profiles_supported"),
        "refresh_token": grants is None or "refresh_token" in grants,
        "revocation_endpoint": metadata.revocation_endpoint,
        "iss_parameter": metadata.authorization_response_iss_parameter_supported,
        "scopes_supported": list(metadata.scopes_supported),
        "dpop_signing_alg_values_supported": metadata.extra.get("dpop_signing_alg_values_supported"),
    }


def check_redis_store(report: DoctorReport, store: Any) -> None:
    """With ``--store redis``: can the Redis store be reached, and does the server persist every write (AOF)?"""
    section = Section(f"Credential store: Redis at {store.url} (prefix {store.prefix!r})", "store")
    report.sections.append(section)
    try:
        facts = store.persistence()
        keys = store.list_keys()
        for key in keys:
            store.load(key)
    except OAuthError as exc:
        section.add("error", str(exc))
        return
    report.details["redis"] = facts
    readable = f"its {len(keys)} record(s) decrypt with this host's key" if keys else "no records yet"
    section.add("ok", f"connected (Redis {facts['redis_version']}); {readable}")
    if facts["aof_enabled"] != "1":
        section.add(
            "warning",
            "AOF is off (appendonly no): a restart could lose a rotated refresh token and force every worker to "
            "log in again; set appendonly yes",
        )
    elif facts["appendfsync"] == "always":
        section.add("ok", "AOF is on with appendfsync always: every saved record survives a crash")
    else:
        section.add(
            "info",
            f"AOF is on (appendfsync {facts['appendfsync']}): a crash can lose the last second of writes, e.g. a "
            "refresh token rotated just before it; appendfsync always closes that window",
        )


def print_report(terminal: Terminal, report: DoctorReport) -> None:
    marks = {
        "ok": terminal.style(terminal.ok_mark, "green", "bold"),
        "info": terminal.style(terminal.info_mark, "dim"),
        "warning": terminal.style(terminal.warn_mark, "yellow", "bold"),
        "error": terminal.style(terminal.fail_mark, "red", "bold"),
    }
    terminal.print(terminal.style(f"mcp-oauth doctor {report.url}", "bold"))
    for section in report.sections:
        terminal.print()
        terminal.print(terminal.style(section.title, "bold"))
        for finding in section.findings:
            terminal.print(f"  {marks[finding.severity]} {finding.message}")
    problems = report.problems
    several_servers = sum(1 for section in report.sections if section.kind == "authorization_server") > 1
    terminal.print()
    if problems:
        terminal.print(terminal.style("Problems", "bold"))
        for title, finding in problems:
            where = f"  [{title}]" if several_servers and title.startswith("Authorization server") else ""
            terminal.print(f"  {marks[finding.severity]} {finding.severity}: {finding.message}{where}")
        terminal.print()
    errors = sum(1 for _, finding in problems if finding.severity == "error")
    warnings = len(problems) - errors
    if report.open_access:
        terminal.success("The server answered without authorization: no login is needed.")
    elif report.can_authenticate:
        suffix = f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""
        terminal.success(f"A client can authenticate to this server{suffix}.")
    else:
        verdict = f"{terminal.style(terminal.fail_mark, 'red', 'bold')} A client cannot authenticate to this server"
        terminal.print(f"{verdict} ({errors} error{'s' if errors != 1 else ''}).")
