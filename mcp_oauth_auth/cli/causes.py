"""What the command line says about a failure's cause: a connection failure by what really happened (a host name
not found, a refused connection, a certificate that failed verification, a timeout), and the library's advice in the
command line's own options rather than the Python arguments it names.

Imported only when a command fails: nothing here is needed on the way to a result.
"""

from __future__ import annotations

import re

from mcp_oauth_auth.driving.failures import ConnectionFailure

__all__ = ["as_cli_advice", "connection_hint"]

_HINTS = {
    "dns": "check the host name in the URL for a typo; if it is right, check your network or VPN (and DNS)",
    "dns-unavailable": "no DNS answer: check your network connection, then try again (nothing stored was changed)",
    "refused": "is the server running, and is the port in the URL the right one?",
    "tls": "the server's certificate is not trusted here: check the URL's host name; for a private CA, point "
    "SSL_CERT_FILE at its certificate (for a local test server, use http://127.0.0.1)",
    "timeout": "check the URL and your network (a firewall, a proxy: HTTPS_PROXY / NO_PROXY), or try again later "
    "(`test` and `doctor` take a longer --timeout); nothing stored was changed",
    "network": "check the URL and your network connection (proxies: HTTPS_PROXY / NO_PROXY)",
}


def connection_hint(failure: ConnectionFailure) -> str:
    """The advice that fits a connection failure's cause."""
    return _HINTS.get(failure.kind, _HINTS["network"])


#: The library's advice names Python arguments; a person at the command line needs its options. Each pattern is
#: replaced in order; anything no option can do is said without the argument.
_ADVICE: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(
            r"pass authorizer=PasteBackAuthorizer\(\) to open the URL on another machine and paste the "
            r"redirected URL back"
        ),
        "log in with --no-browser to open the URL on another machine and paste the address you land on back",
    ),
    (
        re.compile(r"or, for a machine identity, grant_type='client_credentials' with client_id= and client_secret="),
        "or log in with --client-id and --client-secret of a client registered at that server",
    ),
    (re.compile(r"pass trust_unadvertised_pkce=True"), "log in with --trust-unadvertised-pkce"),
    (re.compile(r"Pass issuer=('[^']*'|\"[^\"]*\")"), r"Log in with --issuer \1"),
    (re.compile(r" \(([A-Z_]+) or password=\)"), r" (\1)"),
    (re.compile(r" or pass password="), ""),
    (re.compile(r" \(or pass key_file=\)"), ""),
    (re.compile(r"use a smaller chunk_size"), "choose another --store, e.g. encrypted_file"),
    (
        re.compile(r"or raise LoopbackBrowserAuthorizer\(timeout=\.\.\.\)"),
        "or log in with --device or --no-browser, which wait longer",
    ),
    (
        re.compile(
            r"HeadlessAuthorizer needs a page_handler that submits it, or use a browser \(LoopbackBrowserAuthorizer\)"
        ),
        "--headless cannot fill it in: log in without --headless (your browser opens), or with --device or "
        "--no-browser",
    ),
    (re.compile(r"\bclient_id= \(and client_secret= "), "--client-id (and --client-secret "),
    (re.compile(r"\bclient_id=(?=[\s,.;)]|$)"), "--client-id"),
    (re.compile(r"\bclient_secret=(?=[\s,.;)]|$)"), "--client-secret"),
]


def as_cli_advice(text: str) -> str:
    """``text`` (a library message) with its advice in command-line options."""
    for pattern, replacement in _ADVICE:
        text = pattern.sub(replacement, text)
    return text
