"""Named provider presets: the flow settings that the authorization servers users report trouble with need.

A preset only sets defaults: every argument given to :class:`~mcp_oauth_auth.MCPOAuth` explicitly wins over it
(an extra parameter of the same name included). ``MCPOAuth(url, preset="google")`` takes a name;
``MCPOAuth(url, preset=presets.auth0(audience="https://api.example.com"))`` a preset built with options.
``docs/providers.md`` says, for each, which symptom leads to it and what it changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import urlsplit

from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.request_rules import RequestRules, check_parameters

__all__ = [
    "PRESET_NAMES",
    "PresetSettings",
    "ProviderPreset",
    "auth0",
    "cognito",
    "entra",
    "github",
    "google",
    "keycloak",
    "okta",
    "preset_named",
    "recognise_provider",
    "resolve_preset",
    "settings_with_preset",
]


@dataclass(frozen=True)
class ProviderPreset:
    """The flow settings one provider needs (see ``docs/providers.md``).

    Attributes:
        name: the preset's name (``--preset NAME`` on the command line).
        description: what it changes, in one line.
        send_resource_indicator: the default of ``send_resource_indicator`` (None: the library's, True).
        trust_unadvertised_pkce: the default of ``trust_unadvertised_pkce`` (None: the library's, False).
        authorize_params: extra authorization request parameters (``extra_authorize_params`` of the same name win).
        token_params: extra token request fields (``extra_token_params`` of the same name win).
        audience: ``True`` sends ``audience`` = the resource indicator, a string that audience.
        omitted_scopes: scopes never requested from this provider.
        consent_prompt: whether ``prompt=consent`` goes with ``offline_access`` to an OpenID provider.
        scope_prefix: prefix of scopes naming no URI (Entra ID's ``api://<app>/``).
        prefers_device_flow: use the device flow when no authorizer is given.
        needs_client: the provider offers no dynamic registration: ``client_id`` (or ``client_metadata_url``) is
            required.
    """

    name: str
    description: str
    send_resource_indicator: bool | None = None
    trust_unadvertised_pkce: bool | None = None
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    token_params: Mapping[str, str] = field(default_factory=dict)
    audience: bool | str | None = None
    omitted_scopes: frozenset[str] = frozenset()
    consent_prompt: bool = True
    scope_prefix: str | None = None
    prefers_device_flow: bool = False
    needs_client: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigurationError(f"a preset's name must be a non-empty string, not {self.name!r}")
        object.__setattr__(self, "authorize_params", MappingProxyType(dict(self.authorize_params)))
        object.__setattr__(self, "token_params", MappingProxyType(dict(self.token_params)))
        object.__setattr__(self, "omitted_scopes", frozenset(self.omitted_scopes))
        self.request_rules(None, None)  # validates the parameters once

    def request_rules(
        self, extra_authorize_params: Mapping[str, str] | None, extra_token_params: Mapping[str, str] | None
    ) -> RequestRules:
        """The rules of this preset, with the caller's extra parameters winning over the preset's."""
        authorize = {
            **self.authorize_params,
            **dict(check_parameters(extra_authorize_params, "extra_authorize_params")),
        }
        token = {**self.token_params, **dict(check_parameters(extra_token_params, "extra_token_params"))}
        return RequestRules(
            authorize=tuple(authorize.items()),
            token=tuple(token.items()),
            audience=self.audience,
            omitted_scopes=self.omitted_scopes,
            consent_prompt=self.consent_prompt,
            scope_prefix=self.scope_prefix,
        )


class PresetSettings(NamedTuple):
    """What :class:`~mcp_oauth_auth.MCPOAuth` takes from a preset and the caller's arguments together."""

    send_resource_indicator: bool
    trust_unadvertised_pkce: bool
    request_rules: RequestRules
    prefers_device_flow: bool


def settings_with_preset(
    preset: str | ProviderPreset | None,
    *,
    send_resource_indicator: bool | None,
    trust_unadvertised_pkce: bool | None,
    extra_authorize_params: Mapping[str, str] | None,
    extra_token_params: Mapping[str, str] | None,
    has_client: bool,
) -> PresetSettings:
    """The caller's arguments (None: not given), with the preset's defaults where the caller gave none."""
    chosen = resolve_preset(preset) or ProviderPreset("none", "no provider preset")
    if chosen.needs_client and not has_client:
        raise ConfigurationError(
            f"the {chosen.name} preset needs a pre-registered client: this provider offers no dynamic registration. "
            "Register an OAuth app with it and give its client ID (client_id=, or --client-id on the command line)"
        )
    return PresetSettings(
        send_resource_indicator=_first(send_resource_indicator, chosen.send_resource_indicator, True),
        trust_unadvertised_pkce=_first(trust_unadvertised_pkce, chosen.trust_unadvertised_pkce, False),
        request_rules=chosen.request_rules(extra_authorize_params, extra_token_params),
        prefers_device_flow=chosen.prefers_device_flow,
    )


def _first(given: bool | None, preset: bool | None, default: bool) -> bool:
    return given if given is not None else preset if preset is not None else default


def entra(app: str | None = None) -> ProviderPreset:
    """Microsoft Entra ID: no ``resource`` (AADSTS9010010), no forced ``prompt=consent`` (admin-consented tenants),
    PKCE trusted although unadvertised. ``app``: the application ID URI (``api://<app-id>``) that bare scopes
    (``mcp.read``) are qualified with."""
    return ProviderPreset(
        "entra",
        "Microsoft Entra ID: no resource parameter, no forced prompt=consent, PKCE trusted though unadvertised",
        send_resource_indicator=False,
        trust_unadvertised_pkce=True,
        consent_prompt=False,
        scope_prefix=app,
    )


def auth0(audience: str | None = None) -> ProviderPreset:
    """Auth0: ``audience`` (the API identifier; by default the resource indicator) beside ``resource``, on the
    authorization and token requests."""
    return ProviderPreset(
        "auth0",
        "Auth0: audience (default: the resource) on authorization and token requests",
        audience=audience or True,
    )


def cognito(audience: str | None = None) -> ProviderPreset:
    """AWS Cognito: ``audience`` beside ``resource`` (as for Auth0), PKCE trusted although unadvertised."""
    return ProviderPreset(
        "cognito",
        "AWS Cognito: audience (default: the resource), PKCE trusted though unadvertised",
        trust_unadvertised_pkce=True,
        audience=audience or True,
    )


def google() -> ProviderPreset:
    """Google: ``access_type=offline`` and ``prompt=consent`` for a refresh token; never ``offline_access``."""
    return ProviderPreset(
        "google",
        "Google: access_type=offline and prompt=consent for a refresh token, never the offline_access scope",
        authorize_params={"access_type": "offline", "prompt": "consent"},
        omitted_scopes=frozenset({"offline_access"}),
    )


def github() -> ProviderPreset:
    """GitHub: no dynamic registration (a pre-registered OAuth app's ``client_id`` is required); the device flow
    when no authorizer is given."""
    return ProviderPreset(
        "github",
        "GitHub: a pre-registered OAuth app (client_id required), the device flow by default",
        prefers_device_flow=True,
        needs_client=True,
    )


def okta() -> ProviderPreset:
    """Okta: custom authorization servers at a path (``/oauth2/<id>``, discovered as any issuer with a path); no
    forced ``prompt=consent`` (Okta issues refresh tokens for ``offline_access`` without it)."""
    return ProviderPreset(
        "okta", "Okta: no forced prompt=consent (refresh tokens come with offline_access)", consent_prompt=False
    )


def keycloak() -> ProviderPreset:
    """Keycloak: realms at ``/realms/<name>`` (an issuer with a path); no forced ``prompt=consent`` (no consent
    screen on every login). A registration refused by a realm policy is reported as such (pre-register)."""
    return ProviderPreset(
        "keycloak", "Keycloak: no forced prompt=consent (no consent screen on every login)", consent_prompt=False
    )


_PRESETS: dict[str, Callable[[], ProviderPreset]] = {
    "entra": entra,
    "auth0": auth0,
    "cognito": cognito,
    "google": google,
    "github": github,
    "okta": okta,
    "keycloak": keycloak,
}
#: The names ``preset=`` and ``--preset`` accept.
PRESET_NAMES = tuple(_PRESETS)


def preset_named(name: str) -> ProviderPreset:
    """The preset called ``name`` (with its default options); a :class:`ConfigurationError` listing the names
    otherwise."""
    factory = _PRESETS.get(name.strip().lower()) if isinstance(name, str) else None
    if factory is None:
        raise ConfigurationError(f"unknown preset {name!r}; presets: {', '.join(PRESET_NAMES)}")
    return factory()


def resolve_preset(preset: str | ProviderPreset | None) -> ProviderPreset | None:
    """``preset`` as a :class:`ProviderPreset` (a name is looked up), or None."""
    if preset is None or isinstance(preset, ProviderPreset):
        return preset
    if isinstance(preset, str):
        return preset_named(preset)
    raise ConfigurationError(f"preset must be a preset name or a ProviderPreset, not a {type(preset).__name__}")


#: Issuer host patterns of each provider: exact hosts, or suffixes (starting with a dot).
_PROVIDER_HOSTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "entra",
        (
            "login.microsoftonline.com",
            "login.microsoftonline.us",
            "login.partner.microsoftonline.cn",
            "sts.windows.net",
            ".ciamlogin.com",
        ),
    ),
    ("auth0", (".auth0.com",)),
    ("cognito", (".amazoncognito.com",)),
    ("google", ("accounts.google.com",)),
    ("github", ("github.com",)),
    ("okta", (".okta.com", ".oktapreview.com", ".okta-emea.com")),
)


def recognise_provider(issuer: str) -> tuple[str, str] | None:
    """The preset that fits the authorization server ``issuer``, and why (its host, or Keycloak's
    ``/realms/<name>`` path), or None. Recognised by the issuer only: a provider on its own domain is not."""
    try:
        parts = urlsplit(issuer)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    if host.startswith("cognito-idp.") and host.endswith(".amazonaws.com"):
        return "cognito", f"the issuer's host {host}"
    for name, patterns in _PROVIDER_HOSTS:
        if any(host == pattern or (pattern.startswith(".") and host.endswith(pattern)) for pattern in patterns):
            return name, f"the issuer's host {host}"
    segments = parts.path.split("/")
    if len(segments) >= 3 and segments[-2] == "realms" and segments[-1]:
        return "keycloak", f"the issuer's path {parts.path}, a Keycloak realm"
    return None
