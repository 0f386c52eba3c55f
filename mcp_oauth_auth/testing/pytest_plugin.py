"""pytest fixtures for testing MCP clients against the fake MCP authorization stack, without any server.

Installed with the package and registered through the ``pytest11`` entry point ``mcp_oauth_auth``; disable it
with ``pytest -p no:mcp_oauth_auth``. See the testing guide (testing.md in the documentation).

Fixtures (all function-scoped; each test gets fresh state, and everything started is stopped afterwards):

``mcp_oauth_stack``
    A :class:`~mcp_oauth_auth.testing.FakeMCPStack`: protected MCP resource, authorization server metadata,
    registration, authorization with automatic consent, token, refresh, revocation, device flow. Configured by
    ``@pytest.mark.mcp_oauth_stack(**FakeStackConfig fields, base_url=...)`` on top of
    ``mcp_oauth_stack_config``. When the test uses ``mcp_oauth_server``, it is the served stack.
``mcp_oauth_stack_config``
    The baseline :class:`~mcp_oauth_auth.testing.FakeStackConfig` (default: the defaults). Override it in a
    conftest.py, or parametrize it directly; the stack gets a copy, with the marker's fields applied.
``mcp_oauth_clock``
    A :class:`StackClock` installed as the stack's clock: ``mcp_oauth_clock.advance(7200)`` expires its tokens.
``mcp_oauth_respx``
    A started ``respx.MockRouter`` routing the stack's origins to it, for code that builds its own httpx clients.
``mcp_oauth_httpx_transport`` / ``mcp_oauth_httpx2_transport``
    Mock transports serving the stack, for ``httpx`` / ``httpx2`` clients.
``mcp_oauth_server``
    The stack on a real HTTP server on ``127.0.0.1`` (uvicorn in a thread), stopped after the test.
``mcp_oauth_store``
    A :class:`~mcp_oauth_auth.MemoryTokenStore`, shared by the ``MCPOAuth`` objects the fixtures make.
``mcp_oauth_auth_factory``
    ``make(**MCPOAuth options) -> MCPOAuth`` for the stack's server URL, with ``mcp_oauth_store``, the stack's
    in-process consent as authorizer and retries without waiting, unless given.
``mcp_oauth_auth``
    ``mcp_oauth_auth_factory()``: a ready ``MCPOAuth``.
``mcp_oauth_client``
    An ``httpx.Client`` with ``mcp_oauth_auth``, wired to the stack (through the network for ``mcp_oauth_server``).

This module is imported by every pytest run in an environment where the package is installed: it imports only
pytest and the standard library at import time; everything else is imported by the fixtures that need it.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import httpx
    import httpx2
    import respx

    from mcp_oauth_auth.auth import MCPOAuth
    from mcp_oauth_auth.storage.memory import MemoryTokenStore
    from mcp_oauth_auth.testing.fake import FakeMCPStack
    from mcp_oauth_auth.testing.fake_config import FakeStackConfig

__all__ = [
    "MARKER",
    "AuthFactory",
    "StackClock",
    "mcp_oauth_auth",
    "mcp_oauth_auth_factory",
    "mcp_oauth_client",
    "mcp_oauth_clock",
    "mcp_oauth_httpx2_transport",
    "mcp_oauth_httpx_transport",
    "mcp_oauth_respx",
    "mcp_oauth_server",
    "mcp_oauth_stack",
    "mcp_oauth_stack_config",
    "mcp_oauth_store",
]

#: The marker that configures ``mcp_oauth_stack``.
MARKER = "mcp_oauth_stack"
#: ``base_url`` of the stack when the marker does not set one.
DEFAULT_BASE_URL = "https://mcp.test"
_SERVER_FIXTURE = "mcp_oauth_server"

#: What ``mcp_oauth_auth_factory`` returns: ``make(**MCPOAuth keyword arguments) -> MCPOAuth``.
AuthFactory = Callable[..., "MCPOAuth"]


class StackClock:
    """The current time plus an offset that a test moves forward; install it as ``stack.clock``.

    Only the fake stack follows it: advancing it makes the stack consider its tokens, codes and device codes
    older, so the client sees them rejected (a 401 ``invalid_token``, ``expired_token``) as after a real wait.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset += seconds

    def __repr__(self) -> str:
        return f"StackClock(offset={self.offset})"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): configure the fake MCP authorization stack of the mcp_oauth_* fixtures; options are "
        "FakeStackConfig fields (prm_mode, as_metadata_mode, registration_enabled, access_token_lifetime, "
        "rotate_refresh_tokens, required_scopes_by_path, device_authorization_enabled, ...) and base_url.",
    )


# ---------------------------------------------------------------------------------------------- the stack


@pytest.fixture
def mcp_oauth_stack_config() -> FakeStackConfig:
    """The baseline configuration of ``mcp_oauth_stack``: override this fixture (or parametrize it) to change
    it for many tests; the marker's fields are applied on top of a copy."""
    from mcp_oauth_auth.testing.fake_config import FakeStackConfig

    return FakeStackConfig()


@pytest.fixture
def mcp_oauth_stack(request: pytest.FixtureRequest, mcp_oauth_stack_config: FakeStackConfig) -> FakeMCPStack:
    """A fresh fake MCP authorization stack, configured by the ``mcp_oauth_stack`` marker."""
    if _SERVER_FIXTURE in request.fixturenames:
        served: FakeMCPStack = request.getfixturevalue(_SERVER_FIXTURE)
        return served
    from mcp_oauth_auth.testing.fake import FakeMCPStack

    options = _marker_options(request)
    base_url = options.pop("base_url", DEFAULT_BASE_URL)
    return FakeMCPStack(_effective_config(mcp_oauth_stack_config, options), base_url=base_url)


@pytest.fixture
def mcp_oauth_clock(mcp_oauth_stack: FakeMCPStack) -> StackClock:
    """A :class:`StackClock` installed as the stack's clock."""
    clock = StackClock()
    mcp_oauth_stack.clock = clock
    return clock


# ---------------------------------------------------------------------------------------------- ways to reach it


@pytest.fixture
def mcp_oauth_respx(mcp_oauth_stack: FakeMCPStack) -> Iterator[respx.MockRouter]:
    """A started respx router that sends every request for the stack's origins to the stack; add your own routes
    to it for other hosts. Stopped after the test. (respx patches ``httpx`` only, not ``httpx2``.)"""
    respx_module = _require("respx", "testing", "mcp_oauth_respx")
    with respx_module.mock(assert_all_called=False) as router:
        mcp_oauth_stack.mock_respx(router)
        yield router


@pytest.fixture
def mcp_oauth_httpx_transport(mcp_oauth_stack: FakeMCPStack) -> httpx.MockTransport:
    """An ``httpx.MockTransport`` serving the stack, for ``httpx.Client`` and ``httpx.AsyncClient``."""
    return mcp_oauth_stack.httpx_transport()


@pytest.fixture
def mcp_oauth_httpx2_transport(mcp_oauth_stack: FakeMCPStack) -> httpx2.MockTransport:
    """An ``httpx2.MockTransport`` serving the stack, for ``httpx2.Client`` and ``httpx2.AsyncClient``."""
    _require("httpx2", "httpx2", "mcp_oauth_httpx2_transport")
    return mcp_oauth_stack.httpx2_transport()


@pytest.fixture
def mcp_oauth_server(request: pytest.FixtureRequest, mcp_oauth_stack_config: FakeStackConfig) -> Iterator[FakeMCPStack]:
    """The stack served on ``http://127.0.0.1:<free port>`` for the test; ``mcp_oauth_stack`` is the same object.
    Resource and authorization server share the one origin, so the marker cannot set ``base_url`` or
    ``as_base_url``."""
    _require("uvicorn", "testing", _SERVER_FIXTURE)
    from mcp_oauth_auth.testing.server import serve_stack

    options = _marker_options(request)
    if "base_url" in options:
        pytest.fail(
            f"{_SERVER_FIXTURE} chooses its own base URL (127.0.0.1 on a free port): drop base_url", pytrace=False
        )
    with serve_stack(_effective_config(mcp_oauth_stack_config, options)) as stack:
        yield stack


# ---------------------------------------------------------------------------------------------- the client side


@pytest.fixture
def mcp_oauth_store() -> MemoryTokenStore:
    """The credential store of the ``MCPOAuth`` objects the fixtures make: a second one made with the factory
    starts with the first one's credentials, as a restarted process would."""
    from mcp_oauth_auth.storage.memory import MemoryTokenStore

    return MemoryTokenStore()


@pytest.fixture
def mcp_oauth_auth_factory(mcp_oauth_stack: FakeMCPStack, mcp_oauth_store: MemoryTokenStore) -> AuthFactory:
    """``make(**options) -> MCPOAuth`` for the stack's server URL (or ``server_url=``), with ``mcp_oauth_store``,
    the stack's in-process consent as authorizer, and the default retries without waiting, unless given."""
    from mcp_oauth_auth.auth import MCPOAuth
    from mcp_oauth_auth.flow.fetch import RetryPolicy

    def make(**options: Any) -> MCPOAuth:
        server_url = options.pop("server_url", mcp_oauth_stack.server_url)
        options.setdefault("store", mcp_oauth_store)
        options.setdefault("authorizer", mcp_oauth_stack.authorizer)
        options.setdefault("retry", RetryPolicy(base_delay=0.0, max_delay=0.0))
        return MCPOAuth(server_url, **options)

    return make


@pytest.fixture
def mcp_oauth_auth(mcp_oauth_auth_factory: AuthFactory) -> MCPOAuth:
    """A ready ``MCPOAuth`` for the stack: memory store, automatic consent, no waiting between retries."""
    return mcp_oauth_auth_factory()


@pytest.fixture
def mcp_oauth_client(
    request: pytest.FixtureRequest, mcp_oauth_stack: FakeMCPStack, mcp_oauth_auth: MCPOAuth
) -> Iterator[httpx.Client]:
    """An ``httpx.Client`` with ``mcp_oauth_auth`` that reaches the stack (in-process, or through the network
    when the test uses ``mcp_oauth_server``); closed after the test."""
    import httpx

    transport = None if _SERVER_FIXTURE in request.fixturenames else mcp_oauth_stack.httpx_transport()
    with httpx.Client(auth=mcp_oauth_auth, transport=transport) as client:
        yield client


# ---------------------------------------------------------------------------------------------- helpers


def _marker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The keyword arguments of every ``mcp_oauth_stack`` marker on the test, the closest one winning."""
    from mcp_oauth_auth.testing.fake_config import FakeStackConfig

    allowed = {field.name for field in dataclasses.fields(FakeStackConfig)} | {"base_url"}
    options: dict[str, Any] = {}
    for mark in reversed(list(request.node.iter_markers(MARKER))):
        if mark.args:
            pytest.fail(f"@pytest.mark.{MARKER} takes keyword arguments only, got {mark.args!r}", pytrace=False)
        unknown = sorted(set(mark.kwargs) - allowed)
        if unknown:
            import difflib

            hints = [
                f"{name} (did you mean {close[0]}?)"
                if (close := difflib.get_close_matches(name, allowed, n=1))
                else name
                for name in unknown
            ]
            pytest.fail(
                f"@pytest.mark.{MARKER}: unknown option(s) {', '.join(hints)}; "
                f"the options are FakeStackConfig's fields and base_url",
                pytrace=False,
            )
        options.update(mark.kwargs)
    return options


def _effective_config(base: FakeStackConfig, options: dict[str, Any]) -> FakeStackConfig:
    """A deep copy of ``base`` with ``options`` applied, so that no test changes another's configuration."""
    return dataclasses.replace(copy.deepcopy(base), **copy.deepcopy(options))


def _require(module: str, extra: str, fixture: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"{fixture} needs {module}: pip install 'mcp-oauth-auth[{extra}]' ({exc})", pytrace=False)
