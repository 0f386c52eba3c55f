"""The one effect loop around the sans-IO flow, and what performs its effects.

:mod:`~mcp_oauth_auth.driving.loop` runs a flow: it answers each effect with what a performer or the caller's HTTP
client produced, sync or async (:mod:`~mcp_oauth_auth.driving.perform`: the store session, the authorizer, sleep;
:mod:`~mcp_oauth_auth.driving.http`: the flow's requests and responses as ``httpx`` / ``httpx2`` ones). MCPOAuth's
auth flows, ``authenticate()`` / ``logout()``, the step-by-step ``MCPOAuthClient`` and ``mcp-oauth doctor`` all run
their flows through it.
"""
