"""``login --preset NAME --param KEY=VALUE --token-param KEY=VALUE``: a provider's settings from the command line,
checked here so that a mistake is one line naming the option (never a Python argument)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from mcp_oauth_auth.cli.errors import DOCUMENTATION, CLIError, ExitCode

__all__ = ["provider_options"]


def _parameters(values: Sequence[str] | None, option: str) -> dict[str, str] | None:
    """``KEY=VALUE`` pairs as a mapping; a malformed pair, a repeated key or a key the flow owns is a usage error.
    Values are never repeated in a message (they may be secrets)."""
    from mcp_oauth_auth.flow.request_rules import RESERVED_PARAMETERS

    if not values:
        return None
    parameters: dict[str, str] = {}
    for value in values:
        key, equals, text = value.partition("=")
        key = key.strip()
        if not equals or not key:
            raise CLIError(
                f"{option} takes KEY=VALUE, e.g. {option} audience=https://api.example.com", None, ExitCode.USAGE
            )
        if key.lower() in RESERVED_PARAMETERS or key.lower().startswith("client_assertion"):
            raise CLIError(
                f"{option} {key}: this parameter is set by the login itself",
                "scopes go in --scope; the client in --client-id; see mcp-oauth login --help",
                ExitCode.USAGE,
            )
        if key in parameters:
            raise CLIError(f"{option} {key} is given twice", None, ExitCode.USAGE)
        parameters[key] = text
    return parameters


def provider_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``MCPOAuth`` arguments of ``--preset``, ``--param`` and ``--token-param`` (``args.device`` is set when
    the preset prefers the device flow and no other way of approving was chosen)."""
    from mcp_oauth_auth.exceptions import ConfigurationError
    from mcp_oauth_auth.presets import PRESET_NAMES, preset_named

    options: dict[str, Any] = {
        "extra_authorize_params": _parameters(args.param, "--param"),
        "extra_token_params": _parameters(args.token_param, "--token-param"),
    }
    if args.preset is None:
        return options
    try:
        preset = preset_named(args.preset)
    except ConfigurationError:
        raise CLIError(
            f"--preset {args.preset!r} is not a preset",
            f"presets: {', '.join(PRESET_NAMES)} ({DOCUMENTATION}/providers.md)",
            ExitCode.USAGE,
        ) from None
    if preset.needs_client and not (args.client_id or args.client_metadata_url):
        raise CLIError(
            f"--preset {preset.name} needs --client-id: this provider offers no dynamic registration",
            f"register an OAuth app with the provider and pass its client ID ({DOCUMENTATION}/providers.md)",
            ExitCode.USAGE,
        )
    if preset.prefers_device_flow and not (args.no_browser or args.headless):
        args.device = True
    options["preset"] = preset
    return options
