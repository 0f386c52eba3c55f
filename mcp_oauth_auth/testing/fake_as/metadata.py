"""Where the authorization server's endpoints are, which grants it accepts, and its metadata documents (RFC 8414,
OpenID Connect Discovery) at the well-known paths of ``as_metadata_mode``."""

from __future__ import annotations

from typing import Any

from mcp_oauth_auth.testing.fake_as.oauth_http import method_not_allowed, not_found
from mcp_oauth_auth.testing.fake_as.records import JWT_METHOD
from mcp_oauth_auth.testing.fake_as.state import AuthorizationServerState
from mcp_oauth_auth.testing.fake_http import FakeRequest, FakeResponse, json_response

__all__ = ["DEVICE_CODE_GRANT", "MetadataEndpoint"]

#: ``grant_type`` of the device authorization grant (RFC 8628 §3.4).
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

_SUPPORTED_GRANTS = ("authorization_code", "refresh_token")
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: The ``authorization_grant_profiles_supported`` value of the Identity Assertion JWT Authorization Grant.
ID_JAG_PROFILE = "urn:ietf:params:oauth:grant-profile:id-jag"


class MetadataEndpoint(AuthorizationServerState):
    """Endpoint paths and URLs, supported grants, and the metadata endpoint."""

    def endpoint_paths(self) -> dict[str, str]:
        """Path on the AS origin -> logical endpoint name."""
        prefix = self._context.config.issuer_path
        names = ("authorize", "token", "register", "revoke", "introspect", "userinfo", "jwks", "device_authorization")
        paths = {f"{prefix}/{name}": name for name in names}
        paths[f"{prefix}/device"] = "device_verification"
        return paths

    def supported_grants(self) -> tuple[str, ...]:
        """The grant types the token endpoint accepts, per the configuration."""
        config = self._context.config
        grants = list(_SUPPORTED_GRANTS)
        if config.device_authorization_enabled:
            grants.append(DEVICE_CODE_GRANT)
        if config.client_credentials_enabled:
            grants.append("client_credentials")
        if config.workload_issuers or config.idp_base_url is not None:
            grants.append(JWT_BEARER)
        return tuple(grants)

    @property
    def device_authorization_endpoint(self) -> str:
        return f"{self._context.issuer}/device_authorization"

    @property
    def verification_uri(self) -> str:
        return f"{self._context.issuer}/device"

    def metadata_paths(self) -> dict[str, str]:
        """Path on the AS origin -> "oauth" or "oidc", per ``as_metadata_mode``."""
        config = self._context.config
        prefix = config.issuer_path
        if config.as_metadata_mode == "oauth":
            return {f"/.well-known/oauth-authorization-server{prefix}": "oauth"}
        if config.as_metadata_mode == "oidc":
            return {
                f"/.well-known/openid-configuration{prefix}": "oidc",
                f"{prefix}/.well-known/openid-configuration": "oidc",
            }
        if config.as_metadata_mode == "oidc_append_only":
            return {f"{prefix}/.well-known/openid-configuration": "oidc"}
        return {}

    def metadata_document(self, kind: str) -> dict[str, Any]:
        config = self._context.config
        issuer = self._context.issuer
        document: dict[str, Any] = {
            "issuer": config.metadata_issuer if config.metadata_issuer is not None else issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "revocation_endpoint": f"{issuer}/revoke",
            "introspection_endpoint": f"{issuer}/introspect",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(self.supported_grants()),
            "scopes_supported": list(config.scopes_supported),
            "token_endpoint_auth_methods_supported": list(config.token_endpoint_auth_methods_supported),
            "revocation_endpoint_auth_methods_supported": list(config.token_endpoint_auth_methods_supported),
        }
        if config.registration_enabled:
            document["registration_endpoint"] = f"{issuer}/register"
        if config.device_authorization_enabled:
            document["device_authorization_endpoint"] = self.device_authorization_endpoint
        if JWT_METHOD in config.token_endpoint_auth_methods_supported:
            document["token_endpoint_auth_signing_alg_values_supported"] = ["ES256", "RS256"]
        if config.code_challenge_methods_supported is not None:
            document["code_challenge_methods_supported"] = list(config.code_challenge_methods_supported)
        if config.iss_parameter_supported:
            document["authorization_response_iss_parameter_supported"] = True
        if config.client_id_metadata_document_supported:
            document["client_id_metadata_document_supported"] = True
        profiles = config.authorization_grant_profiles_supported
        if profiles is None and config.idp_base_url is not None:
            profiles = [ID_JAG_PROFILE]
        if profiles is not None:
            document["authorization_grant_profiles_supported"] = list(profiles)
        if config.dpop:
            document["dpop_signing_alg_values_supported"] = list(config.dpop_signing_alg_values_supported)
        if kind == "oidc":
            document.update(
                userinfo_endpoint=f"{issuer}/userinfo",
                jwks_uri=f"{issuer}/jwks",
                subject_types_supported=["public"],
                id_token_signing_alg_values_supported=["RS256"],
            )
        return document

    def handle_metadata(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        if injected is not None:
            return injected
        kind = self.metadata_paths().get(request.path)
        if kind is None:
            return not_found(request.path)
        if request.method != "GET":
            return method_not_allowed("GET")
        return json_response(200, self.metadata_document(kind))
