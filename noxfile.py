"""Development sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s typecheck``."""

from __future__ import annotations

import os
import shutil

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False
nox.options.sessions = ["tests", "lint", "typecheck"]


#: Debian packages of the real Secret Service the keyring tests start on a private D-Bus session.
SECRET_SERVICE_PACKAGES = ("gnome-keyring", "dbus-daemon")
#: Debian package of the real Redis server the Redis store tests start on a free loopback port.
REDIS_PACKAGES = ("redis-server",)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite: unit tests and the integration tests with real servers on loopback.

    Besides the Python packages it sets up the real servers the integration tests start: the Secret Service
    (gnome-keyring and dbus-daemon from Debian's packages, installed when missing and run as root, else named),
    the oidc-provider authorization server, the official MCP TypeScript SDK's server and the official MCP
    conformance suite in two versions with the Node.js 22 it needs (each from its lockfile). The MCP Python SDK's
    and FastMCP's authorization servers come with the ``dev`` extra.

    It measures branch coverage of the library (the ``testing`` package aside), configured in pyproject.toml:
    ``coverage run -m pytest`` starts coverage before pytest loads the package's own pytest plugin (which imports the
    library), and the CLI and integration tests' child processes are measured too; then ``coverage combine`` and
    ``coverage report``. The whole suite fails under ``fail_under``. With arguments (``nox -s tests -- tests/unit``,
    ``-- -k refresh``) they go to pytest, and the report is shown without the threshold: a part of the suite does
    not cover the whole library.

    The Redis store tests start a real Redis server: Debian's redis-server, installed like the Secret Service.
    """
    _secret_service(session)
    _debian_packages(session, REDIS_PACKAGES, ("redis-server",), "the Redis store tests need a real redis-server")
    session.run("npm", "ci", "--prefix", "tests/integration/oidc", "--no-audit", "--no-fund", external=True)
    session.run("npm", "ci", "--prefix", "tests/integration/ts_sdk", "--no-audit", "--no-fund", external=True)
    session.run("npm", "ci", "--prefix", "tests/integration/conformance", "--no-audit", "--no-fund", external=True)
    session.install("-e", ".[dev]")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "report", *(["--fail-under=0"] if session.posargs else []))


def _secret_service(session: nox.Session) -> None:
    _debian_packages(
        session,
        SECRET_SERVICE_PACKAGES,
        ("gnome-keyring-daemon", "dbus-daemon"),
        "the keyring tests need a real Secret Service",
    )


def _debian_packages(session: nox.Session, packages: tuple[str, ...], programs: tuple[str, ...], why: str) -> None:
    """Install Debian ``packages`` (as root, with apt-get) unless every one of ``programs`` is on PATH already."""
    if all(shutil.which(program) for program in programs):
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        session.run("apt-get", "update", external=True, env=env)
        session.run("apt-get", "install", "-y", "--no-install-recommends", *packages, external=True, env=env)
        return
    session.error(f"{why}: install the packages {' '.join(packages)} (e.g. sudo apt-get install {' '.join(packages)})")


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy", "--strict", "mcp_oauth_auth")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark suite (docs/performance.md): ``nox -s bench``, ``nox -s bench -- --quick --scenario 1 3``,
    ``nox -s bench -- --output benchmarks/results/latest.md``. Not run by default."""
    session.install("-e", ".[dev]")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def mcp1(session: nox.Session) -> None:
    """The drop-in end-to-end tests (tests/sdk) with the official MCP SDK 1.x, whose transports use ``httpx``.

    A 1.x user's environment: the package with its test support, and no ``httpx2`` (the dev extra pins mcp 2.x and
    httpx2), so that MCPOAuth is a plain ``httpx.Auth`` there.
    """
    session.install("-e", ".[testing]", "mcp==1.30.0", "pytest>=8", "pytest-timeout>=2.3")
    session.run("python", "-m", "pytest", "tests/sdk", *session.posargs)


@nox.session
def mcp2(session: nox.Session) -> None:
    """The drop-in end-to-end tests (tests/sdk) with the official MCP SDK 2.x, whose transports use ``httpx2``
    (Python 3.11+)."""
    session.install("-e", ".[dev]")
    session.install("mcp==2.3.0")
    session.run("python", "-m", "pytest", "tests/sdk", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (mkdocs.yml, docs/) in strict mode: a broken link, anchor or API reference, or a page
    missing from the navigation, fails the build. Output in site/ (``nox -s docs -- --site-dir DIR`` elsewhere)."""
    session.install("-e", ".[docs]")
    site_dir = [] if "--site-dir" in session.posargs else ["--site-dir", "site"]
    session.run("mkdocs", "build", "--strict", *site_dir, *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})
