"""The Pythons the package claims are the ones CI tests: pyproject.toml's classifiers and requires-python, the
sessions ``nox -s tests`` runs (and ``lowest``), and what README.md and the docs say, all agree; and a claimed
Python that is missing fails its session with the way to install it instead of being skipped."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # the whole suite runs on 3.11+
    pytest.skip("reads pyproject.toml with tomllib (3.11+)", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CLAIMED = sorted(
    (
        classifier.rsplit(" :: ", 1)[1]
        for classifier in PYPROJECT["project"]["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", classifier)
    ),
    key=lambda version: tuple(map(int, version.split("."))),
)
OLDEST, NEWEST = CLAIMED[0], CLAIMED[-1]


def nox(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nox", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def sessions(*names: str) -> dict[str, str | None]:
    """Each session nox would run for ``-s names``, with its Python."""
    listed = nox("--list", "--json", "-s", *names)
    assert listed.returncode == 0, listed.stderr
    return {entry["session"]: entry["python"] for entry in json.loads(listed.stdout)}


def test_the_claims_are_a_run_of_minor_versions_from_requires_python() -> None:
    assert PYPROJECT["project"]["requires-python"] == f">={OLDEST}"
    minors = [int(version.split(".")[1]) for version in CLAIMED]
    assert minors == list(range(minors[0], minors[-1] + 1))


def test_nox_s_tests_runs_on_every_claimed_python_and_lowest_on_the_oldest() -> None:
    found = sessions("tests", "lowest")
    assert found == {**{f"tests-{version}": version for version in reversed(CLAIMED)}, "lowest": OLDEST}


def test_ci_runs_the_readmes_test_command_and_the_lowest_session() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 -m pip install nox && nox -s tests\n" in (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [line for line in ci.splitlines() if line.startswith(("nox ", "python3 "))]
    assert commands[0] == "python3 -m pip install nox && nox -s tests"
    assert "lowest" in commands[1].split()


@pytest.mark.parametrize("page", ["README.md", "docs/index.md", "docs/getting-started.md"])
def test_the_docs_name_the_supported_pythons(page: str) -> None:
    assert f"Python {OLDEST}\N{EN DASH}{NEWEST}" in (ROOT / page).read_text(encoding="utf-8")


def test_a_missing_claimed_python_fails_its_session_with_the_install_hint(tmp_path: Path) -> None:
    # A copy of the project files nox reads, where neither pyenv nor PATH has the interpreter (nor any other): the
    # session must fail before creating anything, saying how to install it.
    missing = next(version for version in CLAIMED if version != f"{sys.version_info[0]}.{sys.version_info[1]}")
    for name in ("noxfile.py", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"PATH": str(empty), "PYENV_ROOT": str(empty), "HOME": str(tmp_path), "NO_COLOR": "1"}
    run = nox("-s", f"tests-{missing}", cwd=tmp_path, env=env)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"Python {missing}, which the package claims, is not installed" in run.stderr
    assert f"pyenv install {missing}" in run.stderr
    assert f"Session tests-{missing} failed" in run.stderr
    assert not (tmp_path / ".nox" / f"tests-{missing.replace('.', '-')}").exists()


def test_interpreters_come_from_pyenv_newest_patch_first_then_from_path(tmp_path: Path) -> None:
    current = f"{sys.version_info[0]}.{sys.version_info[1]}"
    in_pyenv, shimmed = [version for version in CLAIMED if version != current][:2]
    for name in ("noxfile.py", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    pyenv = tmp_path / "pyenv"
    for patch in ("5", "10", "9"):  # 10 is the newest: compared as numbers
        executable = pyenv / "versions" / f"{in_pyenv}.{patch}" / "bin" / f"python{in_pyenv}"
        executable.parent.mkdir(parents=True)
        executable.write_text("")
    (pyenv / "versions" / f"{in_pyenv}.11" / "bin").mkdir(parents=True)  # installed without the interpreter
    path = tmp_path / "bin"
    path.mkdir()
    (path / f"python{current}").symlink_to(sys.executable)
    # Like a pyenv shim of a version that is not selected: on PATH, but it does not run.
    shim = path / f"python{shimmed}"
    shim.write_text("#!/bin/sh\necho 'pyenv: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    env = {"PATH": str(path), "PYENV_ROOT": str(pyenv), "HOME": str(tmp_path), "NO_COLOR": "1"}
    listed = nox("--list", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    links = tmp_path / ".nox" / "interpreters"
    newest = pyenv / "versions" / f"{in_pyenv}.10" / "bin" / f"python{in_pyenv}"
    assert (links / f"python{in_pyenv}").readlink() == newest
    assert (links / f"python{current}").readlink() == path / f"python{current}"
    assert not (links / f"python{shimmed}").exists()
    assert f"Python {shimmed}, which the package claims, is not installed" in listed.stderr
