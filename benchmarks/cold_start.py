"""Scenario 4: cold start from a persisted record, in fresh interpreters.

Each measurement is a new ``python`` process running ``cold_start_child.py`` (variants interleaved, run after run);
the child reports its own timings, the parent the process's wall time (interpreter start-up and exit included).
Bytecode caching is on, as for real users (``PYTHONDONTWRITEBYTECODE`` is removed from the children's
environment), and every variant runs once untimed first so that the ``.pyc`` files exist.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fixtures import SERVER_URL, TOKEN, make_record, sdk_missing
from harness import Section, Series, Settings, format_duration_series, format_ratio, ratios, rotated

from mcp_oauth_auth import EncryptedFileTokenStore

CHILD = Path(__file__).resolve().parent / "cold_start_child.py"
PASSWORD = "correct horse battery staple"
TARGET_IMPORT = 0.050
#: Heavy packages worth naming when the SDK's import loads them.
_NOTABLE = ("pydantic", "pydantic_core", "pydantic_settings", "mcp", "mcp_types", "jwt", "starlette", "sse_starlette")


def _environment(home: Path, password: bool) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTHONDONTWRITEBYTECODE", "MCP_OAUTH_PASSWORD", "PYTHONPROFILEIMPORTTIME", "PYTHONTRACEMALLOC"):
        env.pop(name, None)
    env["MCP_OAUTH_HOME"] = str(home)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    if password:
        env["MCP_OAUTH_PASSWORD"] = PASSWORD
    return env


def _child(arguments: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    """Run one fresh interpreter; its JSON result and the process's wall time."""
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(CHILD), *arguments], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(f"cold-start child {arguments[:2]} failed:\n{completed.stderr}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result, wall


def run(settings: Settings) -> Section:
    section = Section(
        4,
        "Cold start from a persisted record",
        f"Fresh interpreters ({settings.cold_runs} per variant, interleaved), "
        f"{'bytecode cache not warmed (quick mode)' if settings.quick else 'bytecode cache warm'}. Import time of "
        f"`mcp_oauth_auth` after `httpx` (target ≤ {TARGET_IMPORT * 1e3:.0f} ms), time to the first authenticated "
        "response with the credential stored in the encrypted file store, and that store's key derivation.",
    )
    missing_sdk = sdk_missing()
    with tempfile.TemporaryDirectory(prefix="mcp-oauth-bench-") as temporary:
        root = Path(temporary)
        home = root / "home"
        keyfile_dir, password_dir = root / "keyfile-store", root / "password-store"
        EncryptedFileTokenStore(keyfile_dir, use_keyring=False).save(make_record())
        EncryptedFileTokenStore(password_dir, password=PASSWORD, use_keyring=False).save(make_record())
        plain, with_password = _environment(home, password=False), _environment(home, password=True)

        jobs: dict[str, tuple[list[str], dict[str, str]]] = {
            "import": (["import"], plain),
            "first static": (["first", "static", SERVER_URL, TOKEN], plain),
            "first keyfile": (["first", "keyfile", SERVER_URL, TOKEN, str(keyfile_dir)], plain),
            "first password": (["first", "password", SERVER_URL, TOKEN, str(password_dir)], with_password),
            "kdf keyfile": (["kdf", str(keyfile_dir)], plain),
            "kdf password": (["kdf", str(password_dir)], with_password),
            "python -c pass": (["-c", "pass"], plain),
        }
        if missing_sdk is None:
            jobs["import-sdk"] = (["import-sdk"], plain)
            jobs["first sdk"] = (["first", "sdk", SERVER_URL, TOKEN], plain)
        if not settings.quick:
            for arguments, env in jobs.values():  # warm the bytecode cache
                _run_job(arguments, env)
        results: dict[str, list[tuple[dict[str, Any], float]]] = {name: [] for name in jobs}
        for run_index in range(settings.cold_runs):
            for name in rotated(list(jobs), run_index):
                arguments, env = jobs[name]
                results[name].append(_run_job(arguments, env))

    _import_table(section, results, missing_sdk)
    _first_response_table(section, results, missing_sdk)
    _kdf_table(section, results)
    return section


def _run_job(arguments: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    if arguments[0] == "-c":  # the bare interpreter, for reference
        start = time.perf_counter()
        subprocess.run([sys.executable, *arguments], env=env, check=True)
        return {}, time.perf_counter() - start
    return _child(arguments, env)


def _values(runs: list[tuple[dict[str, Any], float]], field: str) -> Series:
    return Series.of([result[field] if field != "wall" else wall for result, wall in runs])


def _import_table(section: Section, results: dict[str, Any], missing_sdk: str | None) -> None:
    table = section.table(
        "Import time, in-process (`time.perf_counter` around each import statement):",
        ["import", "median", "min\u2013max", "target", "met?"],
    )
    rows = [("`import httpx`", "import", "base"), ("`import mcp_oauth_auth` after httpx", "import", "extra")]
    if missing_sdk is None:
        rows += [
            ("`import httpx2`", "import-sdk", "base"),
            ("`from mcp.client.auth import OAuthClientProvider` after httpx2", "import-sdk", "extra"),
        ]
    for label, job, field in rows:
        series = _values(results[job], field)
        median, spread = format_duration_series(series, "ms")
        target, met = "", ""
        if job == "import" and field == "extra":
            target = f"≤ {TARGET_IMPORT * 1e3:.0f} ms"
            met = section.target("import time over httpx", target, median, series.median <= TARGET_IMPORT)
        table.add(label, median, spread, target, met)
    wall = _values(results["python -c pass"], "wall")
    section.notes.append(
        f"For scale: starting and stopping a bare interpreter (`python -c pass`) takes "
        f"{format_duration_series(wall, 'ms')[0]} on this machine."
    )
    packages = results["import"][0][0]["packages"]
    section.notes.append(
        "Packages that `import mcp_oauth_auth` loads beyond httpx's: " + ", ".join(f"`{p}`" for p in packages) + "."
    )
    if missing_sdk is None:
        sdk_packages = results["import-sdk"][0][0]["packages"]
        notable = ", ".join(f"`{p}`" for p in sdk_packages if p in _NOTABLE)
        section.notes.append(
            f"The official SDK's OAuth client loads {len(sdk_packages)} more top-level modules and packages beyond "
            f"httpx2's, among them {notable}."
        )


def _first_response_table(section: Section, results: dict[str, Any], missing_sdk: str | None) -> None:
    table = section.table(
        "Time to the first authenticated response of a new process (async client, asyncio), measured inside the "
        "child from its first line; the process wall time adds interpreter start-up and exit:",
        ["variant", "imports", "setup", "first request", "total", "min\u2013max", "\u00d7 static", "process wall time"],
    )
    variants = [
        ("static header (token in the program)", "first static"),
        ("MCPOAuth, encrypted file store, key file", "first keyfile"),
        ("MCPOAuth, encrypted file store, password (scrypt)", "first password"),
    ]
    if missing_sdk is None:
        variants.append(("official SDK, in-memory TokenStorage pre-filled", "first sdk"))
    static = _values(results["first static"], "total")
    for label, job in variants:
        runs = results[job]
        total = _values(runs, "total")
        median, spread = format_duration_series(total, "ms")
        table.add(
            label,
            format_duration_series(_values(runs, "import"), "ms")[0],
            format_duration_series(_values(runs, "setup"), "ms")[0],
            format_duration_series(_values(runs, "request"), "ms")[0],
            median,
            spread,
            format_ratio(ratios(total.values, static.values)),
            format_duration_series(_values(runs, "wall"), "ms")[0],
        )
    for label, job in variants[1:2] + variants[3:]:
        result = results[job][0][0]
        setup = ", ".join(f"`{p}`" for p in result["setup_packages"]) or "nothing"
        request = ", ".join(f"`{p}`" for p in result["request_packages"]) or "nothing"
        section.notes.append(f"{label}: the setup imports {setup}; the first request imports {request}.")
    section.notes.append(
        "MCPOAuth's first request also reads and decrypts the record in a worker thread (the file store is "
        "blocking) and, with a password, derives the key (scrypt). The official SDK has no persistent store of its "
        "own: its row reads its token from memory."
    )


def _kdf_table(section: Section, results: dict[str, Any]) -> None:
    table = section.table(
        "Encrypted file store, loading one record in a new process:",
        ["key source", "first load", "load by a second store object", "repeated load"],
    )
    for label, job in (("key file", "kdf keyfile"), ("password (scrypt n=2^15, r=8, p=3)", "kdf password")):
        runs = results[job]
        table.add(
            label,
            format_duration_series(_values(runs, "first"), "ms")[0],
            format_duration_series(_values(runs, "second_store"), "ms")[0],
            format_duration_series(_values(runs, "repeat"), "ms")[0],
        )
    kdf = Series.of(
        [
            password[0]["first"] - keyfile[0]["first"]
            for password, keyfile in zip(results["kdf password"], results["kdf keyfile"], strict=True)
        ]
    )
    section.notes.append(
        f"The password's key derivation costs {format_duration_series(kdf, 'ms')[0]} (first load with a password "
        "minus first load with a key file), once per process: later loads, even through another store object, use "
        "the cached master key."
    )
