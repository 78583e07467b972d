"""Training for real on tiny students built here, and a short run on the real SmolLM2 base."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from distill.build import build
from distill.problems import load_problems
from distill.records import read_records
from distill.teachers.gold import GoldTeacher
from distill.train.loop import TrainConfig, TrainError, train
from runtime.files import sha256_file
from runtime.thoughts import Thought, format_example
from tests.tiny_models import make_llama, make_t5, make_tokenizer

ALL = [Thought.POT, Thought.EOT, Thought.COT]


@pytest.fixture(scope="module")
def memorise_set(data_dir, tmp_path_factory):
    """A few dozen verified ETD records and a tokenizer trained on them."""
    folder = tmp_path_factory.mktemp("etd")
    data = folder / "etd.jsonl"
    build(load_problems("gsm8k", "train", data_dir).problems[:8], GoldTeacher(), ALL, data)
    records = list(read_records(data))
    texts = []
    for r in records:
        example = format_example(r.question, r.thought, r.rationale)
        texts.append(example.prompt + example.target)
    return data, make_tokenizer(texts, folder / "tokenizer"), len(records)


def _losses(run: Path) -> list[float]:
    return [e["loss"] for e in map(json.loads, (run / "train_log.jsonl").read_text().splitlines()) if "loss" in e]


def _memorise(data, base, run, steps, lr):
    return train(TrainConfig(data=str(data), out=str(run), base=str(base), max_steps=steps, batch_size=8, lr=lr,
                             warmup=10, dev_data=str(data), max_length=512, save_every=0, eval_max_new_tokens=200,
                             threads=2, precision="fp32"))


def test_tiny_causal_lm_memorises_and_solves(memorise_set, tmp_path):
    data, tokenizer, count = memorise_set
    assert count >= 20
    summary = _memorise(data, make_llama(tmp_path / "base", tokenizer), tmp_path / "run", 400, 3e-3)
    losses = _losses(tmp_path / "run")
    assert losses[-1] < losses[0] / 50
    assert summary["dev_accuracy"] == {"problems": 8, "pot": 1.0, "eot": 1.0, "cot": 1.0, "etd": 1.0}
    assert (tmp_path / "run" / "final" / "model.safetensors").exists()
    assert (tmp_path / "run" / "best" / "tokenizer.json").exists()
    info = json.loads((tmp_path / "run" / "training.json").read_text())
    assert info["format_version"] == "etd-1" and info["tokens_seen"] > 0 and info["steps"] == 400


def test_tiny_t5_memorises_and_solves(memorise_set, tmp_path):
    data, tokenizer, _ = memorise_set
    # Four layers: with two, T5's coarse relative positions leave the tiny decoder looping.
    summary = _memorise(data, make_t5(tmp_path / "base", tokenizer, d_model=128, layers=4), tmp_path / "run", 600, 1e-3)
    losses = _losses(tmp_path / "run")
    assert losses[-1] < losses[0] / 50
    assert summary["encoder_decoder"] is True
    assert summary["dev_accuracy"]["etd"] == 1.0  # every memorised question solved by the ETD rule


class _Stop(Exception):
    pass


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def test_resume_ends_with_the_same_weights(memorise_set, tmp_path):
    import torch

    data, tokenizer, _ = memorise_set
    base = make_llama(tmp_path / "base", tokenizer, hidden=64)
    common = dict(data=str(data), base=str(base), max_steps=14, batch_size=4, grad_accum=2, lr=1e-3, warmup=3,
                  dev_size=0, save_every=5, threads=2, precision="fp32")
    train(TrainConfig(out=str(tmp_path / "whole"), **common))

    def stop_at_seven(step, total, loss, rate):
        if step == 7:
            raise _Stop()  # an interruption two steps after the checkpoint at step 5

    with pytest.raises(_Stop):
        train(TrainConfig(out=str(tmp_path / "cut"), **common), progress=stop_at_seven)
    assert (tmp_path / "cut" / "checkpoint" / "state.pt").exists()
    with pytest.raises(TrainError, match="--resume"):
        train(TrainConfig(out=str(tmp_path / "cut"), **common))
    train(TrainConfig(out=str(tmp_path / "cut"), resume=True, **common))

    whole, cut = _weights(tmp_path / "whole" / "final"), _weights(tmp_path / "cut" / "final")
    assert whole.keys() == cut.keys()
    for name in whole:
        assert torch.allclose(whole[name], cut[name], atol=1e-6), name
    steps = [e["step"] for e in map(json.loads, (tmp_path / "cut" / "train_log.jsonl").read_text().splitlines()) if "step" in e]
    assert steps[-1] == 14


def test_lora_run_saves_an_adapter_that_merges(memorise_set, tmp_path):
    from distill.train.model import load_trained

    data, tokenizer, _ = memorise_set
    base = make_llama(tmp_path / "base", tokenizer, hidden=64)
    summary = train(TrainConfig(data=str(data), out=str(tmp_path / "run"), base=str(base), max_steps=3, batch_size=4,
                                lora_r=4, dev_size=0, save_every=0, threads=2))
    assert summary["method"] == "lora r=4"
    final = tmp_path / "run" / "final"
    assert (final / "adapter_config.json").exists() and not (final / "model.safetensors").exists()
    model, _, encoder_decoder = load_trained(final)
    assert not encoder_decoder and not any("lora" in name for name, _ in model.named_parameters())


DISTILL = [sys.executable, "-m", "distill.cli", "train"]


def test_bad_input_is_one_line(memorise_set, tmp_path):
    data, tokenizer, _ = memorise_set
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    old = tmp_path / "old.jsonl"
    record = json.loads(data.read_text().splitlines()[0])
    record["format_version"] = "etd-0"
    old.write_text(json.dumps(record) + "\n")
    cases = [
        (["--data", str(tmp_path / "missing.jsonl")], "no such dataset file"),
        (["--data", str(empty)], "has no records"),
        (["--data", str(old)], "thought format"),
        (["--data", str(data), "--base", str(tmp_path / "no-model")], "cannot load base"),
        (["--data", str(data), "--batch-size", "0"], "--batch-size"),
        (["--data", str(data), "--max-steps", "3", "--train-tokens", "900"], "not both"),
        (["--data", str(data), "--lora-r", "-1"], "--lora-r must be at least 0"),  # was peft's traceback
        (["--data", str(data), "--lr=-1e-4"], "--lr must be at least 0"),         # was a run that unlearns
        (["--data", str(data), "--precision", "fp16"], "invalid choice"),
    ]
    for args, message in cases:
        proc = subprocess.run([*DISTILL, *args, "--out", str(tmp_path / "run")], capture_output=True, timeout=300)
        err = proc.stderr.decode()
        assert proc.returncode == 2, (args, err[-300:])
        assert message in err and "Traceback" not in err, (args, err[-300:])


def test_short_run_on_the_real_smollm2_base(memorise_set, tmp_path):
    data, _, _ = memorise_set
    proc = subprocess.run(
        [*DISTILL, "--data", str(data), "--out", str(tmp_path / "run"), "--max-steps", "3", "--batch-size", "2",
         "--max-length", "160", "--lora-r", "8", "--lr", "1e-4", "--dev-size", "2", "--eval-max-new-tokens", "24",
         "--threads", "2"],
        capture_output=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-800:]
    info = json.loads((tmp_path / "run" / "training.json").read_text())
    assert info["base"] == "smollm2" and info["steps"] == 3 and info["tokens_per_second"] > 0
    assert set(info["dev_accuracy"]) == {"problems", "pot", "eot", "cot", "etd"}
    assert info["dev_problems"] == 2


SHIP = [sys.executable, "-m", "distill.cli", "ship"]


def test_ship_a_smollm2_lora_run_and_refuse_others(memorise_set, tmp_path):
    import numpy as np

    from runtime.gguf_tools import lora_deltas, read_safetensors

    data, tokenizer, _ = memorise_set
    run = tmp_path / "run"
    proc = subprocess.run([*DISTILL, "--data", str(data), "--out", str(run), "--max-steps", "2", "--batch-size", "2",
                           "--max-length", "128", "--lora-r", "4", "--lr", "5e-3", "--dev-size", "0", "--threads", "2"],
                          capture_output=True, timeout=900)
    assert proc.returncode == 0, proc.stderr.decode()[-800:]
    shipped = tmp_path / "shipped"
    proc = subprocess.run([*SHIP, str(run), "--name", "smollm2-test", "--out", str(shipped)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-800:]
    manifest = json.loads((shipped / "shipped.json").read_text())
    assert manifest["name"] == "smollm2-test" and manifest["base"] == "smollm2" and manifest["quantizations"] == ["q8_0"]
    assert manifest["training"]["method"] == "lora r=4" and manifest["training"]["steps"] == 2
    assert manifest["data_sha256"] and manifest["adapter_bytes"] == (shipped / "adapter_model.safetensors").stat().st_size
    assert manifest["adapter_sha256"] == sha256_file(shipped / "adapter_model.safetensors")
    # float16 on disk, the same update as the run's float32 adapter to float16 precision
    header_size = int.from_bytes((shipped / "adapter_model.safetensors").read_bytes()[:8], "little")
    header = json.loads((shipped / "adapter_model.safetensors").read_bytes()[8:8 + header_size])
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"F16"}
    original, ours = lora_deltas(run / "final"), lora_deltas(shipped)
    assert original.keys() == ours.keys() and len(ours) == 30 * 7
    for key in original:
        assert np.allclose(original[key], ours[key], atol=1e-4, rtol=1e-2), key
    assert read_safetensors(shipped / "adapter_model.safetensors").keys() == read_safetensors(run / "final" / "adapter_model.safetensors").keys()
    # A second ship needs --force; a run on another base cannot ship.
    again = subprocess.run([*SHIP, str(run), "--name", "x", "--out", str(shipped)], capture_output=True, text=True)
    assert again.returncode == 2 and "--force" in again.stderr
    # --keep-previous replaces it and keeps the one shipped before under its own name, beside the folder.
    first = (shipped / "adapter_model.safetensors").read_bytes()
    same = subprocess.run([*SHIP, str(run), "--name", "smollm2-test", "--out", str(shipped), "--keep-previous",
                           "smollm2-test"], capture_output=True, text=True)
    assert same.returncode == 2 and "own name" in same.stderr
    kept = subprocess.run([*SHIP, str(run), "--name", "smollm2-test-v2", "--out", str(shipped), "--keep-previous",
                           "smollm2-test-v1", "--which", "final"], capture_output=True, text=True)
    assert kept.returncode == 0, kept.stderr[-800:]
    earlier = tmp_path / "students" / "smollm2-test-v1"
    assert json.loads((earlier / "shipped.json").read_text())["name"] == "smollm2-test-v1"
    assert (earlier / "adapter_model.safetensors").read_bytes() == first
    assert json.loads((shipped / "shipped.json").read_text())["name"] == "smollm2-test-v2"
    tiny_run = tmp_path / "tiny"
    base = make_llama(tmp_path / "base", tokenizer, hidden=64)
    train(TrainConfig(data=str(data), out=str(tiny_run), base=str(base), max_steps=1, batch_size=4, lora_r=4,
                      dev_size=0, save_every=0, threads=2))
    other = subprocess.run([*SHIP, str(tiny_run), "--name", "x", "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert other.returncode == 2 and "packaged base" in other.stderr and "Traceback" not in other.stderr


@pytest.mark.parametrize("lora", [False, True])
def test_loss_on_labelled_positions_equals_the_models_own(memorise_set, tmp_path, lora):
    """The loop's loss skips the vocabulary projection where there is no label; loss and gradients
    must be what `model(**batch).loss` gives (padding, prompts of different lengths, LoRA or not)."""
    import torch

    from distill.train.data import collate, prepare
    from distill.train.loss import can_skip_unlabelled, labelled_positions_loss
    from distill.train.model import apply_lora, load_base

    data, tokenizer, _ = memorise_set
    model, tok, encoder_decoder = load_base(str(make_llama(tmp_path / "base", tokenizer, init_range=0.2)))
    if lora:
        model = apply_lora(model, rank=4, alpha=None, encoder_decoder=False)
        for name, p in model.named_parameters():
            if "lora_B" in name:  # zero at init: give the adapter something to say
                torch.nn.init.normal_(p, std=0.05)
    assert can_skip_unlabelled(model, encoder_decoder=False, processes=1)
    assert not can_skip_unlabelled(model, encoder_decoder=False, processes=2)
    examples = prepare(list(read_records(data))[:6], tok, max_length=512, encoder_decoder=False).examples
    batch = collate(examples, tok.pad_token_id, encoder_decoder=False)
    assert (batch["input_ids"] == tok.pad_token_id).any()  # rows of different lengths: padding inside

    def loss_and_grads(fn):
        model.zero_grad()
        loss = fn()
        loss.backward()
        return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    theirs, their_grads = loss_and_grads(lambda: model(**batch).loss)
    ours, our_grads = loss_and_grads(lambda: labelled_positions_loss(model, batch))
    assert ours == pytest.approx(theirs, rel=1e-5) and theirs > 1
    assert set(our_grads) == set(their_grads)
    for name in their_grads:
        assert torch.allclose(our_grads[name], their_grads[name], atol=1e-6, rtol=1e-4), name
    # and it is a loss over the labels: another target changes it
    batch["labels"][batch["labels"] != -100] = 5
    assert labelled_positions_loss(model, batch).item() != pytest.approx(ours, rel=1e-3)


def test_encoder_decoders_keep_the_models_own_loss(memorise_set, tmp_path):
    from distill.train.loss import can_skip_unlabelled
    from distill.train.model import load_base

    _, tokenizer, _ = memorise_set
    model, _, encoder_decoder = load_base(str(make_t5(tmp_path / "t5", tokenizer)))
    assert encoder_decoder and not can_skip_unlabelled(model, encoder_decoder=True, processes=1)


def test_init_continues_a_lora_run_from_its_adapter(memorise_set, tmp_path):
    """A second run started from the first run's adapter: with a zero learning rate its weights are
    exactly the first run's (a fresh adapter's B matrices would be zeros); what it started from is
    recorded, and the next epoch's data order is used."""
    data, tokenizer, _ = memorise_set
    base = make_llama(tmp_path / "base", tokenizer, hidden=64)
    common = dict(data=str(data), base=str(base), batch_size=4, lora_r=4, dev_size=0, save_every=0, threads=2)
    first = train(TrainConfig(out=str(tmp_path / "first"), max_steps=3, lr=1e-2, **common))
    second = train(TrainConfig(out=str(tmp_path / "second"), max_steps=1, lr=0.0, init=str(tmp_path / "first"), **common))
    import torch
    from safetensors.torch import load_file

    a, b = (load_file(tmp_path / run / "final" / "adapter_model.safetensors") for run in ("first", "second"))
    assert a.keys() == b.keys() and any(float(v.abs().max()) > 0 for k, v in a.items() if "lora_B" in k)
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert second["init"]["run"] == str(tmp_path / "first")
    assert second["init"]["steps"] == first["steps"] == 3 and second["init"]["epochs"] == 1
    epochs = {e["epoch"] for e in map(json.loads, (tmp_path / "second" / "train_log.jsonl").read_text().splitlines()) if "step" in e}
    assert epochs == {1}


def test_init_continues_a_shipped_student(memorise_set, tmp_path, monkeypatch):
    """A clean checkout has the shipped adapter, not the run folder: --init takes runtime/shipped's
    layout, starts from its float16 weights and carries the recipe's totals forward."""
    import distill.ship
    import torch
    from safetensors.torch import load_file

    data, tokenizer, _ = memorise_set
    base = make_llama(tmp_path / "base", tokenizer, hidden=64)
    common = dict(data=str(data), base=str(base), batch_size=4, lora_r=4, dev_size=0, save_every=0, threads=2)
    first = train(TrainConfig(out=str(tmp_path / "first"), max_steps=3, lr=1e-2, **common))
    monkeypatch.setattr(distill.ship, "DEFAULT_BASE", str(base))   # only the packaged base ships for real
    distill.ship.ship(tmp_path / "first", tmp_path / "shipped", name="tiny", which="final")
    second = train(TrainConfig(out=str(tmp_path / "second"), max_steps=1, lr=0.0, init=str(tmp_path / "shipped"), **common))

    shipped, continued = (load_file(path / "adapter_model.safetensors") for path in (tmp_path / "shipped", tmp_path / "second" / "final"))
    assert shipped.keys() == continued.keys() and all(v.dtype == torch.float16 for v in shipped.values())
    assert any(float(v.abs().max()) > 0 for k, v in shipped.items() if "lora_B" in k)
    for name in shipped:
        assert torch.equal(shipped[name].float(), continued[name]), name
    assert second["init"]["run"] == str(tmp_path / "shipped")
    assert second["init"]["steps"] == first["steps"] == 3 and second["init"]["tokens_seen"] == first["tokens_seen"]
    with pytest.raises(TrainError, match="another dev split"):
        train(TrainConfig(out=str(tmp_path / "bad"), max_steps=1, init=str(tmp_path / "shipped"), **common | {"seed": 1}))


def test_init_refuses_what_it_cannot_continue(memorise_set, tmp_path):
    data, tokenizer, _ = memorise_set
    base = make_llama(tmp_path / "base", tokenizer, hidden=64)
    common = dict(data=str(data), base=str(base), batch_size=4, dev_size=0, save_every=0, threads=2, max_steps=1)
    train(TrainConfig(out=str(tmp_path / "first"), lora_r=4, **common))
    cases = {
        "rank 4": dict(lora_r=8),
        "continues a LoRA run": dict(lora_r=0),
        "another dev split": dict(lora_r=4, seed=1),
    }
    for i, (message, change) in enumerate(cases.items()):
        with pytest.raises(TrainError, match=message):
            train(TrainConfig(out=str(tmp_path / f"bad{i}"), init=str(tmp_path / "first"), **common | change))
    with pytest.raises(TrainError, match="not a finished LoRA run .* or a shipped student"):
        train(TrainConfig(out=str(tmp_path / "bad"), lora_r=4, init=str(tmp_path / "nothing"), **common))


def test_precision_choice():
    from distill.train import precision

    def never(_):
        raise AssertionError("no probe needed")

    assert precision.choose("fp32", cuda=False, measure=never).name == "fp32"
    assert precision.choose("auto", cuda=True, cuda_bf16=True, measure=never).name == "bf16"
    assert precision.choose("auto", cuda=True, cuda_bf16=False, measure=never).name == "fp32"
    original = precision.cpu_has_bf16_unit
    try:
        precision.cpu_has_bf16_unit = lambda: False
        assert precision.choose("auto", cuda=False, measure=never).name == "fp32"
        precision.cpu_has_bf16_unit = lambda: True
        slightly = precision.choose("auto", cuda=False, measure={"fp32": 100.0, "bf16": 110.0}.get)
        assert slightly.name == "fp32" and slightly.bf16_tokens_per_s == 110.0  # under the margin
        assert precision.choose("auto", cuda=False, measure={"fp32": 100.0, "bf16": 240.0}.get).name == "bf16"
    finally:
        precision.cpu_has_bf16_unit = original
    with pytest.raises(ValueError):
        precision.choose("fp16", cuda=False)


def test_padding_share():
    from distill.train.data import epoch_batches, padding_share

    assert padding_share([2, 4, 3], [[0, 1], [2]]) == pytest.approx(1 - 9 / 11)
    lengths = [5, 100] * 40
    grouped = padding_share(lengths, epoch_batches(lengths, 4, 0, 0))
    assert grouped == 0.0  # length-grouped batches: each holds one length here
    assert padding_share(lengths, [list(range(i, i + 4)) for i in range(0, 80, 4)]) > 0.4


def test_auto_precision_is_measured_once_and_kept_on_resume(memorise_set, tmp_path, monkeypatch):
    import distill.train.loop as loop
    from distill.train import precision

    data, tokenizer, _ = memorise_set
    base = make_llama(tmp_path / "base", tokenizer, hidden=64)
    monkeypatch.setattr(precision, "cpu_has_bf16_unit", lambda: True)
    probes = []
    monkeypatch.setattr(loop, "measure_step", lambda model, batch, p: probes.append(p) or {"fp32": 100.0, "bf16": 250.0}[p])
    common = dict(data=str(data), base=str(base), max_steps=4, batch_size=4, dev_size=0, save_every=2, threads=2)

    def stop_at_three(step, total, loss, rate):
        if step == 3:
            raise _Stop()

    with pytest.raises(_Stop):
        train(TrainConfig(out=str(tmp_path / "run"), **common), progress=stop_at_three)
    assert probes == ["fp32", "bf16"]
    monkeypatch.setattr(loop, "measure_step", lambda *a: pytest.fail("a resumed run measured again"))
    summary = train(TrainConfig(out=str(tmp_path / "run"), resume=True, **common))
    assert summary["precision"]["name"] == "bf16" and summary["precision"]["fp32_tokens_per_s"] == 100.0
    assert "2.50x" in summary["precision"]["reason"]
    first = json.loads((tmp_path / "run" / "train_log.jsonl").read_text().splitlines()[0])
    assert first["precision"]["name"] == "bf16" and 0 <= first["padded_share"] < 1


def test_two_processes_log_the_loss_curve_of_one_with_accumulation(memorise_set, tmp_path):
    """`accelerate launch --multi_gpu` on a CPU machine: two processes joined over gloo, each taking
    every other batch, train like one process accumulating two batches a step."""
    data, tokenizer, _ = memorise_set
    base = make_llama(tmp_path / "base", tokenizer, hidden=64)
    args = ["--base", str(base), "--data", str(data), "--max-steps", "8", "--batch-size", "4", "--dev-size", "0",
            "--save-every", "0", "--threads", "1", "--lr", "3e-3", "--warmup", "2", "--precision", "fp32"]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
              "-m", "distill.cli", "train"]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    two = subprocess.run(launch + args + ["--out", str(tmp_path / "two")], capture_output=True, text=True, timeout=600, env=env)
    assert two.returncode == 0, two.stderr[-2000:]
    one = subprocess.run(DISTILL + args + ["--grad-accum", "2", "--out", str(tmp_path / "one")], capture_output=True,
                         text=True, timeout=600, env=env)
    assert one.returncode == 0, one.stderr[-2000:]
    info = json.loads((tmp_path / "two" / "training.json").read_text())
    assert info["processes"] == 2 and info["steps"] == 8
    curve_two, curve_one = _losses(tmp_path / "two"), _losses(tmp_path / "one")
    assert len(curve_two) == len(curve_one) == 8 and curve_two[-1] < curve_two[0]
    assert curve_two == pytest.approx(curve_one, rel=1e-4)
    assert info["tokens_seen"] == json.loads((tmp_path / "one" / "training.json").read_text())["tokens_seen"]


def test_gsm8k_dev_problems_and_their_derived_records_are_never_trained_on():
    from distill.records import Record
    from distill.train.loop import _split_dev

    def record(problem, thought="pot"):
        return Record(id=f"{problem}:{thought}:0", source="gsm8k/train", question=f"Q {problem}", thought=thought,
                      rationale="ans = 1", answer=1.0, gold=1.0, teacher="gold")

    # gsm8k-train-103 and -110 are dev problems; -0 and -1 are not
    records = [record("gsm8k-train-0"), record("gsm8k-train-103"), record("gsm8k-train-103", "eot"),
               record("gsm8k-train-103~s1"), record("gsm8k-train-103~p0"), record("gsm8k-train-110"), record("gsm8k-train-1")]
    train_records, dev = _split_dev(records, TrainConfig(data="d", out="o", dev_size=1))
    assert [r.id for r in train_records] == ["gsm8k-train-0:pot:0", "gsm8k-train-1:pot:0"]
    assert [d.question for d in dev] == ["Q gsm8k-train-103"]  # the first dev_size of them, originals only
    _, dev = _split_dev(records, TrainConfig(data="d", out="o", dev_size=32))
    assert [d.question for d in dev] == ["Q gsm8k-train-103", "Q gsm8k-train-110"]
    # data without GSM8K dev problems: a seeded sample is held out, as before
    other = [record(f"toy-{i}") for i in range(5)]
    train_records, dev = _split_dev(other, TrainConfig(data="d", out="o", dev_size=2))
    assert len(dev) == 2 and len(train_records) == 3


def test_train_tokens_sets_the_steps_for_about_that_many_tokens(memorise_set, tmp_path):
    data, tokenizer, _ = memorise_set
    base = make_llama(tmp_path / "base", tokenizer, hidden=64)
    summary = train(TrainConfig(data=str(data), out=str(tmp_path / "run"), base=str(base), train_tokens=6000, batch_size=4,
                                dev_size=0, save_every=0, threads=2, precision="fp32"))
    assert 1 < summary["steps"] and abs(summary["tokens_seen"] - 6000) < 0.25 * 6000


def test_eval_batch_size_must_be_positive(memorise_set, tmp_path):
    data, tokenizer, _ = memorise_set
    base = make_llama(tmp_path / "base", tokenizer, hidden=64)
    with pytest.raises(TrainError, match="--eval-batch-size must be at least 1"):
        train(TrainConfig(data=str(data), base=str(base), out=str(tmp_path / "run"), max_steps=1, eval_batch_size=0))
    assert not (tmp_path / "run").exists()
