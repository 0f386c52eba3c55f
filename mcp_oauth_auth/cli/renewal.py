"""How ``mcp-oauth token`` and ``test`` renew a credential that has no refresh token: one from workload identity
(``login --assertion-file``) or from enterprise-managed authorization (``login --idp-issuer``) is renewed by a new
grant, made the way ``login`` made the first one.

``login`` notes in the record (:attr:`~mcp_oauth_auth.records.CredentialRecord.renewal`) what it was given for the
grant, never a secret: the assertion file's absolute path; the identity provider's issuer, this client's ID there,
the *name* of the environment variable holding its secret and the ID token file's absolute path. The files and the
variable are read again for each new grant, so a rotated assertion file is the one used, and a secret stays only
where the person keeps it. The MCP-side client and its secret are the record's client registration already.

The CLI writes the note rather than the library: only the CLI knows the name of the variable a secret came from (the
library is given the secret itself), and what is noted are the CLI's own options to replay. The library only keeps
the note when it replaces the record by a new grant (as it keeps the record's names).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_oauth_auth.cli.errors import CLIError, ExitCode

if TYPE_CHECKING:
    from mcp_oauth_auth.records import CredentialRecord

__all__ = ["idp_secret", "renewal_of", "renewal_options"]

#: ``renewal["grant"]`` of a workload identity credential (jwt-bearer with the assertion file).
WORKLOAD = "jwt-bearer"
#: ``renewal["grant"]`` of an enterprise-managed credential (an ID-JAG from the identity provider).
ENTERPRISE = "id-jag"


def renewal_of(args: argparse.Namespace) -> dict[str, str] | None:
    """What ``login``'s options say about renewing the credential it makes; None when a refresh token or a new login
    is how it is renewed. Paths are made absolute but their symbolic links are kept: a Kubernetes projected token is
    rotated by pointing its link elsewhere."""
    if args.assertion_file:
        return {"grant": WORKLOAD, "assertion_file": str(Path(args.assertion_file).absolute())}
    if not args.idp_issuer:
        return None
    renewal = {"grant": ENTERPRISE, "idp_issuer": args.idp_issuer, "idp_client_id": args.idp_client_id}
    if args.idp_client_secret_env:
        renewal["idp_client_secret_env"] = args.idp_client_secret_env
    if args.id_token_file:
        renewal["id_token_file"] = str(Path(args.id_token_file).absolute())
    return renewal


def idp_secret(variable: str, origin: str, exit_code: ExitCode) -> str:
    """The identity provider's client secret from the environment variable ``variable``; a :class:`CLIError` naming
    the variable (and ``origin``, the option that named it) when it is not set."""
    value = os.environ.get(variable) or None
    if value is None:
        raise CLIError(
            f"the environment variable {variable} ({origin}) is not set",
            f"export {variable}=... with the client's secret at the identity provider",
            exit_code,
        )
    return value


def renewal_options(record: CredentialRecord) -> dict[str, Any]:
    """The :class:`~mcp_oauth_auth.MCPOAuth` options that renew ``record`` as ``login`` made it: ``assertion`` or
    ``identity_assertion`` (the secret read from its variable now: a :class:`CLIError` naming the variable when it
    is not set and a grant is due, while a stored token that is not yet due is used without it); none for a record
    without a note, or with a note this version does not know (it is then used as before: a new login when it
    expires)."""
    renewal = record.renewal or {}
    grant = renewal.get("grant")
    if grant == WORKLOAD and "assertion_file" in renewal:
        return {"assertion": Path(renewal["assertion_file"])}
    if grant != ENTERPRISE or "idp_issuer" not in renewal or "idp_client_id" not in renewal:
        return {}
    from mcp_oauth_auth.flow.idp import EnterpriseIdP
    from mcp_oauth_auth.flow.tokens import refresh_due_at

    variable = renewal.get("idp_client_secret_env")
    secret = None
    if variable:
        stored = record.tokens
        if not os.environ.get(variable) and stored is not None and time.time() < refresh_due_at(stored, None):
            return {}  # the stored token serves as it is: no grant is made, its secret is not needed now
        secret = idp_secret(variable, "named at login by --idp-client-secret-env", ExitCode.ERROR)
    id_token = renewal.get("id_token_file")
    return {
        "identity_assertion": EnterpriseIdP(
            issuer=renewal["idp_issuer"],
            client_id=renewal["idp_client_id"],
            client_secret=secret,
            id_token=Path(id_token) if id_token else None,
        )
    }
