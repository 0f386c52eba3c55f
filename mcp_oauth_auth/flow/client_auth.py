"""Client authentication at the authorization server's token-type endpoints (token, device authorization,
revocation): ``none``, ``client_secret_basic``, ``client_secret_post`` (RFC 6749 §2.3.1) and ``private_key_jwt``
(RFC 7523 §2.2, RFC 7521 §4.2).

Every request gets a fresh assertion, retries of temporary failures included: an assertion's ``jti`` is single
use, and a server that recorded it before failing would refuse the same assertion again.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from mcp_oauth_auth.exceptions import ConfigurationError
from mcp_oauth_auth.flow.effects import Effect, HttpRequest, HttpResponse
from mcp_oauth_auth.flow.fetch import RetryPolicy, fetch
from mcp_oauth_auth.records import ClientRegistration

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.dpop import DPoPState

__all__ = [
    "ASSERTION_LIFETIME",
    "CLIENT_ASSERTION_TYPE",
    "PRIVATE_KEY_JWT",
    "ClientAssertionSigner",
    "authenticated_fetch",
    "client_authentication",
]


#: The token endpoint authentication method name (RFC 7591 §2, OpenID Connect Core §9).
PRIVATE_KEY_JWT = "private_key_jwt"
#: ``client_assertion_type`` of a JWT client assertion (RFC 7523 §2.2).
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Seconds between an assertion's ``iat`` and its ``exp``.
ASSERTION_LIFETIME = 60


class ClientAssertionSigner(Protocol):
    """Produces a signed client assertion (RFC 7523 §3) for one token endpoint request."""

    def assertion(self, client_id: str, audience: str, now: float | None = None) -> str: ...


def _authenticated_request(
    endpoint: str,
    client: ClientRegistration,
    fields: dict[str, str],
    private_key: ClientAssertionSigner | None,
    issuer: str | None,
    now: Callable[[], float],
) -> HttpRequest:
    """The form POST to ``endpoint`` with the client's authentication applied (a fresh assertion for JWT)."""
    assertion = None
    if client.token_endpoint_auth_method == PRIVATE_KEY_JWT:
        if private_key is None:
            raise ConfigurationError(f"client {client.client_id!r} uses private_key_jwt but no signing key was given")
        if not issuer:
            raise ConfigurationError("private_key_jwt needs the authorization server's issuer as the audience")
        assertion = private_key.assertion(client.client_id, issuer, now())
    elif private_key is not None:
        raise ConfigurationError(
            f"a signing key was given but client {client.client_id!r} is registered for "
            f"{client.token_endpoint_auth_method}, not private_key_jwt"
        )
    form, headers = client_authentication(client, fields, client_assertion=assertion)
    return HttpRequest.form(endpoint, form, headers)


def authenticated_fetch(
    endpoint: str,
    client: ClientRegistration,
    fields: dict[str, str],
    retry: RetryPolicy,
    what: str,
    *,
    private_key: ClientAssertionSigner | None = None,
    issuer: str | None = None,
    now: Callable[[], float] = time.time,
    dpop: DPoPState | None = None,
) -> Generator[Effect, Any, HttpResponse]:
    """POST ``fields`` to ``endpoint`` with client authentication, retrying temporary failures like
    :func:`~mcp_oauth_auth.flow.fetch.fetch`; with ``private_key_jwt``, each attempt carries a new assertion; with
    ``dpop``, a new DPoP proof (and a ``use_dpop_nonce`` refusal is retried once with the server's nonce)."""

    def request() -> HttpRequest:
        return _authenticated_request(endpoint, client, fields, private_key, issuer, now)

    if dpop is not None:
        from mcp_oauth_auth.flow.dpop import dpop_fetch

        return (yield from dpop_fetch(request, dpop, retry, what, now))
    response = yield from fetch(request, retry, what)
    return response


# The encodings below stay hand-written rather than Authlib's (authlib.oauth2.auth: encode_client_secret_basic,
# encode_client_secret_post, encode_none). Those rewrite a urlencoded body string and a headers dict, requests-style,
# where this library builds a form dict for a sans-IO HttpRequest; and encode_client_secret_basic Base64-encodes
# "client_id:client_secret" as Latin-1 without the form encoding RFC 6749 §2.3.1 requires: Authlib 1.9 sends the
# ID "svc:1" with the secret "s" as "svc:1:s", which a server splits as ID "svc", and fails outright on a secret
# with a character outside Latin-1 (tests/unit/test_tokens.py, test_client_secret_basic_is_form_encoded_before_base64).
def _form_encode(value: str) -> str:
    """application/x-www-form-urlencoded encoding of one value (RFC 6749 §2.3.1, Appendix B)."""
    return quote(value, safe="").replace("%20", "+")


def client_authentication(
    client: ClientRegistration, fields: dict[str, str], *, client_assertion: str | None = None
) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """``fields`` and headers with the client's token endpoint authentication applied.

    ``private_key_jwt`` (RFC 7523 §2.2) needs ``client_assertion``, a signed JWT made for this very request (see
    :func:`authenticated_fetch`); ``client_id`` is sent along with it (RFC 7521 §4.2), and along with HTTP Basic
    credentials too (RFC 6749 §3.2.1).
    """
    method = client.token_endpoint_auth_method
    if method == "private_key_jwt":
        if client_assertion is None:
            raise ConfigurationError(f"client {client.client_id!r} uses private_key_jwt: a client assertion is needed")
        return {
            **fields,
            "client_id": client.client_id,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": client_assertion,
        }, ()
    if method == "client_secret_basic":
        # client_id goes in the form too. RFC 6749 §3.2.1 lets a client identify itself with it at the token
        # endpoint; it is not a second authentication method (the secret is only in the header). The
        # authorization servers built into the MCP SDKs (Python SDK ``mcp.server.auth``, hence FastMCP) look the
        # client up by the form's client_id before reading the header, and refuse Basic alone with
        # ``invalid_client: Missing client_id``; RFC-minded servers (oidc-provider, Keycloak, Authlib) accept it
        # when it matches the Basic user name. Preferring client_secret_post instead would not help a client
        # registered or pre-configured for client_secret_basic, so the header stays RFC 8414's default.
        assert client.client_secret is not None
        credentials = f"{_form_encode(client.client_id)}:{_form_encode(client.client_secret)}"
        encoded = base64.b64encode(credentials.encode("utf-8")).decode("ascii")
        return {**fields, "client_id": client.client_id}, (("Authorization", f"Basic {encoded}"),)
    if method == "client_secret_post":
        assert client.client_secret is not None
        return {**fields, "client_id": client.client_id, "client_secret": client.client_secret}, ()
    return {**fields, "client_id": client.client_id}, ()
