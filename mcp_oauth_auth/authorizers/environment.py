"""Whether a browser that the person can use can be opened from this process."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["browser_unavailable_reason"]

_CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "TF_BUILD", "CIRCLECI")


def browser_unavailable_reason(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why no browser can be opened for the person here, or None when one can.

    An SSH session counts as headless even with X forwarding: the browser would run on the remote display, but the
    loopback callback would have to reach this machine. CI runners and containers have no person at a screen, and a
    Linux or BSD machine without ``DISPLAY`` or ``WAYLAND_DISPLAY`` has no screen at all.
    """
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    for variable in _CI_VARIABLES:
        if env.get(variable, "").lower() not in ("", "0", "false"):
            return f"running in CI ({variable} is set)"
    if env.get("SSH_CONNECTION") or env.get("SSH_TTY"):
        return "an SSH session (the browser would not reach this machine's loopback callback)"
    if environ is None and Path("/.dockerenv").exists():
        return "inside a container"
    if platform.startswith(("linux", "freebsd", "openbsd", "netbsd")) and not (
        env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")
    ):
        return "no graphical display (DISPLAY and WAYLAND_DISPLAY are unset)"
    return None
