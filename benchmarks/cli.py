"""`benchmarks`: measure the runtime on this machine and write reports."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    from runtime.cli_main import run_command

    return run_command("benchmarks", build_parser().parse_args(argv), (OSError,))


if __name__ == "__main__":
    sys.exit(main())
