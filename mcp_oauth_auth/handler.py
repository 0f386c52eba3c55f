"""The high-level API that users of chuk-mcp-client-oauth know: :class:`OAuthHandler`, :class:`MCPOAuthClient`,
:class:`TokenManager`, :class:`TokenStoreFactory` and :class:`OAuthTokens`.

Everything here is a thin layer: the protocol (discovery, registration, PKCE, token requests, revocation) comes
from :mod:`mcp_oauth_auth.flow` and :class:`~mcp_oauth_auth.MCPOAuth`, the persistence from the credential stores.

Names. A ``server_name`` is a label people give a credential; it is kept in the record's ``names`` and is never
the key (records are keyed by authorization server issuer and protected resource). A label belongs to one server
at a time: when the handler uses a name for a server, the label is attached to that server's credential and
removed from any other. Lookups by name with a URL only match records for that URL, and a handler never hands out
a token of another server than the one it last used under a name.

Tokens saved by hand (:meth:`TokenManager.save_tokens` for a name that labels no credential) have no issuer or
resource to be keyed by: they are kept in an *unbound* record (issuer :data:`UNBOUND_ISSUER`) that only
:class:`TokenManager` reads back, and that :class:`~mcp_oauth_auth.MCPOAuth` and :class:`OAuthHandler` never send
anywhere.
"""

from mcp_oauth_auth.compat.client import MCPOAuthClient
from mcp_oauth_auth.compat.handler import OAuthHandler
from mcp_oauth_auth.compat.manager import UNBOUND_ISSUER, TokenManager, is_unbound
from mcp_oauth_auth.compat.tokens import OAuthTokens
from mcp_oauth_auth.storage.backends import TokenStoreBackend
from mcp_oauth_auth.storage.factory import TokenStoreFactory

__all__ = [
    "UNBOUND_ISSUER",
    "MCPOAuthClient",
    "OAuthHandler",
    "OAuthTokens",
    "TokenManager",
    "TokenStoreBackend",
    "TokenStoreFactory",
    "is_unbound",
]
