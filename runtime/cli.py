"""`runtime`: the offline command line. Start-up is lazy: subcommands import what they need.

Exit codes: 0 an answer was found; 1 the rationale or question gave no answer (the reason is
printed); 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .files import file_lines, write_text_atomic

MAX_INPUT_BYTES = 1_000_000

EXIT_OK, EXIT_NO_ANSWER = 0, 1  # bad usage: 2, from runtime.cli_main


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
            "quantities it computed, and which lines never reach the answer. pot: a Python program that sets `ans` (or defines "
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

    solve = commands.add_parser(
        "solve", help="solve a word problem offline with a student model",
        description="Prompt the student for its thoughts, run each through the embedded solver, and choose "
                    "the answer. Modes: etd (PoT, else EoT, else CoT: the papers' rule, where a negative answer or a "
                    "fraction no earlier thought agrees with counts as a failure; a thought is generated only when the "
                    "ones before it gave no plausible answer, unless --all-thoughts), vote (majority over "
                    "thoughts and samples), or one thought alone (pot, eot, cot). With no --model the default "
                    "bundle is used (built on first use from the installed SmolLM2 base). Works offline.",
        epilog="exit status: 0 answered, 1 no thought gave an answer, 2 bad usage, input or model. "
               "--json prints one object: schema_version, question, mode, answer, thought, reason, "
               "thoughts[{thought, sample, text, result, tokens, seconds, first_token_s}], "
               "timings{load_s, first_token_s, generation_s, solver_s, total_s}, model, engine, error, "
               "and with confidence (etd): confidence (0-1), verdict (sure, unsure, no answer), "
               "distribution[{answer, count, thoughts}] over the sampled paths, confidence_detail{calibrated, "
               "paths, features}, samples[...] (the sampled paths, as thoughts).",
    )
    solve.add_argument("question", nargs="?", help="the word problem (or use --file)")
    solve.add_argument("--file", type=Path, help="questions: .txt (one per line) or .jsonl (objects with question, optional id)")
    solve.add_argument("--out", type=Path, help="with --file: answers JSONL (resumes: ids already there are skipped)")
    solve.add_argument("--model", help="bundle folder or name (default: the default bundle; `smollm2-base` is "
                                        "the untuned base, built on first use; `runtime models` lists them)")
    solve.add_argument("--engine", choices=["llama.cpp", "ctranslate2"], help="engine (default: the bundle's first weights)")
    solve.add_argument("--quantization", help="which weights of that engine, e.g. q8_0 or q4_k_m")
    solve.add_argument("--mode", default="etd", choices=["etd", "vote", "pot", "eot", "cot"], help="default etd")
    solve.add_argument("--samples", type=int, default=1, help="samples per thought (vote; default 1, greedy)")
    solve.add_argument("--all-thoughts", action="store_true",
                       help="etd: generate every thought, not only until one gives an answer (same answer, slower)")
    solve.add_argument("--confidence", choices=["on", "off"], default="on",
                       help="etd: also sample reasoning paths and report a calibrated confidence and a verdict "
                            "(sure / unsure / no answer) under the answer (default on; off is the fastest answer)")
    solve.add_argument("--paths", type=int, help="sampled paths for the confidence, even, half PoT and half EoT "
                                                  "(default: the student's calibration's, else 8)")
    solve.add_argument("--threads", type=int, help="CPU threads (default: measured best per engine)")
    solve.add_argument("--max-tokens", type=int, default=320,
                       help="longest thought (default 320 tokens); a thought that starts repeating one line stops sooner")
    solve.add_argument("--seed", type=int, default=0)
    solve.add_argument("--json", action="store_true", help="print the result as one JSON object")
    solve.set_defaults(handler=cmd_solve)

    tutor = commands.add_parser("tutor", help="open the math tutor (a Textual app; also the `tutor` command)",
                                description="Open the terminal math tutor: type a word problem and watch the "
                                            "student solve it with programs, equations and words. Offline.")
    tutor.add_argument("--model", help="bundle folder or name (default: the default bundle)")
    tutor.add_argument("--mode", default="etd", choices=["etd", "vote", "pot", "eot", "cot"])
    tutor.set_defaults(handler=cmd_tutor)

    doctor = commands.add_parser(
        "doctor", help="check that everything works on this machine (a crash in native code included)",
        description="Check this machine: the CPU features that matter (AVX2, AVX-512, AVX512-BF16, AMX, NEON), "
                    "llama.cpp's build, the engine parameters chosen for this CPU and why, a few tokens decoded "
                    "from the bundle in a child process (so a native crash is reported, not suffered), one program "
                    "and one equation system through the sandboxed solver, the sandbox confinement in force, "
                    "the cache and its bundles, and whether the network is reachable (nothing needs it). "
                    "Builds the default bundle first if it is not built yet.",
        epilog="exit status: 0 all checks passed, 1 a check failed (one line each), 2 bad usage",
    )
    doctor.add_argument("--model", help="bundle folder or name to check (default: the default bundle)")
    doctor.add_argument("--json", action="store_true", help="print one JSON object: ok, checks[{name, status, detail, data}]")
    doctor.set_defaults(handler=cmd_doctor)

    models = commands.add_parser("models", help="list installed bundles and the default",
                                 description="List the bundles in the user cache and the default bundle.")
    models.add_argument("--json", action="store_true")
    models.set_defaults(handler=cmd_models)
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
        if result.unused_lines:
            print(f"unused: line{'s' if len(result.unused_lines) > 1 else ''} "
                  f"{', '.join(map(str, result.unused_lines))} never reach{'' if len(result.unused_lines) > 1 else 'es'} the answer")
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


def _read_questions(path: Path) -> list[tuple[str, str]]:
    text = read_text(str(path))
    questions = []
    if path.suffix == ".jsonl":
        for number, line in enumerate(file_lines(text), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                questions.append((str(item.get("id", number)), item["question"]))
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                raise UsageError(f"{path}:{number}: expected a JSON object with a question") from None
    else:
        questions = [(str(n), line.strip()) for n, line in enumerate(file_lines(text), start=1) if line.strip()]
    if not questions:
        raise UsageError(f"{path} holds no questions")
    return questions


def cmd_solve(args: argparse.Namespace) -> int:
    from .bundle import BundleError
    from .engines import EngineError
    from .student import QuestionError, Student, check_question

    if (args.question is None) == (args.file is None):
        raise UsageError("give a question or --file (not both)")
    if args.out and not args.file:
        raise UsageError("--out goes with --file")
    if args.samples < 1 or args.max_tokens < 1 or (args.threads is not None and args.threads < 1):
        raise UsageError("--samples, --max-tokens and --threads must be at least 1")
    if args.paths is not None and (args.paths < 2 or args.paths % 2 or args.paths > 64):
        raise UsageError("--paths must be even, from 2 to 64 (half PoT, half EoT)")
    if args.question is not None:
        try:
            check_question(args.question)
        except QuestionError as exc:
            raise UsageError(str(exc)) from None
    questions = _read_questions(args.file) if args.file else None
    try:
        student = Student.open(args.model, engine=args.engine, quantization=args.quantization, threads=args.threads,
                               seed=args.seed, log=lambda message: print(message, file=sys.stderr), check_runs=True)
    except (BundleError, EngineError) as exc:
        raise UsageError(str(exc)) from None
    try:
        if questions is None:
            # A reader at a terminal gets the answer as soon as it is decoded; the sampled paths that rate
            # it take longer (seconds on a small board), so their verdict follows on the next line.
            rate = args.confidence == "on" and args.mode == "etd"
            early = rate and not args.json
            solution = student.solve(args.question, mode=args.mode, samples=args.samples, max_tokens=args.max_tokens,
                                     lazy=not args.all_thoughts, confidence=rate and not early, paths=args.paths)
            if early and solution.answer is not None:
                print(_answer_line(solution), flush=True)
                solution = student.rate([solution], paths=args.paths, max_tokens=args.max_tokens)[0]
                print(_human(solution, answer_shown=True))
            else:
                print(json.dumps(solution.to_dict(), ensure_ascii=False) if args.json else _human(solution))
            return EXIT_OK if solution.answer is not None else EXIT_NO_ANSWER
        return _solve_batch(student, questions, args)
    except (QuestionError, EngineError) as exc:
        raise UsageError(str(exc)) from None
    finally:
        student.close()


def _answer_line(solution) -> str:
    from .thoughts import format_number

    return f"answer: {format_number(solution.answer)}"


def _human(solution, answer_shown: bool = False) -> str:
    """What `runtime solve` prints; `answer_shown`: the answer line went out already (before the verdict)."""
    lines = []
    if solution.answer is not None:
        guess = "a guess: the student cannot answer this reliably" if solution.verdict == "no answer" else ""
        if not answer_shown:
            lines.append(_answer_line(solution) + (f" ({guess})" if guess else ""))
        if solution.verdict is not None:
            lines.append(f"confidence: {solution.confidence:.2f} ({solution.verdict}): {describe_paths(solution)}"
                         + (f"; the answer above is {guess}" if answer_shown and guess else ""))
        lines.append(f"why: {solution.mode}: {solution.reason}")
        winner = next((r for r in solution.thoughts if r.thought == solution.thought), None)
        if winner:
            lines += [f"--- {winner.thought} ---", winner.text]
    else:
        lines.append(f"no answer: {solution.reason}")
        for run in solution.thoughts:
            lines += [f"--- {run.thought} ({run.result['error_kind']}: {run.result['error']}) ---", run.text]
    t = solution.timings
    first = f"{t['first_token_s']:.2f} s" if t["first_token_s"] is not None else "n/a"
    lines.append(f"[{solution.model} on {solution.engine}: load {t['load_s']:.2f} s, first token {first}, "
                 f"generation {t['generation_s']:.2f} s, solver {t['solver_s']:.3f} s]")
    return "\n".join(lines)


def describe_paths(solution) -> str:
    """"5 of 8 sampled paths agree; others: 43 (2), 12 (1)", from the answer distribution."""
    from .solver import answers_match
    from .thoughts import format_number

    paths = (solution.confidence_detail or {}).get("paths", 0)
    agree = sum(g["count"] for g in solution.distribution if answers_match(g["answer"], solution.answer))
    text = f"{agree} of {paths} sampled paths agree"
    others = [g for g in solution.distribution if not answers_match(g["answer"], solution.answer)]
    if others:
        text += "; others: " + ", ".join(f"{format_number(g['answer'])} ({g['count']})" for g in others[:4])
    if not (solution.confidence_detail or {}).get("calibrated", True):
        text += " [uncalibrated student]"
    return text


def _solve_batch(student, questions, args) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    done: set[str] = set()
    if args.out and args.out.exists():
        for line in file_lines(args.out.read_text(encoding="utf-8")):
            try:
                done.add(str(json.loads(line)["id"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by an interruption is solved again
        # Keep only complete lines, so appending continues a well-formed file.
        kept = [line for line in file_lines(args.out.read_text(encoding="utf-8")) if _is_complete(line)]
        write_text_atomic(args.out, "".join(line + "\n" for line in kept))
    todo = [(qid, q) for qid, q in questions if qid not in done]
    answered = 0
    sink = open(args.out, "a", encoding="utf-8") if args.out else sys.stdout
    try:
        with Progress(TextColumn("[bold]solving"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      transient=True, disable=not args.out) as progress:
            task = progress.add_task("solve", total=len(todo))
            for qid, question in todo:
                try:
                    entry = dict(student.solve(question, mode=args.mode, samples=args.samples,
                                               max_tokens=args.max_tokens, lazy=not args.all_thoughts,
                                               confidence=args.confidence == "on", paths=args.paths).to_dict(), id=qid)
                except Exception as exc:  # one bad question must not end the batch
                    entry = {"id": qid, "question": question, "answer": None, "error": str(exc)}
                answered += entry.get("answer") is not None
                sink.write(json.dumps(entry, ensure_ascii=False) + "\n")
                sink.flush()
                progress.advance(task)
    finally:
        if args.out:
            sink.close()
    if args.out:
        print(f"{answered} of {len(todo)} answered ({len(done)} were already done); wrote {args.out}")
    return EXIT_OK


def _is_complete(line: str) -> bool:
    try:
        return "id" in json.loads(line)
    except json.JSONDecodeError:
        return False


def cmd_tutor(args: argparse.Namespace) -> int:
    import importlib

    from .bundle import BundleError
    from .models import packaged_bundles, resolve_model

    if args.model and args.model not in packaged_bundles():
        try:  # a mistyped name fails here, in one line, not after the learner's first question
            resolve_model(args.model)
        except BundleError as exc:
            raise UsageError(str(exc)) from None
    try:  # the tutor is a front end on top of the runtime, loaded only when asked for
        tutor = importlib.import_module("tui.app")
    except ImportError as exc:
        raise UsageError(f"the tutor is not installed: {exc}") from None
    argv = ["--mode", args.mode] + (["--model", args.model] if args.model else [])
    return tutor.main(argv)


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import format_table, run_doctor, to_json

    checks = run_doctor(args.model, log=lambda message: print(message, file=sys.stderr))
    print(to_json(checks) if args.json else format_table(checks))
    return EXIT_NO_ANSWER if any(c.failed for c in checks) else EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from .models import bundles_dir, default_bundle_name, list_bundles, packaged_bundles

    default = default_bundle_name()
    found = list_bundles()
    if args.json:
        print(json.dumps({"default": default, "folder": str(bundles_dir()), "packaged": packaged_bundles(), "bundles": [
            {"name": name, "path": str(path), "ok": problem is None, "problem": problem,
             "weights": [f"{w.engine}:{w.quantization}" for w in manifest.weights] if manifest else []}
            for name, path, manifest, problem in found]}))
        return EXIT_OK
    print(f"bundles in {bundles_dir()} (default: {default}{'' if any(n == default for n, *_ in found) else ', built on first use'})")
    missing = [name for name in packaged_bundles() if name != default and not any(n == name for n, *_ in found)]
    if missing:
        print(f"   built on first use from packaged parts: {', '.join(missing)}")
    for name, path, manifest, problem in found:
        mark = "*" if name == default else " "
        if manifest:
            weights = ", ".join(f"{w.engine}:{w.quantization}" for w in manifest.weights)
            print(f" {mark} {name:<24} {weights}  (base {manifest.base})")
        else:
            print(f" {mark} {name:<24} unusable: {problem}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    from .cli_main import run_command

    return run_command("runtime", build_parser().parse_args(argv), (UsageError,))


if __name__ == "__main__":
    sys.exit(main())
