"""What a benchmark run measures: a bundle with one engine and weight type, or the float32 reference.

    smollm2-base                 the bundle's first weights (what `runtime solve` would load)
    smollm2-base@q8_0            a GGUF type through llama.cpp (also `@gguf:q8_0`)
    smollm2-base@ct2:int8        a CTranslate2 model
    smollm2-base@reference       transformers float32 on the weights the bundle was converted from
    smollm2-base@all             every weight set in the bundle, then the reference
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from runtime.bundle import BundleError, load_manifest
from runtime.models import resolve_model

REFERENCE = "reference"
ENGINE_PREFIXES = {"gguf": "llama.cpp", "llama.cpp": "llama.cpp", "ct2": "ctranslate2", "ctranslate2": "ctranslate2"}


class TargetError(ValueError):
    """A --model entry names no bundle or no weights in it."""


@dataclass(frozen=True)
class Target:
    label: str             # unique, file-name safe: "smollm2-base-q8_0"
    bundle: str            # the bundle folder
    engine: str            # "llama.cpp", "ctranslate2" or "transformers"
    quantization: str      # "q8_0", "int8", "float32"
    weights_path: str | None   # relative to the bundle; None for the reference

    @property
    def reference(self) -> bool:
        return self.engine == "transformers"

    def to_dict(self) -> dict:
        return asdict(self)


def parse_targets(spec: str) -> list[Target]:
    """`--model`'s entries as targets; an empty spec is the default bundle's first weights."""
    targets: list[Target] = []
    for entry in (part.strip() for part in (spec.strip() or "@").split(",")):
        if not entry:
            continue
        name, _, selector = entry.partition("@")  # "@q8_0": the default bundle's q8_0
        try:
            folder = resolve_model(name or None)
            manifest = load_manifest(folder)
        except BundleError as exc:
            raise TargetError(str(exc)) from None
        short = re.sub(r"[^A-Za-z0-9_.-]+", "-", manifest.name)
        selected = []
        if selector in ("", "all"):
            selected = list(manifest.weights) if selector == "all" else manifest.weights[:1]
        elif selector != REFERENCE:
            engine_name, _, quantization = selector.rpartition(":")
            engine = ENGINE_PREFIXES.get(engine_name) if engine_name else None
            if engine_name and engine is None:
                raise TargetError(f"{entry}: unknown engine {engine_name!r} (use gguf: or ct2:)")
            selected = [w for w in manifest.weights
                        if w.quantization == quantization and (engine is None or w.engine == engine)]
            if not selected:
                have = ", ".join(f"{w.engine}:{w.quantization}" for w in manifest.weights)
                raise TargetError(f"{entry}: the bundle has no {selector} weights (it has {have}; or @reference)")
            selected = selected[:1]
        for weights in selected:
            engine_tag = "ct2-" if weights.engine == "ctranslate2" else ""
            targets.append(Target(f"{short}-{engine_tag}{weights.quantization}", str(folder), weights.engine,
                                  weights.quantization, weights.path))
        if selector in (REFERENCE, "all"):
            if not manifest.source.get("source"):
                raise TargetError(f"{entry}: the bundle does not record the checkpoint it was converted from")
            targets.append(Target(f"{short}-fp32-reference", str(folder), "transformers", "float32", None))
    if not targets:
        raise TargetError("no models given")
    labels = [t.label for t in targets]
    if len(set(labels)) != len(labels):
        raise TargetError(f"a model is named twice: {', '.join(sorted({l for l in labels if labels.count(l) > 1}))}")
    return targets


def size_on_disk(target: Target) -> int | None:
    """Bytes of the weights file or folder the target loads (None for the reference: it reports
    its float32 parameters' size once loaded)."""
    if target.reference:
        return None
    path = Path(target.bundle) / target.weights_path
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return None


def weights_identity(target: Target) -> str | None:
    """A hash naming the weights the target loads, from the bundle's manifest (no file is read): the
    file's sha256, or one over a folder's files; for the reference, the checkpoint's recorded hash.
    A resumed run compares it, so that records of two different builds never mix in one folder."""
    manifest = load_manifest(target.bundle)
    if target.reference:
        return manifest.source.get("source_sha256")
    inside = sorted((f.path, f.sha256) for f in manifest.files
                    if f.path == target.weights_path or f.path.startswith(target.weights_path.rstrip("/") + "/"))
    if not inside:
        return None
    if len(inside) == 1 and inside[0][0] == target.weights_path:
        return inside[0][1]
    return hashlib.sha256("".join(f"{path}\0{sha}\n" for path, sha in inside).encode()).hexdigest()
