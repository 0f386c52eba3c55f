"""Development sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s typecheck``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import nox
from nox.logger import logger
from nox.project import load_toml
from packaging.requirements import Requirement

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False
nox.options.sessions = ["tests", "lint", "typecheck"]

#: Every Python the package claims (pyproject.toml: requires-python and the classifiers), newest first. ``nox -s
#: tests`` runs on each: the whole suite on WHOLE_SUITE_PYTHONS, PART_OF_SUITE on the others (tests-3.13 names one).
PYTHONS = ("3.13", "3.12", "3.11", "3.10")
WHOLE_SUITE_PYTHONS = ("3.13", "3.11")
#: The unit, storage and CLI tests: no Node.js server needed; on 3.10 the ones that need httpx2 (or the MCP SDK 2.x
#: built on it) skip themselves, with that reason.
PART_OF_SUITE = ("tests/unit", "tests/storage", "tests/cli")
#: The oldest claimed Python: the ``lowest`` session runs there, with the oldest versions of the dependencies.
OLDEST_PYTHON = PYTHONS[-1]
#: A claimed Python that is missing fails its session (never a silent skip) and nothing is downloaded: CI reaches only
#: the package registries.
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"


#: Debian packages of the real Secret Service the keyring tests start on a private D-Bus session.
SECRET_SERVICE_PACKAGES = ("gnome-keyring", "dbus-daemon")
#: Debian package of the real Redis server the Redis store tests start on a free loopback port.
REDIS_PACKAGES = ("redis-server",)


@nox.session(python=PYTHONS)
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

    It runs on every claimed Python (PYTHONS; ``nox -s tests-3.12`` on one), each with the dependencies a user of that
    version gets from the ``dev`` extra (on 3.10: no httpx2, no MCP SDK): the whole suite on WHOLE_SUITE_PYTHONS, and
    on the others PART_OF_SUITE (no Node.js servers), its coverage reported without the threshold.
    """
    whole_suite = session.python in WHOLE_SUITE_PYTHONS
    _secret_service(session)
    _redis_server(session)
    if whole_suite:
        session.run("npm", "ci", "--prefix", "tests/integration/oidc", "--no-audit", "--no-fund", external=True)
        session.run("npm", "ci", "--prefix", "tests/integration/ts_sdk", "--no-audit", "--no-fund", external=True)
        session.run("npm", "ci", "--prefix", "tests/integration/conformance", "--no-audit", "--no-fund", external=True)
    session.install("-e", ".[dev]")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *(session.posargs or ([] if whole_suite else PART_OF_SUITE)))
    session.run("coverage", "combine", "--quiet")
    # The floor holds wherever the whole suite runs (the CLI's and the integration tests' child processes are
    # measured there too, on 3.13 as on 3.11).
    floor = whole_suite and not session.posargs
    session.run("coverage", "report", *([] if floor else ["--fail-under=0"]))


def _secret_service(session: nox.Session) -> None:
    _debian_packages(
        session,
        SECRET_SERVICE_PACKAGES,
        ("gnome-keyring-daemon", "dbus-daemon"),
        "the keyring tests need a real Secret Service",
    )


def _redis_server(session: nox.Session) -> None:
    _debian_packages(session, REDIS_PACKAGES, ("redis-server",), "the Redis store tests need a real redis-server")


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


@nox.session(python=OLDEST_PYTHON)
def lowest(session: nox.Session) -> None:
    """PART_OF_SUITE with the oldest versions of the dependencies pyproject.toml allows, on the oldest Python: each of
    ``project.dependencies`` and of the FLOORED_EXTRAS pinned to its floor (``httpx>=0.27`` installs httpx 0.27), so
    that the floors are true claims. The test tools come at their usual versions."""
    _secret_service(session)
    _redis_server(session)
    constraints = Path(session.create_tmp()) / "floors.txt"
    constraints.write_text("".join(f"{pin}\n" for pin in _dependency_floors()), encoding="utf-8")
    session.install("-c", str(constraints), "-e", ".[dev]")
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    session.run("python", "-m", "pytest", *(session.posargs or PART_OF_SUITE))


#: The extras whose floors are users' claims too (``dev`` and ``docs`` pin tools of this repository).
FLOORED_EXTRAS = ("httpx2", "vault", "redis", "testing")


def _dependency_floors() -> list[str]:
    """``name==floor`` for each dependency in pyproject.toml, runtime and FLOORED_EXTRAS, each of which must declare
    one ``>=`` floor. A pin of a package the Python does not get (httpx2 on 3.10) constrains nothing."""
    project = load_toml("pyproject.toml")["project"]
    extras = project["optional-dependencies"]
    pins = []
    for line in [*project["dependencies"], *(line for extra in FLOORED_EXTRAS for line in extras[extra])]:
        requirement = Requirement(line)
        floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if len(floors) != 1:
            raise ValueError(f"the dependency {line!r} must declare one floor (>=) for the lowest session to test")
        pins.append(f"{requirement.name}=={floors[0]}")
    return pins


def _interpreter(version: str) -> str | None:
    """The newest CPython ``version`` (X.Y) pyenv installed (PYENV_ROOT, else ~/.pyenv), else a ``pythonX.Y`` on PATH
    that runs and is that version (a pyenv shim for a version not selected does not run), else None."""
    versions = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    pattern = re.compile(rf"{re.escape(version)}\.(\d+)")
    installed = sorted(
        (int(match[1]), executable)
        for entry in (versions.iterdir() if versions.is_dir() else ())
        if (match := pattern.fullmatch(entry.name)) and (executable := entry / "bin" / f"python{version}").is_file()
    )
    if installed:
        return str(installed[-1][1])
    found = shutil.which(f"python{version}")
    if found is None:
        return None
    answer = subprocess.run(
        [found, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True, check=False
    )
    return found if answer.returncode == 0 and answer.stdout.strip() == version else None


def _expose_interpreters() -> None:
    """Make nox find every claimed Python: a directory of ``pythonX.Y`` links to them goes first on PATH (before the
    pyenv shims, which run only the selected versions). One missing is named with the way to install it, and the
    sessions that need it fail (error_on_missing_interpreters). The session environments point at these links (their
    ``home``): a link is replaced atomically, and removed only when its interpreter is gone."""
    links = Path(__file__).resolve().parent / ".nox" / "interpreters"
    links.mkdir(parents=True, exist_ok=True)
    for version in PYTHONS:
        link = links / f"python{version}"
        target = _interpreter(version)
        if target is None:
            link.unlink(missing_ok=True)
            logger.warning(
                f"Python {version}, which the package claims, is not installed: the sessions on it fail. Install it "
                f"(pyenv install {version}, or your system's python{version} package) and run nox again."
            )
            continue
        staged = links / f".python{version}.{os.getpid()}"
        staged.unlink(missing_ok=True)
        staged.symlink_to(target)
        staged.replace(link)
    if str(links) not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([str(links), os.environ.get("PATH", "")])


_expose_interpreters()
