"""Tables for `distill data build` and `distill data stats`."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .build import STAGES, BuildStats
from .dataset_stats import STEP_BUCKETS


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
    trimmed = {name: s.trimmed for name, s in stats.by_thought.items() if s.trimmed}
    if trimmed:
        console.print("kept without steps their answer never uses: "
                      + ", ".join(f"{name} {count}" for name, count in trimmed.items()))
    if stats.teacher_errors:
        console.print("teacher errors: " + ", ".join(f"{k} ({v})" for k, v in stats.teacher_errors.most_common()))


def print_counts(counts: dict, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"{counts['records']} records from {counts['problems']} problems")
    for key in ("by_thought", "by_source", "by_teacher", "format_version"):
        console.print(f"  {key.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts[key].items())))


def print_diversity(stats: dict, console: Console | None = None) -> None:
    """`dataset_stats`' numbers: coverage, paths, unknowns, structure, steps (see `distill data stats --help`)."""
    console = console or Console()
    if "covered" in stats:
        console.print(f"covered: {stats['covered']:.1%} of {stats['attempted']} attempted problems have a kept rationale"
                      f"; teacher {stats['teacher_hours']:.2f} h")
    for thought, entry in stats["thoughts"].items():
        unknown = f", {entry['with_unknown']:.1%} with an unknown" if "with_unknown" in entry else ""
        histogram = " ".join(f"{b}:{entry['steps'][b]}" for b in STEP_BUCKETS if entry["steps"][b])
        console.print(f"{thought}: {entry['problems']} problems, {entry['paths_per_problem']:.2f} paths/problem"
                      f"{unknown}; rationales by steps {histogram or '-'}")
    both = stats["pot_and_eot"]
    if both["problems"]:
        console.print(f"PoT and EoT differ in structure on {both['differ_in_structure']:.1%} of the {both['problems']} "
                      "problems that have both")
    if "subquestions" in stats:
        sub = stats["subquestions"]
        asked = f" of {stats['subquestions_asked']} asked" if "subquestions_asked" in stats else ""
        console.print(f"sub-questions kept: {sub['one_step'] + sub['two_step']}{asked} "
                      f"({sub['one_step']} one-step, {sub['two_step']} two-step)")


def stats_markdown(report: dict, digests: dict[str, str]) -> str:
    """`distill data stats --out`'s stats.md: the `--json` object (`report`) as `##` sections a model card
    can take whole (`<!-- generated: DIR/stats.md#Per thought -->`); `digests`: file name -> sha256."""
    diversity, counts = report["diversity"], report["counts"]
    lines = ["# Dataset statistics", "", "## Files", "", "| file | sha256 |", "|---|---|"]
    lines += [f"| {name} | `{digest}` |" for name, digest in digests.items()]
    lines += ["", "## Summary", "", "| | |", "|---|---:|", f"| records | {counts['records']:,} |"]
    if "attempted" in diversity:
        lines += [f"| problems attempted | {diversity['attempted']:,} |",
                  f"| covered by at least one kept rationale | {diversity['parents']:,} ({diversity['covered']:.1%}) |"]
    else:
        lines.append(f"| problems | {diversity['parents']:,} |")
    both = diversity["pot_and_eot"]
    if both["problems"]:
        lines.append(f"| PoT and EoT differ in structure | {both['differ_in_structure']:.1%} of {both['problems']:,} |")
    if "subquestions" in diversity:
        sub = diversity["subquestions"]
        asked = f" of {diversity['subquestions_asked']:,} asked" if "subquestions_asked" in diversity else ""
        lines.append(f"| sub-questions kept | {sub['one_step'] + sub['two_step']:,}{asked} "
                     f"({sub['one_step']:,} one-step, {sub['two_step']:,} two-step) |")
    if "teacher_hours" in diversity:
        lines.append(f"| teacher wall time | {diversity['teacher_hours']:.1f} h |")
    lines += ["", "## Per thought", "",
              "| thought | problems (of attempted) | records | paths a problem | with an unknown | "
              + " | ".join(f"{bucket} steps" for bucket in STEP_BUCKETS) + " |",
              "|---|" + "---:|" * (4 + len(STEP_BUCKETS))]
    for thought, entry in diversity["thoughts"].items():
        unknown = f"{entry['with_unknown']:.1%}" if "with_unknown" in entry else "-"
        # the verified yield: the share of attempted problems with a kept rationale of this thought
        share = f" ({entry['problems'] / diversity['attempted']:.1%})" if diversity.get("attempted") else ""
        lines.append(f"| {thought} | {entry['problems']:,}{share} | {entry['records']:,} | {entry['paths_per_problem']:.2f} | "
                     f"{unknown} | " + " | ".join(f"{entry['steps'][b]:,}" for b in STEP_BUCKETS) + " |")
    if report.get("funnel"):
        lines += ["", "## Verification", "",
                  "| thought | " + " | ".join(STAGES) + " | kept % | kept without unused steps "
                  "| problems with 2+ paths written | why the rest failed |",
                  "|---|" + "---:|" * (len(STAGES) + 3) + "---|"]
        for thought, s in report["funnel"].items():
            rate = f"{s['kept'] / s['generated']:.1%}" if s["generated"] else "-"
            why = ", ".join(f"{kind} {count:,}" for kind, count in sorted(s["failures"].items(), key=lambda kv: -kv[1]))
            lines.append(f"| {thought} | " + " | ".join(f"{s[stage]:,}" for stage in STAGES)
                         + f" | {rate} | {s.get('trimmed', 0):,} | {s.get('several', 0):,} | {why or '-'} |")
    return "\n".join(lines) + "\n"
