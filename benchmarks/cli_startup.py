"""Start-up time of the ``mcp-oauth`` command line: ``--help``, ``--version`` and ``list`` (an empty store, no
keyring), best of N wall times each, against a bare ``python -c pass`` measured in the same run.

    python benchmarks/cli_startup.py [--runs 7]

Prints a Markdown table: milliseconds (best of N) and the ratio to the bare interpreter. Nothing is asserted:
compare two checkouts by running it in each, on the same machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def _best(command: list[str], env: dict[str, str], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="runs of each command; the best is kept (default 7)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mcp-oauth-startup-") as home:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DBUS_SESSION_BUS_ADDRESS", "MCP_OAUTH_PASSWORD", "MCP_OAUTH_STORE")
        }
        env["MCP_OAUTH_HOME"] = home
        cli = [sys.executable, "-m", "mcp_oauth_auth"]
        baseline = _best([sys.executable, "-c", "pass"], env, args.runs)
        rows = [("python -c pass", baseline)]
        for label, extra in (("--help", ["--help"]), ("--version", ["--version"]), ("list", ["list"])):
            rows.append((f"mcp-oauth {label}", _best([*cli, *extra], env, args.runs)))
    print(f"| command | best of {args.runs} | ratio to python -c pass |")
    print("|---|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds * 1000:.0f} ms | {seconds / baseline:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
