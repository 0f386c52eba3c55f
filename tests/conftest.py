from __future__ import annotations

import importlib.util

# The official MCP SDK 2.x and its httpx2 transport need Python 3.11+; on 3.10 those modules are not collected.
collect_ignore = (
    [] if importlib.util.find_spec("httpx2") else ["integration/test_mcp_sdk_e2e.py", "integration/mcp_sdk_server.py"]
)
