"""Hugging Face llama-family weights -> GGUF (f32/f16), then any llama.cpp quantization.

The `gguf` package writes the file; `llama_cpp.llama_model_quantize` makes q8_0, q4_0, q4_k_m,
... from the f16 file. Tokenizer metadata is copied from a source GGUF when the student came from
one (SmolLM2's GGUF carries llama.cpp's own pre-tokenizer name), else built from `tokenizer.json`
(byte-level BPE), so llama.cpp loads the result stand-alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from runtime.gguf_tools import GGUFError
from runtime.llama_layout import gguf_name, permute_rotary, rotary_heads

SUPPORTED_ARCHITECTURES = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama"}

class ConvertError(GGUFError):
    """The model cannot be converted; the message says what is supported."""


def architecture_of(config) -> str:
    names = getattr(config, "architectures", None) or []
    for name in names:
        if name in SUPPORTED_ARCHITECTURES:
            return SUPPORTED_ARCHITECTURES[name]
    raise ConvertError(
        f"GGUF export supports {', '.join(sorted(SUPPORTED_ARCHITECTURES))}; this model is {', '.join(names) or 'unknown'} "
        "(CTranslate2 int8 still works for it)"
    )


def write_gguf(model, tokenizer, out: Path, *, dtype: str = "f16", tokenizer_gguf: Path | None = None, name: str = "student") -> Path:
    """Write `model` (a transformers llama-family model) and its tokenizer as one GGUF file."""
    import gguf

    if dtype not in ("f16", "f32"):
        raise ConvertError("the first GGUF is written as f16 or f32; quantize from it")
    config = model.config
    arch = architecture_of(config)
    heads, kv_heads = config.num_attention_heads, getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(float(getattr(config, "rope_theta", None) or (getattr(config, "rope_parameters", None) or {}).get("rope_theta", 10000.0)))
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if dtype == "f16" else gguf.LlamaFileType.ALL_F32)
    if tokenizer_gguf is not None:
        _copy_tokenizer(writer, Path(tokenizer_gguf))
    else:
        _tokenizer_from_hf(writer, tokenizer, config.vocab_size)

    tied = bool(getattr(config, "tie_word_embeddings", False))
    for key, tensor in model.state_dict().items():
        if "rotary_emb" in key:
            continue
        if key == "lm_head.weight" and tied:
            continue
        data = tensor.detach().float().cpu().numpy()
        target = gguf_name(key)
        if target is None:
            raise ConvertError(f"unexpected tensor {key}: not a plain llama model")
        rotary = rotary_heads(target, heads, kv_heads)
        if rotary:
            data = permute_rotary(data, rotary)
        if dtype == "f16" and data.ndim == 2:
            data = data.astype(np.float16)
        writer.add_tensor(target, np.ascontiguousarray(data.astype(np.float32) if data.ndim == 1 else data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _copy_tokenizer(writer, source: Path) -> None:
    import gguf

    reader = gguf.GGUFReader(str(source))
    copied = 0
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        types = field.types
        if types[0] == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, field.contents(), types[0], sub_type=types[-1])
        else:
            writer.add_key_value(key, field.contents(), types[0])
        copied += 1
    if not copied:
        raise ConvertError(f"{source} has no tokenizer metadata to copy")


def _tokenizer_from_hf(writer, tokenizer, vocab_size: int) -> None:
    import gguf

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    model = spec.get("model", {})
    if model.get("type") != "BPE":
        raise ConvertError("GGUF export needs a byte-level BPE tokenizer (tokenizer.json); this one is "
                           f"{model.get('type', 'unknown')}")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    special = set(tokenizer.all_special_ids)
    added = {t["id"] for t in spec.get("added_tokens", [])}
    tokens, types = [], []
    for index in range(vocab_size):
        token = tokenizer.convert_ids_to_tokens(index) if index < len(tokenizer) else None
        if token is None:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL if index in special else
                         gguf.TokenType.USER_DEFINED if index in added else gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")  # llama.cpp's name for the GPT-2 split regex
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_add_bos_token(False)  # students are trained without one
    for setter, value in (("add_bos_token_id", tokenizer.bos_token_id), ("add_eos_token_id", tokenizer.eos_token_id),
                          ("add_pad_token_id", tokenizer.pad_token_id), ("add_unk_token_id", tokenizer.unk_token_id)):
        if value is not None:
            getattr(writer, setter)(value)
    if getattr(tokenizer, "chat_template", None):
        writer.add_chat_template(tokenizer.chat_template)
