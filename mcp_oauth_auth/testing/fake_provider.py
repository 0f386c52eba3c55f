"""The fake stack behaving like a real provider: what Entra ID, Auth0, Google, Keycloak ... refuse or leave out.

:class:`ProviderQuirks` (``FakeStackConfig.quirks``) lists the refusals; :class:`ProviderBehaviour` applies them
around the stack's endpoints (a refusal is answered in place of the endpoint, which still logs the request; a
Google-like token response loses its refresh token). :func:`like_provider` builds a whole configuration that plays
one provider, for the tests of the presets (``docs/providers.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from mcp_oauth_auth.testing.fake_http import FakeRequest, FakeResponse, add_query, is_loopback_http, json_response

if TYPE_CHECKING:
    from mcp_oauth_auth.testing.fake_config import FakeStackConfig

__all__ = ["PROVIDER_NAMES", "ProviderBehaviour", "ProviderQuirks", "like_provider"]

#: Entra ID's answer to a ``resource`` parameter in v2.0 requests (AADSTS9010010).
ENTRA_RESOURCE_REFUSAL = (
    "AADSTS9010010: The resource parameter provided in the request doesn't match with the requested scopes."
)
#: Auth0's answer to a client credentials request without ``audience``.
AUTH0_AUDIENCE_REFUSAL = "No audience parameter was provided, and no default audience has been configured"
#: Keycloak's answer to an anonymous registration from a host its realm policy does not trust.
KEYCLOAK_POLICY_REFUSAL = (
    "Policy 'Trusted Hosts' rejected request to client-registration service. Details: Host not trusted."
)


@dataclass
class ProviderQuirks:
    """What a provider refuses or leaves out; all off by default (a well-behaved MCP authorization server)."""

    #: Entra ID: a ``resource`` parameter on authorization or token requests is refused (AADSTS9010010).
    reject_resource: bool = False
    #: Entra ID, admin-consented tenant: ``prompt=consent`` asks a user who may not consent: access_denied.
    reject_consent_prompt: bool = False
    #: Auth0: the authorization, device authorization and client credentials requests need ``audience`` naming
    #: a resource of the stack.
    require_audience: bool = False
    #: Google: these scopes are refused at the authorization endpoint (``offline_access``).
    rejected_scopes: list[str] = field(default_factory=list)
    #: Google: a refresh token only for an authorization with ``access_type=offline`` and ``prompt=consent``.
    refresh_token_needs_offline_access_type: bool = False
    #: Keycloak: anonymous dynamic registration refused by a realm policy (403).
    registration_policy_refusal: bool = False


class ProviderBehaviour:
    """Applies ``config().quirks`` around the fake stack's endpoints (see the module's documentation)."""

    def __init__(
        self, config: Callable[[], FakeStackConfig], issuer: Callable[[], str], resources: Callable[[], tuple[str, ...]]
    ) -> None:
        self._config = config
        self._issuer = issuer
        self._resources = resources
        #: Authorization codes issued without what a Google-like provider needs for a refresh token.
        self._online_codes: set[str] = set()

    def refusal(self, endpoint: str, request: FakeRequest) -> FakeResponse | None:
        """The provider's refusal of ``request`` to the logical ``endpoint``, or None when it would serve it."""
        quirks = self._config().quirks
        if endpoint == "register" and quirks.registration_policy_refusal and not request.header_values("authorization"):
            return json_response(403, {"error": "insufficient_scope", "error_description": KEYCLOAK_POLICY_REFUSAL})
        if endpoint == "authorize":
            params = dict(request.query)
            refused = self._authorization_problem(quirks, params)
            return None if refused is None else self._error_redirect(params, *refused)
        if endpoint in ("token", "device_authorization"):
            form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
            problem = self._form_problem(quirks, endpoint, form)
            if problem is not None:
                error, description, status = problem
                return json_response(status, {"error": error, "error_description": description})
        return None

    def after(self, endpoint: str, request: FakeRequest, response: FakeResponse) -> FakeResponse:
        """``response`` as the provider would send it (a Google-like token response without a refresh token)."""
        if not self._config().quirks.refresh_token_needs_offline_access_type:
            return response
        if endpoint == "authorize" and response.status == 302:
            params = dict(request.query)
            # (prompt is a space-separated set of values, OpenID Connect Core §3.1.2.1)
            if params.get("access_type") != "offline" or "consent" not in params.get("prompt", "").split():
                code = dict(parse_qsl(urlsplit(response.header("location") or "").query)).get("code")
                if code is not None:
                    self._online_codes.add(code)
        if endpoint == "token" and response.status == 200:
            form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
            if form.get("grant_type") == "authorization_code" and form.get("code") in self._online_codes:
                document: dict[str, Any] = response.json()
                document.pop("refresh_token", None)
                return json_response(200, document, no_store=True)
        return response

    def _authorization_problem(self, quirks: ProviderQuirks, params: dict[str, str]) -> tuple[str, str] | None:
        if quirks.reject_resource and "resource" in params:
            return "invalid_target", ENTRA_RESOURCE_REFUSAL
        if quirks.reject_consent_prompt and "consent" in params.get("prompt", "").split():
            return "access_denied", "AADSTS90094: an administrator has consented for this tenant; you may not"
        refused = [scope for scope in params.get("scope", "").split() if scope in quirks.rejected_scopes]
        if refused:
            return "invalid_scope", f"Some requested scopes were invalid. {{invalid={refused}}}"
        if quirks.require_audience and params.get("audience") not in self._resources():
            return "invalid_request", "an audience naming an API of this tenant is required"
        return None

    def _form_problem(self, quirks: ProviderQuirks, endpoint: str, form: dict[str, str]) -> tuple[str, str, int] | None:
        if quirks.reject_resource and "resource" in form:
            return "invalid_target", ENTRA_RESOURCE_REFUSAL, 400
        needs_audience = endpoint == "device_authorization" or form.get("grant_type") == "client_credentials"
        if quirks.require_audience and needs_audience and form.get("audience") not in self._resources():
            return "access_denied", AUTH0_AUDIENCE_REFUSAL, 403
        return None

    def _error_redirect(self, params: dict[str, str], error: str, description: str) -> FakeResponse:
        """The error sent back to a loopback redirect URI (with ``state`` and ``iss``), else shown as a page."""
        redirect_uri = params.get("redirect_uri", "")
        if not is_loopback_http(redirect_uri):
            return json_response(400, {"error": error, "error_description": description})
        answer = [("error", error), ("error_description", description), ("state", params.get("state", ""))]
        config = self._config()
        if config.iss_parameter_supported and config.callback_iss == "correct":
            answer.append(("iss", self._issuer()))
        return FakeResponse(302, [("Location", add_query(redirect_uri, answer)), ("Content-Length", "0")])


def _entra(config: FakeStackConfig) -> None:
    config.as_metadata_mode = "oidc"
    config.issuer_path = "/tenant-id/v2.0"
    config.code_challenge_methods_supported = None
    config.require_resource_indicator = False
    config.quirks.reject_resource = True
    config.quirks.reject_consent_prompt = True


def _auth0(config: FakeStackConfig) -> None:
    config.as_metadata_mode = "oidc"
    config.quirks.require_audience = True


def _cognito(config: FakeStackConfig) -> None:
    _auth0(config)
    config.code_challenge_methods_supported = None


def _google(config: FakeStackConfig) -> None:
    config.as_metadata_mode = "oidc"
    config.scopes_supported = [scope for scope in config.scopes_supported if scope != "offline_access"]
    config.quirks.rejected_scopes = ["offline_access"]
    config.quirks.refresh_token_needs_offline_access_type = True


def _github(config: FakeStackConfig) -> None:
    config.issuer_path = "/login/oauth"
    config.registration_enabled = False
    config.device_authorization_enabled = True
    config.device_auto_approve_after_polls = 0


def _okta(config: FakeStackConfig) -> None:
    config.as_metadata_mode = "oidc_append_only"  # <issuer>/.well-known/openid-configuration
    config.issuer_path = "/oauth2/default"
    config.quirks.registration_policy_refusal = True


def _keycloak(config: FakeStackConfig) -> None:
    config.as_metadata_mode = "oidc_append_only"
    config.issuer_path = "/realms/mcp"
    config.quirks.registration_policy_refusal = True


_PROVIDERS: dict[str, Callable[[FakeStackConfig], None]] = {
    "entra": _entra,
    "auth0": _auth0,
    "cognito": _cognito,
    "google": _google,
    "github": _github,
    "okta": _okta,
    "keycloak": _keycloak,
}
#: The providers :func:`like_provider` can play.
PROVIDER_NAMES = tuple(_PROVIDERS)


def like_provider(name: str, **overrides: Any) -> FakeStackConfig:
    """A configuration of the fake stack that behaves like the provider ``name`` (one of
    :data:`PROVIDER_NAMES`), with ``overrides`` (``FakeStackConfig`` fields) applied last."""
    from mcp_oauth_auth.testing.fake_config import FakeStackConfig

    if name not in _PROVIDERS:
        raise ValueError(f"unknown provider {name!r}; known: {', '.join(PROVIDER_NAMES)}")
    config = FakeStackConfig()
    _PROVIDERS[name](config)
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise ValueError(f"FakeStackConfig has no field {key!r}")
        setattr(config, key, value)
    config.validate()
    return config
