"""Pre-registered client credentials stay with their authorization server (MCP client registration, "Authorization
Server Binding"): they were issued by one issuer, and a hostile MCP server must not be able to name another one
and receive them.

* A client secret, private key or workload assertion (the jwt-bearer grant's JWT) of a pre-registered client is
  sent only to the issuer the user named
  (``issuer=``, CLI ``--issuer``) or, without one, to an authorization server on the MCP server's own origin (the
  URL the user typed): any other authorization server the MCP server names is refused before a request reaches it,
  for every grant, client credentials included.
* Any pre-registered client goes only to the authorization server it was first used with for this server, unless
  the caller names the authorization server explicitly.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from mcp_oauth_auth.exceptions import ConfigurationError, IssuerMismatchError
from mcp_oauth_auth.flow.urls import origin_of, same_issuer

if TYPE_CHECKING:
    from mcp_oauth_auth.flow.config import FlowConfig
    from mcp_oauth_auth.flow.discovery import ProtectedResourceMetadata
    from mcp_oauth_auth.records import CredentialRecord

__all__ = ["check_client_stays_with", "secret_bound"]


def _origin(url: str) -> str | None:
    try:
        return origin_of(url)
    except ConfigurationError:
        return None


def secret_bound(
    config: FlowConfig, server_url: str, prm: ProtectedResourceMetadata | None
) -> ProtectedResourceMetadata | None:
    """``prm`` with only the authorization servers a confidential pre-registered client may be sent to: without
    ``issuer=``, those on the MCP server's origin; :class:`IssuerMismatchError` when that leaves none."""
    client = config.client
    confidential = bool(
        client.client_id and (client.client_secret or config.private_key or config.assertion is not None)
    )
    if not confidential or client.issuer is not None or prm is None:
        return prm
    origin = origin_of(server_url)
    own = tuple(issuer for issuer in prm.authorization_servers if _origin(issuer) == origin)
    if own:
        return replace(prm, authorization_servers=own)
    named = prm.authorization_servers[0]
    raise IssuerMismatchError(
        f"{server_url} names the authorization server(s) {list(prm.authorization_servers)[:4]}, not on its own origin; "
        f"the pre-registered client {client.client_id!r} has a secret, key or workload assertion, which is sent only "
        f"to the issuer it belongs to. If the client really is registered there, pass issuer={named!r} "
        f"(CLI --issuer {named})",
        url=prm.url,
    )


def check_client_stays_with(config: FlowConfig, record: CredentialRecord | None, server_url: str, issuer: str) -> None:
    """A pre-registered client goes only to the authorization server it was first used with for this server,
    unless the caller names the authorization server (``issuer=``) explicitly: client credentials are never
    reused with another authorization server unasked."""
    client = config.client
    if client.issuer is not None or not client.client_id or record is None:
        return
    previous = record.client
    if (
        previous.kind == "pre-registered"
        and previous.client_id == client.client_id
        and not same_issuer(record.issuer, issuer)
    ):
        raise IssuerMismatchError(
            f"{server_url} now names the authorization server {issuer}, but the client "
            f"{client.client_id!r} was used with {record.issuer}; its credentials are not used with another "
            f"authorization server unasked. Pass issuer={issuer!r} if the client really is registered there",
            url=issuer,
        )
