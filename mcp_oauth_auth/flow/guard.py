"""Every request a credential flow makes, checked before it leaves: the address policy, the redirects a client
followed, and a cap on the URLs one flow may reach. A provider's additions to the requests
(:mod:`mcp_oauth_auth.flow.request_rules`) are applied here too, before the checks.

:func:`guarded` wraps a flow (a generator of effects): an HTTP effect whose URL the
:class:`~mcp_oauth_auth.flow.addresses.AddressPolicy` refuses is never handed to the driver; the refusal
(:class:`~mcp_oauth_auth.exceptions.UnsafeURLError`) is thrown into the flow instead, as a failed request would
be, so that the flow's own rules apply (logout still removes the local credential, say). A response that came
through a redirect (the caller's client follows them) is used only when every hop is https (or loopback http) and
allowed by the policy; otherwise the flow gets the refusal, not the response. What host names resolve to, and the
address each response came from, are checked too (:mod:`mcp_oauth_auth.flow.resolved`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import replace
from typing import Any, TypeVar

from mcp_oauth_auth.exceptions import OAuthError, UnsafeURLError
from mcp_oauth_auth.flow.addresses import MAX_URLS_PER_FLOW, AddressPolicy
from mcp_oauth_auth.flow.effects import (
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_RESPONSE_DEADLINE,
    Effect,
    HttpResponse,
    SendHttp,
)
from mcp_oauth_auth.flow.resolved import ResolvedAddresses
from mcp_oauth_auth.flow.urls import require_secure_url, safe_url

__all__ = ["guarded"]

logger = logging.getLogger("mcp_oauth_auth")

T = TypeVar("T")

_warned_about_redirects: list[bool] = []


def guarded(
    flow: Generator[Effect, Any, T],
    policy: AddressPolicy | None,
    *,
    allow_insecure_http: bool = False,
    max_body: int = DEFAULT_MAX_RESPONSE_SIZE,
    deadline: float = DEFAULT_RESPONSE_DEADLINE,
    rewrite: Callable[[Effect], Effect] | None = None,
    server_peers: frozenset[str] = frozenset(),
) -> Generator[Effect, Any, T]:
    """``flow`` with each of its requests checked against ``policy`` (see the module's documentation), and its
    responses read within ``max_body`` bytes and ``deadline`` seconds. ``rewrite`` (a provider's request rules)
    is applied to each effect first. ``server_peers``: the addresses the MCP server's responses came from (a
    response from one of them is not refused). Without a ``policy`` (``mcp-oauth doctor``, which reports what it
    finds), only the reading limits apply."""
    urls: set[str] = set()
    resolved = None if policy is None else ResolvedAddresses(policy, server_peers=server_peers)
    result: Any = None
    failure: BaseException | None = None
    with closing(flow):
        while True:
            try:
                effect = flow.send(result) if failure is None else flow.throw(failure)
            except StopIteration as stop:
                value: T = stop.value
                return value
            result, failure = None, None
            if rewrite is not None:
                effect = rewrite(effect)
            if isinstance(effect, SendHttp):
                peer_check = None
                if policy is not None and resolved is not None:
                    failure = _refusal(effect, policy, urls) or (yield from resolved.check(effect.request.url))
                    if failure is not None:
                        continue
                    peer_check = resolved.peer_refusal if resolved.active else None
                effect = replace(effect, max_body=max_body, deadline=deadline, peer_check=peer_check)
            try:
                result = yield effect
            except GeneratorExit:
                raise
            except BaseException as exc:  # a failed request, thrown in by the driver: the flow decides
                failure = exc
                continue
            if policy is not None and isinstance(result, HttpResponse) and result.redirects:
                failure = _redirect_refusal(result, policy, allow_insecure_http)


def _refusal(effect: SendHttp, policy: AddressPolicy, urls: set[str]) -> OAuthError | None:
    url = effect.request.url
    try:
        policy.check(url)
    except UnsafeURLError as exc:
        return exc
    urls.add(url.partition("?")[0])
    if len(urls) > MAX_URLS_PER_FLOW:
        return UnsafeURLError(
            f"refusing {safe_url(url)}: one credential flow may send requests to at most {MAX_URLS_PER_FLOW} "
            "different URLs, and the servers' metadata led to more",
            url=safe_url(url),
        )
    return None


def _redirect_refusal(response: HttpResponse, policy: AddressPolicy, allow_insecure_http: bool) -> OAuthError | None:
    if not _warned_about_redirects:
        _warned_about_redirects.append(True)
        logger.warning(
            "the HTTP client follows redirects (follow_redirects=True): OAuth requests are then redirected by the "
            "client before this library sees them; each hop is checked afterwards, and a response through a "
            "forbidden hop is not used. Prefer a client that does not follow redirects"
        )
    for hop in response.redirects:
        try:
            require_secure_url(hop, "a redirect target", allow_insecure_http=allow_insecure_http)
            policy.check(hop, "a redirect target")
        except OAuthError as exc:
            return UnsafeURLError(
                f"{safe_url(response.url)} redirected to {safe_url(hop)}, which the flow may not use: {exc.message}",
                url=safe_url(hop),
            )
    return None
