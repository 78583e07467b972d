"""Build a model bundle from a checkpoint: GGUF and CTranslate2 weights, tokenizer, manifest.

Everything is written into a temporary folder beside the destination and renamed into place at
the end, so a failed or interrupted convert never leaves a half bundle.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from runtime.bundle import MANIFEST, Manifest, Weights, describe_files
from runtime.files import sha256_file, staging_folder
from runtime.gguf_tools import QUANTIZATIONS, quantize
from runtime.thoughts import FORMAT_VERSION

from .ct2_export import write_ct2
from .fidelity import compare, ct2_tokens, fidelity_prompts, llamacpp_tokens, source_tokens
from .gguf_export import ConvertError, architecture_of, write_gguf

ALL_THOUGHTS = ["pot", "eot", "cot"]


@dataclass
class Source:
    model: object
    tokenizer: object
    encoder_decoder: bool
    base: str
    thoughts: list[str]
    tokenizer_gguf: Path | None
    info: dict = field(default_factory=dict)


def parse_targets(text: str) -> list[tuple[str, str]]:
    """`gguf:q8_0,gguf:q4_k_m,ct2:int8` -> [("gguf", "q8_0"), ...]."""
    targets = []
    for item in (t.strip().lower() for t in text.split(",") if t.strip()):
        engine, _, quantization = item.partition(":")
        if engine not in ("gguf", "ct2") or not quantization:
            raise ConvertError(f"bad target {item!r}: use gguf:TYPE or ct2:TYPE, e.g. gguf:q8_0,ct2:int8")
        if engine == "gguf" and quantization not in QUANTIZATIONS:
            raise ConvertError(f"unknown GGUF type {quantization!r} (choose from {', '.join(QUANTIZATIONS)})")
        targets.append((engine, quantization))
    if not targets:
        raise ConvertError("no targets given")
    return list(dict.fromkeys(targets))


def load_source(checkpoint: str, *, which: str = "best") -> Source:
    from distill.train.model import BaseLoadError, load_base, load_trained, resolve_base

    path = Path(checkpoint)
    try:
        if checkpoint == "smollm2" or checkpoint.endswith(".gguf"):
            model, tokenizer, encoder_decoder = load_base(checkpoint)
            location, gguf_file = resolve_base(checkpoint)
            gguf_path = Path(location) / gguf_file
            return Source(model, tokenizer, encoder_decoder, checkpoint, ALL_THOUGHTS, gguf_path,
                          {"source": str(gguf_path), "source_sha256": sha256_file(gguf_path), "trained": False})
        if (path / "training.json").is_file():
            info = json.loads((path / "training.json").read_text())
            if info.get("format_version") != FORMAT_VERSION:
                raise ConvertError(f"{path} was trained for thought format {info.get('format_version')!r}, "
                                   f"this project speaks {FORMAT_VERSION!r}")
            folder = path / which if (path / which).is_dir() else path / "final"
            model, tokenizer, encoder_decoder = load_trained(folder)
            tokenizer_gguf = None
            if info["base"] == "smollm2" or info["base"].endswith(".gguf"):
                location, gguf_file = resolve_base(info["base"])
                tokenizer_gguf = Path(location) / gguf_file
            return Source(model, tokenizer, encoder_decoder, info["base"], info["thoughts"], tokenizer_gguf,
                          {"source": str(folder), "source_sha256": _folder_hash(folder), "trained": True,
                           "data_sha256": info.get("data_sha256"), "dev_accuracy": info.get("best") or info.get("dev_accuracy")})
        if (path / "config.json").is_file():
            model, tokenizer, encoder_decoder = load_trained(path)
            return Source(model, tokenizer, encoder_decoder, str(path), ALL_THOUGHTS, None,
                          {"source": str(path), "source_sha256": _folder_hash(path), "trained": None})
    except BaseLoadError as exc:
        raise ConvertError(str(exc)) from None
    except OSError as exc:
        raise ConvertError(f"cannot read {checkpoint}: {exc}") from None
    raise ConvertError(f"{checkpoint} is not a training run folder, a Hugging Face model folder or a GGUF file")


def _folder_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for item in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(item.name.encode() + sha256_file(item).encode())
    return digest.hexdigest()


def check_accuracy(source: Source, folder: Path, weights: list[Weights], problems: list, *,
                   max_new_tokens: int = 256) -> dict:
    """Solve the same problems with the source model and with each quantized weight set (through the
    runtime's own pipeline); accuracy per thought and for the ETD rule, and the differences."""
    from distill.train.evaluate import DevProblem, evaluate
    from runtime.engines import open_engine
    from runtime.fewshot import few_shot_prompt
    from runtime.solver import answers_match
    from runtime.student import Student
    from runtime.thoughts import Thought, format_prompt

    few_shot = source.info.get("trained") is False
    thoughts = [Thought(t) for t in source.thoughts]
    dev = [DevProblem(p.question, p.answer) for p in problems]
    report = {"problems": len(dev), "source": evaluate(
        source.model, source.tokenizer, dev, thoughts, encoder_decoder=source.encoder_decoder,
        max_new_tokens=max_new_tokens, prompt=few_shot_prompt if few_shot else format_prompt)}
    provisional = Manifest(name="check", base=source.base, architecture="", thoughts=source.thoughts,
                           format_version=FORMAT_VERSION, weights=weights, files=[], encoder_decoder=source.encoder_decoder)
    mode = "etd" if len(thoughts) > 1 else thoughts[0].value
    for item in weights:
        engine = open_engine(folder, provisional, engine=item.engine, quantization=item.quantization)
        student = Student(folder, provisional, engine, few_shot=few_shot)
        correct = {t.value: 0 for t in thoughts} | {"etd": 0}
        try:
            for problem in dev:
                solution = student.solve(problem.question, mode=mode, max_tokens=max_new_tokens)
                correct["etd"] += answers_match(solution.answer, problem.gold)
                for run in solution.thoughts:
                    correct[run.thought] += answers_match(run.result["answer"], problem.gold)
        finally:
            student.close()
        key = f"{item.engine}:{item.quantization}"
        report[key] = {k: v / max(1, len(dev)) for k, v in correct.items()}
        report[key]["etd_minus_source"] = round(report[key]["etd"] - report["source"]["etd"], 4)
    return report


def make_bundle(source: Source, targets: list[tuple[str, str]], out: Path, *, name: str | None = None,
                fidelity: bool = True, max_new_tokens: int = 48, force: bool = False, log=print,
                accuracy_problems: list | None = None) -> Manifest:
    out = Path(out)
    if out.exists() and not force:
        raise ConvertError(f"{out} exists: pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(out)
    scratch = Path(tempfile.mkdtemp(prefix="etd-convert-"))
    try:
        timings: dict[str, float] = {}
        hf_dir = scratch / "hf"
        source.model.save_pretrained(hf_dir, safe_serialization=True)
        source.tokenizer.save_pretrained(hf_dir)
        for file in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            if (hf_dir / file).exists():
                shutil.copy2(hf_dir / file, staging / file)
        weights: list[Weights] = []
        gguf_targets = [q for engine, q in targets if engine == "gguf"]
        if gguf_targets:
            architecture_of(source.model.config)  # a clear error before any work
            started = time.perf_counter()
            master = scratch / "model-f32.gguf"  # lossless; every target is quantized from it
            write_gguf(source.model, source.tokenizer, master, dtype="f32", tokenizer_gguf=source.tokenizer_gguf,
                       name=name or out.name)
            timings["gguf:f32-master"] = time.perf_counter() - started
            for quantization in gguf_targets:
                started = time.perf_counter()
                target = staging / f"model-{quantization}.gguf"
                note = quantize(master, target, quantization)
                timings[f"gguf:{quantization}"] = time.perf_counter() - started + timings["gguf:f32-master"]
                weights.append(Weights("llama.cpp", quantization, target.name, note))
                log(f"gguf {quantization}: {target.stat().st_size / 1e6:.1f} MB in {timings[f'gguf:{quantization}']:.1f} s")
        for engine, quantization in targets:
            if engine != "ct2":
                continue
            started = time.perf_counter()
            folder = staging / f"ct2-{quantization}"
            write_ct2(hf_dir, folder, quantization)
            timings[f"ct2:{quantization}"] = time.perf_counter() - started
            weights.append(Weights("ctranslate2", quantization, folder.name))
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            log(f"ct2 {quantization}: {size / 1e6:.1f} MB in {timings[f'ct2:{quantization}']:.1f} s")

        report: dict = {}
        if fidelity:
            prompts = fidelity_prompts(source.thoughts)
            reference = source_tokens(source.model, source.tokenizer, prompts, max_new_tokens, source.encoder_decoder)
            for item in weights:
                path = staging / item.path
                if item.engine == "llama.cpp":
                    tokens, agrees = llamacpp_tokens(path, source.tokenizer, prompts, max_new_tokens)
                    agreement = compare(reference, tokens, agrees)
                else:
                    tokens = ct2_tokens(path, source.tokenizer, prompts, max_new_tokens, source.encoder_decoder)
                    agreement = compare(reference, tokens)
                report[f"{item.engine}:{item.quantization}"] = agreement.to_dict()
                log(f"fidelity {item.engine}:{item.quantization}: {agreement.exact}/{agreement.prompts} identical, "
                    f"token agreement {agreement.token_agreement:.3f}")
            report["max_new_tokens"] = max_new_tokens

        accuracy = {"dev": source.info["dev_accuracy"]} if source.info.get("dev_accuracy") else {}
        if accuracy_problems:
            accuracy["check"] = check_accuracy(source, staging, weights, accuracy_problems)
            for key, value in accuracy["check"].items():
                if isinstance(value, dict):
                    log(f"accuracy {key}: etd {value['etd']:.3f}" + (
                        f" ({value['etd_minus_source']:+.3f} vs source)" if "etd_minus_source" in value else ""))
        manifest = Manifest(
            name=name or out.name,
            base=source.base,
            architecture=type(source.model).__name__,
            thoughts=source.thoughts,
            format_version=FORMAT_VERSION,
            weights=weights,
            files=describe_files(staging),
            source=dict(source.info, conversion_seconds={k: round(v, 2) for k, v in timings.items()}),
            accuracy=accuracy,
            fidelity=report,
            encoder_decoder=source.encoder_decoder,
        )
        (staging / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
