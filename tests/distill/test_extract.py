"""Shipping a full fine-tuning run (or an oversized adapter) as a low-rank extraction of its updates."""

import json
import subprocess
import sys

import numpy as np
import pytest

from distill.extract import adapter, choose_rank, updates
from distill.ship import write_safetensors
from runtime.gguf_tools import lora_deltas


def test_truncated_svd_keeps_what_the_rank_can_hold(tmp_path):
    rng = np.random.default_rng(0)
    base = {"model.layers.0.mlp.up_proj.weight": rng.normal(size=(12, 8)).astype(np.float32),
            "model.layers.0.self_attn.q_proj.weight": rng.normal(size=(8, 8)).astype(np.float32),
            "model.norm.weight": np.ones(8, np.float32), "model.embed_tokens.weight": rng.normal(size=(20, 8)).astype(np.float32)}
    rank3 = (rng.normal(size=(12, 3)) @ rng.normal(size=(3, 8))).astype(np.float32)
    tuned = dict(base)
    tuned["model.layers.0.mlp.up_proj.weight"] = base["model.layers.0.mlp.up_proj.weight"] + rank3
    tuned["model.norm.weight"] = base["model.norm.weight"] + 0.1  # a change no adapter carries
    found = updates(base, tuned)
    assert list(found.linear) == ["model.layers.0.mlp.up_proj"]  # q_proj did not change
    assert found.dropped.keys() == {"model.norm.weight"}
    whole = float((rank3.astype(np.float64) ** 2).sum()) + 8 * 0.01
    assert found.dropped_share() == pytest.approx(8 * 0.01 / whole, rel=1e-4)
    assert found.retained(3) == pytest.approx(1 - found.dropped_share(), rel=1e-5) and found.retained(1) < found.retained(2)
    tensors, config = adapter(found, 3)
    assert config["r"] == config["lora_alpha"] == 3 and config["target_modules"] == ["up_proj"]
    # through the files the runtime merges: the update comes back
    write_safetensors(tensors, tmp_path / "adapter_model.safetensors")
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    deltas = lora_deltas(tmp_path)
    assert np.allclose(deltas["model.layers.0.mlp.up_proj.weight"], rank3, atol=1e-4)
    with pytest.raises(ValueError, match="differ in shape"):
        updates(base, dict(tuned, **{"model.norm.weight": np.ones(9, np.float32)}))


def test_rank_choice():
    agreement = {8: 0.90, 16: 0.97, 32: 0.99, 64: 0.995}
    sizes = {8: 1, 16: 2, 32: 4, 64: 8}
    assert choose_rank(agreement, sizes, target=0.98, limit=8) == 32     # the smallest good enough
    assert choose_rank(agreement, sizes, target=0.999, limit=8) == 64    # none is: the most faithful
    assert choose_rank(agreement, sizes, target=0.98, limit=2) == 16     # within the size limit
    with pytest.raises(ValueError, match="no rank fits"):
        choose_rank(agreement, sizes, target=0.98, limit=0)


def test_ship_a_full_fine_tuning_run_of_the_real_base(data_dir, tmp_path):
    from distill.build import build
    from distill.problems import load_problems
    from distill.teachers.gold import GoldTeacher
    from runtime.thoughts import Thought

    data = tmp_path / "etd.jsonl"
    build(load_problems("gsm8k", "train", data_dir).problems[:4], GoldTeacher(), [Thought.POT, Thought.EOT], data)
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "distill.cli", "train", "--data", str(data), "--out", str(run),
                           "--max-steps", "2", "--batch-size", "2", "--max-length", "128", "--lr", "1e-4",
                           "--dev-size", "0", "--threads", "2", "--precision", "fp32"], capture_output=True, timeout=900)
    assert proc.returncode == 0, proc.stderr.decode()[-800:]
    shipped = tmp_path / "shipped"
    proc = subprocess.run([sys.executable, "-m", "distill.cli", "ship", str(run), "--name", "smollm2-full",
                           "--out", str(shipped), "--rank", "8"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-800:]
    assert "extracted rank 8" in proc.stdout
    manifest = json.loads((shipped / "shipped.json").read_text())
    extraction = manifest["extraction"]
    assert manifest["training"]["method"] == "full fine-tuning" and extraction["rank"] == 8
    assert 0 < extraction["agreement"]["8"] <= 1 and extraction["positions"] > 100
    assert 0 < extraction["retained"]["8"] < 1 and "model.embed_tokens.weight" in extraction["dropped"]
    deltas = lora_deltas(shipped)
    assert len(deltas) == 30 * 7  # every linear layer of the 30 blocks
    assert manifest["adapter_bytes"] < 2 * 8 * 30 * (2 * (576 + 576) + 2 * (576 + 192) + 3 * (576 + 1536)) + 100_000
