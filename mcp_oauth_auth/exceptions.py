"""The exception taxonomy of mcp_oauth_auth.

Every error raised by this library derives from :class:`OAuthError`. Each carries what a user needs to act on it
(which URL, what the server said: ``error`` and ``error_description``) and never a secret.

Two families matter for credential handling:

* :class:`TemporaryOAuthError` (network trouble, 5xx, 429): retried, and stored credentials are always kept.
* Final errors such as :class:`InvalidGrantError`: only these may make the library discard a credential.
"""

from __future__ import annotations

__all__ = [
    "AuthorizationDeniedError",
    "AuthorizationError",
    "AuthorizationTimeoutError",
    "CallbackPortInUseError",
    "ClientRegistrationRequiredError",
    "ClientUnknownError",
    "ConfigurationError",
    "ConnectionFailedError",
    "DiscoveryError",
    "IdentityAssertionError",
    "InsufficientScopeError",
    "InvalidGrantError",
    "IssuerMismatchError",
    "OAuthError",
    "PKCENotSupportedError",
    "RecordConflictError",
    "RegistrationError",
    "RegistrationPolicyError",
    "RequestNotReplayableError",
    "ResourceMismatchError",
    "ResponseLimitError",
    "StateMismatchError",
    "StoreLockedError",
    "StoreUnavailableError",
    "TemporaryOAuthError",
    "TokenExchangeError",
    "TokenRefreshError",
    "TokenRevocationError",
    "TokenStorageError",
    "TooManyRedirectsError",
    "UnsafeURLError",
    "WorkloadIdentityError",
    "WrongPasswordError",
]


#: The longest message, and the longest server-supplied field (``error``, ``error_description``), an error keeps:
#: a hostile server's texts (challenges, error documents, metadata values quoted in messages) are cut.
MAX_MESSAGE = 2000
MAX_SERVER_TEXT = 500


def _bounded(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters (with a mark), or as it is."""
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit} more characters]"


class OAuthError(Exception):
    """Root of every error raised by mcp_oauth_auth.

    ``error`` and ``error_description`` are the OAuth error fields when a server sent them; ``url`` is the URL
    involved, when there is one. None of them ever holds a secret.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        error: str | None = None,
        error_description: str | None = None,
        status_code: int | None = None,
    ) -> None:
        message = _bounded(message, MAX_MESSAGE) or ""
        super().__init__(message)
        self.message = message
        self.url = url
        self.error = _bounded(error, MAX_SERVER_TEXT)
        self.error_description = _bounded(error_description, MAX_SERVER_TEXT)
        self.status_code = status_code

    def __str__(self) -> str:
        details = []
        if self.error:
            details.append(f"error={self.error!r}")
        if self.error_description:
            details.append(f"error_description={self.error_description!r}")
        if self.status_code is not None:
            details.append(f"status={self.status_code}")
        if self.url:
            details.append(f"url={self.url}")
        return f"{self.message} ({', '.join(details)})" if details else self.message


class ConfigurationError(OAuthError, ValueError):
    """The arguments given to the library cannot work (e.g. a non-HTTPS server URL that is not loopback)."""


class TemporaryOAuthError(OAuthError):
    """A temporary failure (network, HTTP 5xx, HTTP 429) that persisted through the retries.

    Stored credentials are never discarded because of it; trying again later may succeed. The one exception is
    logging out, which removes the credential as asked: there it reports a token the server failed to revoke
    (in the ``error`` of its ``RevocationOutcome``), which stays valid at the server until it expires.
    """


class ResponseLimitError(TemporaryOAuthError):
    """An OAuth response was larger than ``max_response_size`` or took longer than ``response_deadline`` to arrive;
    it was not read (the connection was closed). Stored credentials are kept."""


class ConnectionFailedError(TemporaryOAuthError):
    """A request could not be sent: ``reason`` says why, ``dns`` (the host name does not exist: most often a typo
    in the URL), ``dns-unavailable``, ``refused``, ``tls`` (the certificate failed verification), ``timeout`` or
    ``network``. Temporary as far as stored credentials go: they are never discarded because of it."""

    def __init__(self, message: str, *, url: str | None = None, reason: str = "network") -> None:
        super().__init__(message, url=url)
        self.reason = reason


class DiscoveryError(OAuthError):
    """Protected resource or authorization server metadata could not be found or is unusable."""


class ResourceMismatchError(DiscoveryError):
    """Protected resource metadata names a ``resource`` that does not identify the server (RFC 9728 §3.3)."""


class IssuerMismatchError(DiscoveryError):
    """An ``issuer`` (metadata, RFC 8414 §3.3) or ``iss`` (callback, RFC 9207) is not the expected string."""


class UnsafeURLError(DiscoveryError):
    """A server named a URL the address policy forbids sending to (a private, loopback, link-local or otherwise
    non-public address, or plain http to loopback: server-side request forgery), or a redirect led to one, or a
    flow asked for more requests than one flow may make; the message names the URL and the rule."""


class TooManyRedirectsError(TemporaryOAuthError):
    """The HTTP client gave up on an OAuth request after following too many redirects (a client made with
    ``follow_redirects=True`` and a server that redirects in a loop: httpx's ``max_redirects``). Stored credentials
    are kept."""


class PKCENotSupportedError(DiscoveryError):
    """The authorization server does not advertise PKCE ``S256``, which the MCP specification requires."""


class RegistrationError(OAuthError):
    """Client registration (RFC 7591) failed or produced a registration this client cannot use."""


class ClientRegistrationRequiredError(RegistrationError):
    """No way to identify the client to this authorization server: supply credentials or a metadata URL."""


class RegistrationPolicyError(ClientRegistrationRequiredError):
    """The authorization server refused dynamic registration by policy (401/403: Keycloak's trusted hosts, Okta
    without an API token, ...): a client must be registered with its administrator and given as ``client_id``."""


class AuthorizationError(OAuthError):
    """The person's authorization did not produce a usable authorization code."""


class AuthorizationDeniedError(AuthorizationError):
    """The person (or a policy on their behalf) declined: the authorization server answered ``access_denied``.

    Other errors in an authorization response (``invalid_scope``, ``unauthorized_client``, ...) are the server
    refusing the request itself, and raise :class:`AuthorizationError`.
    """


class StateMismatchError(AuthorizationError):
    """The callback's ``state`` is missing or is not the one this client sent: the response is not ours."""


class AuthorizationTimeoutError(AuthorizationError):
    """Nobody completed the authorization within the allowed time."""


class CallbackPortInUseError(AuthorizationError):
    """The loopback callback port could not be bound."""


class InsufficientScopeError(AuthorizationError):
    """The server keeps answering ``insufficient_scope`` after the allowed number of step-up attempts."""


class TokenExchangeError(OAuthError):
    """The token endpoint refused to exchange the authorization code."""


class WorkloadIdentityError(TokenExchangeError):
    """The workload's assertion (the JWT of the jwt-bearer grant) could not be obtained from its source: the file
    is unreadable or empty, or the function failed. Nothing was sent and nothing stored changed."""


class IdentityAssertionError(TokenExchangeError):
    """Enterprise-managed authorization failed at the enterprise identity provider: it refused the token exchange
    (RFC 8693) or answered with something other than an ID-JAG, its sign-in gave no usable ID token, or the MCP
    authorization server does not accept ID-JAGs. Not retried with the same assertion."""


class TokenRefreshError(OAuthError):
    """The token endpoint refused to refresh the access token."""


class InvalidGrantError(TokenRefreshError):
    """The refresh token is no longer valid (``invalid_grant``, or another final refusal: ``unauthorized_client``,
    ``unsupported_grant_type``, ``invalid_scope``): a new authorization is needed."""


class ClientUnknownError(InvalidGrantError):
    """The authorization server no longer knows the dynamically registered client (``invalid_client`` on refresh).

    Servers forget dynamic registrations (restarts, clean-ups, expiry); the record is dropped and the client
    registers and authorizes anew.
    """


class RequestNotReplayableError(OAuthError):
    """New credentials are in place, but the request's body was a one-shot stream and could not be sent again.

    Send the request again: it will carry the new token.
    """


class TokenRevocationError(OAuthError):
    """The authorization server did not revoke a token (RFC 7009), or offers no way to."""


class TokenStorageError(OAuthError):
    """A credential store could not load, save or delete a record."""


class StoreLockedError(TokenStorageError):
    """The store's lock for a record could not be taken in time: another process (or host) holds it."""


class RecordConflictError(TokenStorageError):
    """The record changed in the store since it was read (another process or host wrote it); nothing was lost."""


class StoreUnavailableError(TokenStorageError, TemporaryOAuthError):
    """A remote credential store (Redis) stayed unreachable through the retries; nothing stored was changed or lost.

    It is a temporary error: a still-valid access token keeps being used, and trying again later may succeed.
    """


class WrongPasswordError(TokenStorageError):
    """The password (``password=`` or ``$MCP_OAUTH_PASSWORD``) is not the one the store was set up with; nothing
    in the store was changed."""
