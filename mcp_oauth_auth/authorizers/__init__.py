"""Authorizers: how a person approves an authorization request.

* :class:`LoopbackBrowserAuthorizer`: the person's browser, with the callback caught on a loopback port.
* :class:`DeviceAuthorizer`: the device flow (RFC 8628), for machines without a usable browser.
* :class:`PasteBackAuthorizer`: the browser runs elsewhere; the person pastes the redirected URL back.
* :class:`HeadlessAuthorizer`: completes the authorization over HTTP without a browser (tests, CI, demos).
* Any callable ``f(authorization_url) -> callback_url``, sync or async, via :func:`as_authorizer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcp_oauth_auth.authorizers.base import (
    DEFAULT_REDIRECT_URI,
    Authorizer,
    AuthorizerLike,
    CallableAuthorizer,
    as_authorizer,
)

if TYPE_CHECKING:
    from mcp_oauth_auth.authorizers.device import DeviceAuthorizer
    from mcp_oauth_auth.authorizers.headless import HeadlessAuthorizer
    from mcp_oauth_auth.authorizers.loopback import LoopbackBrowserAuthorizer
    from mcp_oauth_auth.authorizers.paste import PasteBackAuthorizer

_LAZY = {
    "DeviceAuthorizer": "mcp_oauth_auth.authorizers.device",
    "PasteBackAuthorizer": "mcp_oauth_auth.authorizers.paste",
    "HeadlessAuthorizer": "mcp_oauth_auth.authorizers.headless",
    "LoopbackBrowserAuthorizer": "mcp_oauth_auth.authorizers.loopback",
}


def __getattr__(name: str) -> Any:
    """Import the concrete authorizers on first use: most programs never need both, and start faster."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "DEFAULT_REDIRECT_URI",
    "Authorizer",
    "AuthorizerLike",
    "CallableAuthorizer",
    "DeviceAuthorizer",
    "HeadlessAuthorizer",
    "LoopbackBrowserAuthorizer",
    "PasteBackAuthorizer",
    "as_authorizer",
]
