"""A real, private Linux Secret Service for tests: a D-Bus session bus of our own and gnome-keyring on it.

:func:`start_secret_service` starts ``dbus-daemon`` with a minimal configuration (a unix socket in a temporary
directory, no service activation) and ``gnome-keyring-daemon --components=secrets`` on that bus, with HOME,
XDG_DATA_HOME, XDG_RUNTIME_DIR and its control directory in temporary directories, so the keyring of the person
running the tests is never touched. Both processes are stopped by PID; their logs stay in the temporary directory
and are printed when a test using them fails.

Fixtures (import both ``*_fixture`` functions into a test module): ``secret_service_daemon`` (one unlocked service
per test module) and ``secret_service`` (that service, with ``DBUS_SESSION_BUS_ADDRESS`` pointing at it for one
test). :func:`private_secret_service` gives a test its
own service (e.g. to lock its collection).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

DEBIAN_PACKAGES = "dbus-daemon gnome-keyring"
#: What a test failure says when gnome-keyring itself aborted under it (see SecretService.restart_if_dead): such a
#: test is run once more, on a new daemon (``pytest.mark.flaky(reruns=1, only_rerun=DAEMON_CRASHES)``).
DAEMON_CRASHES = [
    "Message recipient disconnected from message bus without replying",
    "gnome-keyring-daemon exited unexpectedly",
]
SECRETS_BUS_NAME = "org.freedesktop.secrets"
KEYRING_PASSWORD = "test-keyring-password"  # protects a throwaway keyring in a temporary directory
START_TIMEOUT = 10.0

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def require_binaries() -> tuple[str, str]:
    """The paths of dbus-daemon and gnome-keyring-daemon; a test failure naming the packages when one is missing."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the Secret Service is a Linux (freedesktop) service")
    dbus_daemon = shutil.which("dbus-daemon")
    gnome_keyring = shutil.which("gnome-keyring-daemon")
    if dbus_daemon is None or gnome_keyring is None:
        missing = " and ".join(
            name for name, path in (("dbus-daemon", dbus_daemon), ("gnome-keyring-daemon", gnome_keyring)) if not path
        )
        pytest.fail(
            f"{missing} not found on PATH: the Secret Service tests need them. On Debian/Ubuntu install the packages "
            f"with `apt-get install --no-install-recommends {DEBIAN_PACKAGES}`",
            pytrace=False,
        )
    return dbus_daemon, gnome_keyring


@dataclass
class SecretService:
    """A running private bus and Secret Service; ``address`` is its DBUS_SESSION_BUS_ADDRESS."""

    root: Path
    address: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    socket_dir: Path | None = None

    @property
    def data_dir(self) -> Path:
        """XDG_DATA_HOME of the daemon: its keyrings are in ``keyrings/`` below it."""
        return self.root / "data"

    def logs(self) -> str:
        """Everything the two daemons wrote, for failure reports."""
        parts = []
        for name in ("dbus-daemon", "gnome-keyring-daemon"):
            path = self.root / f"{name}.log"
            text = path.read_text(errors="replace").strip() if path.exists() else "(not started)"
            process = self.processes.get(name)
            state = "" if process is None else f" (pid {process.pid}, exit status {process.poll()})"
            parts.append(f"--- {name}{state} ---\n{text or '(empty)'}")
        return "\n".join(parts)

    def restart_if_dead(self) -> None:
        """Start the daemons afresh (in a new directory) when one of them has died.

        gnome-keyring 42 (Debian 12) can abort on a GLib assertion (``invoke_get_property_in_idle_cb``) when a
        client's first message is a property read, a race seen on loaded machines only. The test it hit fails
        (and is run once more: :data:`DAEMON_CRASHES`); the tests after it must not all fail with it.
        """
        if all(process.poll() is None for process in self.processes.values()):
            return
        print(f"the Secret Service died; starting a new one\n{self.logs()}")
        self.stop()
        generation = len(list(self.root.glob("restart-*"))) + 1
        fresh = start_secret_service(self.root / f"restart-{generation}")
        self.root, self.address, self.processes, self.socket_dir = (
            fresh.root,
            fresh.address,
            fresh.processes,
            fresh.socket_dir,
        )

    def check_running(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited unexpectedly (status {process.returncode})\n{self.logs()}", pytrace=False)

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """A jeepney blocking connection to the private bus (secretstorage accepts it)."""
        from jeepney.io.blocking import open_dbus_connection

        connection = open_dbus_connection(bus=self.address)
        try:
            yield connection
        finally:
            connection.close()

    def default_collection_locked(self) -> bool | None:
        """Whether the default collection is locked; None when there is none."""
        import secretstorage

        with self.connection() as connection:
            try:
                return secretstorage.Collection(connection).is_locked()
            except secretstorage.ItemNotFoundException:
                return None

    def lock_default_collection(self) -> None:
        import secretstorage

        with self.connection() as connection:
            secretstorage.Collection(connection).lock()

    def stop(self) -> None:
        """Stop gnome-keyring-daemon, then dbus-daemon, by PID."""
        for name in ("gnome-keyring-daemon", "dbus-daemon"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = None


def start_secret_service(root: Path, *, with_keyring: bool = True, unlock: bool = True) -> SecretService:
    """Start a private bus in ``root`` and, with ``with_keyring``, gnome-keyring on it (``unlock``: with --unlock).

    Fails the test (with the daemons' logs) when either does not come up within START_TIMEOUT seconds.
    """
    dbus_daemon, gnome_keyring = require_binaries()
    root.mkdir(parents=True, exist_ok=True)
    service = SecretService(root=root)
    try:
        _start_bus(service, dbus_daemon)
        if with_keyring:
            _start_keyring(service, gnome_keyring, unlock=unlock)
    except BaseException:
        service.stop()
        raise
    return service


def _start_bus(service: SecretService, dbus_daemon: str) -> None:
    # A unix socket path is limited to about 100 bytes; pytest's temporary directories can be longer.
    service.socket_dir = Path(tempfile.mkdtemp(prefix="mcp-dbus-"))
    config = service.root / "bus.conf"
    config.write_text(_BUS_CONFIG.format(socket=service.socket_dir / "bus"))
    address_file = service.root / "bus-address"
    with address_file.open("wb") as stdout, (service.root / "dbus-daemon.log").open("wb") as stderr:
        service.processes["dbus-daemon"] = subprocess.Popen(
            [dbus_daemon, f"--config-file={config}", "--nofork", "--print-address=1"],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=_isolated_environment(service.root),
        )
    deadline = time.monotonic() + START_TIMEOUT
    while not address_file.read_text().endswith("\n"):
        _wait_step(service, deadline, "dbus-daemon did not print its address")
    service.address = address_file.read_text().strip()


def _start_keyring(service: SecretService, gnome_keyring: str, *, unlock: bool) -> None:
    control = service.root / "control"
    control.mkdir(mode=0o700, exist_ok=True)
    command = [gnome_keyring, "--foreground", "--components=secrets", f"--control-directory={control}"]
    if unlock:
        command.append("--unlock")
    environment = _isolated_environment(service.root)
    environment["DBUS_SESSION_BUS_ADDRESS"] = service.address
    with (service.root / "gnome-keyring-daemon.log").open("wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=environment
        )
    service.processes["gnome-keyring-daemon"] = process
    assert process.stdin is not None
    if unlock:
        process.stdin.write(KEYRING_PASSWORD.encode())
    process.stdin.close()
    deadline = time.monotonic() + START_TIMEOUT
    while not _name_has_owner(service, SECRETS_BUS_NAME):
        _wait_step(service, deadline, f"gnome-keyring-daemon did not take the bus name {SECRETS_BUS_NAME}")
    if unlock:
        while service.default_collection_locked() is not False:
            _wait_step(service, deadline, "gnome-keyring-daemon did not create and unlock its login collection")
        keyrings = service.data_dir / "keyrings"
        assert (keyrings / "login.keyring").exists(), f"the test keyring is not in {keyrings}\n{service.logs()}"


def _isolated_environment(root: Path) -> dict[str, str]:
    """The daemons' environment: no trace of the real session, every directory temporary."""
    directories = {"HOME": root / "home", "XDG_DATA_HOME": root / "data", "XDG_RUNTIME_DIR": root / "runtime"}
    directories["XDG_CONFIG_HOME"] = root / "config"
    directories["XDG_CACHE_HOME"] = root / "cache"
    for path in directories.values():
        path.mkdir(mode=0o700, exist_ok=True)
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    environment.update({name: str(path) for name, path in directories.items()})
    return environment


def _name_has_owner(service: SecretService, name: str) -> bool:
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import Proxy

    with service.connection() as connection:
        return bool(Proxy(message_bus, connection).NameHasOwner(name)[0])


def _wait_step(service: SecretService, deadline: float, problem: str) -> None:
    service.check_running()
    if time.monotonic() >= deadline:
        pytest.fail(f"{problem} within {START_TIMEOUT:g} s\n{service.logs()}", pytrace=False)
    time.sleep(0.02)


@contextlib.contextmanager
def private_secret_service(
    root: Path, monkeypatch: pytest.MonkeyPatch, *, with_keyring: bool = True, unlock: bool = True
) -> Iterator[SecretService]:
    """A Secret Service of the test's own, DBUS_SESSION_BUS_ADDRESS set to it; logs printed if the test fails."""
    service = start_secret_service(root, with_keyring=with_keyring, unlock=unlock)
    try:
        with monkeypatch.context() as patch:
            patch.setenv("DBUS_SESSION_BUS_ADDRESS", service.address)
            yield service
        service.check_running()
    finally:
        service.stop()
        print(service.logs())  # shown by pytest only when the test fails


@pytest.fixture(scope="module", name="secret_service_daemon")
def secret_service_daemon_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretService]:
    """One unlocked private Secret Service for a test module (tests use their own keyring service names)."""
    service = start_secret_service(tmp_path_factory.mktemp("secret-service"))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(name="secret_service")
def secret_service_fixture(
    secret_service_daemon: SecretService, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SecretService]:
    """The module's Secret Service, with DBUS_SESSION_BUS_ADDRESS pointing at it for this test."""
    secret_service_daemon.restart_if_dead()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", secret_service_daemon.address)
    yield secret_service_daemon
    print(secret_service_daemon.logs())  # shown by pytest only when the test fails
    secret_service_daemon.check_running()
