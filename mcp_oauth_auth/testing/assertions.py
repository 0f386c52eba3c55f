"""Assertions about what a :class:`~mcp_oauth_auth.testing.FakeMCPStack` saw, with readable failure messages.

Each helper raises ``AssertionError`` naming what was expected, what happened, and the requests the stack
received (method, logical endpoint, path and status; never a query string or a token). Under pytest the helpers'
own frames are hidden from tracebacks.

Example::

    assert_grants(stack, ["authorization_code", "refresh_token"])
    assert_token_requests(stack, 1, grant_type="refresh_token")
    assert_counts(stack, authorize=1, register=1)
    assert_no_violations(stack)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from mcp_oauth_auth.testing.fake import FakeMCPStack

__all__ = [
    "DEVICE_CODE_GRANT",
    "assert_counts",
    "assert_grants",
    "assert_no_violations",
    "assert_scopes_requested",
    "assert_token_requests",
    "describe_traffic",
]

#: The device authorization grant type (RFC 8628); the helpers also accept the short form "device_code".
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_ALIASES = {"device_code": DEVICE_CODE_GRANT}


def describe_traffic(stack: FakeMCPStack) -> str:
    """What the stack saw, one line per request ("GET resource /mcp -> 401"), then the token requests."""
    lines = ["requests the fake stack received:"]
    for record in stack.request_log:
        path = urlsplit(record["url"]).path or "/"
        lines.append(f"  {record['method']} {record['endpoint']} {path} -> {record['status']}")
    if len(lines) == 1:
        lines.append("  (none)")
    if stack.token_requests:
        lines.append("token requests:")
        for token_request in stack.token_requests:
            error = f" {token_request['error']}" if token_request.get("error") else ""
            lines.append(f"  {token_request['grant_type']} -> {token_request['status']}{error}")
    return "\n".join(lines)


def assert_grants(stack: FakeMCPStack, expected: Sequence[str | None]) -> None:
    """The token requests used exactly these grant types, in this order ("device_code" stands for the URN).

    Failed token requests count too: ``["authorization_code", "refresh_token", "authorization_code"]`` is a
    refresh rejected with ``invalid_grant`` followed by a new authorization.
    """
    __tracebackhide__ = True
    wanted = [_ALIASES.get(grant, grant) if grant is not None else None for grant in expected]
    used = stack.grants_used()
    if used != wanted:
        raise AssertionError(f"expected the grants {wanted}, the token endpoint saw {used}\n{describe_traffic(stack)}")


def assert_token_requests(stack: FakeMCPStack, count: int, *, grant_type: str | None = None) -> None:
    """The token endpoint received ``count`` requests (only those of ``grant_type`` when given)."""
    __tracebackhide__ = True
    wanted = _ALIASES.get(grant_type, grant_type) if grant_type is not None else None
    records = [r for r in stack.token_requests if wanted is None or r["grant_type"] == wanted]
    if len(records) != count:
        what = "token requests" if wanted is None else f"token requests with grant_type={wanted}"
        raise AssertionError(f"expected {count} {what}, got {len(records)}\n{describe_traffic(stack)}")


def assert_counts(stack: FakeMCPStack, **expected: int) -> None:
    """Each named logical endpoint received exactly this many requests: ``assert_counts(stack, authorize=1,
    token=2, register=0)``. The names are those of ``stack.count()`` ("prm", "as_metadata", "register",
    "authorize", "token", "refresh", "revoke", "resource", "device_authorization", ...)."""
    __tracebackhide__ = True
    if not expected:
        raise TypeError("assert_counts needs at least one endpoint=count argument")
    actual = {endpoint: stack.count(endpoint) for endpoint in expected}
    wrong = {endpoint: count for endpoint, count in actual.items() if count != expected[endpoint]}
    if wrong:
        details = ", ".join(f"{endpoint}: expected {expected[endpoint]}, got {wrong[endpoint]}" for endpoint in wrong)
        raise AssertionError(f"unexpected request counts ({details})\n{describe_traffic(stack)}")


def assert_no_violations(stack: FakeMCPStack) -> None:
    """The client broke no protocol rule the fake checks (such as an access token in a query string)."""
    __tracebackhide__ = True
    violations = list(stack.violations)
    if violations:
        listed = "\n".join(f"  - {violation}" for violation in violations)
        raise AssertionError(f"the fake stack noticed {len(violations)} protocol violation(s):\n{listed}")


def assert_scopes_requested(stack: FakeMCPStack, *expected: str | Iterable[str]) -> None:
    """The authorization requests asked for these scopes, one argument per request, in order; each is a
    space-separated string or an iterable of scopes, compared as sets (a request without ``scope`` is empty).

    ``assert_scopes_requested(stack, "mcp:read offline_access", "mcp:read admin offline_access")`` is a first
    authorization followed by one step-up.
    """
    __tracebackhide__ = True
    wanted = [set(scopes.split()) if isinstance(scopes, str) else set(scopes) for scopes in expected]
    requested = [set(query.get("scope", "").split()) for query in stack.authorization_requests]
    if requested != wanted:
        raise AssertionError(
            f"expected authorization requests for the scopes {[sorted(s) for s in wanted]}, "
            f"got {[sorted(s) for s in requested]}\n{describe_traffic(stack)}"
        )
