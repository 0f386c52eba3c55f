"""Whether the OS keyring is out of reach here, known without importing keyring: on Linux without a D-Bus session
bus, every backend keyring ships (Secret Service, libsecret, KWallet) needs that bus, so asking keyring would only
import each of its backends (macOS's and Windows' too) to find none usable. Only when nothing else could choose a
backend: no ``PYTHON_KEYRING_BACKEND``, no ``keyringrc.cfg``, no backend from another distribution."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["NO_SESSION_BUS", "keyring_out_of_reach"]

NO_SESSION_BUS = (
    "there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset), so no Secret Service can be reached; run inside "
    "a desktop or D-Bus session, or use the encrypted file store"
)

#: Distributions whose keyring backends all need D-Bus on Linux, or are never usable here (keyrings.alt's files).
_KNOWN_BACKEND_DISTRIBUTIONS = {"keyring", "keyrings-alt"}


def _keyring_config() -> Path:
    """keyring's own configuration file on Linux (``keyring.util.platform_.config_root()``)."""
    root = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(root, "python_keyring", "keyringrc.cfg")


def _distribution(folder: str) -> str:
    """``keyrings.alt-5.0.dist-info`` -> ``keyrings-alt`` (the normalised name)."""
    return folder.split("-", 1)[0].lower().replace("_", "-").replace(".", "-")


def _other_backends() -> bool:
    """Whether an installed distribution other than keyring's own offers keyring backends (``keyring.backends``
    entry points). The metadata is read directly: importing importlib.metadata would cost what this saves."""
    for folder in sys.path:
        try:
            entries = list(os.scandir(folder or "."))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith((".dist-info", ".egg-info")):
                continue
            try:
                text = Path(entry.path, "entry_points.txt").read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if "[keyring.backends]" in text and _distribution(entry.name) not in _KNOWN_BACKEND_DISTRIBUTIONS:
                return True
    return False


def keyring_out_of_reach() -> str | None:
    """Why no OS keyring can be usable here, when that is certain without asking keyring; else None."""
    if not sys.platform.startswith("linux") or os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return None
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return None
    try:
        if _keyring_config().exists() or _other_backends():
            return None
    except (OSError, RuntimeError):  # no home directory to look in: let keyring decide
        return None
    return NO_SESSION_BUS
