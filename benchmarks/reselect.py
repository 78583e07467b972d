"""`benchmarks report --reselect`: apply the current answer-selection rules to a run's stored thoughts.

The expensive part of a run is generation and the solver; choosing an answer from their results is a
pure function (`runtime.solver.select_etd`, `select_vote`). When that rule changes, the records can be
re-decided instead of regenerated, as long as they hold every thought the new rule reads: runs that
derive pot/eot/cot/vote from etd (the default) generate all three for each problem. The etd latency
rows were timed with the old rule deciding which thoughts to generate, so they are dropped, and the
same `benchmarks run` command times them again.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from runtime.files import write_text_atomic
from runtime.solver import ETD_RULE, SolverResult, answers_match, select_etd

from .suite import RunError, gzipped, load_config, read_jsonl, write_jsonl_gz
from .targets import Target
from .worker import derive


def reselect_row(row: dict) -> dict:
    """An etd row re-decided from its thoughts' first samples; RunError if the rule needs a thought
    the row does not have (a lazily generated one)."""
    firsts = [t for t in row["thoughts"] if t["sample"] == 0]
    selection = select_etd([SolverResult.from_dict(t) for t in firsts])
    if not selection.settled and len({t["thought"] for t in firsts}) < 3 and row["thoughts"]:
        raise RunError(f"{row['dataset']} {row['id']}: the etd record lacks a thought the current rule needs "
                       "(generated lazily); run it again instead")
    return row | {"answer": selection.answer, "correct": answers_match(selection.answer, row["gold"]),
                  "thought": selection.thought.value if selection.thought else None, "reason": selection.reason}


def reselect_run(out: Path) -> dict[str, int]:
    """Rewrite each target's records with the current rules; return how many etd answers changed."""
    config = load_config(out)
    changed: dict[str, int] = {}
    updates = []
    for target in (Target(**t) for t in config.targets):
        path = out / "records" / f"{target.label}.jsonl"
        rows = read_jsonl(path)
        etd = {(r["dataset"], r["id"]): reselect_row(r) for r in rows if r["mode"] == "etd"}
        new_rows = []
        for row in rows:
            key = (row["dataset"], row["id"])
            if row["mode"] == "etd":
                row = etd[key]
            elif row.get("derived_from") == "etd" and key in etd:
                row = derive(etd[key], row["mode"])
            new_rows.append(row)
        changed[target.label] = sum(old["answer"] != new["answer"] for old, new in zip(rows, new_rows)
                                    if old["mode"] == "etd")
        updates.append((path, new_rows))
    # Every target is re-decided before anything is written: a refusal leaves the folder as it was.
    for path, rows in updates:
        if gzipped(path).exists() and not path.exists():
            write_jsonl_gz(path, rows)
        elif rows:
            write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))
    if config.etd_rule != ETD_RULE:
        for target in config.targets:
            latency = out / "latency" / f"{target['label']}.jsonl"
            if latency.exists():
                kept = [r for r in read_jsonl(latency) if r["mode"] != "etd"]
                write_text_atomic(latency, "".join(json.dumps(row) + "\n" for row in kept))
        config.etd_rule = ETD_RULE
        write_text_atomic(out / "run.json", json.dumps(asdict(config), indent=2) + "\n")
    return changed
