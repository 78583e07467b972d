"""Tables for `distill data build` and `distill data stats`."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .build import STAGES, BuildStats


def print_build_report(stats: BuildStats, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"verification over {stats.problems} problems")
    table.add_column("thought")
    for stage in STAGES:
        table.add_column(stage, justify="right")
    table.add_column("kept %", justify="right")
    table.add_column("why the rest failed")
    for name, s in stats.by_thought.items():
        rate = f"{100 * s.kept / s.generated:.1f}" if s.generated else "-"
        why = ", ".join(f"{kind} {count}" for kind, count in s.failures.most_common())
        cells = [str(getattr(s, stage)) for stage in STAGES]
        if name == "perturbed":  # copies of verified rationales: only tried/sensible/kept apply
            cells[1] = cells[2] = "-"
        table.add_row(name, *cells, rate, why or "-")
    console.print(table)
    if stats.teacher_errors:
        console.print("teacher errors: " + ", ".join(f"{k} ({v})" for k, v in stats.teacher_errors.most_common()))


def print_counts(counts: dict, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"{counts['records']} records from {counts['problems']} problems")
    for key in ("by_thought", "by_source", "by_teacher", "format_version"):
        console.print(f"  {key.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts[key].items())))
