"""`runtime`: the offline command line. Start-up is lazy: subcommands import what they need.

Exit codes: 0 an answer was found; 1 the rationale or question gave no answer (the reason is
printed); 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys

MAX_INPUT_BYTES = 1_000_000

EXIT_OK, EXIT_NO_ANSWER, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runtime",
        description="Solve math word problems offline with a small student model and an embedded solver.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser(
        "exec",
        help="run one rationale (program, equations or prose) through the embedded solver",
        description=(
            "Run one rationale through the embedded solver and print its answer and the named "
            "quantities it computed. pot: a Python program that sets `ans` (or defines "
            "`solution()`), run in a confined sandbox; eot: equations, one per line, with "
            "`ans = ...`, solved by sympy; cot: prose, the final number is taken."
        ),
        epilog="exit status: 0 answer found, 1 no answer (reason printed), 2 bad usage or input",
    )
    run.add_argument("file", nargs="?", default="-", help="file holding the rationale, or - for stdin (default)")
    run.add_argument("--thought", "-t", required=True, choices=["pot", "eot", "cot"], help="which kind of rationale")
    run.add_argument("--timeout", type=float, default=3.0, help="CPU-time limit in seconds (default 3)")
    run.add_argument("--json", action="store_true", help="print one JSON object (SolverResult fields)")
    run.set_defaults(handler=cmd_exec)
    return parser


def read_text(path: str) -> str:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise UsageError(f"{path}: input larger than {MAX_INPUT_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None


def cmd_exec(args: argparse.Namespace) -> int:
    from .solver import execute
    from .thoughts import format_number

    if not (0 < args.timeout <= 60):
        raise UsageError("--timeout must be between 0 and 60 seconds")
    result = execute(args.thought, read_text(args.file), timeout=args.timeout)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        if result.ok:
            print(f"answer: {format_number(result.answer)}")
        else:
            print(f"no answer ({result.error_kind}): {result.error}")
        if result.note:
            print(f"note: {result.note}")
        if result.steps:
            print("steps:")
            width = max(len(step.name) for step in result.steps)
            for step in result.steps:
                how = f"   ({step.expression})" if step.expression else ""
                print(f"  {step.name:<{width}} = {format_number(step.value)}{how}")
        if result.output:
            print("printed:")
            print("  " + result.output.rstrip("\n").replace("\n", "\n  "))
    return EXIT_OK if result.ok else EXIT_NO_ANSWER


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as exc:
        print(f"runtime: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("runtime: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
