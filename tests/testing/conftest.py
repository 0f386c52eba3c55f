"""Tests of mcp_oauth_auth.testing: the fake stack, and the plugin (pytester for running small test files as users
would, plus dogfooding)."""

from __future__ import annotations

import importlib

import pytest

from ..httpx2_support import HTTPX2_EXPECTED

# Modules that the inner pytest runs would import lazily are imported here first: pytester restores sys.modules
# after each test, and a module dropped there would later be imported a second time, with new classes.
for _module in (
    "mcp_oauth_auth.authorizers.device",
    "mcp_oauth_auth.flow.device",
    "mcp_oauth_auth.testing.assertions",
    "mcp_oauth_auth.testing.fake",
    "mcp_oauth_auth.testing.server",
    "respx",
    "uvicorn",
    *(["httpx2"] if HTTPX2_EXPECTED else []),
):
    importlib.import_module(_module)


def pytest_configure(config: pytest.Config) -> None:
    # The same as ``pytest_plugins = ["pytester"]``, which pytest refuses in a conftest.py below the rootdir when
    # the whole suite is collected ("Defining 'pytest_plugins' in a non-top-level conftest is no longer
    # supported"). Nothing happens when pytester is already active (``-p pytester``, or a top-level conftest).
    config.pluginmanager.import_plugin("pytester")
