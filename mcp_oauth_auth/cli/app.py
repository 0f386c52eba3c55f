"""The ``mcp-oauth`` command line: arguments, dispatch, and how failures end (one line, a hint, an exit code)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from mcp_oauth_auth import __version__
from mcp_oauth_auth.cli.debug import DEBUG_ALL_OPTION, configure_logging, expand_debug_all
from mcp_oauth_auth.cli.errors import DOCUMENTATION, ExitCode, explain
from mcp_oauth_auth.cli.output import Terminal

__all__ = ["CLIENT_SECRET_ENV", "build_parser", "main"]

_Handler = Callable[[argparse.Namespace, Terminal], int]


class _Commands:
    """A module of command handlers, imported when a command runs: ``--help``, ``--version`` and usage errors never
    load the library (httpx, the flow, the stores)."""

    def __init__(self, module: str) -> None:
        self._module = module

    def __getattr__(self, name: str) -> _Handler:
        def handler(args: argparse.Namespace, terminal: Terminal) -> int:
            import importlib

            run: _Handler = getattr(importlib.import_module(self._module), name)
            return run(args, terminal)

        return handler


commands = _Commands("mcp_oauth_auth.cli.commands")
login_command = _Commands("mcp_oauth_auth.cli.login")

#: Where ``login`` also reads a client secret from (the command line shows it to other users, in ``ps``).
CLIENT_SECRET_ENV = "MCP_OAUTH_CLIENT_SECRET"

_DESCRIPTION = """\
Log in to MCP servers with OAuth 2.1, keep the credentials, and use them.

  mcp-oauth demo                     the whole flow against a local server, narrated
  mcp-oauth doctor URL               what a server publishes for authorization (no login)
  mcp-oauth login NAME URL           log in and store the credential as NAME
  mcp-oauth list                     the stored credentials
  mcp-oauth token NAME               a valid access token, for curl and scripts
  mcp-oauth test NAME                connect to the MCP server with the stored credential
  mcp-oauth logout NAME              revoke and forget (clear: forget only)
"""

_EPILOG = f"""\
exit status: 0 ok, 1 error, 2 usage, 3 not logged in (no such credential, or it needs a new login),
4 doctor found that a client cannot authenticate, 130 interrupted. Documentation: {DOCUMENTATION}/cli.md"""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line and a hint, with exit status 2 (argparse's convention)."""

    def error(self, message: str) -> NoReturn:
        terminal = Terminal()
        terminal.error(message, f"see `{self.prog} --help`")
        raise SystemExit(ExitCode.USAGE)


#: The longest per-request timeout accepted: longer is a mistake, and far longer (1e300) overflows the socket layer.
_MAX_TIMEOUT = 86400.0


def _seconds(text: str) -> float:
    """``--timeout``: a positive, finite number of seconds, at most a day."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= _MAX_TIMEOUT:  # (NaN compares false: refused too)
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {_MAX_TIMEOUT:g} seconds, not {text!r}")
    return value


def _bytes(text: str) -> int:
    """``--max-response-size``: a whole number of bytes, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of bytes: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 byte or more, not {text!r}")
    return value


def _port(text: str) -> int:
    """``--port``: a TCP port, or 0 for any free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 1 to 65535 (or 0: any free port), not {text!r}")
    return value


def _named_parser() -> _Parser:
    """The arguments of the commands that use a stored credential: its NAME, and what narrows NAME down."""
    named = _Parser(add_help=False)
    named.add_argument("name", metavar="NAME", help="the name given at login (or the server URL)")
    named.add_argument("--url", help="the server URL, when NAME names credentials for several servers")
    named.add_argument(
        "--account",
        metavar="ACCOUNT",
        help="the account, when NAME names credentials of several accounts (default: the default account's)",
    )
    return named


def _add_account_options(login: _Parser) -> None:
    """``login --account`` and ``--login-hint``: which of several accounts for one server (docs/accounts.md)."""
    login.add_argument(
        "--account",
        metavar="ACCOUNT",
        help="a label for this account (e.g. work), when you have several for the same server: each is stored, "
        "refreshed and revoked on its own",
    )
    login.add_argument(
        "--login-hint",
        metavar="HINT",
        help="the account to sign in with (e.g. your e-mail address), passed to the authorization server",
    )


def _limits_parser() -> _Parser:
    """``--max-response-size`` and ``--response-deadline``, for the commands that read OAuth responses (None when
    not given: the library's defaults, which stay out of this light module)."""
    limits = _Parser(add_help=False)
    limits.add_argument(
        "--max-response-size",
        type=_bytes,
        metavar="BYTES",
        help="the largest OAuth response read (default 1 MiB); a larger one ends the command",
    )
    limits.add_argument(
        "--response-deadline",
        type=_seconds,
        metavar="SECONDS",
        help="the longest an OAuth response may take to arrive, from sending the request to its last byte (default 30)",
    )
    return limits


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mcp-oauth",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mcp-oauth {__version__}")
    parser.add_argument(
        "--debug",
        action="store_const",
        const="on",
        help="the library's log, one line per HTTP request, and tracebacks on errors (--debug=all: the HTTP "
        "stack's own log too)",
    )
    parser.add_argument(DEBUG_ALL_OPTION, dest="debug", action="store_const", const="all", help=argparse.SUPPRESS)

    # Options every command accepts after its name too; SUPPRESS keeps a value given before the command.
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_const", const="on", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument(
        DEBUG_ALL_OPTION,
        dest="debug",
        action="store_const",
        const="all",
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )
    store = _Parser(add_help=False)
    store.add_argument(
        "--store",
        metavar="BACKEND",
        default=os.environ.get("MCP_OAUTH_STORE", "auto"),
        help="credential store: auto (default, or $MCP_OAUTH_STORE), keychain, secret_service, "
        "credential_manager, vault, redis, encrypted_file, memory",
    )
    as_json = _Parser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="machine-readable output (never contains tokens)")
    named = _named_parser()

    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)

    def command(
        name: str, handler: _Handler, help_text: str, *parents: _Parser, aliases: Sequence[str] = ()
    ) -> _Parser:
        created = sub.add_parser(
            name, help=help_text, description=help_text, parents=[common, *parents], aliases=aliases
        )
        created.set_defaults(handler=handler)
        return created

    login = command(
        "login",
        login_command.login,
        "log in to an MCP server and store the credential",
        store,
        as_json,
        _limits_parser(),
        aliases=["auth"],
    )
    login.add_argument("name", metavar="NAME", help="a name for this credential (e.g. the server's name)")
    login.add_argument("url", metavar="URL", help="the MCP endpoint, e.g. https://mcp.example.com/mcp")
    login.add_argument(
        "--scope",
        action="append",
        metavar="SCOPE",
        help="scope to request (repeat, or space-separated); default: what the server asks for",
    )
    how = login.add_mutually_exclusive_group()
    how.add_argument("--device", action="store_true", help="approve on another device (device flow, RFC 8628)")
    how.add_argument(
        "--no-browser", action="store_true", help="open the URL anywhere, then paste the address you land on"
    )
    how.add_argument(
        "--headless",
        action="store_true",
        help="for demos and tests: complete the authorization over HTTP without a browser (only for servers "
        "that approve without a login page)",
    )
    login.add_argument("--client-id", metavar="ID", help="a client registered at the authorization server")
    login.add_argument(
        "--client-secret", metavar="SECRET", help=f"its secret, if confidential (or ${CLIENT_SECRET_ENV})"
    )
    login.add_argument(
        "--issuer",
        metavar="URL",
        help="use this authorization server only (the one --client-id is registered at, if given)",
    )
    login.add_argument("--client-metadata-url", metavar="URL", help="your Client ID Metadata Document (https URL)")
    login.add_argument(
        "--allow-parent-resource",
        action="store_true",
        help="accept a server whose metadata names a parent URL as its resource (some gateways): the token is then "
        "valid for every server below that URL",
    )
    login.add_argument(
        "--allow-private-networks",
        action="store_true",
        help="let the server name private, loopback or link-local addresses for this client to fetch (refused by "
        "default unless the server itself is on one)",
    )
    _add_grant_options(login)
    _add_provider_options(login)
    _add_account_options(login)

    command("list", commands.list_records, "list the stored credentials (no secrets)", store, as_json, aliases=["ls"])
    command(
        "show", commands.show, "a stored credential in detail, tokens redacted", named, store, as_json, aliases=["get"]
    )
    command(
        "token",
        commands.get_token,
        "print a valid access token (refreshed when needed) and nothing else",
        named,
        store,
    )
    test = command(
        "test",
        commands.test_connection,
        "connect to the MCP server with the stored credential",
        named,
        store,
        as_json,
        _limits_parser(),
    )
    test.add_argument("--timeout", type=_seconds, default=30.0, metavar="SECONDS", help="per request (default 30)")
    doctor = command(
        "doctor",
        commands.doctor,
        "check what an MCP server publishes for authorization",
        store,
        as_json,
        _limits_parser(),
    )
    doctor.add_argument("url", metavar="URL", help="the MCP endpoint, e.g. https://mcp.example.com/mcp")
    doctor.add_argument("--timeout", type=_seconds, default=15.0, metavar="SECONDS", help="per request (default 15)")
    logout = command(
        "logout", commands.logout, "revoke the tokens at the server, then forget them", named, store, as_json
    )
    logout.add_argument(
        "--all",
        action="store_true",
        help="revoke and forget the credential even when other names use it (without: only NAME is removed)",
    )
    clear = command(
        "clear", commands.clear, "forget a credential here, without contacting the server", named, store, as_json
    )
    clear.add_argument(
        "--all",
        action="store_true",
        help="forget the credential even when other names use it (without: only NAME is removed)",
    )
    demo = command("demo", commands.demo, "the complete flow against an embedded local server, narrated")
    demo.add_argument(
        "--store",
        metavar="BACKEND",
        default=None,
        help="use this store for the demo's credential (default: a temporary one); the logout step deletes it",
    )
    demo.add_argument("--serve", action="store_true", help="only run the embedded server, until Ctrl-C")
    demo.add_argument("--port", type=_port, default=0, help="with --serve: the port (default: a free one)")
    return parser


def _add_provider_options(login: _Parser) -> None:
    """``login``'s provider settings: ``--trust-unadvertised-pkce``, ``--preset``, ``--param``, ``--token-param``
    (cli/provider_options.py)."""
    login.add_argument(
        "--trust-unadvertised-pkce",
        action="store_true",
        help="use an authorization server that does not advertise PKCE S256 (only one you trust)",
    )
    login.add_argument(
        "--preset",
        metavar="NAME",
        help="a provider's settings: entra, auth0, cognito, google, github, okta or keycloak (doctor suggests one)",
    )
    login.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="an extra parameter of the authorization request, e.g. audience=https://api.example.com (repeat)",
    )
    login.add_argument(
        "--token-param",
        action="append",
        metavar="KEY=VALUE",
        help="an extra field of every token request (repeat)",
    )


def _add_grant_options(login: _Parser) -> None:
    """``login``'s options for the grants without a person at the MCP side, and for DPoP."""
    login.add_argument(
        "--assertion-file",
        metavar="PATH",
        help="workload identity: a file holding the workload's JWT (RFC 7523 jwt-bearer grant, re-read for every "
        "token request); needs --client-id",
    )
    login.add_argument(
        "--idp-issuer",
        metavar="URL",
        help="enterprise-managed authorization (ID-JAG): your organisation's identity provider; the token comes "
        "from it, exchanged at the server's authorization server (needs --idp-client-id, and --client-id with its "
        f"secret in ${CLIENT_SECRET_ENV})",
    )
    login.add_argument("--idp-client-id", metavar="ID", help="this client's ID at the identity provider")
    login.add_argument(
        "--idp-client-secret-env",
        metavar="VAR",
        help="the environment variable holding the client's secret at the identity provider (never on the "
        "command line)",
    )
    login.add_argument(
        "--id-token-file",
        metavar="PATH",
        help="a file holding your ID token from the identity provider (re-read for every exchange); without it, "
        "you sign in to the identity provider once for all its MCP servers",
    )
    login.add_argument(
        "--dpop",
        action="store_true",
        help="bind the tokens to a key pair stored with the credential (DPoP, RFC 9449)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mcp-oauth`` with ``argv`` (default: the process's arguments); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(expand_debug_all(sys.argv[1:] if argv is None else argv))
    handler: _Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    debug: str | None = getattr(args, "debug", None)
    configure_logging(debug)
    terminal = Terminal()
    try:
        return int(handler(args, terminal))
    except KeyboardInterrupt:
        terminal.error("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`mcp-oauth list | head -1`): not worth a message. Point stdout at /dev/null so that
        # the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except Exception as exc:
        if debug:
            for line in "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).splitlines():
                terminal.note(line)
        failure = explain(exc)
        terminal.error(failure.message, failure.hint)
        return failure.code
