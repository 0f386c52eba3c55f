"""The device authorization flow (RFC 8628) as an authorizer: for SSH sessions, containers, CI and agents.

The person opens the verification URI on any device (their phone, their laptop) and confirms the user code, while
this process polls the token endpoint. Nothing has to reach this machine, and no browser has to run on it.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import IO, TYPE_CHECKING, ClassVar

from mcp_oauth_auth.authorizers.base import Authorizer, device_prompt
from mcp_oauth_auth.exceptions import ConfigurationError

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.device_authorization import DeviceAuthorization

__all__ = ["DeviceAuthorizer", "DevicePromptHook"]

DevicePromptHook = Callable[["DeviceAuthorization"], Awaitable[None] | None]


class DeviceAuthorizer(Authorizer):
    """Authorize with the device flow.

    Args:
        on_prompt: receives the :class:`~mcp_oauth_auth.flow.device_authorization.DeviceAuthorization`
            (``verification_uri``, ``verification_uri_complete``, ``user_code``, ``display_user_code``,
            ``expires_at``, ``seconds_left()``) to show it in your own UI; sync or async. By default the
            instructions are written to ``stream``.
        stream: where the default prompt goes (default: stderr).

    The client registers for the ``urn:ietf:params:oauth:grant-type:device_code`` grant, and the authorization
    server must publish a ``device_authorization_endpoint``.
    """

    interaction: ClassVar[str] = "device"

    def __init__(self, on_prompt: DevicePromptHook | None = None, stream: IO[str] | None = None) -> None:
        self._on_prompt = on_prompt
        self._stream = stream

    def show_device_code(self, device: DeviceAuthorization) -> Awaitable[None] | None:
        if self._on_prompt is not None:
            return self._on_prompt(device)
        print(device_prompt(device), file=self._stream or sys.stderr, flush=True)
        return None

    def authorize(self, authorization_url: str, redirect_uri: str) -> str:
        raise ConfigurationError("a DeviceAuthorizer approves with the device flow; it has no redirect to follow")

    def __repr__(self) -> str:
        hook = getattr(self._on_prompt, "__qualname__", None) if self._on_prompt else None
        return f"DeviceAuthorizer(on_prompt={hook})" if hook else "DeviceAuthorizer()"
