"""The documentation renders as written: Python-Markdown (MkDocs) nests a list only under 4 spaces of indentation, so
a sub-list indented by 1-3 spaces is silently flattened into its parent list (the guide's flow steps were)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
_SHALLOW_ITEM = re.compile(r"^ {1,3}(?:[-*+]|\d+\.) ")
_FENCE = re.compile(r"^\s*(```|~~~)")


def shallow_nested_items(text: str) -> list[int]:
    """Line numbers of list items indented by 1-3 spaces outside code blocks."""
    found, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and _SHALLOW_ITEM.match(line):
            found.append(number)
    return found


@pytest.mark.parametrize("page", sorted(DOCS.rglob("*.md")), ids=lambda page: str(page.relative_to(DOCS)))
def test_nested_lists_are_indented_by_four_spaces(page: Path) -> None:
    assert shallow_nested_items(page.read_text(encoding="utf-8")) == []


def test_the_check_finds_a_shallow_sub_list() -> None:
    text = "1. step\n   - detail\n    - fine\n```\n   - code\n```\n"
    assert shallow_nested_items(text) == [2]
