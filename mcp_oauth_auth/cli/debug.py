"""``--debug``: the library's own log and one line per HTTP request (httpx's request line, its query left out:
queries carry authorization codes and state); ``--debug=all`` adds the HTTP stack's internals (httpcore's
connections, TLS, headers sent) and everything else that logs. Without either, warnings and worse, as the message
alone, and the library's own warnings not at all (the commands report outcomes themselves)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mcp_oauth_auth.cli.output import PrintableFormatter

__all__ = ["DEBUG_ALL_OPTION", "configure_logging", "expand_debug_all"]

#: ``--debug=all`` as argparse sees it: ``--debug`` takes no value (a value would swallow the command's name).
DEBUG_ALL_OPTION = "--debug-all"


def expand_debug_all(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--debug=all`` spelt as the hidden :data:`DEBUG_ALL_OPTION` (up to a ``--``)."""
    expanded: list[str] = []
    for index, argument in enumerate(argv):
        if argument == "--":
            return [*expanded, *argv[index:]]
        expanded.append(DEBUG_ALL_OPTION if argument == "--debug=all" else argument)
    return expanded


class _RequestLine(logging.Filter):
    """httpx's ``HTTP Request: METHOD URL "HTTP/1.1 STATUS"`` with the URL's query and userinfo left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            from mcp_oauth_auth.flow.urls import safe_url

            record.args = tuple(
                safe_url(str(value)) if type(value).__name__ == "URL" else value for value in record.args
            )
        return True


def configure_logging(debug: str | None) -> None:
    """``debug``: None, ``"on"`` (``--debug``) or ``"all"`` (``--debug=all``)."""
    # Log lines are written like everything else (no control characters from a server reach the terminal).
    handler = logging.StreamHandler()
    if debug == "all":
        handler.setFormatter(PrintableFormatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
        logging.basicConfig(level=logging.DEBUG, handlers=[handler])
        return
    if debug is not None:
        handler.setFormatter(PrintableFormatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
        logging.basicConfig(level=logging.WARNING, handlers=[handler])
        logging.getLogger("mcp_oauth_auth").setLevel(logging.DEBUG)
        for name in ("httpx", "httpx2"):
            requests = logging.getLogger(name)
            requests.setLevel(logging.INFO)  # (INFO: the request line only; DEBUG adds the internals)
            requests.addFilter(_RequestLine())
        return
    handler.setFormatter(PrintableFormatter("%(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("mcp_oauth_auth").setLevel(logging.ERROR)
