"""The pages the loopback callback listener shows in the person's browser, and the escaping of what they show.

Internal to :mod:`mcp_oauth_auth.authorizers`: :class:`~mcp_oauth_auth.authorizers.loopback.LoopbackBrowserAuthorizer`
takes its default pages from here, and :mod:`~mcp_oauth_auth.authorizers.callback_http` serves them.
"""

from __future__ import annotations

import html
import string
from typing import Final

__all__ = ["DEFAULT_FAILURE_HTML", "DEFAULT_SUCCESS_HTML"]

#: Longest ``error_description`` shown on the failure page.
_MAX_SHOWN_DESCRIPTION: Final = 500

_PAGE_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:36rem;margin:4rem auto;"
    "padding:0 1rem;color:#222;line-height:1.5}h1{font-size:1.4rem}code{background:#f2f2f2;padding:0 .25rem}"
)

DEFAULT_SUCCESS_HTML: Final = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Authorization received</title>'
    f"<style>{_PAGE_STYLE}</style></head><body><h1>Authorization received</h1>"
    "<p>You can close this window and return to the application.</p></body></html>"
)

#: Shows none of the callback's error texts: when the page is served, nobody has checked yet that the response
#: comes from the authorization server (RFC 9207 ``iss``), and the MCP specification forbids displaying the error
#: of a response that fails that check. The application reports the error once it has been verified.
DEFAULT_FAILURE_HTML: Final = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Authorization not completed</title>'
    f"<style>{_PAGE_STYLE}</style></head><body><h1>Authorization not completed</h1>"
    "<p>The authorization was not granted. Return to the application, which shows the reason.</p>"
    "<p>You can close this window.</p></body></html>"
)

_STALE_CALLBACK_HTML: Final = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not the current authorization</title>'
    f"<style>{_PAGE_STYLE}</style></head><body><h1>Not the current authorization</h1>"
    "<p>This page answers an earlier authorization request, not the one the application is waiting for now. "
    "Use the newest authorization page (the application shows its address), or close this window.</p>"
    "</body></html>"
)


def _plain_page(title: str) -> str:
    title = html.escape(title)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body><h1>{title}</h1></body></html>"
    )


def _failure_page(template: string.Template, error: str, description: str) -> str:
    """``template`` (a failure page) with ``$error`` and ``$error_description`` replaced, shortened and escaped."""
    if len(description) > _MAX_SHOWN_DESCRIPTION:
        description = description[:_MAX_SHOWN_DESCRIPTION] + "…"
    return template.safe_substitute(
        error=html.escape(error[:100], quote=True), error_description=html.escape(description, quote=True)
    )
