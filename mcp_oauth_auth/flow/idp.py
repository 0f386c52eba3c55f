"""The enterprise identity provider of enterprise-managed authorization (:class:`EnterpriseIdP`, what the caller
configures) and the identifiers of the Identity Assertion JWT Authorization Grant (ID-JAG): plain data, used by
:mod:`mcp_oauth_auth.flow.enterprise` (the two legs) and :mod:`mcp_oauth_auth.flow.sso` (the IdP's sign-in)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.client_auth import ClientAssertionSigner
from mcp_oauth_auth.flow.jwt_bearer import AssertionSource, check_assertion_source
from mcp_oauth_auth.flow.urls import require_secure_url
from mcp_oauth_auth.records import ClientRegistration

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata

__all__ = [
    "ID_JAG_PROFILE",
    "ID_JAG_TOKEN_TYPE",
    "ID_TOKEN_TYPE",
    "SAML2_TOKEN_TYPE",
    "TOKEN_EXCHANGE",
    "EnterpriseIdP",
]

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_JAG_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
SAML2_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:saml2"
#: The value an authorization server lists in ``authorization_grant_profiles_supported`` when it accepts ID-JAGs.
ID_JAG_PROFILE = "urn:ietf:params:oauth:grant-profile:id-jag"


@dataclass(frozen=True)
class EnterpriseIdP:
    """The enterprise identity provider of enterprise-managed authorization, and how this client is known there.

    Args:
        client_id: this client's ID at the IdP (the IdP stamps it into each ID-JAG as the client at the MCP side
            too, so it is usually the same application registered twice).
        issuer: the IdP's issuer identifier: its token endpoint (and, for the sign-in, its authorization endpoint)
            are discovered from it (RFC 8414 / OpenID Connect Discovery).
        token_endpoint: the IdP's token endpoint, instead of ``issuer`` (then an ID token or SAML assertion must be
            given: signing in needs the discovered metadata).
        client_secret: the client's secret at the IdP; private_key: a :class:`~mcp_oauth_auth.PrivateKeyJWT` for
            ``private_key_jwt`` there instead. With neither, the client is public at the IdP (its ``client_id`` in
            the form).
        id_token: the person's ID token: a ``str``, a ``pathlib.Path`` re-read for every exchange, or a function
            returning it (sync or async). Without it (and without ``saml_assertion``), the person signs in to the
            IdP (OpenID Connect, authorization code + PKCE) through the MCPOAuth authorizer, once for every MCP
            server using the same store, IdP and client.
        saml_assertion: a SAML 2 assertion (base64url), the same kinds of sources, instead of an ID token.
        scopes: the scopes of the sign-in (``openid`` always; ``offline_access`` for a refresh token when the IdP
            offers it).
        token_endpoint_auth_method: force ``client_secret_basic`` or ``client_secret_post`` at the IdP.
    """

    client_id: str
    issuer: str | None = None
    token_endpoint: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    private_key: ClientAssertionSigner | None = field(default=None, repr=False)
    id_token: AssertionSource | None = field(default=None, repr=False)
    saml_assertion: AssertionSource | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ("openid",)
    token_endpoint_auth_method: str | None = None

    def validate(self, *, allow_insecure_http: bool) -> None:
        """ConfigurationError for an incomplete or contradictory IdP (never showing a secret)."""
        if not isinstance(self.client_id, str) or not self.client_id.strip():
            raise ConfigurationError("EnterpriseIdP needs client_id= (this client's ID at the identity provider)")
        if (self.issuer is None) == (self.token_endpoint is None):
            raise ConfigurationError(
                "EnterpriseIdP needs either issuer= (the token endpoint is discovered) or token_endpoint=, not both"
            )
        for name in ("issuer", "token_endpoint"):
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, str):
                    raise ConfigurationError(f"EnterpriseIdP {name} must be a URL string")
                require_secure_url(value, f"EnterpriseIdP {name}", allow_insecure_http=allow_insecure_http)
        if self.client_secret is not None and self.private_key is not None:
            raise ConfigurationError("EnterpriseIdP takes client_secret= or private_key=, not both")
        if self.client_secret is not None and (not isinstance(self.client_secret, str) or not self.client_secret):
            raise ConfigurationError("EnterpriseIdP client_secret must be a non-empty string")
        if self.private_key is not None and not callable(getattr(self.private_key, "assertion", None)):
            raise ConfigurationError("EnterpriseIdP private_key must be a PrivateKeyJWT (or have its assertion())")
        if self.id_token is not None and self.saml_assertion is not None:
            raise ConfigurationError("EnterpriseIdP takes id_token= or saml_assertion=, not both")
        for source in (self.id_token, self.saml_assertion):
            if source is not None:
                check_assertion_source(source)
        if self.subject_source is None and self.issuer is None:
            raise ConfigurationError(
                "EnterpriseIdP without id_token= or saml_assertion= signs the person in at the identity provider, "
                "which needs issuer= (its authorization endpoint is discovered from it)"
            )
        if not isinstance(self.scopes, tuple) or not all(isinstance(scope, str) for scope in self.scopes):
            raise ConfigurationError("EnterpriseIdP scopes must be a tuple of strings")
        if self.token_endpoint_auth_method not in (None, "client_secret_basic", "client_secret_post"):
            raise ConfigurationError(
                "EnterpriseIdP token_endpoint_auth_method must be 'client_secret_basic' or 'client_secret_post'"
            )

    @property
    def subject_source(self) -> AssertionSource | None:
        """Where the subject token comes from when the caller gives it (else the IdP sign-in)."""
        return self.id_token if self.id_token is not None else self.saml_assertion

    @property
    def subject_token_type(self) -> str:
        return SAML2_TOKEN_TYPE if self.saml_assertion is not None else ID_TOKEN_TYPE

    def client(self, metadata: AuthorizationServerMetadata | None = None) -> ClientRegistration:
        """This client as registered at the IdP: ``private_key_jwt``, a secret (the method the IdP supports), or
        public."""
        from mcp_oauth_auth.flow.registration import choose_secret_auth_method, private_key_jwt_method

        if self.private_key is not None:
            method = private_key_jwt_method(metadata) if metadata is not None else "private_key_jwt"
        elif self.client_secret is not None:
            preferred = self.token_endpoint_auth_method
            method = choose_secret_auth_method(metadata, preferred) if metadata else preferred or "client_secret_basic"
        else:
            method = "none"
        return ClientRegistration(
            client_id=self.client_id,
            kind="pre-registered",
            token_endpoint_auth_method=method,
            client_secret=self.client_secret,
            grant_types=(TOKEN_EXCHANGE,),
        )
