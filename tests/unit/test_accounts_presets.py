"""A named account's ``prompt=select_account`` with the provider presets: it survives a preset's own ``prompt``
(Google's ``consent``), is never mistaken for a forced consent (Entra ID refuses that in admin-consented tenants),
and gives way to an explicit ``prompt=none``, which allows no other value."""

from __future__ import annotations

import pytest

from mcp_oauth_auth.testing import FakeMCPStack
from mcp_oauth_auth.testing.fake_provider import like_provider

from .test_provider_presets import login


def test_entra_gets_select_account_without_the_forced_consent() -> None:
    stack = FakeMCPStack(like_provider("entra"))
    auth, recorder = login(stack, preset="entra", account="work")
    assert recorder.authorization_query()["prompt"] == "select_account"
    assert "offline_access" in recorder.authorization_query()["scope"].split()
    assert auth.record is not None
    assert auth.record.account == "work"


def test_entra_default_account_gets_no_prompt_at_all() -> None:
    stack = FakeMCPStack(like_provider("entra"))
    _, recorder = login(stack, preset="entra")
    assert "prompt" not in recorder.authorization_query()


@pytest.mark.parametrize(
    ("account", "prompt"), [(None, "consent"), ("work", "consent select_account")], ids=["default", "work"]
)
def test_google_keeps_its_consent_and_adds_select_account_for_a_named_account(account: str | None, prompt: str) -> None:
    stack = FakeMCPStack(like_provider("google"))
    auth, recorder = login(stack, preset="google", scopes=["mcp:read", "offline_access"], account=account)
    assert recorder.authorization_query()["prompt"] == prompt
    assert auth.tokens is not None
    assert auth.tokens.refresh_token


def test_an_explicit_prompt_none_is_sent_alone() -> None:
    stack = FakeMCPStack(like_provider("google"))
    login(stack, preset="google", extra_authorize_params={"prompt": "none"}, account="work")
    assert stack.authorization_requests[-1]["prompt"] == "none"


def test_a_login_hint_replaces_the_account_chooser() -> None:
    stack = FakeMCPStack(like_provider("google"))
    login(stack, preset="google", account="work", login_hint="me@work.example")
    query = stack.authorization_requests[-1]
    assert (query["prompt"], query["login_hint"]) == ("consent", "me@work.example")
