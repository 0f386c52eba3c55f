"""Exit codes, and how every failure becomes one line of explanation and one hint."""

from __future__ import annotations

import enum

import httpx

from mcp_oauth_auth.exceptions import (
    AuthorizationDeniedError,
    AuthorizationError,
    AuthorizationTimeoutError,
    CallbackPortInUseError,
    ClientRegistrationRequiredError,
    ConfigurationError,
    DiscoveryError,
    InvalidGrantError,
    OAuthError,
    StoreLockedError,
    TemporaryOAuthError,
    TokenStorageError,
)
from mcp_oauth_auth.flow.urls import safe_url

#: Where the documentation is for people who installed the package (the project's ``Documentation`` URL): help
#: texts and hints link there, never to a path inside a clone of the repository.
DOCUMENTATION = "https://github.com/mcp-oauth-auth/mcp-oauth-auth/tree/main/docs"

__all__ = ["CLIError", "ExitCode", "NotLoggedInError", "explain"]


class ExitCode(enum.IntEnum):
    """The exit status of ``mcp-oauth``: documented in the command line reference (cli.md), relied upon by scripts."""

    OK = 0
    #: Something failed: network, server, store, an unexpected error.
    ERROR = 1
    #: The command line is wrong (argparse's own convention).
    USAGE = 2
    #: No stored credential by that name, or it can no longer be used without logging in again.
    NOT_LOGGED_IN = 3
    #: ``doctor``: the server publishes something a client cannot authenticate against.
    CANNOT_AUTHENTICATE = 4
    #: Interrupted (Ctrl-C), as shells report SIGINT.
    INTERRUPTED = 130


class CLIError(Exception):
    """A failure the command explains itself: a message, a hint, and the exit code."""

    def __init__(self, message: str, hint: str | None = None, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


class NotLoggedInError(CLIError):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint, ExitCode.NOT_LOGGED_IN)


def explain(exc: BaseException) -> CLIError:
    """The message, hint and exit code for any exception a command lets through."""
    if isinstance(exc, CLIError):
        return exc
    if isinstance(exc, httpx.HTTPError):
        return _http_error(exc)
    if isinstance(exc, OAuthError):
        return CLIError(str(exc), _oauth_hint(exc), _oauth_code(exc))
    return CLIError(
        f"unexpected {type(exc).__name__}: {exc}",
        "run again with --debug for the traceback, and report it if it persists",
    )


def _http_error(exc: httpx.HTTPError) -> CLIError:
    try:
        url = safe_url(str(exc.request.url))
    except RuntimeError:  # no request attached
        url = "the server"
    if isinstance(exc, httpx.TimeoutException):
        return CLIError(f"{url} did not answer in time ({type(exc).__name__})", "check the URL, or try again later")
    return CLIError(
        f"could not reach {url} ({type(exc).__name__}: {exc})",
        "check the URL and your network connection (proxies: HTTPS_PROXY / NO_PROXY)",
    )


def _oauth_code(exc: OAuthError) -> ExitCode:
    return ExitCode.NOT_LOGGED_IN if isinstance(exc, InvalidGrantError) else ExitCode.ERROR


def _oauth_hint(exc: OAuthError) -> str | None:
    hints: list[tuple[type[OAuthError], str]] = [
        (InvalidGrantError, "the authorization server no longer accepts this credential: log in again"),
        (TemporaryOAuthError, "the server failed temporarily; nothing stored was changed, try again later"),
        (StoreLockedError, "another process is using this credential; try again when it has finished"),
        (TokenStorageError, f"choose another store with --store (stores: {DOCUMENTATION}/storage.md)"),
        (
            ClientRegistrationRequiredError,
            "pass --client-id (and --client-secret) of a client registered at that server, or --client-metadata-url",
        ),
        (DiscoveryError, "run `mcp-oauth doctor URL` to see what the server publishes"),
        (CallbackPortInUseError, "another program uses the callback port; close it, or log in with --no-browser"),
        (AuthorizationTimeoutError, "approve in the browser sooner, or log in with --device or --no-browser"),
        (AuthorizationDeniedError, "the authorization was refused at the server; log in again to retry"),
        (
            AuthorizationError,
            "log in with --no-browser (open the URL anywhere, paste the address back), or --device if the server "
            "offers the device flow",
        ),
        (ConfigurationError, "check the URL and the options given"),
    ]
    for kind, hint in hints:
        if isinstance(exc, kind):
            return hint
    return None
