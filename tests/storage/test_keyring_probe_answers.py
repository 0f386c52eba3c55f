"""What the keyring probe answers for backends that misbehave: it names the problem and never raises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService, fail

from mcp_oauth_auth.storage.keyring_probe import backend_name, probe_keyring


class Nameless(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @property
    def name(self) -> str:  # type: ignore[override]
        raise RuntimeError("no name")

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError("read-only")

    def delete_password(self, service: str, username: str) -> None:
        pass


def test_a_backend_without_a_usable_name_is_called_by_its_class() -> None:
    assert backend_name(Nameless()) == "Nameless"


def test_a_backend_that_fails_the_round_trip_is_unusable() -> None:
    status = probe_keyring(Nameless())
    assert not status.usable
    assert status.backend == "Nameless"


def test_a_probe_that_fails_says_so_instead_of_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp_oauth_auth.storage import keyring_probe

    def broken(backend: Any) -> str | None:
        raise OSError("bus exploded")

    monkeypatch.setattr(keyring_probe, "_static_problem", broken)
    status = probe_keyring(Nameless())
    assert not status.usable
    assert "checking the keyring backend 'Nameless' failed" in status.reason
    assert "use the encrypted file store instead" in status.reason


def test_a_secret_service_behind_an_unreachable_bus_is_unusable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    status = probe_keyring(SecretService.Keyring())
    assert not status.usable
    assert "the D-Bus session bus cannot be reached" in status.reason


def test_keyrings_fail_backend_with_a_bus_is_no_keyring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'bus'}")
    status = probe_keyring(fail.Keyring())
    assert not status.usable
    assert "keyring found no OS keyring (its 'fail' backend is active)" in status.reason


def test_when_keyring_cannot_choose_a_backend_the_answer_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def cannot() -> KeyringBackend:
        raise RuntimeError("broken keyringrc.cfg")

    monkeypatch.setattr(keyring, "get_keyring", cannot)
    probe_keyring.cache_clear()
    try:
        status = probe_keyring()
        assert not status.usable
        assert status.reason.startswith("keyring could not choose a backend")
    finally:
        probe_keyring.cache_clear()
