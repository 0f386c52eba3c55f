"""Whether a browser that the person can use can be opened from this process, and which signal says so.

The signals, strongest first:

1. A CI runner (``CI``, ``GITHUB_ACTIONS``, ...): nobody is at a screen, whatever else is set.
2. ``$BROWSER``: the person (or their editor) named the browser to use. VS Code devcontainers, GitHub Codespaces and
   Remote-SSH set it to a helper that opens the page in the browser of the person's own machine and forward the
   loopback callback port back, so it wins over the guesses below; Python's :mod:`webbrowser` runs it.
3. Guesses that no browser would reach this machine's loopback callback: an SSH session, a container, a Linux or
   BSD machine without a graphical display.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["BrowserDecision", "browser_decision", "browser_unavailable_reason"]

_CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "TF_BUILD", "CIRCLECI")
#: Files a container runtime leaves at the root of a container's file system (Docker, Podman).
_CONTAINER_FILES = ("/.dockerenv", "/run/.containerenv")


@dataclass(frozen=True)
class BrowserDecision:
    """Whether a browser can be opened, the signal that decided (for the log), and the headless guess that an
    explicit ``$BROWSER`` overrode, if any."""

    available: bool
    signal: str
    overridden: str | None = None


def browser_decision(
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    *,
    file_exists: Callable[[str], bool] | None = None,
) -> BrowserDecision:
    """Decide whether a browser can be opened for the person here (see the module's docs for the order).

    ``environ``, ``platform`` and ``file_exists`` default to this process's environment, ``sys.platform`` and the
    file system; with an ``environ`` given and no ``file_exists``, no file is looked at (tests describe a machine).
    """
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if file_exists is None:
        file_exists = os.path.exists if environ is None else _nothing_exists
    for variable in _CI_VARIABLES:
        if env.get(variable, "").lower() not in ("", "0", "false"):
            return BrowserDecision(False, f"running in CI ({variable} is set)")
    guess = _headless_guess(env, platform, file_exists)
    browser = env.get("BROWSER", "").strip()
    if browser:
        return BrowserDecision(True, "$BROWSER names the browser to open", overridden=guess)
    if guess is not None:
        return BrowserDecision(False, guess)
    return BrowserDecision(True, "a desktop session")


def browser_unavailable_reason(
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    *,
    file_exists: Callable[[str], bool] | None = None,
) -> str | None:
    """Why no browser can be opened for the person here, or None when one can (:func:`browser_decision`)."""
    decision = browser_decision(environ, platform, file_exists=file_exists)
    return None if decision.available else decision.signal


def _headless_guess(env: Mapping[str, str], platform: str, file_exists: Callable[[str], bool]) -> str | None:
    """Why no browser would reach this machine's loopback callback, as far as the environment tells, or None.

    An SSH session counts as headless even with X forwarding: the browser would run on the remote display, but the
    loopback callback would have to reach this machine.
    """
    if env.get("SSH_CONNECTION") or env.get("SSH_TTY"):
        return "an SSH session (the browser would not reach this machine's loopback callback)"
    marker = _container_marker(env, file_exists)
    if marker is not None:
        return f"inside a container ({marker})"
    if platform.startswith(("linux", "freebsd", "openbsd", "netbsd")) and not (
        env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")
    ):
        return "no graphical display (DISPLAY and WAYLAND_DISPLAY are unset)"
    return None


def _container_marker(env: Mapping[str, str], file_exists: Callable[[str], bool]) -> str | None:
    for path in _CONTAINER_FILES:
        if file_exists(path):
            return f"{path} exists"
    if env.get("container"):  # set by systemd-nspawn, Podman, LXC and Flatpak
        return f"container={env['container']} is set"
    if env.get("KUBERNETES_SERVICE_HOST"):
        return "a Kubernetes pod"
    return None


def _nothing_exists(path: str) -> bool:
    return False
