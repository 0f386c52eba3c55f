"""Provider-specific additions to the OAuth requests: extra parameters, an ``audience``, scopes a provider refuses.

Real authorization servers each want one small thing the specification does not say (``docs/providers.md``):
Auth0 an ``audience``, Google ``access_type=offline``, Entra ID no forced ``prompt=consent``. :class:`RequestRules`
says what, validated once; :meth:`RequestRules.rewrite` applies it to each effect of a credential flow as the effect
leaves (the guard calls it, :mod:`mcp_oauth_auth.flow.guard`), so the grants themselves stay as the RFCs write them.

Where the parameters go:

* ``authorize`` parameters: the authorization request (the browser's URL), and the device authorization request
  (RFC 8628 §3.1, the device flow's authorization request);
* ``token`` parameters: every token request of the grants this client makes at the MCP authorization server:
  code exchange, refresh, device code polls, client credentials, jwt-bearer (not a token exchange, RFC 8693, which
  goes to another server); never the revocation or registration requests.

Nothing is added to requests for an enterprise identity provider (the sign-in of enterprise-managed authorization,
:mod:`mcp_oauth_auth.flow.sso`): the rules are the MCP authorization server's, and the engine names the IdP's
origins to leave alone.

Keys the flow owns (``state``, ``code_verifier``, ``client_id``, ``scope``, ``resource``, ...) are refused: a
provider profile adds to the protocol, it never replaces it. Values are never logged (only the names).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mcp_oauth_auth.exceptions import ConfigurationError, OAuthError
from mcp_oauth_auth.flow.effects import Authorize, Effect, HttpRequest, SendHttp
from mcp_oauth_auth.flow.urls import origin_of

__all__ = ["OWN_GRANT_TYPES", "RESERVED_PARAMETERS", "RequestRules", "check_parameters"]

logger = logging.getLogger("mcp_oauth_auth")

#: Parameters the flow sets itself and must control (RFC 6749, 7636, 8707, 8628, 7523, 7009, 9126, 9101, 9449).
RESERVED_PARAMETERS = frozenset(
    {
        "response_type",
        "response_mode",
        "client_id",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
        "redirect_uri",
        "state",
        "code",
        "code_challenge",
        "code_challenge_method",
        "code_verifier",
        "grant_type",
        "refresh_token",
        "device_code",
        "assertion",
        "scope",
        "resource",
        "token",
        "token_type_hint",
        "request",
        "request_uri",
        "dpop_jkt",
        "iss",
    }
)

#: The grants whose token requests carry the ``token`` parameters (see the module's documentation).
OWN_GRANT_TYPES = frozenset(
    {
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    }
)

#: Scopes that are no resource's but OpenID Connect's own: never prefixed with an application ID.
_OPENID_SCOPES = frozenset({"openid", "profile", "email", "address", "phone", "offline_access"})


def check_parameters(parameters: object, name: str) -> tuple[tuple[str, str], ...]:
    """``parameters`` (a mapping of strings to strings) as sorted pairs; a key the flow owns, or a value that is
    not a string, is a :class:`~mcp_oauth_auth.exceptions.ConfigurationError` naming the key (never the value)."""
    if parameters is None:
        return ()
    if not isinstance(parameters, Mapping):
        raise ConfigurationError(f"{name} must be a mapping of parameter names to strings, not a {type(parameters)}")
    pairs = []
    for key, value in parameters.items():
        if not isinstance(key, str) or not key.strip() or key != key.strip():
            raise ConfigurationError(f"{name}: parameter names must be non-empty strings, not {key!r}")
        if key.lower() in RESERVED_PARAMETERS or key.lower().startswith("client_assertion"):
            raise ConfigurationError(
                f"{name}: {key!r} is set by the flow itself and cannot be given (scopes: scopes=; the resource "
                "indicator: send_resource_indicator=)"
            )
        if not isinstance(value, str):
            raise ConfigurationError(f"{name}: the value of {key!r} must be a string, not a {type(value).__name__}")
        pairs.append((key, value))
    return tuple(sorted(pairs))


@dataclass(frozen=True)
class RequestRules:
    """What a provider needs added to (or kept out of) the requests of a credential flow.

    Attributes:
        authorize: extra parameters of the authorization request (and the device authorization request).
        token: extra form fields of the token requests.
        audience: ``True``: send ``audience`` = the resource indicator (the request's ``resource``, else the server
            URL) on the authorization and token requests (Auth0, Cognito); a string: that audience; ``None``: none.
            An ``audience`` among the extra parameters wins.
        omitted_scopes: scopes never requested from this provider (Google refuses ``offline_access``).
        consent_prompt: add ``prompt=consent`` when asking an OpenID provider for ``offline_access`` (OpenID
            Connect Core §11); False for providers where an administrator consents for the users (Entra ID), who
            cannot consent themselves. A ``prompt`` among the extra parameters wins either way.
        scope_prefix: prefix of the scopes that name no URI (``api://<app>/`` for Entra ID): ``mcp.read`` is
            requested as ``api://<app>/mcp.read``; OpenID Connect scopes and URIs are left as they are.
    """

    authorize: tuple[tuple[str, str], ...] = ()
    token: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    audience: bool | str | None = None
    omitted_scopes: frozenset[str] = frozenset()
    consent_prompt: bool = True
    scope_prefix: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "authorize", check_parameters(dict(self.authorize), "extra_authorize_params"))
        object.__setattr__(self, "token", check_parameters(dict(self.token), "extra_token_params"))
        if not (self.audience is None or isinstance(self.audience, bool) or _non_empty(self.audience)):
            raise ConfigurationError(f"audience must be True, a non-empty string or None, not {self.audience!r}")
        if self.scope_prefix is not None and not _non_empty(self.scope_prefix):
            raise ConfigurationError(f"scope_prefix must be a non-empty string, not {self.scope_prefix!r}")

    def __repr__(self) -> str:
        # Names only: a value may be a tenant's secret-looking hint.
        return (
            f"RequestRules(authorize={[key for key, _ in self.authorize]}, token={[key for key, _ in self.token]}, "
            f"audience={self.audience is not None}, omitted_scopes={sorted(self.omitted_scopes)}, "
            f"consent_prompt={self.consent_prompt}, scope_prefix={self.scope_prefix!r})"
        )

    @property
    def inactive(self) -> bool:
        """Whether the rules change no request at all (the guard then needs no rewriting)."""
        return self == RequestRules()

    def scopes(self, scopes: tuple[str, ...]) -> tuple[str, ...]:
        """``scopes`` as this provider wants them asked for: prefixed, without the omitted ones."""
        prefix = self.scope_prefix
        adjusted = (
            f"{prefix.rstrip('/')}/{scope}" if prefix and scope not in _OPENID_SCOPES and ":" not in scope else scope
            for scope in scopes
            if scope not in self.omitted_scopes
        )
        return tuple(dict.fromkeys(adjusted))

    def rewriter(self, server_url: str, elsewhere: tuple[str, ...] = ()) -> Callable[[Effect], Effect] | None:
        """The function the guard applies to each effect, for the server at ``server_url``; None when inactive.
        Requests to the origins of the ``elsewhere`` URLs are left alone: they go to another provider than the one
        the rules are for (the enterprise identity provider a person signs in to, with its own rules)."""
        if self.inactive:
            return None
        origins = frozenset(origin_of(url) for url in elsewhere)
        if not origins:
            return lambda effect: self.rewrite(effect, server_url)
        return lambda effect: effect if _origin(effect) in origins else self.rewrite(effect, server_url)

    def rewrite(self, effect: Effect, server_url: str) -> Effect:
        """``effect`` with this provider's additions (see the module's documentation); other effects unchanged."""
        if isinstance(effect, Authorize):
            return replace(effect, url=self._authorization_url(effect.url, server_url))
        if isinstance(effect, SendHttp) and _is_form_post(effect.request):
            fields = dict(parse_qsl(effect.request.body.decode("ascii"), keep_blank_values=True))
            grant_type = fields.get("grant_type")
            if grant_type in OWN_GRANT_TYPES:
                extra = self._extra(self.token, fields, server_url)
            elif grant_type is None and "token" not in fields:  # the device authorization request
                extra = self._extra(self.authorize, fields, server_url)
            else:
                return effect
            if extra:
                logger.debug("adding the provider's parameters %s to the request", sorted(extra))
                body = urlencode({**fields, **extra}).encode("ascii")
                return replace(effect, request=replace(effect.request, body=body))
        return effect

    def _authorization_url(self, url: str, server_url: str) -> str:
        parts = urlsplit(url)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        extra = self._extra(self.authorize, params, server_url)
        prompt = self._prompt(params.pop("prompt", None), extra.pop("prompt", None))
        if prompt:
            params["prompt"] = prompt
        if extra:
            logger.debug("adding the provider's parameters %s to the authorization request", sorted(extra))
        return urlunsplit(parts._replace(query=urlencode({**params, **extra})))

    def _prompt(self, flow: str | None, given: str | None) -> str | None:
        """The ``prompt`` of the authorization request (OpenID Connect: a set of values). A ``prompt`` among the extra
        parameters wins, keeping the flow's ``select_account`` (the person must pick the account of a named
        credential, docs/accounts.md) unless it is ``none``, which allows no other value; without one, the flow's,
        less ``consent`` when this provider must not be forced to it."""
        values = (flow or "").split()
        if given is not None:
            chosen = given.split()
            if "select_account" in values and "select_account" not in chosen and "none" not in chosen:
                chosen.append("select_account")
            return " ".join(chosen)
        if not self.consent_prompt:
            values = [value for value in values if value != "consent"]
        return " ".join(values) or None

    def _extra(self, given: tuple[tuple[str, str], ...], fields: dict[str, str], server_url: str) -> dict[str, str]:
        extra = dict(given)
        if self.audience is not None and self.audience is not False and "audience" not in extra:
            extra["audience"] = self.audience if isinstance(self.audience, str) else fields.get("resource", server_url)
        return extra


def _origin(effect: Effect) -> str | None:
    """The origin an authorization request or an HTTP request goes to (None for other effects, or a URL the guard
    will refuse anyway)."""
    url = effect.url if isinstance(effect, Authorize) else effect.request.url if isinstance(effect, SendHttp) else None
    if url is None:
        return None
    try:
        return origin_of(url)
    except (ValueError, OAuthError):
        return None


def _is_form_post(request: HttpRequest) -> bool:
    return request.method == "POST" and any(
        name.lower() == "content-type" and value.startswith("application/x-www-form-urlencoded")
        for name, value in request.headers
    )


def _non_empty(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())
