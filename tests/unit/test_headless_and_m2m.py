"""MCPOAuth without a local browser: device flow, automatic choice, paste-back, and client credentials —
through real httpx / httpx2 clients (sync, asyncio, trio) against the fake MCP authorization stack."""

from __future__ import annotations

import io
import logging
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_oauth_auth import (
    AuthorizationDeniedError,
    AuthorizationError,
    DeviceAuthorizer,
    MCPOAuth,
    MemoryTokenStore,
    PasteBackAuthorizer,
    PrivateKeyJWT,
    RegistrationError,
    RetryPolicy,
    StateMismatchError,
)
from mcp_oauth_auth.authorizers import environment
from mcp_oauth_auth.authorizers.environment import BrowserDecision, browser_decision, browser_unavailable_reason
from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.device import DEVICE_CODE_GRANT, DeviceAuthorization
from mcp_oauth_auth.testing import FakeMCPStack, FakeStackConfig

from .clients import KIND_PARAMS, ClientKind, send_all

FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.0)
DEVICE_CONFIG = FakeStackConfig(device_authorization_enabled=True, device_poll_interval=1)


@pytest.fixture(params=KIND_PARAMS)
def kind(request: pytest.FixtureRequest) -> ClientKind:
    assert isinstance(request.param, ClientKind)
    return request.param


# -- the device flow ----------------------------------------------------------------------------------------------


def test_device_flow_end_to_end(kind: ClientKind) -> None:
    stack = FakeMCPStack(DEVICE_CONFIG)
    shown: list[DeviceAuthorization] = []

    def person_approves_on_their_phone(device: DeviceAuthorization) -> None:
        shown.append(device)
        stack.approve_device(device.user_code)

    auth = MCPOAuth(
        stack.server_url,
        store=MemoryTokenStore(),
        authorizer=DeviceAuthorizer(on_prompt=person_approves_on_their_phone),
        retry=FAST_RETRY,
    )
    results = send_all(kind, stack, auth, [("GET", stack.server_url)] * 2)
    assert [r.status for r in results] == [200, 200]
    [device] = shown
    assert device.verification_uri == stack.verification_uri
    assert device.seconds_left() > 0
    assert stack.count("authorize") == 0  # no browser redirect at all
    assert stack.grants_used() == [DEVICE_CODE_GRANT]
    [registration] = stack.registration_requests
    assert DEVICE_CODE_GRANT in registration["grant_types"]
    assert registration["redirect_uris"] == []
    [device_request] = stack.device_authorization_requests
    assert device_request["resource"] == stack.server_url
    assert stack.token_requests[0]["resource"] == stack.server_url
    assert auth.tokens is not None
    assert auth.tokens.refresh_token is not None  # handled like the code flow's response: stored, refreshable
    # Expiry is handled exactly like the code flow's tokens: a refresh, no new device authorization.
    start = time.time()
    stack.clock = lambda: start + 7200
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert stack.grants_used() == [DEVICE_CODE_GRANT, "refresh_token"]
    assert len(shown) == 1


def test_device_flow_denied(kind: ClientKind) -> None:
    stack = FakeMCPStack(DEVICE_CONFIG)
    store = MemoryTokenStore()
    auth = MCPOAuth(
        stack.server_url,
        store=store,
        authorizer=DeviceAuthorizer(on_prompt=lambda device: stack.deny_device(device.user_code)),
        retry=FAST_RETRY,
    )
    with pytest.raises(AuthorizationDeniedError):
        send_all(kind, stack, auth, [("GET", stack.server_url)])
    assert store.list_keys() == []


def test_device_prompt_hook_may_be_async() -> None:
    import anyio
    import httpx

    stack = FakeMCPStack(DEVICE_CONFIG)
    prompts: list[str] = []

    async def show_in_my_ui(device: DeviceAuthorization) -> None:
        await anyio.lowlevel.checkpoint()
        prompts.append(device.display_user_code)
        stack.approve_device(device.user_code)

    auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), authorizer=DeviceAuthorizer(on_prompt=show_in_my_ui))
    with httpx.Client(auth=auth, transport=stack.httpx_transport()) as client:  # a sync client, an async hook
        assert client.get(stack.server_url).status_code == 200
    assert len(prompts) == 1


def test_default_device_prompt_text() -> None:
    stream = io.StringIO()
    device = DeviceAuthorization(
        device_code="secret-device-code",
        user_code="WDJBMJHT",
        verification_uri="https://as.example/device",
        verification_uri_complete="https://as.example/device?user_code=WDJBMJHT",
        expires_at=time.time() + 600,
    )
    DeviceAuthorizer(stream=stream).show_device_code(device)
    text = stream.getvalue()
    assert "https://as.example/device" in text
    assert "WDJB-MJHT" in text
    assert "10 minutes" in text
    assert "secret-device-code" not in text


def test_device_prompt_without_a_finite_expiry() -> None:
    """A DeviceAuthorization built by hand may have no finite expiry: the prompt leaves the minutes out."""
    stream = io.StringIO()
    device = DeviceAuthorization(
        device_code="d",
        user_code="ABCD",
        verification_uri="https://as.example/device",
        verification_uri_complete=None,
        expires_at=float("inf"),
    )
    DeviceAuthorizer(stream=stream).show_device_code(device)
    assert stream.getvalue().rstrip().endswith("Waiting for approval...")
    assert "minute" not in stream.getvalue()


# -- the automatic choice ------------------------------------------------------------------------------------------


DOCKER = "/.dockerenv"
VSCODE_BROWSER = "/vscode/bin/helpers/browser.sh"


@pytest.mark.parametrize(
    ("environ", "platform", "files", "expected"),
    [
        ({"DISPLAY": ":0"}, "linux", (), None),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", (), None),
        ({}, "linux", (), "no graphical display"),
        ({}, "darwin", (), None),
        ({}, "win32", (), None),
        ({"DISPLAY": ":0", "SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 22"}, "linux", (), "SSH session"),
        ({"SSH_TTY": "/dev/pts/1"}, "darwin", (), "SSH session"),
        ({"CI": "true", "DISPLAY": ":0"}, "linux", (), "CI"),
        ({"GITHUB_ACTIONS": "true"}, "win32", (), "CI"),
        ({"CI": "false", "DISPLAY": ":0"}, "linux", (), None),
        # containers: Docker's and Podman's marker files, the container variable, a Kubernetes pod
        ({"DISPLAY": ":0"}, "linux", (DOCKER,), "inside a container (/.dockerenv exists)"),
        ({"DISPLAY": ":0"}, "linux", ("/run/.containerenv",), "inside a container (/run/.containerenv exists)"),
        ({"DISPLAY": ":0", "container": "podman"}, "linux", (), "inside a container (container=podman is set)"),
        ({"DISPLAY": ":0", "KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "linux", (), "a Kubernetes pod"),
        # an explicit $BROWSER (devcontainers, Codespaces, Remote-SSH) wins over every guess, never over CI
        ({"BROWSER": VSCODE_BROWSER}, "linux", (DOCKER,), None),
        ({"BROWSER": VSCODE_BROWSER, "SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 22"}, "linux", (), None),
        ({"BROWSER": VSCODE_BROWSER, "container": "docker"}, "linux", (), None),
        ({"BROWSER": "firefox"}, "linux", (), None),
        ({"BROWSER": VSCODE_BROWSER, "CI": "true"}, "linux", (DOCKER,), "running in CI (CI is set)"),
        ({"BROWSER": "  "}, "linux", (DOCKER,), "inside a container"),
    ],
)
def test_browser_availability(
    environ: dict[str, str], platform: str, files: tuple[str, ...], expected: str | None
) -> None:
    reason = browser_unavailable_reason(environ, platform, file_exists=files.__contains__)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason


def test_the_decision_names_the_signal_and_what_browser_overrode() -> None:
    decision = browser_decision({"BROWSER": VSCODE_BROWSER}, "linux", file_exists={DOCKER}.__contains__)
    assert decision == BrowserDecision(
        True, "$BROWSER names the browser to open", "inside a container (/.dockerenv exists)"
    )
    assert browser_decision({"DISPLAY": ":0"}, "linux") == BrowserDecision(True, "a desktop session")
    assert not browser_decision({}, "linux").available


@pytest.mark.parametrize("browser", [VSCODE_BROWSER, None])
def test_a_container_uses_the_browser_only_when_browser_names_one(
    browser: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: Any
) -> None:
    """Through the process environment and the file system, as MCPOAuth() without an authorizer decides."""
    marker = tmp_path / ".dockerenv"
    marker.touch()
    monkeypatch.setattr(environment, "_CONTAINER_FILES", (str(marker),))
    monkeypatch.setenv("DISPLAY", ":0")
    if browser is not None:
        monkeypatch.setenv("BROWSER", browser)
    with caplog.at_level(logging.DEBUG, logger="mcp_oauth_auth"):
        auth = MCPOAuth("https://mcp.example.com/mcp", store=MemoryTokenStore())
    headless_reason = auth._engine.config.headless_reason
    if browser is None:
        assert headless_reason == f"inside a container ({marker} exists)"
        assert "browser unavailable: inside a container" in caplog.text
    else:
        assert headless_reason is None
        assert f"opening the browser that $BROWSER names, although inside a container ({marker} exists)" in caplog.text


def test_headless_machine_uses_the_device_flow_automatically(
    kind: ClientKind, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: Any
) -> None:
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.1 50000 10.0.0.2 22")
    stack = FakeMCPStack(
        FakeStackConfig(device_authorization_enabled=True, device_poll_interval=1, device_auto_approve_after_polls=0)
    )
    auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), retry=FAST_RETRY)  # no authorizer given
    with caplog.at_level(logging.INFO, logger="mcp_oauth_auth"):
        assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert stack.grants_used() == [DEVICE_CODE_GRANT]
    assert "an SSH session" in caplog.text
    assert "device flow" in caplog.text
    prompt = capsys.readouterr().err  # the person was told where to go, on stderr
    assert stack.verification_uri in prompt
    assert re.search(r"[A-Z]{4}-[A-Z]{4}", prompt)


def test_headless_machine_without_a_device_flow_explains_the_options(
    kind: ClientKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    stack = FakeMCPStack()  # no device_authorization_endpoint
    auth = MCPOAuth(stack.server_url, store=MemoryTokenStore(), retry=FAST_RETRY)
    with pytest.raises(AuthorizationError) as caught:
        send_all(kind, stack, auth, [("GET", stack.server_url)])
    message = str(caught.value)
    assert "running in CI" in message
    assert "PasteBackAuthorizer" in message
    assert "client_credentials" in message
    assert stack.count("authorize") == 0
    assert stack.count("token") == 0


# -- paste-back ----------------------------------------------------------------------------------------------------


class PastingPerson(io.StringIO):
    """Reads the instructions written to it, approves in "their" browser, and pastes the redirected URL."""

    def __init__(self, stack: FakeMCPStack, tamper: bool = False) -> None:
        super().__init__()
        self.stack = stack
        self.tamper = tamper

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        url = re.search(r"(http\S+/authorize\?\S+)", self.getvalue())
        assert url is not None, self.getvalue()
        callback = self.stack.authorizer(url.group(1))
        if self.tamper:
            callback = re.sub(r"state=[^&]+", "state=forged", callback)
        return callback + "\n"


def test_paste_back(kind: ClientKind) -> None:
    stack = FakeMCPStack()
    person = PastingPerson(stack)
    auth = MCPOAuth(
        stack.server_url,
        store=MemoryTokenStore(),
        authorizer=PasteBackAuthorizer(input_stream=person, output_stream=person),
        retry=FAST_RETRY,
    )
    assert send_all(kind, stack, auth, [("GET", stack.server_url)])[0].status == 200
    assert "Copy the whole address" in person.getvalue()
    assert stack.grants_used() == ["authorization_code"]


def test_paste_back_validates_state(kind: ClientKind) -> None:
    stack = FakeMCPStack()
    person = PastingPerson(stack, tamper=True)
    auth = MCPOAuth(
        stack.server_url,
        store=MemoryTokenStore(),
        authorizer=PasteBackAuthorizer(input_stream=person, output_stream=person),
        retry=FAST_RETRY,
    )
    with pytest.raises(StateMismatchError):
        send_all(kind, stack, auth, [("GET", stack.server_url)])
    assert stack.count("token") == 0


@pytest.mark.parametrize("pasted", ["\n", "https://elsewhere.example/?code=x&state=y\n"])
def test_paste_back_refuses_nothing_or_a_foreign_url(pasted: str) -> None:
    authorizer = PasteBackAuthorizer(input_stream=io.StringIO(pasted), output_stream=io.StringIO())
    with pytest.raises(AuthorizationError):
        authorizer.authorize("https://as.example/authorize?x=1", "http://127.0.0.1:33418/callback")


# -- client credentials ------------------------------------------------------------------------------------------


CC_CONFIG = FakeStackConfig(
    client_credentials_enabled=True,
    token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post", "private_key_jwt"],
)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "private_key_jwt"])
def test_client_credentials(kind: ClientKind, method: str) -> None:
    stack = FakeMCPStack(CC_CONFIG)
    signer = PrivateKeyJWT(ec.generate_private_key(ec.SECP256R1()), key_id="k1")
    if method == "private_key_jwt":
        stack.add_client(
            "svc", token_endpoint_auth_method=method, grant_types=["client_credentials"], public_key=signer.public_jwk()
        )
        options: dict[str, Any] = {"private_key": signer}
    else:
        stack.add_client("svc", "svc-secret", token_endpoint_auth_method=method, grant_types=["client_credentials"])
        options = {"client_secret": "svc-secret", "token_endpoint_auth_method": method}
    auth = MCPOAuth(
        stack.server_url,
        store=MemoryTokenStore(),
        client_id="svc",
        grant_type="client_credentials",
        retry=FAST_RETRY,
        **options,
    )
    results = send_all(kind, stack, auth, [("GET", stack.server_url)] * 3)
    assert [r.status for r in results] == [200] * 3
    assert stack.grants_used() == ["client_credentials"]
    [token_request] = stack.token_requests
    assert token_request["auth_method"] == method
    assert token_request["resource"] == stack.server_url
    assert stack.count("authorize") == 0
    assert stack.count("register") == 0
    assert auth.tokens is not None
    assert auth.tokens.refresh_token is None
    # Near expiry (seen by a new process on the same store): a new token from the stored token endpoint, with no
    # refresh token and no discovery.
    store = auth.store
    [key] = store.list_keys()
    record = store.load(key)
    assert record is not None
    assert record.tokens is not None
    now = time.time()
    store.save(record.with_tokens(replace(record.tokens, expires_at=now + 10, issued_at=now - 3590)))
    metadata_requests = stack.count("as_metadata") + stack.count("prm")
    restarted = MCPOAuth(
        stack.server_url, store=store, client_id="svc", grant_type="client_credentials", retry=FAST_RETRY, **options
    )
    assert send_all(kind, stack, restarted, [("GET", stack.server_url)])[0].status == 200
    assert stack.grants_used() == ["client_credentials", "client_credentials"]
    assert stack.count("as_metadata") + stack.count("prm") == metadata_requests
    assert stack.count("resource") == 5  # 401 + 3 before; now 1 more, no 401: renewed before sending


def test_client_credentials_herd_requests_one_token() -> None:
    import anyio
    import httpx

    stack = FakeMCPStack(CC_CONFIG)
    stack.add_client("svc", "s", token_endpoint_auth_method="client_secret_basic", grant_types=["client_credentials"])
    auth = MCPOAuth(
        stack.server_url, store=MemoryTokenStore(), client_id="svc", client_secret="s", grant_type="client_credentials"
    )

    async def main() -> list[int]:
        statuses: list[int] = []
        async with httpx.AsyncClient(auth=auth, transport=stack.httpx_transport()) as client:

            async def one() -> None:
                statuses.append((await client.get(stack.server_url)).status_code)

            async with anyio.create_task_group() as group:
                for _ in range(50):
                    group.start_soon(one)
        return statuses

    assert anyio.run(main) == [200] * 50
    assert stack.grants_used() == ["client_credentials"]


def test_private_key_jwt_refused_when_the_server_does_not_list_it() -> None:
    stack = FakeMCPStack(FakeStackConfig(client_credentials_enabled=True))
    signer = PrivateKeyJWT(ec.generate_private_key(ec.SECP256R1()))
    auth = MCPOAuth(
        stack.server_url, store=MemoryTokenStore(), client_id="svc", private_key=signer, grant_type="client_credentials"
    )
    with pytest.raises(RegistrationError, match="private_key_jwt"):
        send_all(ClientKind("httpx", "sync"), stack, auth, [("GET", stack.server_url)])
    assert stack.count("token") == 0


def test_client_credentials_needs_a_confidential_client() -> None:
    with pytest.raises(ConfigurationError, match="client_id"):
        MCPOAuth("https://mcp.example.com/mcp", grant_type="client_credentials", client_id="svc")
    with pytest.raises(ConfigurationError, match="grant_type"):
        MCPOAuth("https://mcp.example.com/mcp", grant_type="password")
    signer = PrivateKeyJWT(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ConfigurationError, match="client_id"):
        MCPOAuth("https://mcp.example.com/mcp", private_key=signer)
