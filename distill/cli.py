"""`distill`: build verified ETD data (and, with the `train` extra, train students)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.thoughts import Thought

EXIT_USAGE = 2


class UsageError(Exception):
    pass


def _thoughts(text: str) -> list[Thought]:
    try:
        thoughts = [Thought(t.strip().lower()) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"thoughts must be a comma list of cot, pot, eot (got {text!r})") from None
    if not thoughts:
        raise argparse.ArgumentTypeError("no thoughts given")
    return list(dict.fromkeys(thoughts))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distill", description="Build verified ETD training data and train student models.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    data = commands.add_parser("data", help="build and inspect ETD datasets").add_subparsers(dest="data_command", metavar="COMMAND")
    data.required = True

    build = data.add_parser(
        "build", help="generate rationales with a teacher, verify each with the solver, write JSONL",
        description="Ask a teacher for CoT/PoT/EoT rationales, run every one through the embedded solver, and "
                    "keep those whose answer matches the gold answer (duplicates dropped). Resumable: rerun the "
                    "same command after an interruption. OUT.progress records what is finished.",
    )
    build.add_argument("--dataset", required=True, help="gsm8k, svamp, asdiv or multiarith")
    build.add_argument("--split", default="train", help="split to read (default train; the others have test only)")
    build.add_argument("--teacher", default="gold", choices=["gold", "openai", "llamacpp"], help="rationale source (default gold)")
    build.add_argument("--thoughts", type=_thoughts, default=_thoughts("cot,pot,eot"), help="comma list (default cot,pot,eot)")
    build.add_argument("--limit", type=int, help="only the first N problems")
    build.add_argument("--out", type=Path, required=True, help="output JSONL file")
    build.add_argument("--data-dir", help="local data directory (default $ETD_DATA_DIR, else the hub)")
    build.add_argument("--perturb", type=int, default=0, metavar="K", help="add K number-perturbed copies of each verified PoT/EoT problem")
    build.add_argument("--seed", type=int, default=0, help="seed for perturbation and sampling (default 0)")
    teacher = build.add_argument_group("openai / llamacpp teachers")
    teacher.add_argument("--base-url", help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL or https://api.openai.com/v1)")
    teacher.add_argument("--model", help="model name (openai; default $OPENAI_MODEL) or GGUF path (llamacpp)")
    teacher.add_argument("--api-key", help="API key (default $OPENAI_API_KEY; local servers need none)")
    teacher.add_argument("--samples", type=int, default=1, help="rationales per question and thought (default 1)")
    teacher.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default 0)")
    teacher.add_argument("--max-tokens", type=int, default=384, help="longest rationale (default 384 tokens)")
    teacher.add_argument("--concurrency", type=int, default=4, help="requests at once (openai; default 4)")
    teacher.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    teacher.add_argument("--retries", type=int, default=4, help="retries on 429/5xx/timeouts (default 4)")
    teacher.add_argument("--cache-dir", type=Path, help="request cache (default ~/.cache/etd-tutor/teacher)")
    build.set_defaults(handler=cmd_build)

    stats = data.add_parser("stats", help="print the verification table and counts of a dataset file",
                            description="Counts by thought, source and teacher; the per-thought funnel "
                                        "(generated, parsed, executed, correct, kept) when FILE.progress is beside it.")
    stats.add_argument("file", type=Path)
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.set_defaults(handler=cmd_stats)
    return parser


def make_teacher(args: argparse.Namespace):
    if args.teacher == "gold":
        from .teachers.gold import GoldTeacher

        return GoldTeacher()
    if args.samples < 1 or args.concurrency < 1 or args.timeout <= 0:
        raise UsageError("--samples and --concurrency must be at least 1, --timeout positive")
    if args.teacher == "openai":
        from .teachers.openai import OpenAITeacher

        return OpenAITeacher.from_options(
            base_url=args.base_url, model=args.model, api_key=args.api_key, samples=args.samples,
            temperature=args.temperature, max_tokens=args.max_tokens, concurrency=args.concurrency,
            timeout=args.timeout, retries=args.retries, cache_dir=args.cache_dir,
        )
    from .teachers.llamacpp import LlamaCppTeacher

    if not args.model:
        raise UsageError("--model PATH.gguf is required for the llamacpp teacher")
    return LlamaCppTeacher(args.model, samples=args.samples, temperature=args.temperature,
                           max_tokens=args.max_tokens, seed=args.seed)


def cmd_build(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .build import build, iter_limit
    from .problems import load_problems
    from .report import print_build_report

    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.perturb < 0:
        raise UsageError("--perturb must be 0 or more")
    loaded = load_problems(args.dataset, args.split, args.data_dir)
    for reason, count in loaded.skipped.items():
        print(f"skipped {count} problems: {reason}", file=sys.stderr)
    problems = iter_limit(loaded.problems, args.limit)
    teacher = make_teacher(args)
    with Progress(TextColumn("[bold]building"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[kept]}"),
                  TimeRemainingColumn(), transient=True) as progress:
        task = progress.add_task("build", total=len(problems), kept="")

        def on_problem(stats):
            kept = sum(s.kept for name, s in stats.by_thought.items() if name != "perturbed")
            progress.update(task, completed=stats.problems, kept=f"kept {kept}")

        stats = build(problems, teacher, args.thoughts, args.out, perturb_copies=args.perturb, seed=args.seed,
                      on_problem=on_problem)
    if stats.resumed:
        print(f"resumed: {stats.resumed} problems were already done")
    print_build_report(stats)
    print(f"wrote {args.out}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    import json

    from .build import stats_of_file
    from .report import print_build_report, print_counts

    funnel, counts = stats_of_file(args.file)
    if args.json:
        out = {"counts": {k: dict(v) if hasattr(v, "items") else v for k, v in counts.items()}}
        if funnel:
            out["funnel"] = {name: s.to_dict() for name, s in funnel.by_thought.items()}
            out["problems"] = funnel.problems
            out["teacher_errors"] = dict(funnel.teacher_errors)
        print(json.dumps(out))
        return 0
    print_counts(counts)
    if funnel:
        print_build_report(funnel)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .build import BuildError
    from .problems import DataError
    from .records import RecordError
    from .teachers.base import TeacherError

    try:
        return args.handler(args)
    except (UsageError, DataError, RecordError, BuildError, TeacherError) as exc:
        print(f"distill: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("distill: interrupted (rerun the same command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
