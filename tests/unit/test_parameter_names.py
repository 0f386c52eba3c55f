"""One name per concept: the engine's configuration, the step-by-step client and the handler call each option
by the keyword ``MCPOAuth`` takes (``private_key``, ``retry``, ``allow_insecure_http``,
``send_resource_indicator``, ``grant_type``, ...), so that a message naming a field names what the caller passed."""

from __future__ import annotations

import inspect
from dataclasses import fields

from mcp_oauth_auth import MCPOAuth
from mcp_oauth_auth.compat.client import MCPOAuthClient
from mcp_oauth_auth.compat.handler import _MCPOAUTH_OPTIONS
from mcp_oauth_auth.flow.config import FlowConfig
from mcp_oauth_auth.flow.registration import ClientSettings

MCPOAUTH = set(inspect.signature(MCPOAuth.__init__).parameters) - {"self"}

#: What the engine is told that is not a caller's option: derived from the authorizer, or grouped.
DERIVED = {"client", "interaction", "headless_reason", "request_rules"}


def test_the_engine_configuration_uses_the_constructors_names() -> None:
    assert {field.name for field in fields(FlowConfig)} - DERIVED <= MCPOAUTH
    assert {field.name for field in fields(ClientSettings)} <= MCPOAUTH


def test_the_step_by_step_client_and_the_handler_use_the_constructors_names() -> None:
    own = {"self", "authorizer", "http_client"}
    assert set(inspect.signature(MCPOAuthClient.__init__).parameters) - own <= MCPOAUTH
    assert _MCPOAUTH_OPTIONS <= MCPOAUTH
