"""The modules of ``mcp_oauth_auth.flow`` import one another without a cycle.

Every import counts: those under ``if TYPE_CHECKING:`` and those inside functions too. A cycle closed by an
annotation-only import is still two modules that each need the other (the one of issue 12 closed through
``effects.py`` naming ``DeviceAuthorization``), and it turns into an import error as soon as the name is needed at
run time; a function-local import defers the cost of loading a module, it does not make the dependency go away.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mcp_oauth_auth.flow

FLOW = Path(mcp_oauth_auth.flow.__file__).parent
PACKAGE = "mcp_oauth_auth.flow"


def flow_imports(source: str, modules: set[str]) -> set[str]:
    """The modules of ``modules`` (names within the flow package) that ``source`` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = PACKAGE if node.level else (node.module or "")
            if node.level and node.module:
                base = f"{PACKAGE}.{node.module}"
            # ``from mcp_oauth_auth.flow import x`` may import the submodule x; ``from ...flow.x import y`` imports x.
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            if name.startswith(f"{PACKAGE}."):
                module = name.removeprefix(f"{PACKAGE}.").split(".")[0]
                if module in modules:
                    found.add(module)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports) as a path that ends where it starts, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for imported in sorted(graph[module]):
            cycle = visit(imported, [*path, module])
            if cycle is not None:
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module, [])
        if cycle is not None:
            return cycle
    return None


def flow_graph() -> dict[str, set[str]]:
    paths = {path.stem: path for path in FLOW.glob("*.py") if path.stem != "__init__"}
    modules = set(paths)
    return {name: flow_imports(path.read_text(encoding="utf-8"), modules) - {name} for name, path in paths.items()}


def test_the_flow_modules_import_one_another_without_a_cycle() -> None:
    graph = flow_graph()
    assert len(graph) > 10  # the walk found the modules
    assert "effects" in graph["fetch"]  # and their imports
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in mcp_oauth_auth.flow: " + " -> ".join(cycle or ())


def test_the_effects_and_plain_data_modules_import_nothing_from_the_flow_but_plain_data() -> None:
    graph = flow_graph()
    assert graph["device_authorization"] == set()
    assert graph["effects"] <= {"device_authorization"}


def test_imports_under_type_checking_and_in_functions_count() -> None:
    source = """
from typing import TYPE_CHECKING
from mcp_oauth_auth.flow.effects import Effect
if TYPE_CHECKING:
    from mcp_oauth_auth.flow.engine import FlowEngine
def later():
    import mcp_oauth_auth.flow.tokens
    from mcp_oauth_auth.flow import grants
    from .urls import safe_url
    from mcp_oauth_auth.records import TokenSet
"""
    modules = {"effects", "engine", "tokens", "grants", "urls", "device"}
    assert flow_imports(source, modules) == {"effects", "engine", "tokens", "grants", "urls"}


def test_a_cycle_is_found_and_shown() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
