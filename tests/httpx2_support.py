"""Where the tests expect httpx2: it is published for Python 3.11+ only, and the ``dev`` extra installs it there.

On 3.10 the tests of httpx2 clients are skipped with the reason (MCPOAuth is a plain ``httpx.Auth`` there); on 3.11+
they run, so an environment missing httpx2 fails them instead of passing them silently.
"""

from __future__ import annotations

import sys

import pytest

#: pyproject.toml's ``httpx2`` extra: ``httpx2>=2.16; python_version >= '3.11'``.
HTTPX2_EXPECTED = sys.version_info >= (3, 11)
WITHOUT_HTTPX2 = "httpx2 is published for Python 3.11+ only: on 3.10 MCPOAuth is a plain httpx.Auth"

needs_httpx2 = pytest.mark.skipif(not HTTPX2_EXPECTED, reason=WITHOUT_HTTPX2)


def skip_module_without_httpx2() -> None:
    """Skip the calling test module, with the reason, on a Python that has no httpx2."""
    if not HTTPX2_EXPECTED:
        pytest.skip(WITHOUT_HTTPX2, allow_module_level=True)
