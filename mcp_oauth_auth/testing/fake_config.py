"""Configuration of the fake MCP authorization stack: which discovery variant it plays and how strict it is.

Every field has a default that models a well-behaved MCP 2025-06-18 server with its own authorization server
on the same origin. Tests may mutate ``stack.config`` between steps; the stack validates it on each request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from mcp_oauth_auth.testing.fake_provider import ProviderQuirks

if TYPE_CHECKING:
    from mcp_oauth_auth.testing.fake_as.keys import PublicKeyInput

__all__ = [
    "KNOWN_AUTH_METHODS",
    "AsMetadataMode",
    "CallbackIss",
    "FakeStackConfig",
    "PrmMode",
    "validate_base_url",
]

PrmMode = Literal["header", "path", "root", "none"]
AsMetadataMode = Literal["oauth", "oidc", "oidc_append_only", "none"]
CallbackIss = Literal["correct", "missing", "wrong"]

KNOWN_AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
_PRM_MODES = ("header", "path", "root", "none")
_AS_METADATA_MODES = ("oauth", "oidc", "oidc_append_only", "none")
_CALLBACK_ISS = ("correct", "missing", "wrong")


@dataclass
class FakeStackConfig:
    """How the fake stack behaves. See the field comments; all of them may be changed between requests."""

    # --- layout ---
    #: Path of the MCP endpoint on the resource origin; the resource also covers everything below it.
    mcp_path: str = "/mcp"
    #: Origin of the authorization server when it is not the resource's origin (e.g. "https://auth.test").
    as_base_url: str | None = None
    #: Path of the issuer on the AS origin ("" or e.g. "/tenant1"); the AS endpoints live below it.
    issuer_path: str = ""

    # --- protected resource metadata (RFC 9728) ---
    #: "header": 401 names the path-aware PRM URL; "path": same URL, not named in the 401; "root": only at
    #: /.well-known/oauth-protected-resource, not named in the 401; "none": no PRM (MCP 2025-03-26 server).
    prm_mode: PrmMode = "header"
    #: Override of the PRM ``resource`` (default: the server URL), to test mismatch refusals.
    prm_resource: str | None = None
    prm_scopes_supported: list[str] = field(default_factory=lambda: ["mcp:read", "mcp:write"])
    #: More resource indicators the authorization server issues tokens for: other protected resources (e.g. a
    #: real MCP server in an integration test) that rely on this authorization server.
    extra_resources: list[str] = field(default_factory=list)
    #: Override of the PRM ``authorization_servers`` (default: [issuer]).
    prm_authorization_servers: list[str] | None = None

    # --- authorization server metadata (RFC 8414 / OpenID Connect Discovery) ---
    as_metadata_mode: AsMetadataMode = "oauth"
    #: Override of the ``issuer`` inside AS metadata, to test RFC 8414 §3.3 mismatch refusals.
    metadata_issuer: str | None = None
    #: None omits the field from the metadata (the AS still requires S256 at /authorize).
    code_challenge_methods_supported: list[str] | None = field(default_factory=lambda: ["S256"])
    scopes_supported: list[str] = field(default_factory=lambda: ["mcp:read", "mcp:write", "admin", "offline_access"])
    token_endpoint_auth_methods_supported: list[str] = field(
        default_factory=lambda: ["none", "client_secret_basic", "client_secret_post"]
    )
    #: Advertise ``authorization_response_iss_parameter_supported`` (RFC 9207).
    iss_parameter_supported: bool = True
    #: "correct": the redirect carries iss=<issuer> when iss_parameter_supported; "missing": never;
    #: "wrong": always carries a wrong iss.
    callback_iss: CallbackIss = "correct"
    client_id_metadata_document_supported: bool = False

    # --- dynamic client registration (RFC 7591) ---
    registration_enabled: bool = True
    #: Force the token_endpoint_auth_method assigned by DCR (None: honour the request if supported).
    registration_auth_method: str | None = None

    # --- resource behaviour ---
    #: ``scope`` of the 401 challenge (None: omitted).
    challenge_scope: str | None = None
    #: Path (exact, or a prefix ending at a "/") -> scopes a token needs there; else 403 insufficient_scope.
    required_scopes_by_path: dict[str, list[str]] = field(default_factory=dict)
    #: Reject tokens that were issued without a ``resource`` indicator (RFC 8707).
    require_resource_indicator: bool = True

    # --- tokens ---
    #: Scopes granted when /authorize has no ``scope`` parameter.
    default_scopes: list[str] = field(default_factory=list)
    access_token_lifetime: int = 3600
    authorization_code_lifetime: int = 60
    issue_refresh_tokens: bool = True
    #: Only issue a refresh token when ``offline_access`` was granted.
    refresh_token_requires_offline_access: bool = False
    #: Each refresh returns a new refresh token and retires the old one; reusing a retired one revokes the
    #: whole grant.
    rotate_refresh_tokens: bool = True
    #: Without rotation: False omits refresh_token from refresh responses (the client must keep the old one).
    return_refresh_token_on_refresh: bool = True

    # --- authorization endpoint ---
    #: RFC 8252 §7.3: a registered loopback redirect URI matches any port at authorize time.
    loopback_redirect_any_port: bool = True
    #: The "user" denies: /authorize redirects with error=access_denied (and automatic device decisions deny).
    deny_authorization: bool = False

    # --- device authorization grant (RFC 8628) ---
    #: Serve the device authorization endpoint and the verification page, advertise them in the metadata
    #: (``device_authorization_endpoint``, the device_code grant type) and accept the grant at /token.
    device_authorization_enabled: bool = False
    #: ``expires_in`` of device codes, seconds.
    device_code_lifetime: int = 600
    #: ``interval`` of device authorization responses; None omits it (the server then enforces the RFC's 5 s).
    device_poll_interval: int | None = 5
    #: Decide automatically on the (N+1)-th poll that is not answered slow_down: the first N such polls get
    #: authorization_pending. The decision is approval, or denial when ``deny_authorization``. None: only
    #: ``stack.approve_device()`` / ``deny_device()`` or the verification page decide.
    device_auto_approve_after_polls: int | None = None

    # --- client credentials grant (RFC 6749 §4.4) and private_key_jwt (RFC 7523) ---
    #: Accept grant_type=client_credentials from confidential clients registered for it, and advertise it.
    client_credentials_enabled: bool = False
    #: Longest remaining lifetime (``exp`` - now, seconds) accepted in a private_key_jwt client assertion.
    client_assertion_max_lifetime: int = 300

    # --- workload identity: the JWT bearer grant (RFC 7523 §2.1, MCP SEP-1933) ---
    #: Trusted issuers of workload JWTs and their public keys (PEM, JWK or key object). Not empty: the token
    #: endpoint accepts (and the metadata advertises) the jwt-bearer grant from clients registered for it.
    workload_issuers: dict[str, PublicKeyInput] = field(default_factory=dict)

    # --- DPoP (RFC 9449) ---
    #: Advertise ``dpop_signing_alg_values_supported``, verify the DPoP proofs of token requests (signature,
    #: ``typ``, ``jwk``, ``htm``/``htu``, ``iat`` window, ``jti`` replay), issue DPoP-bound tokens (``cnf.jkt``,
    #: ``token_type`` DPoP) to requests with a proof, and have the resource check proof, ``ath`` and binding.
    dpop: bool = False
    #: Refuse token requests without a proof, and have the resource accept DPoP-bound tokens only (its 401
    #: challenges use the DPoP scheme only; its metadata says ``dpop_bound_access_tokens_required``).
    dpop_required: bool = False
    #: Demand a server-issued nonce in proofs, at the token endpoint (400 ``use_dpop_nonce``) and at the resource
    #: (401 ``WWW-Authenticate: DPoP error="use_dpop_nonce"``); every answer carries the current ``DPoP-Nonce``.
    dpop_nonce: bool = False
    dpop_signing_alg_values_supported: list[str] = field(default_factory=lambda: ["ES256", "RS256", "EdDSA"])
    #: Seconds a proof's ``iat`` may differ from the stack's clock.
    dpop_iat_window: int = 60

    # --- a real provider's refusals (testing/fake_provider.py; ``like_provider(name)`` sets them all) ---
    quirks: ProviderQuirks = field(default_factory=ProviderQuirks)

    def validate(self) -> None:
        """Raise ValueError when the settings contradict each other or are malformed."""
        if self.prm_mode not in _PRM_MODES:
            raise ValueError(f"prm_mode must be one of {_PRM_MODES}, not {self.prm_mode!r}")
        if self.as_metadata_mode not in _AS_METADATA_MODES:
            raise ValueError(f"as_metadata_mode must be one of {_AS_METADATA_MODES}, not {self.as_metadata_mode!r}")
        if self.callback_iss not in _CALLBACK_ISS:
            raise ValueError(f"callback_iss must be one of {_CALLBACK_ISS}, not {self.callback_iss!r}")
        _check_path("mcp_path", self.mcp_path)
        _check_path("issuer_path", self.issuer_path)
        if self.as_metadata_mode == "none" and self.issuer_path:
            raise ValueError(
                "as_metadata_mode='none' needs issuer_path='': without metadata, clients use /authorize, "
                "/token and /register at the origin root"
            )
        if self.as_base_url is not None:
            validate_base_url("as_base_url", self.as_base_url)
        if self.registration_auth_method is not None and self.registration_auth_method not in KNOWN_AUTH_METHODS:
            raise ValueError(f"registration_auth_method must be one of {KNOWN_AUTH_METHODS} or None")
        if (
            self.access_token_lifetime <= 0
            or self.authorization_code_lifetime <= 0
            or self.device_code_lifetime <= 0
            or self.client_assertion_max_lifetime <= 0
        ):
            raise ValueError("lifetimes must be positive")
        if (self.dpop_required or self.dpop_nonce) and not self.dpop:
            raise ValueError("dpop_required and dpop_nonce need dpop=True")
        if self.device_poll_interval is not None and self.device_poll_interval < 1:
            raise ValueError("device_poll_interval must be at least 1 (or None)")
        if self.device_auto_approve_after_polls is not None and self.device_auto_approve_after_polls < 0:
            raise ValueError("device_auto_approve_after_polls must be 0 or more (or None)")
        unknown_defaults = set(self.default_scopes) - set(self.scopes_supported)
        if unknown_defaults:
            raise ValueError(f"default_scopes not in scopes_supported: {sorted(unknown_defaults)}")


def _check_path(name: str, value: str) -> None:
    if value == "":
        return
    if not value.startswith("/") or value.endswith("/") or "?" in value or "#" in value:
        raise ValueError(f"{name} must be '' or start with '/' and not end with '/': {value!r}")


def validate_base_url(name: str, value: str) -> None:
    """A base URL must be an http(s) origin without path, query or fragment."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an absolute http(s) URL: {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{name} must be an origin (scheme://host[:port]) without path: {value!r}")
    parts.port  # noqa: B018 - raises ValueError for a malformed port
