"""The commands of ``mcp-oauth``: each takes the parsed arguments and a :class:`Terminal`, and returns an exit code
(or raises; :mod:`mcp_oauth_auth.cli.app` turns exceptions into one line and a hint)."""

from __future__ import annotations

import argparse
import errno
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mcp_oauth_auth import __version__
from mcp_oauth_auth.authorizers.base import Authorizer
from mcp_oauth_auth.cli.errors import CLIError, ExitCode, NotLoggedInError
from mcp_oauth_auth.cli.lookup import (
    RecordView,
    StoredRecord,
    account_option,
    find_record,
    load_all,
    open_store,
    store_description,
    store_label,
)
from mcp_oauth_auth.cli.output import Terminal, format_time, redact_token, render_table
from mcp_oauth_auth.cli.summary import emit_json, expiry_text, granted_scopes, print_fields, summary
from mcp_oauth_auth.flow.urls import same_resource
from mcp_oauth_auth.records import CredentialRecord

if TYPE_CHECKING:
    import httpx

    from mcp_oauth_auth.auth import MCPOAuth
    from mcp_oauth_auth.flow.revocation import RevocationOutcome
    from mcp_oauth_auth.storage.base import TokenStore

__all__ = [
    "clear",
    "demo",
    "doctor",
    "get_token",
    "http_client",
    "list_records",
    "logout",
    "show",
    "test_connection",
]

#: Loopback hosts never go through a proxy from the environment (httpx would send them to HTTP(S)_PROXY).
_LOOPBACK_DIRECT = ("all://127.0.0.1", "all://localhost", "all://[::1]")


def limit_options(args: argparse.Namespace | None) -> dict[str, Any]:
    """``max_response_size`` and ``response_deadline`` as the command's options give them (only those given)."""
    names = ("max_response_size", "response_deadline")
    return {name: value for name in names if (value := getattr(args, name, None)) is not None}


def http_client(auth: httpx.Auth | None = None, timeout: float = 30.0) -> httpx.Client:
    """The HTTP client of every command: the environment's proxy settings, except for loopback addresses."""
    import httpx  # (here: `list`, `show` and `clear` never need it)

    direct: dict[str, httpx.BaseTransport | None] = dict.fromkeys(_LOOPBACK_DIRECT)
    return httpx.Client(auth=auth, timeout=timeout, mounts=direct)


# ---------------------------------------------------------------------------------------------------------------
# list, show


def list_records(args: argparse.Namespace, terminal: Terminal) -> int:
    from mcp_oauth_auth.cli.strength import warn_if_weak

    store = open_store(args.store)
    found = sorted(load_all(store), key=_sort_key)
    warn_if_weak(terminal, store)
    if args.json:
        document = [
            summary(item.record, store)
            if item.record is not None
            else {
                "resource": item.key.resource,
                "issuer": item.key.issuer,
                "account": item.key.account,
                "error": item.problem,
            }
            for item in found
        ]
        emit_json(terminal, document)
        return _unreadable_status(found)
    if not found:
        terminal.note(f"No stored credentials in {store_description(store)}.")
        terminal.note("Add one with: mcp-oauth login NAME URL")
        return ExitCode.OK
    rows = [_row(item, store) for item in found]
    headers = ["NAME", "ACCOUNT", "SERVER", "ISSUER", "SCOPES", "EXPIRES", "STORE"]
    # When the terminal is narrow, the scopes and the issuer give way first; the server URL last.
    shrink_order = [4, 3, 6, 2, 0, 1, 5]
    if all(item.key.account is None for item in found):
        # Only the default account: the ACCOUNT column would say "-" on every line (--json always has "account").
        headers.pop(1)
        rows = [row[:1] + row[2:] for row in rows]
        shrink_order = [index - 1 if index > 1 else index for index in shrink_order if index != 1]
    for line in render_table(headers, rows, terminal.width, terminal.ellipsis, shrink_order):
        terminal.print(line)
    for item in found:
        if item.record is None:  # the table cuts the reason on a narrow terminal: here it is whole
            key = item.key
            account = "" if key.account is None else f", account {key.account!r}"
            terminal.error(f"the credential for {key.resource} ({key.issuer}{account}) cannot be read: {item.problem}")
    return _unreadable_status(found)


def _unreadable_status(found: Sequence[StoredRecord]) -> int:
    """``list`` fails when a stored record cannot be read: a script must not take a partial list for the whole."""
    return ExitCode.ERROR if any(item.record is None for item in found) else ExitCode.OK


def _sort_key(item: StoredRecord) -> tuple[str, str, str]:
    names = item.record.names if item.record is not None else ()
    return (names[0] if names else "~", item.key.resource, item.key.account or "")


def _row(item: StoredRecord, store: TokenStore) -> list[str]:
    label = store_label(store)
    if item.record is None:
        return [
            "?",
            _account_text(item.key.account),
            item.key.resource,
            item.key.issuer,
            "",
            f"unreadable: {item.problem}",
            label,
        ]
    record = item.record
    return [
        ", ".join(record.names) or "-",
        _account_text(record.account),
        record.server_url,
        record.issuer,
        " ".join(granted_scopes(record)),
        expiry_text(record),
        label,
    ]


def _account_text(account: str | None) -> str:
    """An account as ``list`` and ``show`` print it: the default account as ``-``."""
    return "-" if account is None else account


def _find(args: argparse.Namespace, terminal: Terminal) -> tuple[TokenStore, CredentialRecord]:
    """The store and the record the command's NAME, ``--url`` and ``--account`` designate."""
    store = open_store(args.store)
    return store, find_record(store, args.name, args.url, terminal, args.account)


def show(args: argparse.Namespace, terminal: Terminal) -> int:
    store, record = _find(args, terminal)
    tokens = record.tokens
    client = record.client
    if args.json:
        document = summary(record, store)
        document.update(
            access_token=redact_token(tokens.access_token, "...") if tokens else None,
            refresh_token=redact_token(tokens.refresh_token, "...") if tokens and tokens.refresh_token else None,
            token_type=tokens.token_type if tokens else None,
            client_secret="set" if client.client_secret else None,
            token_endpoint_auth_method=client.token_endpoint_auth_method,
            authorization_endpoint=record.authorization_endpoint,
            token_endpoint=record.token_endpoint,
            revocation_endpoint=record.revocation_endpoint,
        )
        emit_json(terminal, document)
        return ExitCode.OK
    ellipsis = terminal.ellipsis
    terminal.print(terminal.style(", ".join(record.names) or record.server_url, "bold"))
    fields = [
        ("server", record.server_url),
        ("account", _account_text(record.account)),
        ("resource", record.resource),
        ("issuer", record.issuer),
        ("client", f"{client.client_id} ({client.kind}, {client.token_endpoint_auth_method})"),
        ("client secret", "set (hidden)" if client.client_secret else "none"),
        ("scopes asked", " ".join(record.requested_scopes) or "(none)"),
        ("scopes granted", " ".join(granted_scopes(record)) or "(none)"),
        ("access token", redact_token(tokens.access_token, ellipsis) if tokens else "(none: log in again)"),
        ("token type", tokens.token_type if tokens else "-"),
        ("expires", f"{expiry_text(record)}{_absolute(tokens.expires_at if tokens else None)}"),
        ("refresh token", redact_token(tokens.refresh_token, ellipsis) if tokens and tokens.refresh_token else "none"),
        ("authorize at", record.authorization_endpoint or "-"),
        ("token endpoint", record.token_endpoint),
        ("revoke at", record.revocation_endpoint or "- (the server cannot revoke)"),
        ("updated", format_time(record.updated_at) or "-"),
        ("store", store_description(store)),
    ]
    print_fields(terminal, fields)
    return ExitCode.OK


def _absolute(timestamp: float | None) -> str:
    return f" ({format_time(timestamp)})" if timestamp is not None else ""


# ---------------------------------------------------------------------------------------------------------------
# token, test: using a stored credential without ever asking the person


class _NoNewLogin(Authorizer):
    """Refuses to start an authorization: these commands only use, and refresh, what is stored."""

    def __init__(self, name: str, record: CredentialRecord) -> None:
        self._name = name
        self._record = record

    def redirect_uri(self, registered: Sequence[str]) -> str | None:
        return registered[0] if registered else None

    def authorize(self, authorization_url: str, redirect_uri: str) -> str:
        raise _login_needed(self._name, self._record)


def _login_again(name: str, record: CredentialRecord) -> str:
    """The command that logs in to ``record``'s server, as ``record``'s account, again."""
    return f"mcp-oauth login {name} {record.server_url}{account_option(record.account)}"


def _login_needed(name: str, record: CredentialRecord) -> NotLoggedInError:
    return NotLoggedInError(
        f"the stored credential {name!r} can no longer be used or refreshed: a new login is needed",
        _login_again(name, record),
    )


def _auth_for(
    record: CredentialRecord,
    store: TokenStore,
    name: str,
    args: argparse.Namespace | None = None,
    *,
    renew: bool = True,
) -> MCPOAuth:
    """An :class:`MCPOAuth` working on exactly ``record``, identified as when it was created, and (unless ``renew``
    is false: ``logout`` only revokes) renewing it as ``login`` noted (:mod:`mcp_oauth_auth.cli.renewal`); with the
    command's ``--max-response-size`` and ``--response-deadline``, where it has them."""
    from mcp_oauth_auth.auth import MCPOAuth
    from mcp_oauth_auth.cli.renewal import renewal_options

    client = record.client
    # A credential without a refresh token is renewed by a new grant, as login made it (workload identity, ID-JAG).
    options = {**limit_options(args), **(renewal_options(record) if renew else {})}
    if client.kind == "pre-registered":
        # The stored client stays with the authorization server it was registered at.
        options.update(client_id=client.client_id, client_secret=client.client_secret, issuer=record.issuer)
        if client.grant_types == ("client_credentials",) and client.client_secret:
            options["grant_type"] = "client_credentials"
    elif client.kind == "client-metadata-document":
        options["client_metadata_url"] = client.client_id
    if not same_resource(record.resource, record.server_url):
        # Logged in with --allow-parent-resource: the record is used as it was accepted then.
        options["allow_parent_resource"] = True
    return MCPOAuth(
        record.server_url,
        scopes=record.requested_scopes or None,
        store=RecordView(store, record.key),
        authorizer=_NoNewLogin(name, record),
        account=record.account,
        **options,
    )


def get_token(args: argparse.Namespace, terminal: Terminal) -> int:
    store, record = _find(args, terminal)
    if record.tokens is None:
        raise _login_needed(args.name, record)
    auth = _auth_for(record, store, args.name)
    with http_client() as http:
        tokens = auth.authenticate(http)
    if tokens.expires_within(0):  # stored, expired, and nothing to refresh it with
        raise _login_needed(args.name, record)
    # Exactly the token: a newline only for a person at a terminal, so that $(...) and pipes get the bare value (and
    # a terminal never gets control characters, which are no part of a usable token anyway).
    if terminal.out.isatty():
        terminal.out.write(terminal.printable(tokens.access_token) + "\n")
    else:
        terminal.out.write(tokens.access_token)
    terminal.out.flush()
    return ExitCode.OK


def test_connection(args: argparse.Namespace, terminal: Terminal) -> int:
    from mcp_oauth_auth.cli.mcp_session import MCPClientSession, MCPError, MCPHTTPError

    store, record = _find(args, terminal)
    auth = _auth_for(record, store, args.name, args)
    started = time.monotonic()
    with http_client(auth=auth, timeout=args.timeout) as http:
        session = MCPClientSession(http, record.server_url, client_version=__version__)
        try:
            with terminal.spinner(f"Connecting to {record.server_url}"):
                info = session.initialize()
                tools = session.list_tools()
        except MCPHTTPError as exc:
            if exc.status_code in (401, 403):
                raise NotLoggedInError(
                    f"{record.server_url} refused the stored credential: {exc}",
                    f"log in again: {_login_again(args.name, record)}",
                ) from exc
            raise CLIError(str(exc), "run `mcp-oauth doctor URL` to check the server") from exc
        except MCPError as exc:
            raise CLIError(f"{record.server_url}: {exc}", "is this URL an MCP endpoint?") from exc
        finally:
            session.close()
    elapsed_ms = round((time.monotonic() - started) * 1000)
    names = [str(tool.get("name")) for tool in tools]
    if args.json:
        emit_json(
            terminal,
            {
                "name": args.name,
                "server_url": record.server_url,
                "account": record.account,
                "ok": True,
                "protocol_version": info.protocol_version,
                "server": {"name": info.name, "version": info.version},
                "tools": names,
                "elapsed_ms": elapsed_ms,
            },
        )
        return ExitCode.OK
    terminal.success(f"Connected to {record.server_url} as {_names_and_account(args.name, record)} ({elapsed_ms} ms)")
    print_fields(
        terminal,
        [
            ("server", f"{info.name} {info.version} (MCP {info.protocol_version})"),
            ("tools", f"{len(names)}: {', '.join(names)}" if names else "none"),
        ],
    )
    return ExitCode.OK


# ---------------------------------------------------------------------------------------------------------------
# logout, clear


def logout(args: argparse.Namespace, terminal: Terminal) -> int:
    import httpx

    from mcp_oauth_auth.cli.aliases import drop_alias, shared_by_others

    store, record = _find(args, terminal)
    if shared_by_others(record, args.name) and not args.all:
        return drop_alias(terminal, store, record, args.name, args.json, "logout")
    auth = _auth_for(record, store, args.name, renew=False)
    try:
        with http_client() as http:
            outcomes = auth.logout(http)
    except httpx.HTTPError as exc:
        raise CLIError(
            f"could not reach the authorization server to revoke the tokens ({type(exc).__name__}); "
            "the credential is still stored",
            f"try again later, or forget it here only: mcp-oauth clear {args.name}{account_option(record.account)}"
            f"{' --all' if args.all else ''}",
        ) from exc
    if args.json:
        emit_json(
            terminal,
            {
                "names": list(record.names),
                "server_url": record.server_url,
                "account": record.account,
                "removed": True,
                "revocation": [
                    {"token": outcome.token_type_hint, "revoked": outcome.revoked, "error": _error_text(outcome.error)}
                    for outcome in outcomes
                ],
            },
        )
        return ExitCode.OK
    revoked = [_token_name(outcome) for outcome in outcomes if outcome.revoked]
    kept = [_token_name(outcome) for outcome in outcomes if not outcome.revoked]
    if revoked:
        terminal.success(f"Revoked the {' and the '.join(revoked)} at {record.revocation_endpoint}")
    for outcome in outcomes:
        if not outcome.revoked:
            terminal.warning(f"the {_token_name(outcome)} was not revoked: {outcome.error}")
    terminal.success(f"Logged out of {_names_and_url(record)}; removed from the {store_label(store)} store")
    if kept:
        # The credential is gone here whatever the server did (docs/cli.md): nothing is left to retry with.
        they, were, expire = ("they", "were", "they expire") if len(kept) > 1 else ("it", "was", "it expires")
        terminal.warning(
            f"the credential was removed here, but the {' and the '.join(kept)} {were} not revoked at the server: "
            f"{they} may stay valid there until {expire}"
        )
    return ExitCode.OK


def _token_name(outcome: RevocationOutcome) -> str:
    return outcome.token_type_hint.replace("_", " ")


def _error_text(error: Exception | None) -> str | None:
    return None if error is None else str(error)


def _names_and_url(record: CredentialRecord) -> str:
    account = "" if record.account is None else f", account {record.account!r}"
    return f"{', '.join(record.names) or '-'} ({record.server_url}{account})"


def _names_and_account(name: str, record: CredentialRecord) -> str:
    return name if record.account is None else f"{name} (account {record.account!r})"


def clear(args: argparse.Namespace, terminal: Terminal) -> int:
    """Forget a credential here (nothing is revoked). As with ``logout``, a NAME that other names share is only
    taken off the credential, which the other names go on using, unless ``--all`` asks to forget it anyway."""
    from mcp_oauth_auth.cli.aliases import drop_alias, shared_by_others

    store, record = _find(args, terminal)
    if shared_by_others(record, args.name) and not args.all:
        return drop_alias(terminal, store, record, args.name, args.json, "clear")
    store.delete(record.key)
    if args.json:
        emit_json(
            terminal,
            {"names": list(record.names), "server_url": record.server_url, "account": record.account, "removed": True},
        )
        return ExitCode.OK
    terminal.success(f"Removed {_names_and_url(record)} from the {store_label(store)} store; nothing was revoked")
    return ExitCode.OK


# ---------------------------------------------------------------------------------------------------------------
# doctor, demo


def doctor(args: argparse.Namespace, terminal: Terminal) -> int:
    from mcp_oauth_auth.cli.doctor import check_redis_store, diagnose, print_report

    with http_client(timeout=args.timeout) as http, terminal.spinner(f"Checking {args.url}"):
        report = diagnose(args.url, http, **limit_options(args))
        if args.store == "redis":
            check_redis_store(report, open_store(args.store))
    if args.json:
        emit_json(terminal, report.to_json())
    else:
        print_report(terminal, report)
    return ExitCode.OK if report.can_authenticate else ExitCode.CANNOT_AUTHENTICATE


def demo(args: argparse.Namespace, terminal: Terminal) -> int:
    from mcp_oauth_auth.cli.demo import run_demo, serve_forever

    if args.serve:
        try:
            serve_forever(terminal, args.port)
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                raise
            raise CLIError(
                f"cannot listen on port {args.port}: {exc.strerror or exc}",
                "choose another --port, or leave it out for any free port",
            ) from exc
        return ExitCode.OK
    if args.store is None:
        run_demo(terminal)
    else:
        store = open_store(args.store)
        run_demo(terminal, store, store_description(store))
    return ExitCode.OK
