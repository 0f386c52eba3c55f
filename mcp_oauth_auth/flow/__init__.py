"""The sans-IO MCP authorization flow.

Generators that yield :mod:`effects <mcp_oauth_auth.flow.effects>` ("send this HTTP request", "ask the person to
authorize", "sleep", "load/save a record") and are sent back the results. No HTTP library, no event loop: the
drivers in :mod:`mcp_oauth_auth.auth` do the I/O.
"""
