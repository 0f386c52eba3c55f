"""Paste-back: the browser is on another machine, so the person pastes the URL it was redirected to.

For remote shells: the authorization URL is shown (and can be opened on any machine); after approving, the browser
tries to load the loopback redirect URI, which fails on that machine — but its address bar holds the URL with the
code, state and iss. The person copies it here, and the flow validates it exactly as it validates a loopback
callback (state, issuer, errors).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO

from mcp_oauth_auth.authorizers.base import DEFAULT_REDIRECT_URI, Authorizer
from mcp_oauth_auth.exceptions import AuthorizationError
from mcp_oauth_auth.flow.printable import printable_text

__all__ = ["PasteBackAuthorizer"]

_INSTRUCTIONS = """\
Open this URL in a browser on any machine and approve:

    {url}

The browser then fails to load a page on {redirect_host} (that is expected). Copy the whole address from its
address bar and paste it here."""


class PasteBackAuthorizer(Authorizer):
    """Show the authorization URL; read the redirected URL the person pastes.

    Args:
        input_stream: where the pasted line is read from (default: stdin).
        output_stream: where the instructions go (default: stderr).
        redirect_uri: the redirect URI to register and use (default: the loopback one; any URI the browser cannot
            load on the person's machine works).
    """

    def __init__(
        self,
        input_stream: IO[str] | None = None,
        output_stream: IO[str] | None = None,
        redirect_uri: str | None = None,
    ) -> None:
        self._input = input_stream
        self._output = output_stream
        self._redirect_uri = redirect_uri

    def redirect_uri(self, registered: Sequence[str]) -> str | None:
        if self._redirect_uri:
            return self._redirect_uri
        return registered[0] if registered else DEFAULT_REDIRECT_URI

    def authorize(self, authorization_url: str, redirect_uri: str) -> str:
        output = self._output or sys.stderr
        host = redirect_uri.split("//", 1)[-1].split("/", 1)[0]
        print(
            _INSTRUCTIONS.format(url=printable_text(authorization_url), redirect_host=printable_text(host)), file=output
        )
        print("Redirected URL: ", end="", file=output, flush=True)
        line = (self._input or sys.stdin).readline()
        pasted = line.strip()
        if not pasted:
            raise AuthorizationError("no redirected URL was pasted; the authorization was abandoned")
        if not pasted.startswith(redirect_uri.split("?", 1)[0]):
            raise AuthorizationError(
                "the pasted URL is not the redirect this authorization expects (it should start with "
                f"{redirect_uri}); copy the whole address from the browser's address bar"
            )
        return pasted

    def __repr__(self) -> str:
        return "PasteBackAuthorizer()"
