"""Authorizers: how a person approves an authorization request.

* :class:`LoopbackBrowserAuthorizer`: the person's browser, with the callback caught on a loopback port.
* :class:`HeadlessAuthorizer`: completes the authorization over HTTP without a browser (tests, CI, demos).
* Any callable ``f(authorization_url) -> callback_url``, sync or async, via :func:`as_authorizer`.
"""

from __future__ import annotations

from mcp_oauth_auth.authorizers.base import (
    DEFAULT_REDIRECT_URI,
    Authorizer,
    AuthorizerLike,
    CallableAuthorizer,
    as_authorizer,
)
from mcp_oauth_auth.authorizers.headless import HeadlessAuthorizer
from mcp_oauth_auth.authorizers.loopback import LoopbackBrowserAuthorizer

__all__ = [
    "DEFAULT_REDIRECT_URI",
    "Authorizer",
    "AuthorizerLike",
    "CallableAuthorizer",
    "HeadlessAuthorizer",
    "LoopbackBrowserAuthorizer",
    "as_authorizer",
]
