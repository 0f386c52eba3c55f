"""``mcp-oauth login``: the options turned into an authorizer and a client identity, the credential stored under a
name, and what was done said in a few lines."""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mcp_oauth_auth.authorizers.base import Authorizer
from mcp_oauth_auth.cli.app import CLIENT_SECRET_ENV
from mcp_oauth_auth.cli.commands import http_client, limit_options
from mcp_oauth_auth.cli.errors import CLIError, ExitCode
from mcp_oauth_auth.cli.lookup import (
    UNCHANGED,
    account_option,
    add_name,
    labelled,
    load_all,
    open_store,
    store_description,
    store_label,
)
from mcp_oauth_auth.cli.output import Terminal
from mcp_oauth_auth.cli.probe import check_endpoint
from mcp_oauth_auth.cli.provider_options import provider_options
from mcp_oauth_auth.cli.renewal import idp_secret, renewal_of
from mcp_oauth_auth.cli.strength import warn_if_weak
from mcp_oauth_auth.cli.summary import emit_json, expiry_text, granted_scopes, print_fields, summary
from mcp_oauth_auth.records import CredentialRecord

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.device_authorization import DeviceAuthorization
    from mcp_oauth_auth.flow.idp import EnterpriseIdP
    from mcp_oauth_auth.storage.base import TokenStore

__all__ = ["CLIENT_SECRET_ENV", "login"]


class _Waiting:
    """The spinner shown while the person approves, started by the authorizer's prompt hook."""

    def __init__(self, terminal: Terminal) -> None:
        self._terminal = terminal
        self._active = contextlib.ExitStack()

    def start(self, message: str) -> None:
        self._active.enter_context(self._terminal.spinner(message))

    def stop(self) -> None:
        self._active.close()


def _login_authorizer(args: argparse.Namespace, terminal: Terminal, waiting: _Waiting) -> Authorizer | None:
    """The authorizer the options ask for; None for the library's choice where no browser can be opened here."""
    if args.headless:
        from mcp_oauth_auth.authorizers.headless import HeadlessAuthorizer

        terminal.note("Approving without a browser (--headless: for demos, tests and servers without a login page)")
        return HeadlessAuthorizer()  # (it reaches loopback servers directly, whatever proxy the environment names)
    if args.device:
        from mcp_oauth_auth.authorizers.device import DeviceAuthorizer

        def show_code(device: DeviceAuthorization) -> None:
            terminal.note("To authorize, open this URL on any device:")
            terminal.note(f"  {device.verification_uri}")
            terminal.note(f"and confirm the code:  {terminal.style(device.display_user_code, 'bold', stream='err')}")
            if device.verification_uri_complete:
                terminal.note(f"(or open {device.verification_uri_complete}, which carries the code)")
            waiting.start("Waiting for approval (Ctrl-C cancels)")

        return DeviceAuthorizer(on_prompt=show_code)
    if args.no_browser:
        from mcp_oauth_auth.authorizers.paste import PasteBackAuthorizer

        return PasteBackAuthorizer(output_stream=terminal.printable_stream())
    from mcp_oauth_auth.authorizers.environment import browser_unavailable_reason

    reason = browser_unavailable_reason()
    if reason is not None:
        # The library's own choice: the device flow when the server offers it, else an error naming the options.
        terminal.note(f"No browser can be opened here ({reason}): using the device flow if the server offers it.")
        return None
    from mcp_oauth_auth.authorizers.loopback import LoopbackBrowserAuthorizer

    def show_url(url: str) -> None:
        terminal.note("Opening your browser to authorize. If it does not open, visit:")
        terminal.note(f"  {url}")
        waiting.start("Waiting for you to approve in the browser (Ctrl-C cancels)")

    return LoopbackBrowserAuthorizer(on_prompt=show_url)


def _enterprise_idp(args: argparse.Namespace, client_secret: str | None) -> EnterpriseIdP | None:
    """The identity provider of ``--idp-issuer`` (enterprise-managed authorization), its secret read from the
    environment variable ``--idp-client-secret-env`` names; None without ``--idp-issuer``."""
    idp_options = ("--idp-client-id", "--idp-client-secret-env", "--id-token-file")
    if not args.idp_issuer:
        given = [name for name in idp_options if getattr(args, name[2:].replace("-", "_"))]
        if given:
            raise CLIError(f"{', '.join(given)} belong to --idp-issuer", "add --idp-issuer URL", ExitCode.USAGE)
        return None
    if not args.idp_client_id:
        raise CLIError(
            "--idp-issuer needs --idp-client-id (this client's ID at the identity provider)",
            "add --idp-client-id ID",
            ExitCode.USAGE,
        )
    if not (args.client_id and client_secret):
        raise CLIError(
            "--idp-issuer needs --client-id and the client's secret at the MCP server's authorization server",
            f"add --client-id ID and set ${CLIENT_SECRET_ENV}",
            ExitCode.USAGE,
        )
    if args.assertion_file:
        raise CLIError(
            "--assertion-file (workload identity) and --idp-issuer (enterprise-managed authorization) are two "
            "different grants: give one",
            "drop one of them",
            ExitCode.USAGE,
        )
    from mcp_oauth_auth.flow.idp import EnterpriseIdP

    variable = args.idp_client_secret_env
    return EnterpriseIdP(
        issuer=args.idp_issuer,
        client_id=args.idp_client_id,
        client_secret=idp_secret(variable, "--idp-client-secret-env", ExitCode.USAGE) if variable else None,
        id_token=Path(args.id_token_file) if args.id_token_file else None,
    )


def _scopes(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    return list(dict.fromkeys(scope for value in values for scope in value.split()))


def login(args: argparse.Namespace, terminal: Terminal) -> int:
    from mcp_oauth_auth.auth import MCPOAuth

    if args.client_secret and not args.client_id:
        raise CLIError("--client-secret needs --client-id", "add --client-id ID", ExitCode.USAGE)
    if args.assertion_file and not args.client_id:
        raise CLIError(
            "--assertion-file needs --client-id (the client the authorization server knows the workload as)",
            "add --client-id ID",
            ExitCode.USAGE,
        )
    if args.client_metadata_url and args.client_id:
        raise CLIError(
            "--client-id and --client-metadata-url are two ways to identify the client: give one",
            "--client-id for a client registered at the server, --client-metadata-url for a metadata document",
            ExitCode.USAGE,
        )
    client_secret = args.client_secret or (os.environ.get(CLIENT_SECRET_ENV) if args.client_id else None) or None
    provider = provider_options(args)
    identity_assertion = _enterprise_idp(args, client_secret)
    store = open_store(args.store)
    if not args.json:
        account = "" if args.account is None else f" (account {args.account!r})"
        terminal.note(f"Logging in to {args.url} as {args.name!r}{account}")
    waiting = _Waiting(terminal)
    auth = MCPOAuth(
        args.url,
        scopes=_scopes(args.scope),
        store=store,
        authorizer=_login_authorizer(args, terminal, waiting),
        client_id=args.client_id,
        client_secret=client_secret,
        client_metadata_url=args.client_metadata_url,
        issuer=args.issuer,
        allow_parent_resource=args.allow_parent_resource,
        allow_private_networks=args.allow_private_networks,
        **limit_options(args),
        trust_unadvertised_pkce=args.trust_unadvertised_pkce or None,  # (not given: the preset's, else False)
        client_name="mcp-oauth",
        name=args.name,
        assertion=Path(args.assertion_file) if args.assertion_file else None,
        dpop=getattr(args, "dpop", False),
        **provider,
        identity_assertion=identity_assertion,
        account=args.account,
        login_hint=args.login_hint,
    )
    started = time.time()
    try:
        with http_client() as http:
            check_endpoint(args.url, http)  # before anything is registered anywhere
            tokens = auth.authenticate(http)
    finally:
        waiting.stop()
    record = auth.record
    assert record is not None  # authenticate() raises rather than return without a record
    fresh = tokens.issued_at >= started - 1
    # The name, and how token/test renew a credential without a refresh token (cli/renewal.py), in one write: the
    # note of this login's grant; a stored credential merely found again keeps its own unless this login has one.
    renewal = renewal_of(args)
    record = add_name(store, record.key, args.name, renewal if fresh or renewal else UNCHANGED) or record
    warn_if_weak(terminal, store)
    if args.json:
        emit_json(terminal, summary(record, store))
        return ExitCode.OK
    title = "Logged in" if fresh else "Already logged in"
    terminal.success(f"{title}: {args.name} {terminal.arrow} {record.server_url}")
    print_fields(
        terminal,
        [
            ("issuer", record.issuer),
            *([("account", record.account)] if record.account is not None else []),
            ("scopes", " ".join(granted_scopes(record)) or "(none)"),
            ("expires", f"{expiry_text(record)} ({'with' if tokens.refresh_token else 'no'} refresh token)"),
            ("store", store_description(store)),
            *([("binding", f"DPoP ({tokens.token_type} token, key stored with it)")] if record.dpop_key else []),
            *([("grant", f"ID-JAG from {args.idp_issuer} (enterprise-managed)")] if identity_assertion else []),
        ],
    )
    _note_same_name(terminal, store, record, args.name)
    if store_label(store) == "memory":
        terminal.warning("the memory store keeps nothing after this command: choose another --store")
    return ExitCode.OK


def _note_same_name(terminal: Terminal, store: TokenStore, record: CredentialRecord, name: str) -> None:
    others = [other for other in labelled(load_all(store), name) if other.key != record.key]
    servers = sorted(other.server_url for other in others if other.account == record.account)
    if servers:
        terminal.note(
            f"note: {name!r} also names {', '.join(servers)}; commands use the most recently updated "
            "(this one) unless given --url"
        )
    if any(other.account != record.account for other in others):
        # (find_record: without --account, a name of several accounts means the default account's credential)
        choose = f" with{account_option(record.account)}" if record.account is not None else ""
        terminal.note(f"note: {name!r} also names credentials of other accounts; use this one{choose}")
