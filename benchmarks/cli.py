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

    steps = commands.add_parser(
        "steps", help="what a llama.cpp decode step costs with 1, 2, 4, ... sequences decoding together",
        description="Time decode steps of a bundle's GGUF weights with several sequences at once, as the "
                    "runtime's batch decoder runs them (a question's thoughts, a batch's questions, the sampled "
                    "paths of a confidence rating): how much batching pays on this CPU. Writes decode_steps.json "
                    "and .md to --out. Run it with nothing else on the cores.",
    )
    steps.add_argument("--model", default="", help="bundle name or folder, with @QUANT to pick weights "
                                                   "(default: the default student's first weights, its q8_0 GGUF)")
    steps.add_argument("--sequences", default="1,2,4,8", help="sequence counts to time (default 1,2,4,8)")
    steps.add_argument("--steps", type=int, default=40, help="decode steps per count and round (default 40)")
    steps.add_argument("--rounds", type=int, default=2, help="rounds over the counts (default 2)")
    steps.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: every core)")
    steps.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="report folder (default benchmarks/results)")
    steps.add_argument("--json", action="store_true", help="print the result as JSON")
    steps.set_defaults(handler=cmd_steps)

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
    run.add_argument("--model", default="", metavar="MODEL[,MODEL...]",
                     help="bundles to compare (see below; default: the default student, as `runtime solve` uses it)")
    run.add_argument("--datasets", default="gsm8k,svamp,asdiv,multiarith",
                     help="comma-separated NAME[:SPLIT][=N] (N: first N problems of it); default "
                          "gsm8k,svamp,asdiv,multiarith, test splits. Dev sets for comparing recipes: gsm8k:dev "
                          "(300 training problems no student from v2 on is trained on), svamp=300, asdiv=300")
    run.add_argument("--modes", default="etd", help="comma-separated from etd,vote,pot,eot,cot (default etd)")
    run.add_argument("--limit", type=int, help="first N problems of each dataset (default all)")
    run.add_argument("--threads", type=int, help="cores each model may use; its process is pinned to them (default: each engine's measured default, llama.cpp all cores, CTranslate2 one)")
    run.add_argument("--memory-cap", metavar="SIZE", help="address-space cap for each model's process, e.g. 4G")
    run.add_argument("--batch-size", type=int, default=8, help="questions per engine call for accuracy and throughput (default 8)")
    run.add_argument("--latency-sample", type=int, default=20,
                     help="questions per mode solved one at a time for latency (default 20; 0 skips)")
    run.add_argument("--max-tokens", type=int, default=320, help="tokens per generation (default 320, as runtime solve)")
    run.add_argument("--paths", type=int, default=0,
                     help="etd: also draw K sampled paths per question (even; half PoT, half EoT) and rate each answer's "
                          "confidence: adds calibration figures and plots, and etd+confidence latency (default 0: off)")
    run.add_argument("--temperature", type=float, help="with --paths: their sampling temperature (default: the "
                                                        "student's calibration's, else 0.7)")
    run.add_argument("--no-derive", action="store_true",
                     help="generate every mode on its own; by default, with etd among the modes, pot/eot/cot/vote "
                          "accuracy is read from the etd generations (the same greedy texts; 3x less work)")
    run.add_argument("--data-dir", help="benchmark data folder (default $ETD_DATA_DIR, else the Hugging Face hub)")
    run.add_argument("--out", type=Path, help="results folder, e.g. benchmarks/results/NAME (default: "
                                              "benchmark-runs/LABEL in the current folder, LABEL the first model's)")
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
    report.add_argument("--rerate", type=Path, metavar="CONFIDENCE_JSON",
                        help="first re-rate every etd answer's confidence and verdict from its stored sampled paths with "
                             "this calibration (e.g. runtime/shipped/confidence.json after `benchmarks calibrate`)")
    report.set_defaults(handler=cmd_report)

    compare = commands.add_parser("compare", help="differences between two result folders",
                                  description="Accuracy differences (points, and the ratio B/A) and speed/memory ratios of B against A, "
                                              "per model label present in both (or the first model of each).")
    compare.add_argument("a", type=Path, help="baseline results folder (or its results.json)")
    compare.add_argument("b", type=Path, help="results folder to compare with it")
    compare.add_argument("--modes", help="comma-separated modes to show (default: every mode both runs measured)")
    compare.add_argument("--json", action="store_true", help="print the differences as JSON")
    compare.set_defaults(handler=cmd_compare)

    calibrate = commands.add_parser(
        "calibrate", help="fit a student's confidence map on held-out problems and store it beside its weights",
        description="Refit the confidence calibration of a student (run this when a new student ships). Solves "
                    "held-out problems with etd and the most sampled paths asked for, in --work (a benchmark run "
                    "folder: rerun to resume), then for each K in --candidates fits the map from the first K paths, "
                    "times etd with K paths one question at a time, picks K (the smallest within 0.01 AUROC of "
                    "the best that meets --latency-budget) unless --paths is given, and writes the map to --out. "
                    "Test splits are refused: calibrating on them would make every test figure a fit.",
        epilog="Example: benchmarks calibrate --datasets gsm8k:train=240 --work runs/calibration "
               "--out runtime/shipped/confidence.json")
    calibrate.add_argument("--model", default="", help="the student's bundle (default: the default student)")
    calibrate.add_argument("--datasets", default="gsm8k:train=240",
                           help="held-out problems, NAME:SPLIT[=N] (default gsm8k:train=240; no test splits)")
    calibrate.add_argument("--work", type=Path, required=True, help="the run folder for the held-out solves (resumes)")
    calibrate.add_argument("--candidates", default="2,4,6,8", help="K values to compare (even; default 2,4,6,8)")
    calibrate.add_argument("--paths", type=int, help="use this K instead of choosing one")
    calibrate.add_argument("--temperature", type=float, default=0.7, help="sampling temperature of the paths (default 0.7)")
    calibrate.add_argument("--latency-budget", type=float, default=2.0, help="p50 seconds etd with confidence may take (default 2.0)")
    calibrate.add_argument("--latency-sample", type=int, default=12, help="questions timed per K (default 12; 0 skips)")
    calibrate.add_argument("--min-problems", type=int, default=100,
                           help="refuse to fit on fewer held-out problems than this (default 100)")
    calibrate.add_argument("--out", type=Path, required=True, help="where to write the map, e.g. runtime/shipped/confidence.json")
    calibrate.add_argument("--json", action="store_true", help="print the comparison as JSON")
    calibrate.set_defaults(handler=cmd_calibrate)

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
    return _report(args, "solver_throughput", result, solver_throughput.to_markdown(result))


def _report(args: argparse.Namespace, stem: str, result, markdown: str) -> int:
    """Write STEM.json and STEM.md to --out and print one of them (--json: the JSON)."""
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / f"{stem}.json", json.dumps(result, indent=2) + "\n")
    write_text_atomic(args.out / f"{stem}.md", markdown)
    print(json.dumps(result) if args.json else markdown)
    return 0


def cmd_steps(args: argparse.Namespace) -> int:
    from . import decode_steps
    from .targets import parse_targets

    if args.steps < 1 or args.rounds < 1 or (args.threads is not None and args.threads < 1):
        print("benchmarks: error: --steps, --rounds and --threads must be at least 1", file=sys.stderr)
        return 2
    counts = decode_steps.parse_sequences(args.sequences)
    results = [decode_steps.measure(target, counts, steps=args.steps, rounds=args.rounds, threads=args.threads)
               for target in parse_targets(args.model)]
    return _report(args, "decode_steps", results, decode_steps.to_markdown(results))


def cmd_run(args: argparse.Namespace, *, quiet: bool = False) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from runtime.solver import ETD_RULE

    from . import report, suite
    from .device import parse_size
    from .targets import parse_targets

    for name in ("limit", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise suite.RunError(f"--{name} must be at least 1")
    if args.paths < 0 or args.paths % 2 or args.paths > 64:
        raise suite.RunError("--paths must be even, from 0 (off) to 64")
    if args.temperature is not None and not 0 < args.temperature <= 2:
        raise suite.RunError("--temperature must be in (0, 2]")
    if args.batch_size < 1 or args.max_tokens < 1 or args.latency_sample < 0:
        raise suite.RunError("--batch-size and --max-tokens must be at least 1, --latency-sample at least 0")
    try:
        memory_cap = parse_size(args.memory_cap) if args.memory_cap else None
    except ValueError as exc:
        raise suite.RunError(str(exc)) from None
    targets = parse_targets(args.model)
    datasets, limits = suite.parse_datasets(args.datasets)  # bad input is refused before a run folder is named
    if args.out is None:
        args.out = Path("benchmark-runs") / targets[0].label
        print(f"benchmarks: writing to {args.out} (rerun the same command to resume)", file=sys.stderr)
    config = suite.RunConfig(targets=[t.to_dict() for t in targets], datasets=datasets, limits=limits,
                             modes=suite.parse_modes(args.modes), limit=args.limit, threads=args.threads,
                             memory_cap=memory_cap, batch_size=args.batch_size, latency_sample=args.latency_sample,
                             max_tokens=args.max_tokens, data_dir=args.data_dir,
                             derive_modes=not args.no_derive, etd_rule=ETD_RULE, paths=args.paths,
                             path_temperature=args.temperature)
    suite.prepare(args.out, config)
    suite.claim_weights(args.out, targets)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        tasks = {t.label: bar.add_task(t.label, total=None) for t in targets}

        def progress(label: str, done: int, total: int) -> None:
            bar.update(tasks[label], completed=done, total=total)

        summaries = [suite.run_target(args.out, target, progress=progress) for target in targets]
    results = report.write_reports(args.out)
    if not quiet:
        show(results, args)
    failed = [s for s in summaries if s.get("error")]
    for summary in failed:
        print(f"benchmarks: {summary['target']['label']} failed: {summary['error']}", file=sys.stderr)
    return 1 if failed else 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from runtime.bundle import load_manifest

    from . import calibration, suite
    from .targets import parse_targets

    try:
        candidates = sorted({int(k) for k in args.candidates.split(",") if k.strip()})
    except ValueError:
        raise suite.RunError("--candidates takes even numbers, e.g. 2,4,6,8") from None
    if args.paths:
        candidates = sorted(set(candidates) | {args.paths})
    if not candidates or any(k < 2 or k % 2 or k > 64 for k in candidates):
        raise suite.RunError("sampled paths must be even, from 2 to 64")
    if not 0 < args.temperature <= 2:
        raise suite.RunError("--temperature must be in (0, 2]")
    datasets, _ = suite.parse_datasets(args.datasets)
    if any(d.endswith("/test") for d in datasets):
        raise suite.RunError("calibrate on held-out training problems, never on a test split")
    run_args = argparse.Namespace(**vars(args))
    run_args.modes, run_args.limit, run_args.threads, run_args.memory_cap = "etd", None, None, None
    run_args.batch_size, run_args.latency_sample, run_args.max_tokens = 8, 0, 320
    run_args.no_derive, run_args.data_dir, run_args.out, run_args.paths = True, None, args.work, max(candidates)
    run_args.json = False
    status = cmd_run(run_args, quiet=True)
    if status:
        return status
    target = parse_targets(args.model)[0]
    records = suite.read_jsonl(args.work / "records" / f"{target.label}.jsonl")
    source = {"datasets": datasets, "model": target.label, "run": str(args.work)}
    table = calibration.compare_k(records, candidates, args.temperature, source, args.min_problems)
    problems = [p.question for _, p in suite.load_plan_problems(suite.load_config(args.work))][:args.latency_sample]
    latency = (calibration.latency_per_k(target.bundle, target.engine, target.quantization, problems, candidates,
                                         args.temperature) if problems else {})
    chosen = args.paths or calibration.choose_k(table, latency, args.latency_budget)
    fitted = table[chosen]["calibration"]
    fitted.fitted_for = load_manifest(target.bundle).source.get("source_sha256") or ""
    fitted.fitted_on["latency_p50_s"] = latency.get(chosen, {}).get("p50_s")
    fitted.fitted_on["chosen_from"] = {str(k): {key: v for key, v in row.items() if key != "calibration"}
                                       | latency.get(k, {}) for k, row in table.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, fitted.to_json())
    if args.json:
        print(json.dumps({"chosen": chosen, "candidates": fitted.fitted_on["chosen_from"], "out": str(args.out)}))
        return 0
    print(f"| K | AUROC | ECE | sure share % | sure accuracy % | etd accuracy % | self-consistency accuracy % "
          f"| latency p50 / p90 s |\n|---|---|---|---|---|---|---|---|")
    for k, row in table.items():
        lat = latency.get(k, {})
        sure = "–" if row["sure_accuracy"] is None else f"{100 * row['sure_accuracy']:.1f}"
        print(f"| {k}{' (chosen)' if k == chosen else ''} | {row['auroc']} | {row['ece']} | "
              f"{100 * row['sure_share']:.1f} | {sure} | {100 * row['etd_accuracy']:.1f} "
              f"| {100 * row['self_consistency_accuracy']:.1f} | {lat.get('p50_s', '–')} / {lat.get('p90_s', '–')} |")
    print(f"wrote {args.out}: K={chosen}, sure at confidence >= {fitted.sure}, no answer below {fitted.unsure}",
          file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from . import report

    if args.reselect:
        from .reselect import reselect_run

        for label, count in reselect_run(args.out).items():
            print(f"{label}: {count} etd answers changed", file=sys.stderr)
    if args.rerate:
        from runtime.confidence import Calibration

        from .calibration import rerate_run

        try:
            mapping = Calibration.from_json(args.rerate.read_text(encoding="utf-8"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{args.rerate} is not a confidence calibration ({exc})") from None
        print(f"{rerate_run(args.out, mapping)} verdicts changed", file=sys.stderr)
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

    if not args.file.is_file():
        raise card.CardError(f"no such card: {args.file}")
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
