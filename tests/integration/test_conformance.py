"""The official MCP conformance suite (``@modelcontextprotocol/conformance``) against our client.

Two versions of the suite, pinned by ``tests/integration/conformance/package-lock.json`` (``npm ci --prefix
tests/integration/conformance``): the current stable release and the newest pre-release, which covers the 2026-07-28
revision and the extensions. Every client ``auth/*`` scenario of both is one test here, so that a failure names its
scenario; the suite starts its mock MCP and authorization servers on loopback and runs
``tests/integration/conformance_client.py`` (MCPOAuth on an ``httpx.AsyncClient``) against them.

Two lists of scenarios are expected to fail, both strictly: one that passes fails the run, so that its entry is
removed and the lists can only shrink. ``SUITE_BUGS`` holds only scenarios where the suite itself is wrong;
``NOT_BUILT_YET`` holds the scenarios of features this client does not have yet.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SUITE_DIR = Path(__file__).resolve().parent / "conformance"
CLIENT_SCRIPT = Path(__file__).resolve().parent / "conformance_client.py"
INSTALL_HINT = "npm ci --prefix tests/integration/conformance"

#: Each version of the suite, by the npm alias it is installed under (tests/integration/conformance/package.json).
VERSIONS = {"0.1.16": "conformance-0.1", "0.2.0-alpha.12": "conformance-0.2"}

_COMMON_SCENARIOS = (
    "auth/metadata-default",
    "auth/metadata-var1",
    "auth/metadata-var2",
    "auth/metadata-var3",
    "auth/basic-cimd",
    "auth/scope-from-www-authenticate",
    "auth/scope-from-scopes-supported",
    "auth/scope-omitted-when-undefined",
    "auth/scope-step-up",
    "auth/scope-retry-limit",
    "auth/token-endpoint-auth-basic",
    "auth/token-endpoint-auth-post",
    "auth/token-endpoint-auth-none",
    "auth/pre-registration",
    "auth/2025-03-26-oauth-metadata-backcompat",
    "auth/2025-03-26-oauth-endpoint-fallback",
    "auth/resource-mismatch",
    "auth/offline-access-scope",
    "auth/offline-access-not-supported",
    "auth/client-credentials-jwt",
    "auth/client-credentials-basic",
)

#: The client ``auth/*`` scenarios of each version, as its ``list`` command prints them (test_every_scenario_is_run
#: checks that none is missing when a version is upgraded).
SCENARIOS = {
    "0.1.16": (*_COMMON_SCENARIOS, "auth/cross-app-access-complete-flow"),
    "0.2.0-alpha.12": (
        *_COMMON_SCENARIOS,
        "auth/authorization-server-migration",
        "auth/iss-supported",
        "auth/iss-not-advertised",
        "auth/iss-supported-missing",
        "auth/iss-wrong-issuer",
        "auth/iss-unexpected",
        "auth/iss-normalized",
        "auth/metadata-issuer-mismatch",
        "auth/enterprise-managed-authorization",
        "auth/dpop",
        "auth/dpop-nonce",
        "auth/wif-jwt-bearer",
    ),
}

#: Scenarios where the suite itself is wrong: our client is right to fail them.
SUITE_BUGS = {
    # The scenario serves authorization server metadata at <origin>/.well-known/oauth-authorization-server whose
    # "issuer" is <origin>/oauth. RFC 8414 §3.3: the issuer in the document MUST be identical to the issuer
    # identifier the well-known URL was built from (here the bare <origin>), and if they differ "the data contained
    # in the response MUST NOT be used". Our client refuses it (IssuerMismatchError), as the MCP specification
    # requires. The pre-release fixed the mock (upstream commit "make 2025-03-26 backcompat mock RFC 8414
    # §3.3-compliant", #359): there the same scenario passes.
    ("0.1.16", "auth/2025-03-26-oauth-metadata-backcompat"): "suite bug: metadata issuer violates RFC 8414 §3.3",
}
#: What our client must say when it fails a scenario of SUITE_BUGS: failing it for another reason is a real failure.
SUITE_BUG_REFUSALS = {
    ("0.1.16", "auth/2025-03-26-oauth-metadata-backcompat"): "refused: IssuerMismatchError",
}

#: Not built yet: issue 13 point 5. Scenarios of grants and proofs this client does not implement yet; each entry
#: goes when its feature lands (a scenario here that passes fails the run).
NOT_BUILT_YET: dict[tuple[str, str], str] = {}


class ScenarioFailed(AssertionError):
    """The suite judged our client to fail a scenario."""


def _node() -> str:
    """Node.js 22 or later (the suite needs ``fs.globSync``): the one the lockfile installs, else the system's."""
    bundled = SUITE_DIR / "node_modules" / ".bin" / "node"
    node = str(bundled) if bundled.is_file() else shutil.which("node")
    if node is None:
        pytest.fail(f"Node.js 22 or later is needed for the conformance suite: run `{INSTALL_HINT}`", pytrace=False)
    return node


def _suite_cli(version: str) -> Path:
    cli = SUITE_DIR / "node_modules" / VERSIONS[version] / "dist" / "index.js"
    if not cli.is_file():
        pytest.fail(
            f"the conformance suite {version} is not installed in {SUITE_DIR / 'node_modules'}: run `{INSTALL_HINT}` "
            "(the nox session 'tests' does it)",
            pytrace=False,
        )
    return cli


def _run_suite(version: str, *arguments: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    # In the working directory of the tests, which the client process inherits: coverage's subprocess patch
    # measures it there with the configuration of pyproject.toml, whose relative ``omit`` patterns are resolved
    # against the working directory.
    return subprocess.run(
        [_node(), str(_suite_cli(version)), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _checks(results: Path) -> list[dict[str, Any]]:
    files = sorted(results.rglob("checks.json"))
    assert len(files) == 1, f"expected one checks.json under {results}, found {files}"
    checks: list[dict[str, Any]] = json.loads(files[0].read_text(encoding="utf-8"))
    return checks


def _params() -> list[Any]:
    params = []
    for version, scenarios in SCENARIOS.items():
        for scenario in scenarios:
            reason = SUITE_BUGS.get((version, scenario)) or NOT_BUILT_YET.get((version, scenario))
            marks = [pytest.mark.xfail(raises=ScenarioFailed, strict=True, reason=reason)] if reason else []
            params.append(pytest.param(version, scenario, marks=marks, id=f"{version}:{scenario}"))
    return params


@pytest.mark.parametrize(("version", "scenario"), _params())
def test_scenario(version: str, scenario: str, tmp_path: Path) -> None:
    command = shlex.join([sys.executable, str(CLIENT_SCRIPT)])
    run = _run_suite(version, "client", "--command", command, "--scenario", scenario, "-o", str(tmp_path))
    report = f"{run.stdout}\n{run.stderr}"
    checks = _checks(tmp_path)
    failed = [
        f"{check['id']}: {check.get('errorMessage') or check['description']}"
        for check in checks
        if check["status"] == "FAILURE"
    ]
    if run.returncode != 0 or failed:
        refusal = SUITE_BUG_REFUSALS.get((version, scenario))
        assert refusal is None or refusal in report, f"not the expected refusal ({refusal}):\n{report}"
        raise ScenarioFailed(f"{scenario} failed in suite {version}: {failed or 'see the output'}\n{report}")
    assert any(check["status"] == "SUCCESS" for check in checks), report


@pytest.mark.parametrize("version", list(VERSIONS))
def test_every_scenario_is_run(version: str) -> None:
    """The tests above cover exactly the client auth scenarios the installed suite lists."""
    listing = _run_suite(version, "list", timeout=60)
    assert listing.returncode == 0, listing.stderr
    client_part = listing.stdout.split("Client scenarios", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"^\s*- (auth/[\w-]+)", client_part, flags=re.MULTILINE)
    assert sorted(listed) == sorted(SCENARIOS[version])


def test_installed_versions_are_the_pinned_ones() -> None:
    for version, alias in VERSIONS.items():
        manifest = json.loads((SUITE_DIR / "node_modules" / alias / "package.json").read_text(encoding="utf-8"))
        assert (manifest["name"], manifest["version"]) == ("@modelcontextprotocol/conformance", version)


def test_expected_failures_name_real_scenarios() -> None:
    for version, scenario in (*SUITE_BUGS, *NOT_BUILT_YET):
        assert scenario in SCENARIOS[version], (version, scenario)
    assert not set(SUITE_BUGS) & set(NOT_BUILT_YET)
    assert set(SUITE_BUG_REFUSALS) == set(SUITE_BUGS)
