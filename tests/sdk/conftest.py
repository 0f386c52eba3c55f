from __future__ import annotations

import importlib.util

# The official MCP SDK is in the dev extra only where its 2.x line installs (Python 3.11+); the nox sessions mcp1
# and mcp2 install a pinned generation everywhere. Without any `mcp`, these modules are not collected.
collect_ignore = [] if importlib.util.find_spec("mcp") else ["sdk_server.py", "test_sdk_generations.py"]
