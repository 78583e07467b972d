"""How a Hugging Face llama-family checkpoint's tensors are named and laid out in a GGUF file.

One mapping for the two places that need it: `convert` writing a student as GGUF, and the runtime
merging a LoRA adapter into the base GGUF (numpy only, no torch).
"""

from __future__ import annotations

import re

import numpy as np

_LAYER = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
_LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_TOP_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
              "lm_head.weight": "output.weight"}


def gguf_name(hf_key: str) -> str | None:
    """`model.layers.3.self_attn.q_proj.weight` -> `blk.3.attn_q.weight`; None for anything else."""
    layer = _LAYER.match(hf_key)
    if layer:
        suffix = _LAYER_NAMES.get(layer.group(2))
        return None if suffix is None else f"blk.{layer.group(1)}.{suffix}"
    return _TOP_NAMES.get(hf_key)


def rotary_heads(gguf_key: str, heads: int, kv_heads: int) -> int | None:
    """The head count to permute a q/k projection by (None for every other tensor)."""
    if gguf_key.endswith("attn_q.weight"):
        return heads
    if gguf_key.endswith("attn_k.weight"):
        return kv_heads
    return None


def permute_rotary(weights: np.ndarray, heads: int) -> np.ndarray:
    """HF's rotary layout -> llama.cpp's (interleaved halves per head) for q/k projections."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))
