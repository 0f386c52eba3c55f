"""A griffe extension for the API reference: Sphinx cross-reference roles in docstrings become links.

The docstrings of ``mcp_oauth_auth`` refer to other objects the way Sphinx and IDEs understand
(``:class:`~mcp_oauth_auth.storage.TokenStore```, ``:meth:`authorize```). Markdown has no such roles, so this
extension rewrites each one, once the package is loaded, into an *optional* cross-reference for mkdocs-autorefs:

* the target is looked up the way Python scoping suggests — as written, then relative to the object, its class and
  its module — and replaced by its canonical path, which is what mkdocstrings registers;
* the link text follows Sphinx: ``~`` keeps the last component only, functions and methods get ``()``, and
  ``title <target>`` shows the title;
* a target that is not rendered anywhere in the site (a private helper, an object of another library) stays plain
  code: optional references never fail the strict build.

Loaded from ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?P<role>class|meth|func|mod|attr|data|exc|obj|const):`(?P<target>[^`]+)`")
_EXPLICIT_TITLE = re.compile(r"(?P<title>.*?)\s*<(?P<target>[^<>]+)>")
_CALLABLE_ROLES = frozenset({"meth", "func"})


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` in every docstring of a loaded package into an optional autoref."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            docstring = obj.docstring
            if docstring is not None and ":`" in docstring.value:
                docstring.value = _ROLE.sub(lambda match, obj=obj: _reference(match, obj, loader), docstring.value)


def _objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    """``obj`` and everything defined in it (not what it imports)."""
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)  # type: ignore[arg-type]


def _reference(match: re.Match[str], context: griffe.Object, loader: griffe.GriffeLoader) -> str:
    written = match["target"].strip()
    explicit = _EXPLICIT_TITLE.fullmatch(written)
    if explicit:  # :mod:`title <target>`
        written = explicit["target"]
    target = written.lstrip("~.").removesuffix("()")
    if explicit:
        title = explicit["title"]
    else:
        title = target.rsplit(".", 1)[-1] if written.startswith("~") else target
        if match["role"] in _CALLABLE_ROLES:
            title += "()"
    identifier = _resolve(target, context, loader) or target
    return f'<autoref identifier="{html.escape(identifier)}" optional><code>{html.escape(title)}</code></autoref>'


def _resolve(target: str, context: griffe.Object, loader: griffe.GriffeLoader) -> str | None:
    """The canonical path of ``target`` as seen from ``context``, or None when it is not in a loaded package."""
    scopes: list[str] = [""]
    scope: griffe.Object | None = context
    while scope is not None:
        scopes.append(scope.path + ".")
        scope = scope.parent
    for prefix in scopes:
        try:
            found = loader.modules_collection[prefix + target]
            return str(found.canonical_path)
        except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            continue
    return None
