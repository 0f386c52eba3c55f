"""What the flow needs to know from the user (:class:`FlowConfig`), validated once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.effects import DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_RESPONSE_DEADLINE
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.jwt_bearer import JWT_BEARER, AssertionSource, check_assertion_source
from mcp_oauth_auth.flow.registration import ClientSettings
from mcp_oauth_auth.flow.request_rules import RequestRules
from mcp_oauth_auth.flow.urls import check_redirect_uri, require_secure_url
from mcp_oauth_auth.flow.values import is_duration, is_whole_number

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.client_auth import ClientAssertionSigner
    from mcp_oauth_auth.flow.dpop import DPoPKey
    from mcp_oauth_auth.flow.idp import EnterpriseIdP

__all__ = ["MACHINE_GRANTS", "FlowConfig", "check_account"]

#: The grants that need no person (:mod:`mcp_oauth_auth.flow.grants`): no refresh token is assumed, and a new grant
#: replaces an expiring token.
MACHINE_GRANTS = ("client_credentials", JWT_BEARER)

#: The longest account label accepted: a label, not a document.
MAX_ACCOUNT_LENGTH = 200


def check_account(account: str | None) -> None:
    """Refuse an account label that could not be told apart when listed, or shown safely: it must be None (the
    default account) or a non-empty string without surrounding spaces or control characters, at most
    :data:`MAX_ACCOUNT_LENGTH` characters."""
    if account is None:
        return
    if (
        not isinstance(account, str)
        or not account
        or account != account.strip()
        or len(account) > MAX_ACCOUNT_LENGTH
        or not account.isprintable()
    ):
        shown = account if not isinstance(account, str) else account[:40]
        raise ConfigurationError(
            f"account must be a label of 1 to {MAX_ACCOUNT_LENGTH} printable characters without surrounding spaces "
            f"(or None for the default account), not {shown!r}"
        )


@dataclass(frozen=True)
class FlowConfig:
    """Everything the flow needs to know from the user, validated once."""

    server_url: str
    scopes: tuple[str, ...] | None = None
    client: ClientSettings = field(default_factory=ClientSettings)
    redirect_uri: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: Refresh this many seconds before the access token expires; None: 60 s, at most half the token's lifetime.
    refresh_skew: float | None = None
    #: Send the RFC 8707 ``resource`` parameter (some Microsoft Entra ID setups reject it: AADSTS9010010).
    send_resource_indicator: bool = True
    trust_unadvertised_pkce: bool = False
    #: An explicit protected resource metadata URL, for servers that publish it where it cannot be derived.
    resource_metadata_url: str | None = None
    #: Accept plain-HTTP OAuth endpoints on non-loopback hosts (never do this outside a lab).
    allow_insecure_http: bool = False
    #: Accept protected resource metadata naming a parent of the server URL as its ``resource`` (a gateway's).
    allow_parent_resource: bool = False
    #: Let servers name private, loopback and link-local addresses for the flow to fetch (flow/addresses.py).
    allow_private_networks: bool = False
    #: The largest OAuth response body read, in bytes, and the longest it may take to arrive, in seconds.
    max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE
    response_deadline: float = DEFAULT_RESPONSE_DEADLINE
    #: How many times a 403 ``insufficient_scope`` may trigger a new authorization for one request.
    max_step_up: int = 2
    #: ``"authorization_code"`` (a person approves), ``"client_credentials"`` (machine to machine) or the jwt-bearer
    #: grant's URN (workload identity, with ``assertion``).
    grant_type: str = "authorization_code"
    #: How a person approves: ``"redirect"`` (browser), ``"device"`` (RFC 8628) or ``"auto"`` (redirect when a
    #: browser can be opened here, else the device flow when the server offers it).
    interaction: str = "redirect"
    #: For ``"auto"``: why no browser can be opened here, or None when one can.
    headless_reason: str | None = None
    #: Signs ``private_key_jwt`` client assertions for the client credentials grant.
    private_key: ClientAssertionSigner | None = None
    #: A label for the credential (e.g. the high-level API's ``server_name``), kept in the record's ``names``.
    name: str | None = None
    #: The workload's JWT for the jwt-bearer grant, or where to get it (a file, a function).
    assertion: AssertionSource | None = field(default=None, repr=False)
    #: DPoP (RFC 9449): True for a key generated for the authorization server's algorithms, a
    #: :class:`~mcp_oauth_auth.DPoPKey` for the caller's own, False for bearer tokens (unless the resource requires
    #: DPoP).
    dpop: bool | DPoPKey = False
    #: A provider's additions to the requests (extra parameters, audience, scopes it refuses): from ``preset``,
    #: ``extra_authorize_params`` and ``extra_token_params`` (:mod:`mcp_oauth_auth.flow.request_rules`).
    request_rules: RequestRules = field(default_factory=RequestRules)
    #: Enterprise-managed authorization: the identity provider whose ID-JAG is presented in the jwt-bearer grant.
    identity_assertion: EnterpriseIdP | None = None
    #: The account label of the credential (part of its record's key): None for the default account.
    account: str | None = None
    #: Sent as ``login_hint`` in authorization requests (OpenID Connect Core §3.1.2.1): which account to sign in with.
    login_hint: str | None = None

    def __post_init__(self) -> None:
        self.client.validate()
        if not isinstance(self.request_rules, RequestRules):
            raise ConfigurationError(f"request_rules must be RequestRules, not {type(self.request_rules).__name__}")
        if not isinstance(self.dpop, bool):
            from mcp_oauth_auth.flow.dpop import DPoPKey

            if not isinstance(self.dpop, DPoPKey):
                raise ConfigurationError(f"dpop must be True, False or a DPoPKey, not a {type(self.dpop).__name__}")
        if self.grant_type not in ("authorization_code", "client_credentials", JWT_BEARER):
            raise ConfigurationError(
                f"grant_type must be 'authorization_code', 'client_credentials' or {JWT_BEARER!r} (with assertion=), "
                f"not {self.grant_type!r}"
            )
        if self.identity_assertion is not None:
            self._check_identity_assertion()
        elif (self.grant_type == JWT_BEARER) != (self.assertion is not None):
            raise ConfigurationError(
                "the jwt-bearer grant (workload identity) needs assertion= (the workload's JWT, a file or a function), "
                "and assertion= belongs to that grant only"
            )
        if self.assertion is not None:
            check_assertion_source(self.assertion)
            if not self.client.client_id:
                raise ConfigurationError(
                    "the jwt-bearer grant (workload identity) needs client_id= of the client the authorization "
                    "server knows the workload as"
                )
        if self.grant_type == "client_credentials" and not (
            self.client.client_id and (self.client.client_secret or self.private_key)
        ):
            raise ConfigurationError(
                "the client_credentials grant needs client_id= with client_secret= or private_key= "
                "(a confidential client registered with the authorization server)"
            )
        if self.interaction not in ("redirect", "device", "auto"):
            raise ConfigurationError(f"interaction must be 'redirect', 'device' or 'auto', not {self.interaction!r}")
        if self.private_key is not None and not self.client.client_id:
            raise ConfigurationError(
                "private_key (private_key_jwt client authentication) belongs to a pre-registered client: give its "
                "client_id= too"
            )
        if self.private_key is not None and not callable(getattr(self.private_key, "assertion", None)):
            raise ConfigurationError("private_key must be a PrivateKeyJWT (or have its assertion() method)")
        if not isinstance(self.retry, RetryPolicy):
            raise ConfigurationError(f"retry must be a RetryPolicy, not {type(self.retry).__name__}")
        if self.refresh_skew is not None and not is_duration(self.refresh_skew):
            raise ConfigurationError(f"refresh_skew must be a number of seconds (0 or more), not {self.refresh_skew!r}")
        if not is_whole_number(self.max_response_size, 1):
            raise ConfigurationError(
                f"max_response_size must be a number of bytes (1 or more), not {self.max_response_size!r}"
            )
        if not is_duration(self.response_deadline) or not self.response_deadline > 0:
            raise ConfigurationError(
                f"response_deadline must be a number of seconds (more than 0), not {self.response_deadline!r}"
            )
        if not is_whole_number(self.max_step_up, 0):
            raise ConfigurationError(f"max_step_up must be a whole number (0 or more), not {self.max_step_up!r}")
        for name in (
            "send_resource_indicator",
            "trust_unadvertised_pkce",
            "allow_insecure_http",
            "allow_parent_resource",
            "allow_private_networks",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"{name} must be True or False, not {getattr(self, name)!r}")
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise ConfigurationError(f"name must be a non-empty string, not {self.name!r}")
        check_account(self.account)
        if self.login_hint is not None and (not isinstance(self.login_hint, str) or not self.login_hint.strip()):
            raise ConfigurationError(f"login_hint must be a non-empty string, not {self.login_hint!r}")
        if self.resource_metadata_url is not None:
            require_secure_url(
                self.resource_metadata_url, "resource_metadata_url", allow_insecure_http=self.allow_insecure_http
            )
        if self.redirect_uri is not None:
            check_redirect_uri(self.redirect_uri)

    def _check_identity_assertion(self) -> None:
        """Enterprise-managed authorization: an EnterpriseIdP, the jwt-bearer grant, and a confidential client."""
        from mcp_oauth_auth.flow.idp import EnterpriseIdP

        if not isinstance(self.identity_assertion, EnterpriseIdP):
            raise ConfigurationError(
                f"identity_assertion must be an EnterpriseIdP, not a {type(self.identity_assertion).__name__}"
            )
        if self.assertion is not None:
            raise ConfigurationError("identity_assertion= and assertion= are two different grants: give one")
        if self.grant_type != JWT_BEARER:
            raise ConfigurationError(
                f"identity_assertion= uses the jwt-bearer grant, not grant_type={self.grant_type!r}"
            )
        if not (self.client.client_id and (self.client.client_secret or self.private_key)):
            raise ConfigurationError(
                "enterprise-managed authorization needs client_id= with client_secret= or private_key= of the client "
                "registered at the MCP authorization server (it authenticates when presenting the ID-JAG)"
            )
        self.identity_assertion.validate(allow_insecure_http=self.allow_insecure_http)
