"""A LoRA adapter merged into a base GGUF with numpy alone (the runtime's way to build the shipped
student without torch) gives the logits of transformers + PEFT merging the same adapter."""

import json
import logging
import sys

import numpy as np
import pytest

from runtime.gguf_tools import GGUFError, lora_deltas, merge_lora, quantize, read_safetensors
from tests.tiny_models import make_llama, make_tokenizer

TEXTS = ["Question: Tom has 3 apples and buys 4 more.\nans = 3 + 4\n"] * 20
PROMPT = "Question: Tom has 3 apples"


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    import torch
    import transformers

    from convert.gguf_export import write_gguf
    from distill.train.model import apply_lora

    folder = tmp_path_factory.mktemp("lora")
    tokenizer = make_tokenizer(TEXTS, folder / "tokenizer", vocab_size=300)
    make_llama(folder / "base", tokenizer, hidden=64, init_range=0.3)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder / "base")
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(folder / "base")
    base_gguf = write_gguf(model, hf_tokenizer, folder / "base.gguf", dtype="f32")
    peft_model = apply_lora(model, rank=4, alpha=8, encoder_decoder=False)
    torch.manual_seed(1)
    with torch.no_grad():  # B starts at zero (a no-op adapter); make the update real and sizeable
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.2)
    peft_model.save_pretrained(folder / "adapter")
    merged = peft_model.merge_and_unload().eval()
    return folder, base_gguf, merged, hf_tokenizer


def llama_logits(path, ids):
    from runtime.engines.llama_params import load_llama

    llm = load_llama(path, n_ctx=128, threads=2, logits_all=True)
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])
    finally:
        llm.close()


def test_merged_gguf_matches_peft_merge(adapted, tmp_path, capfd):
    import torch

    folder, base_gguf, merged, tokenizer = adapted
    ids = tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        reference = merged(torch.tensor([ids])).logits[0].numpy()
    out = merge_lora(base_gguf, folder / "adapter", tmp_path / "merged.gguf", name="tiny-etd")
    ours = llama_logits(out, ids)
    base = llama_logits(base_gguf, ids)
    # The adapter really changes the model, and the merge reproduces it (to llama.cpp's float16 KV cache).
    assert np.abs(base - reference).max() > 0.5
    assert np.abs(ours - reference).max() < 0.05
    # Tensor for tensor, the merged file holds PEFT's merged weights (in llama.cpp's rotary layout).
    import gguf

    from runtime.llama_layout import gguf_name, permute_rotary, rotary_heads

    stored = {t.name: np.array(t.data) for t in gguf.GGUFReader(str(out)).tensors}
    config = merged.config
    for key, tensor in merged.state_dict().items():
        if key == "lm_head.weight":
            continue  # tied to the embedding
        target = gguf_name(key)
        expected = tensor.numpy()
        rotary = rotary_heads(target, config.num_attention_heads, config.num_key_value_heads)
        if rotary:
            expected = permute_rotary(expected, rotary)
        assert np.allclose(stored[target], expected, atol=1e-5), key
    # and the merged file quantizes like any other student
    q8 = tmp_path / "merged-q8_0.gguf"
    # Quietly: this runs inside a user's first `runtime solve`, where no model has been opened yet
    # (opening one with verbose=False is what quiets llama-cpp-python's logger; reset it to that state).
    logger = logging.getLogger("llama-cpp-python")
    logger.setLevel(logging.NOTSET)
    capfd.readouterr()
    assert "Q8_0" in quantize(out, q8, "q8_0")
    printed = capfd.readouterr()
    assert "q8_0" not in printed.err + printed.out and "llama_model_loader" not in printed.err + printed.out
    assert logger.level == logging.NOTSET  # left as it was
    # (8-bit noise on these large random weights, but far nearer the adapted model than the base is)
    assert np.abs(llama_logits(q8, ids) - reference).mean() < np.abs(base - reference).mean() / 3


def test_deltas_come_from_the_adapter_weights(adapted):
    folder, *_ = adapted
    config = json.loads((folder / "adapter" / "adapter_config.json").read_text())
    weights = read_safetensors(folder / "adapter" / "adapter_model.safetensors")
    deltas = lora_deltas(folder / "adapter")
    assert len(deltas) == 2 * 7            # two layers, all seven linear projections
    key = "model.layers.0.self_attn.q_proj.weight"
    a = weights["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]
    b = weights["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"]
    assert np.allclose(deltas[key], config["lora_alpha"] / config["r"] * b @ a)


def test_bad_adapters_are_clear_errors(adapted, tmp_path):
    folder, base_gguf, *_ = adapted
    with pytest.raises(GGUFError, match="adapter_config.json"):
        merge_lora(base_gguf, tmp_path, tmp_path / "x.gguf")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text((folder / "adapter" / "adapter_config.json").read_text())
    (broken / "adapter_model.safetensors").write_bytes((folder / "adapter" / "adapter_model.safetensors").read_bytes()[:-100])
    with pytest.raises(GGUFError, match="truncated"):
        merge_lora(base_gguf, broken, tmp_path / "x.gguf")
    # An adapter trained on another base (other shapes) is refused, not silently broadcast.
    other = tmp_path / "other-tok"
    make_llama(tmp_path / "other", make_tokenizer(TEXTS, other, vocab_size=300), hidden=32, init_range=0.3)
    import transformers

    from convert.gguf_export import write_gguf

    small = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "other")
    small_gguf = write_gguf(small, transformers.AutoTokenizer.from_pretrained(tmp_path / "other"), tmp_path / "small.gguf", dtype="f32")
    with pytest.raises(GGUFError, match="another base"):
        merge_lora(small_gguf, folder / "adapter", tmp_path / "x.gguf")


def test_merging_needs_no_torch(adapted, tmp_path):
    import subprocess

    folder, base_gguf, *_ = adapted
    code = ("import sys; from runtime.gguf_tools import merge_lora; "
            f"merge_lora({str(base_gguf)!r}, {str(folder / 'adapter')!r}, {str(tmp_path / 'm.gguf')!r}); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1000:]
    assert (tmp_path / "m.gguf").stat().st_size > 0
