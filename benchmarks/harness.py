"""Measurement and reporting helpers shared by the benchmark scenarios.

Statistics are medians with min-max over repetitions; ratios are computed within each repetition (so that a slow
moment of the machine hits the plugin and its baseline alike) and then summarised the same way. Results are
rendered as Markdown tables.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

__all__ = [
    "Section",
    "Series",
    "Settings",
    "Table",
    "Target",
    "format_bytes",
    "format_count",
    "format_duration",
    "format_ratio",
    "ratios",
    "rotated",
]


@dataclass(frozen=True)
class Settings:
    """How much work each scenario does: :meth:`full` for published numbers, :meth:`quick` for a smoke run."""

    quick: bool
    #: Repetitions of every interleaved measurement (medians and min-max are over these); scenario 1's sync
    #: clients get ``sync_repetitions`` (they are secondary to the async ones, which MCP clients use).
    repetitions: int
    sync_repetitions: int
    #: Scenario 1: sequential requests per variant and repetition, sent in interleaved blocks of ``block``.
    steady_requests: int
    steady_block: int
    steady_warmup: int
    #: Scenarios 2 and 3: concurrent requests per herd and simulated latency of every request.
    herd_size: int
    herd_latency: float
    concurrency_latency: float
    #: The official SDK serialises concurrent requests (its lock is held across each request), so its herds take
    #: herd_size x latency: they run in this many repetitions only (scenario 2, scenario 3).
    sdk_expiry_repetitions: int
    sdk_concurrency_repetitions: int
    #: Scenario 4: fresh interpreters per variant.
    cold_runs: int
    #: Scenario 5: full flows per variant, without and with simulated latency.
    flow_runs: int
    flow_latency_runs: int
    flow_latency: float
    #: Scenario 6: requests in the short and the long batch (growth = difference), batches, stored records,
    #: authenticated clients.
    memory_short: int
    memory_long: int
    memory_batches: int
    memory_records: int
    memory_clients: int

    @classmethod
    def full(cls) -> Settings:
        return cls(
            quick=False,
            repetitions=5,
            sync_repetitions=3,
            steady_requests=20_000,
            steady_block=1_000,
            steady_warmup=500,
            herd_size=100,
            herd_latency=0.010,
            concurrency_latency=0.100,
            sdk_expiry_repetitions=2,
            sdk_concurrency_repetitions=1,
            cold_runs=7,
            flow_runs=20,
            flow_latency_runs=5,
            flow_latency=0.010,
            memory_short=500,
            memory_long=2_500,
            memory_batches=3,
            memory_records=1_000,
            memory_clients=200,
        )

    @classmethod
    def quick_run(cls) -> Settings:
        return cls(
            quick=True,
            repetitions=2,
            sync_repetitions=2,
            steady_requests=400,
            steady_block=200,
            steady_warmup=20,
            herd_size=20,
            herd_latency=0.010,
            concurrency_latency=0.020,
            sdk_expiry_repetitions=1,
            sdk_concurrency_repetitions=1,
            cold_runs=1,
            flow_runs=2,
            flow_latency_runs=1,
            flow_latency=0.010,
            memory_short=100,
            memory_long=300,
            memory_batches=1,
            memory_records=50,
            memory_clients=10,
        )


@dataclass(frozen=True)
class Series:
    """Values of one quantity, one per repetition (or run)."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Series:
        if not values:
            raise ValueError("a series needs at least one value")
        return cls(tuple(values))

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> Series:
    """Per-repetition ratios: ``numerators[i] / denominators[i]`` for the repetitions both were measured in."""
    pairs = list(zip(numerators, denominators, strict=False))
    return Series.of([a / b for a, b in pairs])


def rotated(items: Sequence[T], shift: int) -> list[T]:
    """``items`` starting at ``shift`` (modulo its length): the order of variants changes every round."""
    if not items:
        return []
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


# -- formatting ------------------------------------------------------------------------------------------------

_DURATION_UNITS = {"s": 1.0, "ms": 1e3, "µs": 1e6}


def format_duration(seconds: float, unit: str) -> str:
    value = seconds * _DURATION_UNITS[unit]
    digits = 1 if abs(value) >= 10 else 2
    return f"{value:.{digits}f} {unit}"


def format_duration_series(series: Series, unit: str) -> tuple[str, str]:
    """(median, "low-high") of durations in seconds, shown in ``unit``."""
    scale = _DURATION_UNITS[unit]
    digits = 1 if series.median * scale >= 10 else 2
    spread = f"{series.low * scale:.{digits}f}\u2013{series.high * scale:.{digits}f}"
    return format_duration(series.median, unit), spread


def format_ratio(series: Series) -> str:
    if len(series.values) == 1:
        return f"{series.median:.3f}\u00d7"
    return f"{series.median:.3f}\u00d7 ({series.low:.3f}\u2013{series.high:.3f})"


def format_count(values: Sequence[int]) -> str:
    """A count measured in several repetitions: the value when it never changed, else min-max."""
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}\u2013{high}"


def format_bytes(count: float) -> str:
    sign = "-" if count < 0 else ""
    count = abs(count)
    if count >= 1024 * 1024:
        return f"{sign}{count / (1024 * 1024):.1f} MiB"
    if count >= 1024:
        return f"{sign}{count / 1024:.1f} KiB"
    return f"{sign}{count:.0f} B"


def met_text(met: bool | None) -> str:
    if met is None:
        return "n/a"
    return "yes" if met else "**NO**"


# -- report structure ------------------------------------------------------------------------------------------


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"expected {len(self.columns)} cells, got {len(cells)}")
        self.rows.append([cell.replace("|", "\\|") for cell in cells])

    def render(self) -> str:
        lines = [
            "| " + " | ".join(self.columns) + " |",
            "|" + "|".join("---" for _ in self.columns) + "|",
        ]
        lines.extend("| " + " | ".join(row) + " |" for row in self.rows)
        return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    """One target of the issue and whether this run met it (None: could not be measured)."""

    scenario: int
    what: str
    target: str
    measured: str
    met: bool | None


@dataclass
class Section:
    number: int
    title: str
    description: str
    tables: list[tuple[str, Table]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def table(self, caption: str, columns: list[str]) -> Table:
        table = Table(columns)
        self.tables.append((caption, table))
        return table

    def target(self, what: str, target: str, measured: str, met: bool | None) -> str:
        """Record a target and return the text of the table's "met?" cell."""
        self.targets.append(Target(self.number, what, target, measured, met))
        return met_text(met)

    def render(self) -> str:
        parts = [f"## {self.number}. {self.title}", "", self.description]
        for caption, table in self.tables:
            if caption:
                parts += ["", caption]
            parts += ["", table.render()]
        if self.notes:
            parts.append("")
            parts.extend(f"- {note}" for note in self.notes)
        return "\n".join(parts)


def render_targets(sections: Sequence[Section]) -> str:
    table = Table(["#", "what", "target", "measured", "met?"])
    for section in sections:
        for target in section.targets:
            table.add(str(target.scenario), target.what, target.target, target.measured, met_text(target.met))
    return table.render()
