"""``python -m mcp_oauth_auth``: the ``mcp-oauth`` command line."""

from mcp_oauth_auth.cli import main

raise SystemExit(main())
