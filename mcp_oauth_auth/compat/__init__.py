"""The seed-compatible API (chuk-mcp-client-oauth's names and shapes), as a façade over the library.

:mod:`~mcp_oauth_auth.compat.tokens` (OAuthTokens, a view of TokenSet), :mod:`~mcp_oauth_auth.compat.manager`
(TokenManager: credentials by name), :mod:`~mcp_oauth_auth.compat.handler` (OAuthHandler, over MCPOAuth) and
:mod:`~mcp_oauth_auth.compat.client` (MCPOAuthClient, over the flow's public functions and the shared driver);
TokenStoreFactory lives beside the stores (:mod:`mcp_oauth_auth.storage.factory`). Everything is importable from
:mod:`mcp_oauth_auth.handler` and :mod:`mcp_oauth_auth`, as before.
"""
