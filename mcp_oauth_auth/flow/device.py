"""The device authorization grant (RFC 8628), for clients that cannot open a browser or receive a redirect.

1. :func:`start_device_authorization` asks the authorization server for a device code and a user code.
2. The person visits ``verification_uri`` on any device and enters the user code (or opens
   ``verification_uri_complete``, which carries it). Showing them is the caller's business.
3. :func:`poll_device_token` polls the token endpoint, sleeping ``interval`` seconds between polls, until the
   person approves (tokens), denies (:class:`~mcp_oauth_auth.exceptions.AuthorizationDeniedError`) or the code
   expires (:class:`~mcp_oauth_auth.exceptions.AuthorizationTimeoutError`).

Both requests carry the client's authentication as registered (a public client sends its ``client_id``) and the
``resource`` indicator (RFC 8707) when one is in use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mcp_oauth_auth.exceptions import (
    AuthorizationDeniedError,
    AuthorizationError,
    AuthorizationTimeoutError,
    DiscoveryError,
    TokenExchangeError,
)
from mcp_oauth_auth.flow.client_auth import ClientAssertionSigner, authenticated_fetch
from mcp_oauth_auth.flow.device_authorization import DEFAULT_INTERVAL, DeviceAuthorization
from mcp_oauth_auth.flow.discovery import AuthorizationServerMetadata
from mcp_oauth_auth.flow.effects import Effect, HttpResponse, sleep
from mcp_oauth_auth.flow.fetch import RetryPolicy
from mcp_oauth_auth.flow.tokens import parse_token_response, token_error, with_scope_and_resource
from mcp_oauth_auth.flow.urls import is_loopback_host, safe_url
from mcp_oauth_auth.flow.values import parse_seconds
from mcp_oauth_auth.records import ClientRegistration, TokenSet

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.dpop import DPoPState

__all__ = [
    "DEFAULT_INTERVAL",
    "DEVICE_CODE_GRANT",
    "MAX_INTERVAL",
    "MAX_LIFETIME",
    "SLOW_DOWN_INCREMENT",
    "DeviceAuthorization",
    "poll_device_token",
    "start_device_authorization",
]

logger = logging.getLogger("mcp_oauth_auth")

#: The ``grant_type`` of device access token requests (RFC 8628 §3.4).
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: Seconds added to the interval on each ``slow_down`` (RFC 8628 §3.5).
SLOW_DOWN_INCREMENT = 5.0
#: The longest wait between polls, whatever the server asks for.
MAX_INTERVAL = 60.0
#: The longest a device code is polled for, whatever the server's ``expires_in``.
MAX_LIFETIME = 86400.0


def _user_facing_uri(value: Any, name: str, endpoint: str, *, required: bool, allow_insecure_http: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise AuthorizationError(f"the device authorization response has no valid {name!r}", url=endpoint)
    try:
        parts = urlsplit(value)
        scheme, host = parts.scheme.lower(), parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        scheme, host = "", None
    if not host or scheme not in ("https", "http"):
        raise AuthorizationError(f"the device authorization response's {name} is not an absolute URL", url=endpoint)
    if scheme == "http" and not allow_insecure_http and not is_loopback_host(host):
        # The person would type their user code into a page anyone on the path can read or replace.
        raise AuthorizationError(
            f"the device authorization response's {name} does not use https: {safe_url(value)}", url=endpoint
        )
    return value


def start_device_authorization(
    metadata: AuthorizationServerMetadata,
    client: ClientRegistration,
    scopes: tuple[str, ...],
    resource: str | None,
    retry: RetryPolicy,
    *,
    private_key: ClientAssertionSigner | None = None,
    allow_insecure_http: bool = False,
    now: Callable[[], float] = time.time,
) -> Generator[Effect, Any, DeviceAuthorization]:
    """Request a device code and a user code (RFC 8628 §3.1) at the server's ``device_authorization_endpoint``.

    Raises :class:`DiscoveryError` when the server publishes no such endpoint, and :class:`AuthorizationError`
    (with the server's ``error`` and ``error_description``) when it refuses or answers with something unusable,
    including a ``verification_uri`` that is neither https nor loopback http (unless ``allow_insecure_http``).
    """
    endpoint = metadata.device_authorization_endpoint
    if not endpoint:
        raise DiscoveryError(
            f"the authorization server {metadata.issuer} publishes no device_authorization_endpoint: it does not "
            "offer the device authorization grant (RFC 8628)",
            url=metadata.url or metadata.issuer,
        )
    fields = with_scope_and_resource({}, scopes, resource)
    logger.debug("requesting a device code at %s", safe_url(endpoint))
    response = yield from authenticated_fetch(
        endpoint,
        client,
        fields,
        retry,
        "device authorization request",
        private_key=private_key,
        issuer=metadata.issuer,
        now=now,
    )
    if response.status != 200:
        raise token_error(
            AuthorizationError, "the authorization server refused the device authorization request", response, endpoint
        )
    return _parse_device_authorization(response, endpoint, now(), allow_insecure_http=allow_insecure_http)


def _parse_device_authorization(
    response: HttpResponse, endpoint: str, received_at: float, *, allow_insecure_http: bool
) -> DeviceAuthorization:
    document = response.json_object()
    if document is None:
        raise AuthorizationError("the device authorization response is not a JSON object", url=endpoint)
    device_code = document.get("device_code")
    user_code = document.get("user_code")
    for name, value in (("device_code", device_code), ("user_code", user_code)):
        if not isinstance(value, str) or not value:
            raise AuthorizationError(f"the device authorization response has no valid {name!r}", url=endpoint)
    assert isinstance(device_code, str)
    assert isinstance(user_code, str)
    # "verification_url" is what some servers (Google) sent before RFC 8628 was final.
    raw_uri = document.get("verification_uri", document.get("verification_url"))
    verification_uri = _user_facing_uri(
        raw_uri, "verification_uri", endpoint, required=True, allow_insecure_http=allow_insecure_http
    )
    assert verification_uri is not None
    verification_uri_complete = _user_facing_uri(
        document.get("verification_uri_complete"),
        "verification_uri_complete",
        endpoint,
        required=False,
        allow_insecure_http=allow_insecure_http,
    )
    expires_in = parse_seconds(document.get("expires_in"))
    if not expires_in:
        raise AuthorizationError("the device authorization response has no valid 'expires_in'", url=endpoint)
    interval = DEFAULT_INTERVAL
    if "interval" in document:
        given = parse_seconds(document["interval"])
        if given is None:
            raise AuthorizationError("the device authorization response has an invalid 'interval'", url=endpoint)
        interval = given
    return DeviceAuthorization(
        device_code=device_code,
        user_code=user_code,
        verification_uri=verification_uri,
        verification_uri_complete=verification_uri_complete,
        expires_at=received_at + min(expires_in, MAX_LIFETIME),
        # A zero interval would poll without pause; one second is the least this client waits.
        interval=min(max(interval, 1.0), MAX_INTERVAL),
    )


def poll_device_token(
    token_endpoint: str,
    client: ClientRegistration,
    device: DeviceAuthorization,
    resource: str | None,
    retry: RetryPolicy,
    now: Callable[[], float] = time.time,
    *,
    private_key: ClientAssertionSigner | None = None,
    issuer: str | None = None,
    dpop: DPoPState | None = None,
) -> Generator[Effect, Any, TokenSet]:
    """Poll the token endpoint (RFC 8628 §3.4, §3.5) until the person decides or the codes expire.

    Sleeps ``device.interval`` before each poll; ``authorization_pending`` polls again, ``slow_down`` adds five
    seconds to the interval for this and every later poll (or takes the server's new ``interval``, up to
    :data:`MAX_INTERVAL`, when that is longer). ``access_denied`` raises :class:`AuthorizationDeniedError`;
    ``expired_token``, or the codes' expiry passing locally (``now``), raises :class:`AuthorizationTimeoutError`; any
    other error raises :class:`TokenExchangeError`. Temporary failures (5xx, 429) are retried per ``retry`` and then
    raise :class:`~mcp_oauth_auth.exceptions.TemporaryOAuthError`. ``issuer`` is needed with ``private_key_jwt`` only.
    """
    fields = {"grant_type": DEVICE_CODE_GRANT, "device_code": device.device_code}
    if resource:
        fields["resource"] = resource
    interval = device.interval
    polls = 0
    while True:
        remaining = device.expires_at - now()
        if remaining <= 0:
            raise _expired(token_endpoint, polls)
        yield from sleep(min(interval, remaining))
        if now() >= device.expires_at:
            raise _expired(token_endpoint, polls)
        polls += 1
        response = yield from authenticated_fetch(
            token_endpoint,
            client,
            fields,
            retry,
            "device access token request",
            private_key=private_key,
            issuer=issuer,
            now=now,
            dpop=dpop,
        )
        document = response.json_object() or {}
        error = document.get("error")
        # GitHub answers pending polls with 200 and an error document: the error decides, not the status.
        if response.status == 200 and not isinstance(error, str):
            logger.debug("device authorization approved after %d polls", polls)
            return parse_token_response(response, token_endpoint, TokenExchangeError, now=now, dpop=dpop is not None)
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            suggested = parse_seconds(document.get("interval"))
            interval = max(interval + SLOW_DOWN_INCREMENT, min(suggested or 0.0, MAX_INTERVAL))
            logger.debug("device token polling: slow_down, polling every %.0fs from now on", interval)
            continue
        if error == "access_denied":
            raise token_error(
                AuthorizationDeniedError, "the person denied the device authorization", response, token_endpoint
            )
        if error == "expired_token":
            raise token_error(
                AuthorizationTimeoutError,
                "the device code expired before the person completed the authorization",
                response,
                token_endpoint,
            )
        raise token_error(TokenExchangeError, "the token endpoint refused the device code", response, token_endpoint)


def _expired(endpoint: str, polls: int) -> AuthorizationTimeoutError:
    return AuthorizationTimeoutError(
        f"the device code expired before the person completed the authorization ({polls} polls)", url=endpoint
    )
