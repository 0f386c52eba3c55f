"""What the parts of the fake stack share: the request log and the view of the stack each part needs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mcp_oauth_auth.testing.fake_config import FakeStackConfig

if TYPE_CHECKING:
    from mcp_oauth_auth.testing.fake_idp import FakeEnterpriseIdP

__all__ = ["ENDPOINTS", "FakeLog", "StackContext"]

#: Logical endpoint names, for ``count()`` and ``fail_next()``. "token" is every token endpoint request,
#: "refresh" only those with grant_type=refresh_token; "not_found" is any request that matched no route.
ENDPOINTS = (
    "prm",
    "as_metadata",
    "register",
    "authorize",
    "token",
    "refresh",
    "revoke",
    "introspect",
    "resource",
    "userinfo",
    "jwks",
    "idp",
    "not_found",
)


@dataclass(repr=False)
class FakeLog:
    """Everything the stack saw, for assertions. Records may hold tokens: never print them in library code."""

    #: Every request: {"endpoint", "method", "url", "status"}.
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: Requests to the MCP resource: {"method", "url", "path", "authorization", "body_length", "status", ...}.
    resource_requests: list[dict[str, Any]] = field(default_factory=list)
    #: The parsed query of every /authorize request (first value of each parameter).
    authorization_requests: list[dict[str, str]] = field(default_factory=list)
    #: {"grant_type", "client_id", "auth_method", "resource", "scope", "status", "error"} per /token request.
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    #: The JSON body of every /register request (the raw text when it was not JSON).
    registration_requests: list[Any] = field(default_factory=list)
    #: Per /revoke: {"client_id", "auth_method", "token", "token_type_hint", "token_kind", "revoked",
    #: "status"}.
    revocation_requests: list[dict[str, Any]] = field(default_factory=list)
    #: {"token_kind", "active"} per /introspect request.
    introspection_requests: list[dict[str, Any]] = field(default_factory=list)
    #: Protocol violations by the client that the fake noticed (e.g. an access token in a query string).
    violations: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def clear(self) -> None:
        """Empty every log in place (references held by tests stay valid)."""
        for records in (
            self.requests,
            self.resource_requests,
            self.authorization_requests,
            self.token_requests,
            self.registration_requests,
            self.revocation_requests,
            self.introspection_requests,
            self.violations,
        ):
            records.clear()
        self.counts.clear()

    def __repr__(self) -> str:
        return f"FakeLog({len(self.requests)} requests)"


class StackContext(Protocol):
    """The stack as its parts see it: configuration, clock, URLs and the log."""

    config: FakeStackConfig

    @property
    def log(self) -> FakeLog: ...

    def now(self) -> float: ...

    @property
    def server_url(self) -> str: ...

    @property
    def issuer(self) -> str: ...

    @property
    def resource_metadata_url(self) -> str | None: ...

    def accepted_resources(self) -> tuple[str, ...]: ...

    @property
    def idp(self) -> FakeEnterpriseIdP | None: ...
