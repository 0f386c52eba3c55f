"""What ``login`` notes about renewing a credential (:mod:`mcp_oauth_auth.cli.renewal`) and what ``token`` makes of
the note, without a server."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

import pytest

from mcp_oauth_auth.cli.errors import CLIError, ExitCode
from mcp_oauth_auth.cli.renewal import renewal_of, renewal_options
from mcp_oauth_auth.flow.idp import EnterpriseIdP
from tests.storage.contract import make_record

NO_OPTIONS = {"assertion_file": None, "idp_issuer": None, "idp_client_id": None}
IDP = {"idp_client_secret_env": None, "id_token_file": None}


def options(**given: str | None) -> argparse.Namespace:
    return argparse.Namespace(**{**NO_OPTIONS, **IDP, **given})


def test_paths_are_made_absolute_keeping_their_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Kubernetes projected token is a link the platform points at each new token: the link is what is noted."""
    (tmp_path / "..2026_12_06").mkdir()
    (tmp_path / "..2026_12_06" / "token").write_text("jwt")
    (tmp_path / "token").symlink_to(tmp_path / "..2026_12_06" / "token")
    monkeypatch.chdir(tmp_path)
    assert renewal_of(options(assertion_file="token")) == {
        "grant": "jwt-bearer",
        "assertion_file": os.path.join(tmp_path, "token"),
    }
    note = renewal_of(options(idp_issuer="https://idp.example.com", idp_client_id="c", id_token_file="token"))
    assert note == {
        "grant": "id-jag",
        "idp_issuer": "https://idp.example.com",
        "idp_client_id": "c",
        "id_token_file": os.path.join(tmp_path, "token"),
    }
    assert renewal_of(options()) is None


def test_notes_become_the_grant_options(monkeypatch: pytest.MonkeyPatch) -> None:
    workload = replace(make_record(refresh_token=None), renewal={"grant": "jwt-bearer", "assertion_file": "/t"})
    assert renewal_options(workload) == {"assertion": Path("/t")}
    note = {"grant": "id-jag", "idp_issuer": "https://idp.example.com", "idp_client_id": "c"}
    enterprise = replace(make_record(refresh_token=None), renewal={**note, "idp_client_secret_env": "IDP_SECRET"})
    monkeypatch.setenv("IDP_SECRET", "idp-secret-VALUE")
    assert renewal_options(enterprise) == {
        "identity_assertion": EnterpriseIdP(
            issuer="https://idp.example.com", client_id="c", client_secret="idp-secret-VALUE"
        )
    }
    monkeypatch.delenv("IDP_SECRET")
    due = replace(enterprise, tokens=None)
    with pytest.raises(CLIError) as caught:
        renewal_options(due)
    assert caught.value.code == ExitCode.ERROR
    assert "IDP_SECRET" in str(caught.value)
    assert renewal_options(enterprise) == {}  # its stored token (valid until 2033) is not due: no secret needed


@pytest.mark.parametrize(
    "note",
    [None, {}, {"grant": "saml-bearer", "assertion_file": "/t"}, {"grant": "jwt-bearer"}, {"grant": "id-jag"}],
)
def test_other_notes_leave_the_record_as_it_was(note: dict[str, str] | None) -> None:
    assert renewal_options(replace(make_record(), renewal=note)) == {}
