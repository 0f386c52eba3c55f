"""The layers of docs/architecture.md: the stores and the authorizers are what the driver performs effects with,
so they use the flow's plain rules and data only (URL rules, value parsing, the device authorization's data),
never its generators, the engine or the driver; and the sans-IO flow imports no driver, store or authorizer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mcp_oauth_auth

PACKAGE = Path(mcp_oauth_auth.__file__).parent

#: What storage/ and authorizers/ may import from the flow: rules and plain data, no effects.
PLAIN_FLOW_MODULES = {
    "mcp_oauth_auth.flow.urls",
    "mcp_oauth_auth.flow.values",
    "mcp_oauth_auth.flow.device_authorization",
}


def imported(path: Path) -> set[str]:
    """Every absolute module name a file imports, anywhere in it (TYPE_CHECKING and function-local imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _files(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).glob("*.py"))


@pytest.mark.parametrize("path", _files("storage") + _files("authorizers"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stores_and_authorizers_use_only_the_flows_plain_rules(path: Path) -> None:
    names = imported(path)
    flow = {name for name in names if name.startswith("mcp_oauth_auth.flow")}
    assert flow <= PLAIN_FLOW_MODULES, f"{path.name} imports {sorted(flow - PLAIN_FLOW_MODULES)}"
    assert not {name for name in names if name.startswith("mcp_oauth_auth.driving") or name == "mcp_oauth_auth.auth"}


@pytest.mark.parametrize("path", _files("flow"), ids=lambda p: p.name)
def test_the_flow_performs_nothing_itself(path: Path) -> None:
    outside = {
        name
        for name in imported(path)
        if name.startswith("mcp_oauth_auth.")
        and not name.startswith(("mcp_oauth_auth.flow", "mcp_oauth_auth.records", "mcp_oauth_auth.exceptions"))
    }
    assert not outside, f"flow/{path.name} imports {sorted(outside)}"
    assert not imported(path) & {"httpx", "httpx2", "anyio", "socket", "keyring"}
