"""The device authorization grant (RFC 8628) apart from polling: the device authorization endpoint, the user's
decisions (by the test, automatically, or on the verification page), and the verification page."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

from mcp_oauth_auth.testing.fake_as.client_auth import ClientAuthentication, identify_client
from mcp_oauth_auth.testing.fake_as.issuing import TokenIssuer
from mcp_oauth_auth.testing.fake_as.metadata import DEVICE_CODE_GRANT, MetadataEndpoint
from mcp_oauth_auth.testing.fake_as.oauth_http import (
    Reject,
    check_form,
    error_code,
    method_not_allowed,
    not_found,
    parse_form,
    token_error,
)
from mcp_oauth_auth.testing.fake_as.records import DeviceCode
from mcp_oauth_auth.testing.fake_http import FakeRequest, FakeResponse, json_response

__all__ = ["DeviceAuthorizationEndpoint"]

#: Characters of user codes: consonants only, so that no word can be spelled (RFC 8628 §6.1).
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"


class DeviceAuthorizationEndpoint(ClientAuthentication, TokenIssuer, MetadataEndpoint):
    """``/device_authorization`` and the ``/device`` verification page, when ``device_authorization_enabled``."""

    def handle_device_authorization(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        if not self._context.config.device_authorization_enabled:
            return not_found(request.path)
        if request.method != "POST":
            return method_not_allowed("POST")
        record: dict[str, Any] = dict.fromkeys(
            ("client_id", "auth_method", "scope", "resource", "user_code", "status", "error")
        )
        self.device_authorization_requests.append(record)
        form, repeated = parse_form(request)
        record.update(scope=form.get("scope"), resource=form.get("resource"))
        with contextlib.suppress(Reject):
            record["client_id"], record["auth_method"], _ = identify_client(request, form)
        if injected is not None:
            response = injected
        else:
            try:
                response = self._device_authorization(request, form, repeated, record)
            except Reject as reject:
                response = reject.response
        record["status"] = response.status
        if response.status >= 400:
            record["error"] = error_code(response)
        return response

    def _device_authorization(
        self, request: FakeRequest, form: dict[str, str], repeated: list[str], record: dict[str, Any]
    ) -> FakeResponse:
        config = self._context.config
        check_form(request, repeated)
        client, _ = self._authenticate(request, form)
        if DEVICE_CODE_GRANT not in client.grant_types:
            raise token_error("unauthorized_client", "the client is not registered for the device_code grant")
        scopes = self._requested_scopes(form.get("scope"))
        resource = self._checked_resource(form.get("resource"))
        now = self._context.now()
        active = {entry.user_code for entry in self._device_codes.values() if entry.expires_at > now}
        user_code = _new_user_code()
        while user_code in active:
            user_code = _new_user_code()
        entry = DeviceCode(
            device_code=secrets.token_urlsafe(32),
            user_code=user_code,
            client_id=client.client_id,
            scopes=scopes,
            resource=resource,
            expires_at=now + config.device_code_lifetime,
            interval=float(config.device_poll_interval or 5),
        )
        self._device_codes[entry.device_code] = entry
        display_code = f"{user_code[:4]}-{user_code[4:]}"
        record["user_code"] = display_code
        document: dict[str, Any] = {
            "device_code": entry.device_code,
            "user_code": display_code,
            "verification_uri": self.verification_uri,
            "verification_uri_complete": f"{self.verification_uri}?{urlencode({'user_code': display_code})}",
            "expires_in": config.device_code_lifetime,
        }
        if config.device_poll_interval is not None:
            document["interval"] = config.device_poll_interval
        return json_response(200, document, no_store=True)

    def _find_device_code(self, user_code: str) -> DeviceCode:
        """The undecided, unexpired device authorization of ``user_code`` (any case, punctuation ignored)."""
        wanted = _normalise_user_code(user_code)
        now = self._context.now()
        for entry in self._device_codes.values():
            if entry.user_code == wanted and not entry.used and now < entry.expires_at:
                if entry.status != "pending":
                    raise ValueError(f"user code {user_code!r} was already {entry.status}")
                return entry
        raise KeyError(f"no pending device authorization with user code {user_code!r}")

    def approve_device(self, user_code: str, scopes: Sequence[str] | None = None) -> None:
        """The user approves ``user_code``, granting ``scopes`` (default: those requested)."""
        entry = self._find_device_code(user_code)
        if scopes is not None:
            unknown = [scope for scope in scopes if scope not in self._context.config.scopes_supported]
            if unknown:
                raise ValueError(f"scopes not in scopes_supported: {unknown}")
        entry.status = "approved"
        entry.granted_scopes = tuple(dict.fromkeys(scopes)) if scopes is not None else entry.scopes

    def deny_device(self, user_code: str) -> None:
        """The user denies ``user_code``: the next poll gets access_denied."""
        self._find_device_code(user_code).status = "denied"

    def pending_user_codes(self) -> list[str]:
        """User codes (as shown to the user) that await a decision and have not expired, oldest first."""
        now = self._context.now()
        return [
            f"{entry.user_code[:4]}-{entry.user_code[4:]}"
            for entry in self._device_codes.values()
            if entry.status == "pending" and not entry.used and now < entry.expires_at
        ]

    def handle_device_verification(self, request: FakeRequest, injected: FakeResponse | None) -> FakeResponse:
        """The verification page: GET shows a form (``?user_code=`` prefills it, as in verification_uri_complete);
        a form POST with ``user_code`` and ``decision`` ("approve", the default, or "deny") decides."""
        if not self._context.config.device_authorization_enabled:
            return not_found(request.path)
        if injected is not None:
            return injected
        if request.method == "GET":
            prefilled = next((value for name, value in request.query if name == "user_code"), "")
            return _html_page(
                200,
                "Connect a device",
                f'<form method="post"><input name="user_code" value="{escape(prefilled)}">'
                '<button name="decision" value="approve">Approve</button>'
                '<button name="decision" value="deny">Deny</button></form>',
            )
        if request.method != "POST":
            return method_not_allowed("GET, POST")
        if request.content_type != "application/x-www-form-urlencoded":
            return _html_page(400, "Bad request", "The form must be application/x-www-form-urlencoded.")
        form, _ = parse_form(request)
        decision = form.get("decision", "approve")
        if decision not in ("approve", "deny"):
            return _html_page(400, "Bad request", "decision must be approve or deny.")
        try:
            if decision == "approve":
                self.approve_device(form.get("user_code", ""))
            else:
                self.deny_device(form.get("user_code", ""))
        except (KeyError, ValueError):
            return _html_page(400, "Invalid code", "This code is unknown, expired or already used.")
        done = "approved" if decision == "approve" else "denied"
        return _html_page(200, f"Device {done}", f"You {done} the device. You can close this page.")


def _new_user_code() -> str:
    return "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(8))


def _normalise_user_code(value: str) -> str:
    """What the user typed, as stored: upper case, punctuation and spaces dropped (RFC 8628 §6.1)."""
    return "".join(char for char in value.upper() if char.isalnum())


def _html_page(status: int, title: str, text: str) -> FakeResponse:
    body = f"<!doctype html><title>{escape(title)}</title><h1>{escape(title)}</h1><p>{text}</p>".encode()
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
    return FakeResponse(status, [*headers, ("Cache-Control", "no-store")], body)
