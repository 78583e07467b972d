"""Hugging Face folder -> CTranslate2 model folder (int8 and the other CPU compute types)."""

from __future__ import annotations

from pathlib import Path

CT2_QUANTIZATIONS = ("int8", "int8_float32", "int16", "float32", "float16", "bfloat16", "int8_float16", "int8_bfloat16")


def write_ct2(model_dir: Path, out: Path, quantization: str = "int8") -> Path:
    from .gguf_export import ConvertError

    if quantization not in CT2_QUANTIZATIONS:
        raise ConvertError(f"unknown CTranslate2 type {quantization!r} (choose from {', '.join(CT2_QUANTIZATIONS)})")
    import ctranslate2

    try:
        converter = ctranslate2.converters.TransformersConverter(str(model_dir), low_cpu_mem_usage=True)
        converter.convert(str(out), quantization=quantization, force=True)
    except (ValueError, NotImplementedError) as exc:
        raise ConvertError(f"CTranslate2 cannot convert this model: {str(exc).splitlines()[0][:200]}") from None
    _fill_special_tokens(out / "config.json")
    return out


def _fill_special_tokens(config_path: Path) -> None:
    """A tokenizer without a BOS (or UNK) token leaves null in CTranslate2's config, which it then
    refuses to load: use the end token in its place, as generation never emits it unprompted."""
    import json

    from runtime.files import write_text_atomic

    config = json.loads(config_path.read_text())
    eos = config.get("eos_token")
    changed = False
    for key in ("bos_token", "unk_token", "decoder_start_token"):
        if key in config and config[key] is None and eos is not None:
            config[key] = eos
            changed = True
    if changed:
        write_text_atomic(config_path, json.dumps(config, indent=2))
