"""GGUF files without torch: llama.cpp's quantizer, what a file really holds, and merging a LoRA
adapter into a base GGUF with numpy (how the shipped student is built on a user's machine).

    merge_lora(base_gguf, adapter_dir, out_f32_gguf)    # base + scale * B @ A, every tensor float32
    quantize(out_f32_gguf, out_q8_gguf, "q8_0")
"""

from __future__ import annotations

import json
import logging
import struct
from collections import Counter
from pathlib import Path

import numpy as np

from .llama_layout import permute_rotary, rotary_heads

QUANTIZATIONS = {  # name -> llama_cpp ftype constant name
    "f32": "LLAMA_FTYPE_ALL_F32", "f16": "LLAMA_FTYPE_MOSTLY_F16", "bf16": "LLAMA_FTYPE_MOSTLY_BF16",
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K", "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0", "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M", "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "q4_1": "LLAMA_FTYPE_MOSTLY_Q4_1",
}
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
_PEFT_PREFIX = "base_model.model."


class GGUFError(Exception):
    """A GGUF file or adapter cannot be read, merged or quantized: one line for the user."""


def quantize(source: Path, out: Path, quantization: str, *, threads: int = 2) -> str | None:
    """llama.cpp's quantizer; returns a note when tensors fell back to other types."""
    import llama_cpp

    if quantization not in QUANTIZATIONS:
        raise GGUFError(f"unknown GGUF type {quantization!r} (choose from {', '.join(QUANTIZATIONS)})")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANTIZATIONS[quantization])
    params.nthread = threads
    # llama.cpp logs a line per tensor through llama-cpp-python's logger; the runtime builds the
    # shipped student on a user's first `runtime solve`, where that is hundreds of lines of noise.
    # Errors still print.
    log = logging.getLogger("llama-cpp-python")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), params)
    finally:
        log.setLevel(level)
    if status != 0 or not Path(out).exists():
        raise GGUFError(f"llama.cpp could not quantize to {quantization} (status {status})")
    return tensor_type_note(out, quantization)


def tensor_type_note(path: Path, quantization: str) -> str | None:
    """What the file really holds, e.g. `q4_k_m: Q5_0 x120, Q8_0 x60, F32 x61` (K-quants fall back
    per tensor when a row is not a multiple of 256, as with SmolLM2's 576)."""
    import gguf

    counts = Counter(t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors)
    summary = ", ".join(f"{name} x{count}" for name, count in counts.most_common())
    expected = quantization.split("_")[0].upper()
    fell_back = "_K" in quantization.upper() and not any("_K" in name for name in counts)
    if fell_back or not any(name.startswith(expected) for name in counts):
        return f"{quantization} as llama.cpp made it for these shapes: {summary}"
    return f"tensor types: {summary}"


# --- LoRA ---------------------------------------------------------------------------------------

def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """A safetensors file as float32 arrays (F32, F16 and BF16), read with numpy alone."""
    data = Path(path).read_bytes()
    if len(data) < 8:
        raise GGUFError(f"{path} is not a safetensors file (too short)")
    (size,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8:8 + size])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise GGUFError(f"{path} is not a safetensors file (bad header)") from None
    body = memoryview(data)[8 + size:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = body[start:end]
        if info["dtype"] == "F32":
            array = np.frombuffer(raw, dtype="<f4")
        elif info["dtype"] == "F16":
            array = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif info["dtype"] == "BF16":
            array = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise GGUFError(f"{path}: tensor {name} has type {info['dtype']}; adapters must be F32, F16 or BF16")
        if array.size != int(np.prod(info["shape"])):
            raise GGUFError(f"{path}: tensor {name} is truncated")
        tensors[name] = array.reshape(info["shape"])
    return tensors


def lora_deltas(adapter_dir: Path) -> dict[str, np.ndarray]:
    """HF weight name -> the dense update `scale * B @ A` a PEFT LoRA adapter adds to it."""
    adapter_dir = Path(adapter_dir)
    try:
        config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GGUFError(f"{adapter_dir} holds no readable {ADAPTER_CONFIG} ({exc})") from None
    if config.get("peft_type", "LORA") != "LORA":
        raise GGUFError(f"{adapter_dir} is a {config.get('peft_type')} adapter; only LoRA merges")
    if config.get("rank_pattern") or config.get("alpha_pattern") or config.get("modules_to_save") or config.get("use_dora"):
        raise GGUFError(f"{adapter_dir}: per-module ranks, saved modules and DoRA are not supported; plain LoRA only")
    rank, alpha = int(config["r"]), float(config.get("lora_alpha", config["r"]))
    scale = alpha / rank ** 0.5 if config.get("use_rslora") else alpha / rank
    weights = read_safetensors(adapter_dir / ADAPTER_WEIGHTS)
    deltas = {}
    for name, a in weights.items():
        if ".lora_A." not in name:
            if ".lora_B." not in name:
                raise GGUFError(f"{adapter_dir}: unexpected tensor {name} (embedding adapters are not supported)")
            continue
        b = weights.get(name.replace(".lora_A.", ".lora_B."))
        if b is None:
            raise GGUFError(f"{adapter_dir}: {name} has no lora_B partner")
        module = name.removeprefix(_PEFT_PREFIX).split(".lora_A.")[0]
        deltas[f"{module}.weight"] = scale * (b @ a)
    return deltas


def merge_lora(base: Path, adapter_dir: Path, out: Path, *, name: str | None = None) -> Path:
    """Write base + LoRA as a float32 GGUF: every tensor dequantized, the adapter's updates added
    (q/k updates permuted to llama.cpp's rotary layout), metadata and tokenizer copied."""
    import gguf

    from .llama_layout import gguf_name

    deltas = {}
    for key, delta in lora_deltas(adapter_dir).items():
        target = gguf_name(key)
        if target is None:
            raise GGUFError(f"the adapter changes {key}, which a llama-family GGUF does not hold")
        deltas[target] = delta
    reader = gguf.GGUFReader(str(base))
    arch = reader.fields["general.architecture"].contents()
    heads = int(reader.fields[f"{arch}.attention.head_count"].contents())
    kv_heads = int(reader.fields.get(f"{arch}.attention.head_count_kv", reader.fields[f"{arch}.attention.head_count"]).contents())
    writer = gguf.GGUFWriter(str(out), arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "general.file_type"):
            continue
        if key == "general.name" and name:
            continue
        kind = field.types[0]
        if kind == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, field.contents(), kind, sub_type=field.types[-1])
        else:
            writer.add_key_value(key, field.contents(), kind)
    if name:
        writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    merged = set()
    for tensor in reader.tensors:
        data = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        delta = deltas.get(tensor.name)
        if delta is not None:
            rotary = rotary_heads(tensor.name, heads, kv_heads)
            delta = permute_rotary(delta, rotary) if rotary else delta
            if delta.shape != data.shape:
                raise GGUFError(f"the adapter's update for {tensor.name} is {delta.shape}, the base tensor "
                                f"{data.shape}: it was trained on another base")
            data = data + delta
            merged.add(tensor.name)
        writer.add_tensor(tensor.name, np.ascontiguousarray(data))
    missing = set(deltas) - merged
    if missing:
        raise GGUFError(f"the base has no tensor {sorted(missing)[0]} the adapter changes: it was trained on another base")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
