"""`benchmarks`: measure the runtime on this machine and write reports."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from runtime.files import write_text_atomic


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmarks", description="Measure accuracy, speed and memory on CPU-only hardware.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    solver = commands.add_parser(
        "solver", help="throughput of the embedded solver (PoT, EoT, CoT) and the sandbox overhead",
        description="Run representative programs and equation systems through the embedded solver and "
                    "compare with a bare exec. Writes solver_throughput.json and .md to --out.",
    )
    solver.add_argument("--repeats", type=int, default=50, help="runs of each rationale (default 50)")
    solver.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="report folder (default benchmarks/results)")
    solver.add_argument("--json", action="store_true", help="print the result as JSON")
    solver.set_defaults(handler=cmd_solver)

    run = commands.add_parser(
        "run", help="accuracy, latency and memory of one or more bundles on the benchmark datasets",
        description="Solve benchmark problems with each model (each in its own measured child process) and "
                    "write records, results.json, results.md and PNG plots to --out. Rerun the same command "
                    "to resume an interrupted run.",
        epilog="MODEL entries: BUNDLE (its first weights), BUNDLE@q8_0 / @gguf:q4_k_m / @ct2:int8, "
               "BUNDLE@reference (transformers float32 on the checkpoint the bundle was converted from; "
               "needs the train extra), BUNDLE@all (every weight set, then the reference). "
               "Example: benchmarks run --model smollm2-base@all --datasets gsm8k,multiarith --modes etd "
               "--limit 200 --out benchmarks/results/smollm2-base",
    )
    run.add_argument("--model", required=True, metavar="MODEL[,MODEL...]", help="bundles to compare (see below)")
    run.add_argument("--datasets", default="gsm8k,svamp,asdiv,multiarith",
                     help="comma-separated NAME[:SPLIT][=N] (N: first N problems of it); default "
                          "gsm8k,svamp,asdiv,multiarith, test splits")
    run.add_argument("--modes", default="etd", help="comma-separated from etd,vote,pot,eot,cot (default etd)")
    run.add_argument("--limit", type=int, help="first N problems of each dataset (default all)")
    run.add_argument("--threads", type=int, help="cores each model may use; its process is pinned to them (default: each engine's measured default, llama.cpp all cores, CTranslate2 one)")
    run.add_argument("--memory-cap", metavar="SIZE", help="address-space cap for each model's process, e.g. 4G")
    run.add_argument("--batch-size", type=int, default=8, help="questions per engine call for accuracy and throughput (default 8)")
    run.add_argument("--latency-sample", type=int, default=20,
                     help="questions per mode solved one at a time for latency (default 20; 0 skips)")
    run.add_argument("--max-tokens", type=int, default=320, help="tokens per generation (default 320, as runtime solve)")
    run.add_argument("--no-derive", action="store_true",
                     help="generate every mode on its own; by default, with etd among the modes, pot/eot/cot/vote "
                          "accuracy is read from the etd generations (the same greedy texts; 3x less work)")
    run.add_argument("--data-dir", help="benchmark data folder (default $ETD_DATA_DIR, else the Hugging Face hub)")
    run.add_argument("--out", type=Path, required=True, help="results folder, e.g. benchmarks/results/NAME")
    run.add_argument("--json", action="store_true", help="print results.json instead of the table")
    run.set_defaults(handler=cmd_run)

    report = commands.add_parser("report", help="rewrite results.json, results.md and the plots of a run folder",
                                 description="Recompute the reports from a run folder's records (e.g. after an "
                                             "interrupted run, or to see partial results while one is going).")
    report.add_argument("out", type=Path, help="a run folder")
    report.add_argument("--json", action="store_true", help="print results.json instead of the table")
    report.add_argument("--reselect", action="store_true",
                        help="first re-decide every etd and vote answer from the stored thoughts with the current "
                             "selection rules (after a rule change; needs a run that derived its modes from etd). "
                             "etd latency timed under an older rule is dropped: rerun the run's command to time it again")
    report.set_defaults(handler=cmd_report)

    compare = commands.add_parser("compare", help="differences between two result folders",
                                  description="Accuracy differences (points, and the ratio B/A) and speed/memory ratios of B against A, "
                                              "per model label present in both (or the first model of each).")
    compare.add_argument("a", type=Path, help="baseline results folder (or its results.json)")
    compare.add_argument("b", type=Path, help="results folder to compare with it")
    compare.add_argument("--modes", help="comma-separated modes to show (default: every mode both runs measured)")
    compare.add_argument("--json", action="store_true", help="print the differences as JSON")
    compare.set_defaults(handler=cmd_compare)

    card = commands.add_parser(
        "card", help="refresh the result tables a document (MODEL_CARD.md) takes from result folders",
        description="Regenerate every block of FILE between '<!-- generated: SOURCE -->' and "
                    "'<!-- end generated -->'. SOURCE is a `benchmarks compare A B [--modes M]` command "
                    "(its table without the title) or PATH#HEADING (that section of a results.md); paths "
                    "are relative to FILE's folder. The rest of FILE is left as it is.",
        epilog="Exit status: 0 up to date (or rewritten), 1 with --check when a block is out of date, 2 on errors.")
    card.add_argument("file", type=Path, help="the document, e.g. MODEL_CARD.md")
    card.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is out of date")
    card.set_defaults(handler=cmd_card)
    return parser


def cmd_solver(args: argparse.Namespace) -> int:
    from . import solver_throughput

    if args.repeats < 1:
        print("benchmarks: error: --repeats must be at least 1", file=sys.stderr)
        return 2
    result = solver_throughput.measure(args.repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "solver_throughput.json", json.dumps(result, indent=2) + "\n")
    markdown = solver_throughput.to_markdown(result)
    write_text_atomic(args.out / "solver_throughput.md", markdown)
    print(json.dumps(result) if args.json else markdown)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from runtime.solver import ETD_RULE

    from . import report, suite
    from .device import parse_size
    from .targets import parse_targets

    for name in ("limit", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise suite.RunError(f"--{name} must be at least 1")
    if args.batch_size < 1 or args.max_tokens < 1 or args.latency_sample < 0:
        raise suite.RunError("--batch-size and --max-tokens must be at least 1, --latency-sample at least 0")
    try:
        memory_cap = parse_size(args.memory_cap) if args.memory_cap else None
    except ValueError as exc:
        raise suite.RunError(str(exc)) from None
    targets = parse_targets(args.model)
    datasets, limits = suite.parse_datasets(args.datasets)
    config = suite.RunConfig(targets=[t.to_dict() for t in targets], datasets=datasets, limits=limits,
                             modes=suite.parse_modes(args.modes), limit=args.limit, threads=args.threads,
                             memory_cap=memory_cap, batch_size=args.batch_size, latency_sample=args.latency_sample,
                             max_tokens=args.max_tokens, data_dir=args.data_dir,
                             derive_modes=not args.no_derive, etd_rule=ETD_RULE)
    suite.prepare(args.out, config)
    suite.claim_weights(args.out, targets)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        tasks = {t.label: bar.add_task(t.label, total=None) for t in targets}

        def progress(label: str, done: int, total: int) -> None:
            bar.update(tasks[label], completed=done, total=total)

        summaries = [suite.run_target(args.out, target, progress=progress) for target in targets]
    show(report.write_reports(args.out), args)
    failed = [s for s in summaries if s.get("error")]
    for summary in failed:
        print(f"benchmarks: {summary['target']['label']} failed: {summary['error']}", file=sys.stderr)
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from . import report

    if args.reselect:
        from .reselect import reselect_run

        for label, count in reselect_run(args.out).items():
            print(f"{label}: {count} etd answers changed", file=sys.stderr)
    show(report.write_reports(args.out), args)
    return 0


def show(results: dict, args: argparse.Namespace) -> None:
    print(json.dumps(results) if args.json else (args.out / "results.md").read_text())


def cmd_compare(args: argparse.Namespace) -> int:
    from . import compare, suite

    modes = suite.parse_modes(args.modes) if args.modes else None
    differences = compare.compare(compare.load_results(args.a), compare.load_results(args.b), modes)
    print(json.dumps(differences, indent=2) if args.json else compare.to_markdown(differences))
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    from . import card

    text = args.file.read_text(encoding="utf-8")
    refreshed, stale = card.refresh(text, args.file.resolve().parent)
    for source in stale:
        print(f"{'out of date' if args.check else 'refreshed'}: {source}", file=sys.stderr)
    if args.check:
        return 1 if stale else 0
    if stale:
        write_text_atomic(args.file, refreshed)
    else:
        print(f"{args.file}: up to date", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    from runtime.cli_main import run_command

    from .suite import RunError
    from .targets import TargetError

    # CardError and CompareError are ValueErrors.
    return run_command("benchmarks", build_parser().parse_args(argv), (OSError, RunError, TargetError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
