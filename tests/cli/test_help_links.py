"""Help texts and hints work for people who installed the package: they link to the published documentation (the
project's Documentation URL), never to a path inside a clone of the repository."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from mcp_oauth_auth.cli.app import build_parser
from mcp_oauth_auth.cli.errors import DOCUMENTATION, explain
from mcp_oauth_auth.exceptions import TokenStorageError

from .runner import run_cli

ROOT = Path(__file__).resolve().parents[2]
#: "docs/..." not preceded by the documentation URL's host part (a path relative to a clone).
_RELATIVE_DOCS = re.compile(r"(?<![\w/.])docs/")


def test_the_documentation_url_is_the_projects() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # (tomllib is 3.11+)
    assert re.findall(r'^Documentation = "(.*)"$', pyproject, re.MULTILINE) == [DOCUMENTATION]


def _all_help() -> list[str]:
    parser = build_parser()
    texts = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            texts.extend(sub.format_help() for sub in action.choices.values())
    return texts


def test_no_help_text_points_into_a_clone() -> None:
    for text in _all_help():
        assert not _RELATIVE_DOCS.search(text), text


def test_the_help_links_the_published_documentation(home: Path) -> None:
    result = run_cli(home, "--help")
    assert result.returncode == 0
    assert f"{DOCUMENTATION}/cli.md" in result.stdout


@pytest.mark.parametrize("error", [TokenStorageError("the store failed")])
def test_hints_point_to_the_published_documentation(error: Exception) -> None:
    explained = explain(error)
    assert explained.hint is not None
    assert not _RELATIVE_DOCS.search(explained.hint)
    assert DOCUMENTATION in explained.hint
