"""The ``mcp-oauth`` command: log in to MCP servers, keep the credentials, use them, and check servers.

``main`` is the console script's entry point (``mcp-oauth``, also ``python -m mcp_oauth_auth``). The package is
split by job: :mod:`~mcp_oauth_auth.cli.app` (arguments, dispatch, exit codes), :mod:`~mcp_oauth_auth.cli.login`
(the ``login`` command), :mod:`~mcp_oauth_auth.cli.commands` (the other commands), :mod:`~mcp_oauth_auth.cli.summary`
(what they show of a credential), :mod:`~mcp_oauth_auth.cli.doctor` (server checks), :mod:`~mcp_oauth_auth.cli.demo`
(the narrated demo), :mod:`~mcp_oauth_auth.cli.lookup` (credentials by name), :mod:`~mcp_oauth_auth.cli.mcp_session`
(a small MCP client), :mod:`~mcp_oauth_auth.cli.output` (the terminal).
"""

from mcp_oauth_auth.cli.app import main

__all__ = ["main"]
