"""mcp_oauth_auth: OAuth 2.1 for Model Context Protocol clients.

``httpx.AsyncClient(auth=MCPOAuth("https://mcp.example.com/mcp"))`` — discovery, registration, the person's
authorization, token refresh and step-up happen inline, through your own client.
"""

from typing import TYPE_CHECKING, Any

from mcp_oauth_auth.exceptions import (
    AuthorizationDeniedError,
    AuthorizationError,
    AuthorizationTimeoutError,
    CallbackPortInUseError,
    ClientRegistrationRequiredError,
    ClientUnknownError,
    ConfigurationError,
    ConnectionFailedError,
    DiscoveryError,
    IdentityAssertionError,
    InsufficientScopeError,
    InvalidGrantError,
    IssuerMismatchError,
    OAuthError,
    PKCENotSupportedError,
    RecordConflictError,
    RegistrationError,
    RegistrationPolicyError,
    RequestNotReplayableError,
    ResourceMismatchError,
    ResponseLimitError,
    StateMismatchError,
    StoreLockedError,
    StoreUnavailableError,
    TemporaryOAuthError,
    TokenExchangeError,
    TokenRefreshError,
    TokenRevocationError,
    TokenStorageError,
    TooManyRedirectsError,
    UnsafeURLError,
    WorkloadIdentityError,
    WrongPasswordError,
)

if TYPE_CHECKING:
    from mcp_oauth_auth.auth import MCPOAuth
    from mcp_oauth_auth.authorizers.base import Authorizer, CallableAuthorizer
    from mcp_oauth_auth.authorizers.device import DeviceAuthorizer
    from mcp_oauth_auth.authorizers.headless import HeadlessAuthorizer
    from mcp_oauth_auth.authorizers.loopback import LoopbackBrowserAuthorizer
    from mcp_oauth_auth.authorizers.paste import PasteBackAuthorizer
    from mcp_oauth_auth.flow.dpop import DPoPKey
    from mcp_oauth_auth.flow.fetch import RetryPolicy
    from mcp_oauth_auth.flow.idp import EnterpriseIdP
    from mcp_oauth_auth.flow.private_key_jwt import PrivateKeyJWT
    from mcp_oauth_auth.handler import MCPOAuthClient, OAuthHandler, OAuthTokens, TokenManager, TokenStoreFactory
    from mcp_oauth_auth.presets import ProviderPreset
    from mcp_oauth_auth.records import ClientRegistration, CredentialRecord, RecordKey, TokenSet
    from mcp_oauth_auth.storage import (
        EncryptedFileTokenStore,
        KeyringTokenStore,
        MemoryTokenStore,
        RedisTokenStore,
        TokenStore,
        VaultTokenStore,
        get_available_backends,
    )
    from mcp_oauth_auth.storage.backends import TokenStoreBackend

__version__ = "0.1.0"


#: Imported on first use, so that ``import mcp_oauth_auth`` (and ``mcp-oauth --help``) does not load httpx, anyio
#: and the whole flow: name -> the module that defines it.
_LAZY = {
    "MCPOAuth": "mcp_oauth_auth.auth",
    "Authorizer": "mcp_oauth_auth.authorizers.base",
    "CallableAuthorizer": "mcp_oauth_auth.authorizers.base",
    "RetryPolicy": "mcp_oauth_auth.flow.fetch",
    "ClientRegistration": "mcp_oauth_auth.records",
    "CredentialRecord": "mcp_oauth_auth.records",
    "RecordKey": "mcp_oauth_auth.records",
    "TokenSet": "mcp_oauth_auth.records",
    "MemoryTokenStore": "mcp_oauth_auth.storage",
    "TokenStore": "mcp_oauth_auth.storage",
    "ProviderPreset": "mcp_oauth_auth.presets",
}


def __getattr__(name: str) -> Any:
    """The library's classes are imported on first use (start-up time)."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # once: later lookups find it without this function
        return value
    if name in ("DeviceAuthorizer", "HeadlessAuthorizer", "LoopbackBrowserAuthorizer", "PasteBackAuthorizer"):
        from mcp_oauth_auth import authorizers

        return getattr(authorizers, name)
    if name == "DPoPKey":
        from mcp_oauth_auth.flow.dpop import DPoPKey

        return DPoPKey
    if name == "EnterpriseIdP":
        from mcp_oauth_auth.flow.idp import EnterpriseIdP

        return EnterpriseIdP
    if name == "PrivateKeyJWT":
        from mcp_oauth_auth.flow.private_key_jwt import PrivateKeyJWT

        return PrivateKeyJWT
    if name in (
        "EncryptedFileTokenStore",
        "KeyringTokenStore",
        "RedisTokenStore",
        "VaultTokenStore",
        "get_available_backends",
    ):
        from mcp_oauth_auth import storage

        return getattr(storage, name)
    if name in ("MCPOAuthClient", "OAuthHandler", "OAuthTokens", "TokenManager", "TokenStoreFactory"):
        from mcp_oauth_auth import handler

        return getattr(handler, name)
    if name == "TokenStoreBackend":
        from mcp_oauth_auth.storage.backends import TokenStoreBackend

        return TokenStoreBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AuthorizationDeniedError",
    "AuthorizationError",
    "AuthorizationTimeoutError",
    "Authorizer",
    "CallableAuthorizer",
    "CallbackPortInUseError",
    "ClientRegistration",
    "ClientRegistrationRequiredError",
    "ClientUnknownError",
    "ConfigurationError",
    "ConnectionFailedError",
    "CredentialRecord",
    "DPoPKey",
    "DeviceAuthorizer",
    "DiscoveryError",
    "EncryptedFileTokenStore",
    "EnterpriseIdP",
    "HeadlessAuthorizer",
    "IdentityAssertionError",
    "InsufficientScopeError",
    "InvalidGrantError",
    "IssuerMismatchError",
    "KeyringTokenStore",
    "LoopbackBrowserAuthorizer",
    "MCPOAuth",
    "MCPOAuthClient",
    "MemoryTokenStore",
    "OAuthError",
    "OAuthHandler",
    "OAuthTokens",
    "PKCENotSupportedError",
    "PasteBackAuthorizer",
    "PrivateKeyJWT",
    "ProviderPreset",
    "RecordConflictError",
    "RecordKey",
    "RedisTokenStore",
    "RegistrationError",
    "RegistrationPolicyError",
    "RequestNotReplayableError",
    "ResourceMismatchError",
    "ResponseLimitError",
    "RetryPolicy",
    "StateMismatchError",
    "StoreLockedError",
    "StoreUnavailableError",
    "TemporaryOAuthError",
    "TokenExchangeError",
    "TokenManager",
    "TokenRefreshError",
    "TokenRevocationError",
    "TokenSet",
    "TokenStorageError",
    "TokenStore",
    "TokenStoreBackend",
    "TokenStoreFactory",
    "TooManyRedirectsError",
    "UnsafeURLError",
    "VaultTokenStore",
    "WorkloadIdentityError",
    "WrongPasswordError",
    "__version__",
    "get_available_backends",
]
