"""What a device authorization response (RFC 8628 §3.2) gives the person: plain data, shared by the device flow
(:mod:`mcp_oauth_auth.flow.device`) and the effect that shows it (:class:`~mcp_oauth_auth.flow.effects.ShowDeviceCode`).

It imports nothing from the flow, so that :mod:`mcp_oauth_auth.flow.effects` can name it without a cycle.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

__all__ = ["DEFAULT_INTERVAL", "DeviceAuthorization"]

#: Seconds between polls when the server names no ``interval`` (RFC 8628 §3.2).
DEFAULT_INTERVAL = 5.0

_SEPARATOR = re.compile(r"[^0-9A-Za-z]")


@dataclass(frozen=True)
class DeviceAuthorization:
    """A device authorization response (RFC 8628 §3.2), with the expiry made absolute (seconds since the epoch).

    ``device_code`` is a credential: it never appears in the ``repr``.
    """

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: float
    interval: float = DEFAULT_INTERVAL

    @property
    def display_user_code(self) -> str:
        """The user code grouped for reading aloud and typing (RFC 8628 §6.1): ``WDJBMJHT`` -> ``WDJB-MJHT``.

        A code the server already punctuated, or one of 5 characters or fewer, is returned as issued. Only for
        display: servers ignore the hyphen (RFC 8628 §6.1 recommends it), and :attr:`user_code` stays as issued.
        """
        code = self.user_code
        if len(code) <= 5 or _SEPARATOR.search(code):
            return code
        size = next((size for size in (4, 3, 5) if len(code) % size == 0), 4)
        return "-".join(code[start : start + size] for start in range(0, len(code), size))

    def seconds_left(self, now: float | None = None) -> float:
        """Seconds until the codes expire (0 when they have)."""
        return max(0.0, self.expires_at - (time.time() if now is None else now))
