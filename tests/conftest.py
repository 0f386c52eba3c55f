from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from mcp_oauth_auth.authorizers.environment import _CI_VARIABLES

# The official MCP SDK 2.x and its httpx2 transport need Python 3.11+; on 3.10 those modules are not collected.
collect_ignore = (
    []
    if importlib.util.find_spec("httpx2")
    else [
        "integration/test_mcp_sdk_e2e.py",
        "integration/mcp_sdk_server.py",
        "integration/test_oidc_provider.py",
        "integration/oidc_provider.py",
    ]
)


@pytest.fixture(autouse=True)
def credential_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never touch the developer's own credentials: each test gets an empty store home and no OS keyring.

    Tests of the keyring store pass their keyring backend explicitly (a real Secret Service on a private D-Bus).
    """
    home = tmp_path_factory.mktemp("mcp_oauth_home")
    monkeypatch.setenv("MCP_OAUTH_HOME", str(home))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("MCP_OAUTH_PASSWORD", raising=False)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)  # the developer's own Secret Service
    for variable in (
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "VAULT_NAMESPACE",
        "VAULT_ROLE_ID",
        "VAULT_SECRET_ID",
        "MCP_OAUTH_REDIS_URL",
    ):
        monkeypatch.delenv(variable, raising=False)
    # Whether a browser can be opened is decided from the environment; the machine running the tests (a CI runner, an
    # SSH session, a devcontainer's $BROWSER) must not decide it for them. Tests that need one of these set it.
    for variable in (
        *_CI_VARIABLES,
        "SSH_CONNECTION",
        "SSH_TTY",
        "SSH_CLIENT",
        "BROWSER",
        "container",
        "KUBERNETES_SERVICE_HOST",
    ):
        monkeypatch.delenv(variable, raising=False)
    from mcp_oauth_auth.storage.keyring_store import probe_keyring

    probe_keyring.cache_clear()
    return home
