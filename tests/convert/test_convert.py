"""Conversion for real: tiny llama and T5 students -> GGUF (llama.cpp) and CTranslate2 bundles."""

import json
import subprocess
import sys

import numpy as np
import pytest

from convert.bundle import load_source, make_bundle, parse_targets
from convert.gguf_export import ConvertError, write_gguf
from runtime.bundle import BundleError, open_bundle
from tests.tiny_models import make_llama, make_t5, make_tokenizer

TEXTS = ["Question: Natalia sold 48 clips in April and half as many in May.\n"
         "Let's break down the code step by step\nclips_may = 48 / 2\nans = 48 + clips_may\n"] * 20
PROMPTS = ["Question: Natalia sold", "clips_may = 48", "Let's break down the code"]
CONVERT = [sys.executable, "-m", "convert.cli"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    tokenizer = make_tokenizer(TEXTS, folder / "tokenizer", vocab_size=400)
    # Weights a float16 file holds exactly, large enough that greedy outputs vary.
    return make_llama(folder / "llama", tokenizer, hidden=64, init_range=0.5, f16_exact=True), tokenizer


def test_f16_gguf_matches_transformers(tiny, tmp_path):
    import torch
    import transformers
    from runtime.engines.llama_params import load_llama

    folder, _ = tiny
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    path = write_gguf(model, tokenizer, tmp_path / "f16.gguf", dtype="f16")
    llm = load_llama(path, n_ctx=256, threads=2, logits_all=True)
    try:
        for prompt in PROMPTS:
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            assert llm.tokenize(prompt.encode(), add_bos=False, special=True) == ids
            # Teacher-forced logits at every position.
            llm.reset()
            llm.eval(ids)
            ours = np.array(llm.scores[: len(ids)])
            with torch.no_grad():
                reference = model(torch.tensor([ids])).logits[0].numpy()
            assert np.abs(ours - reference).max() < 0.05
            # Greedy generation, token for token.
            expected = model.generate(torch.tensor([ids]), max_new_tokens=16, do_sample=False)[0, len(ids):].tolist()
            got = []
            for token in llm.generate(ids, temp=0.0, top_k=1, reset=True):
                got.append(token)
                if len(got) == len(expected):
                    break
            assert got == expected
    finally:
        llm.close()


def test_bundle_with_gguf_and_ct2(tiny, tmp_path):
    folder, _ = tiny
    out = tmp_path / "bundle"
    manifest = make_bundle(load_source(str(folder)), parse_targets("gguf:f16,gguf:q8_0,ct2:int8"), out, log=lambda _: None)
    assert [(w.engine, w.quantization) for w in manifest.weights] == [
        ("llama.cpp", "f16"), ("llama.cpp", "q8_0"), ("ctranslate2", "int8")]
    assert (out / "model-q8_0.gguf").is_file() and (out / "ct2-int8" / "model.bin").is_file()
    assert (out / "tokenizer.json").is_file() and (out / "student.json").is_file()
    # The fidelity check ran llama.cpp and CTranslate2 on every weight set.
    for key in ("llama.cpp:f16", "llama.cpp:q8_0", "ctranslate2:int8"):
        assert manifest.fidelity[key]["prompts"] == 9
    assert manifest.fidelity["llama.cpp:f16"]["tokenizer_agrees"] is True
    assert manifest.fidelity["llama.cpp:f16"]["token_agreement"] >= 0.8
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    listed = {f.path for f in manifest.files}
    assert "model-q8_0.gguf" in listed and "ct2-int8/model.bin" in listed

    proc = subprocess.run([*CONVERT, "inspect", str(out)], capture_output=True, timeout=120)
    assert proc.returncode == 0 and b"all files verified" in proc.stdout
    open_bundle(out)


def test_corrupted_and_truncated_bundles_are_refused(tiny, tmp_path):
    folder, _ = tiny
    out = tmp_path / "bundle"
    make_bundle(load_source(str(folder)), parse_targets("gguf:q8_0"), out, fidelity=False, log=lambda _: None)
    weights = out / "model-q8_0.gguf"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    proc = subprocess.run([*CONVERT, "inspect", str(out)], capture_output=True, timeout=120)
    assert proc.returncode == 1 and b"sha256 differs" in proc.stdout
    with pytest.raises(BundleError, match="model-q8_0.gguf: sha256 differs"):
        open_bundle(out)
    weights.write_bytes(bytes(data[:1000]))
    with pytest.raises(BundleError, match="truncated"):
        open_bundle(out)
    (out / "student.json").write_text("{not json")
    with pytest.raises(BundleError, match="malformed"):
        open_bundle(out)


def test_t5_student_converts_to_ct2_but_not_gguf(tmp_path):
    tokenizer = make_tokenizer(TEXTS, tmp_path / "tokenizer", vocab_size=400)
    folder = make_t5(tmp_path / "t5", tokenizer, d_model=64)
    source = load_source(str(folder))
    with pytest.raises(ConvertError, match="GGUF export supports LlamaForCausalLM"):
        make_bundle(source, parse_targets("gguf:q8_0"), tmp_path / "nope", log=lambda _: None)
    assert not (tmp_path / "nope").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    manifest = make_bundle(source, parse_targets("ct2:int8"), tmp_path / "t5-bundle", log=lambda _: None)
    assert manifest.encoder_decoder and manifest.fidelity["ctranslate2:int8"]["prompts"] == 9


def test_run_folder_with_lora_is_merged(tiny, tmp_path):
    from distill.records import Record
    from distill.train.loop import TrainConfig, train

    folder, _ = tiny
    data = tmp_path / "etd.jsonl"
    record = Record(id="p:pot:0", source="t/t", question="Natalia sold 48 clips.", thought="pot",
                    rationale="ans = 48 / 2", answer=24.0, gold=24.0, teacher="gold")
    data.write_text(record.to_json() + "\n")
    train(TrainConfig(data=str(data), out=str(tmp_path / "run"), base=str(folder), max_steps=2, batch_size=1,
                      lora_r=4, dev_size=0, save_every=0))
    manifest = make_bundle(load_source(str(tmp_path / "run")), parse_targets("gguf:q8_0"), tmp_path / "b",
                           fidelity=False, log=lambda _: None)
    assert manifest.thoughts == ["pot"] and manifest.source["trained"] is True
    assert manifest.source["data_sha256"]


@pytest.mark.parametrize("args, message", [
    (["bundle", "--checkpoint", "/nonexistent", "--out", "b"], "not a training run folder"),
    (["bundle", "--checkpoint", "smollm2", "--to", "gguf:q3_zz", "--out", "b"], "unknown GGUF type"),
    (["inspect", "/nonexistent"], "not a model bundle"),
])
def test_bad_input_is_one_line(args, message, tmp_path):
    proc = subprocess.run([*CONVERT, *args], capture_output=True, timeout=300, cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and message in err and "Traceback" not in err


def test_check_accuracy_compares_source_and_quantized(student, data_dir, tmp_path):
    bundle, problems = student
    run = bundle.parent / "run"  # the memorised student's training run
    out = tmp_path / "checked"
    proc = subprocess.run([*CONVERT, "bundle", "--checkpoint", str(run), "--weights", "final", "--to", "gguf:f16,ct2:float32",
                           "--out", str(out), "--no-fidelity", "--check-accuracy", str(len(problems)),
                           "--check-data", "gsm8k:train", "--data-dir", str(data_dir)], capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()[-800:]
    check = json.loads((out / "student.json").read_text())["accuracy"]["check"]
    assert check["problems"] == len(problems)
    assert check["source"]["etd"] == 1.0  # the memorised problems
    for key in ("llama.cpp:f16", "ctranslate2:float32"):
        assert check[key]["etd"] == 1.0 and check[key]["etd_minus_source"] == 0.0


def test_the_command_is_etd_convert_not_imagemagicks_convert():
    """`convert` on PATH is ImageMagick's on many systems: the console script must not shadow it."""
    import tomllib
    from importlib.metadata import entry_points

    from tests.conftest import REPO

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts.get("etd-convert") == "convert.cli:main" and "convert" not in scripts
    installed = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert installed.get("etd-convert") == "convert.cli:main" and installed.get("convert") != "convert.cli:main"
    proc = subprocess.run(CONVERT + ["--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: etd-convert")
