"""The benchmark script runs in its quickest mode and prints its Markdown tables.

Only that it works is checked here: performance is shown by the ratios the script prints (docs/performance.md),
never asserted in tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


@pytest.mark.timeout(300)
def test_quick_run_prints_a_table_per_scenario(tmp_path: Path) -> None:
    report = tmp_path / "results.md"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(report)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert out.startswith("# mcp-oauth-auth benchmark results")
    for number in range(1, 7):
        assert f"\n## {number}. " in out
    assert "\n## Targets\n" in out
    table_lines = [line for line in out.splitlines() if line.startswith("|")]
    assert any(line.startswith("| stack | variant | per request |") for line in table_lines)
    assert any(set(line) <= set("|-") for line in table_lines)  # a Markdown header separator
    for variant in ("static header", "MCPOAuth"):
        assert any(f"| {variant} |" in line for line in table_lines), variant
    assert report.read_text(encoding="utf-8").startswith(out.split("\n\n", 1)[0])


def test_unknown_scenario_is_refused() -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--scenario", "9"], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 2
    assert "invalid choice" in completed.stderr
