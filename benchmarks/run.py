"""Benchmarks of MCPOAuth beside its baselines, in one process run, printed as Markdown.

    python benchmarks/run.py [--quick] [--scenario N ...] [--output FILE]

Scenarios (see docs/performance.md): 1 steady state, 2 expiry under load, 3 concurrency without expiry, 4 cold
start, 5 full flow from an empty store, 6 memory. Baselines: no auth, a static ``Authorization: Bearer`` header on
the same client, and the official MCP SDK's ``OAuthClientProvider`` (mcp 2.x, httpx2). Every transport is
in-process (no sockets), so the cost of the auth layer is what shows.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent

if importlib.util.find_spec("mcp_oauth_auth") is None:  # a clone without `pip install -e .`
    sys.path.insert(1, str(REPO))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

SCENARIOS = {
    1: "steady_state",
    2: "expiry_herd",
    3: "concurrency",
    4: "cold_start",
    5: "full_flow",
    6: "memory",
}


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or platform.machine()
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / (1024 * 1024):.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return "RAM unknown"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        if distribution == "mcp-oauth-auth":
            import mcp_oauth_auth

            return f"{mcp_oauth_auth.__version__} (source tree)"
        return "not installed"


def _git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head


def _load() -> str:
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg()) + " (1 / 5 / 15 min)"
    except (AttributeError, OSError):
        return "unknown"


def machine_header(argv: list[str], quick: bool) -> str:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    versions = ", ".join(
        f"{name} {_version(name)}" for name in ("mcp-oauth-auth", "httpx", "httpx2", "mcp", "anyio", "authlib")
    )
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# mcp-oauth-auth benchmark results",
        "",
        f"- Date: {date}; command: `{shlex.join(['python', 'benchmarks/run.py', *argv])}`",
        f"- Machine: {_cpu_model()}, {os.cpu_count()} logical CPUs ({usable} usable), {_memory_total()}; "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}); {versions}",
        f"- Source: git {_git_revision()}",
        f"- Load average when the run started: {_load()} (the machine may be shared: see the min-max columns)",
    ]
    if quick:
        lines.append("- **Quick mode**: tiny sample sizes, for checking that the script runs; not for publishing.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sample sizes: a smoke run, not for publishing")
    parser.add_argument(
        "--scenario", type=int, nargs="+", choices=sorted(SCENARIOS), help="run only these scenarios (default: all)"
    )
    parser.add_argument("--output", type=Path, help="also write the Markdown report to this file")
    arguments = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv

    import importlib

    from harness import Section, Settings, render_targets

    settings = Settings.quick_run() if arguments.quick else Settings.full()
    selected = arguments.scenario or sorted(SCENARIOS)
    header = machine_header(argv, settings.quick)
    print(header, flush=True)
    sections: list[Section] = []
    started = time.perf_counter()
    for number in selected:
        module = importlib.import_module(SCENARIOS[number])
        runner: Callable[[Settings], Section] = module.run
        scenario_start = time.perf_counter()
        section = runner(settings)
        sections.append(section)
        print(f"\n{section.render()}", flush=True)
        print(f"\n(scenario {number} took {time.perf_counter() - scenario_start:.1f} s)", file=sys.stderr, flush=True)
    summary = f"## Targets\n\n{render_targets(sections)}\n\nLoad average when the run ended: {_load()}."
    print(f"\n{summary}")
    elapsed = time.perf_counter() - started
    print(f"\n(total {elapsed:.0f} s)", file=sys.stderr)
    if arguments.output is not None:
        body = "\n\n".join([header, *(section.render() for section in sections), summary])
        arguments.output.parent.mkdir(parents=True, exist_ok=True)
        arguments.output.write_text(f"{body}\n\n_The whole run took {elapsed:.0f} s._\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
