"""The training loop: one screen of AdamW, warm-up + cosine, accumulation, clipping, checkpoints.

Runs the same on CPU, one GPU, or several under `accelerate launch` (Accelerate places the model,
syncs gradients and handles bf16). A checkpoint is written every `save_every` optimizer steps,
atomically (a temporary folder renamed into place), with the optimizer, scheduler, RNG states and
the position in the epoch's batch order; `resume=True` continues from it and ends with the same
weights as a run that was never stopped.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runtime.files import sha256_file, write_text_atomic
from runtime.gguf_tools import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from runtime.models import SHIPPED_MANIFEST
from runtime.thoughts import FORMAT_VERSION, Thought

from ..records import read_records
from .data import collate, epoch_batches, prepare
from .evaluate import DevProblem, evaluate
from .loss import can_skip_unlabelled, labelled_positions_loss
from .model import apply_lora, load_adapter_into, load_base, save_model


class TrainError(Exception):
    """Bad training input: the message is one line for the user."""


@dataclass
class TrainConfig:
    data: str
    out: str
    base: str = "smollm2"
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup: float = 0.03          # fraction of the steps (< 1) or a number of steps
    clip: float = 1.0
    max_length: int = 384
    lora_r: int = 0               # 0: full fine-tuning
    lora_alpha: float | None = None
    bits: int | None = None       # 4 or 8: QLoRA base through bitsandbytes (CUDA only)
    bf16: bool = False
    seed: int = 0
    save_every: int = 200
    eval_every: int = 0           # 0: evaluate only at the end
    dev_size: int = 32            # problems held out of training for evaluation
    dev_data: str | None = None   # or evaluate on the questions of this records file
    eval_max_new_tokens: int = 256
    threads: int | None = None
    resume: bool = False
    init: str | None = None       # a finished LoRA run or a shipped student: its adapter is the starting point
    thoughts: list[str] = field(default_factory=list)  # filled from the data


def _lr_lambda(warmup_steps: int, total: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _split_dev(records, config: TrainConfig):
    if config.dev_data:
        dev_records = list(read_records(config.dev_data))
        train_records = records
    else:
        ids = sorted({r.problem_id.split("~")[0] for r in records})
        rng = random.Random(config.seed)
        held = set(rng.sample(ids, min(config.dev_size, max(0, len(ids) - 1))))
        dev_records = [r for r in records if r.problem_id.split("~")[0] in held and "~" not in r.problem_id]
        train_records = [r for r in records if r.problem_id.split("~")[0] not in held]
    seen, dev = set(), []
    for record in dev_records:
        if record.question not in seen:
            seen.add(record.question)
            dev.append(DevProblem(record.question, record.gold))
    return train_records, dev


def train(config: TrainConfig, *, progress=None) -> dict:
    import torch
    from accelerate import Accelerator

    out = Path(config.out)
    try:
        records = list(read_records(config.data))
    except Exception as exc:  # RecordError, OSError: one line for the user
        raise TrainError(str(exc)) from None
    if not records:
        raise TrainError(f"{config.data} has no records")
    if config.threads:
        torch.set_num_threads(config.threads)
    config.thoughts = sorted({r.thought for r in records}, key=lambda t: ["pot", "eot", "cot"].index(t))
    train_records, dev = _split_dev(records, config)

    accelerator = Accelerator(mixed_precision="bf16" if config.bf16 else "no")
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    model, tokenizer, encoder_decoder = load_base(
        config.base, dtype=torch.bfloat16 if config.bits else None, load_in_bits=config.bits)
    if config.lora_r:
        if config.bits:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model)
        model = apply_lora(model, rank=config.lora_r, alpha=config.lora_alpha, encoder_decoder=encoder_decoder)
    elif config.bits:
        raise TrainError("--bits needs LoRA (--lora-r): a quantized base cannot be fully fine-tuned")
    init = _init_from(model, config) if config.init else None

    prepared = prepare(train_records, tokenizer, max_length=config.max_length, encoder_decoder=encoder_decoder)
    if not prepared.examples:
        raise TrainError("no training examples left after formatting and truncation")
    lengths = [len(e.input_ids) for e in prepared.examples]
    batches_per_epoch = math.ceil(len(lengths) / config.batch_size)
    total = config.max_steps or max(1, math.ceil(batches_per_epoch * config.epochs / config.grad_accum))
    warmup_steps = int(config.warmup * total) if config.warmup < 1 else int(config.warmup)

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(warmup_steps, total))
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()

    # A continued run goes on with the data order its next epoch would have had.
    state = {"step": 0, "epoch": init["epochs"] if init else 0, "batch": 0, "tokens": 0, "seconds": 0.0, "best": None, "last_eval": None}
    checkpoint = out / "checkpoint"
    if config.resume:
        _load_checkpoint(checkpoint, accelerator.unwrap_model(model), optimizer, scheduler, state)
    elif checkpoint.exists() or (out / "training.json").exists():
        raise TrainError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "train_log.jsonl"
    log = open(log_path, "a", encoding="utf-8")
    main = accelerator.is_main_process
    rank, world = accelerator.process_index, accelerator.num_processes
    metric = "etd" if len(config.thoughts) > 1 else config.thoughts[0]
    sparse_loss = can_skip_unlabelled(model, encoder_decoder=encoder_decoder, processes=world)

    def run_eval():
        report = evaluate(accelerator.unwrap_model(model), tokenizer, dev, [Thought(t) for t in config.thoughts],
                          encoder_decoder=encoder_decoder, max_new_tokens=config.eval_max_new_tokens)
        state["last_eval"] = report
        log.write(json.dumps({"step": state["step"], "eval": report}) + "\n")
        log.flush()
        if state["best"] is None or report[metric] > state["best"][metric]:
            state["best"] = dict(report, step=state["step"])
            save_model(accelerator.unwrap_model(model), tokenizer, out / "best")
        return report

    started = time.perf_counter() - state["seconds"]
    window_tokens, window_start, micro = 0, time.perf_counter(), 0
    while state["step"] < total:
        batches = epoch_batches(lengths, config.batch_size, config.seed, state["epoch"])[rank::world]
        while state["batch"] < len(batches) and state["step"] < total:
            indices = batches[state["batch"]]
            batch = collate([prepared.examples[i] for i in indices], tokenizer.pad_token_id, encoder_decoder=encoder_decoder)
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            boundary = (micro + 1) % config.grad_accum == 0
            with nullcontext() if boundary else accelerator.no_sync(model):
                if sparse_loss:
                    with accelerator.autocast():
                        loss = labelled_positions_loss(model, batch)
                else:
                    loss = model(**batch).loss
                accelerator.backward(loss / config.grad_accum)
            micro += 1
            state["batch"] += 1
            tokens = int(batch["attention_mask"].sum()) + (int((batch["labels"] != -100).sum()) if encoder_decoder else 0)
            state["tokens"] += tokens * world
            window_tokens += tokens * world
            if not boundary:
                continue
            if config.clip:
                accelerator.clip_grad_norm_(trainable, config.clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            now = time.perf_counter()
            state["seconds"] = now - started
            rate = window_tokens / max(1e-9, now - window_start)
            window_tokens, window_start = 0, now
            if main:
                entry = {"step": state["step"], "epoch": state["epoch"], "loss": round(loss.item(), 5),
                         "lr": scheduler.get_last_lr()[0], "tokens": state["tokens"], "tokens_per_s": round(rate, 1),
                         "elapsed_s": round(state["seconds"], 1)}
                log.write(json.dumps(entry) + "\n")
                log.flush()
                if progress:
                    progress(state["step"], total, loss.item(), rate)
                if config.eval_every and state["step"] % config.eval_every == 0 and dev:
                    run_eval()
                if config.save_every and state["step"] % config.save_every == 0 and state["step"] < total:
                    _save_checkpoint(checkpoint, accelerator.unwrap_model(model), optimizer, scheduler, state)
        if state["batch"] >= len(batches):
            state["epoch"] += 1
            state["batch"] = 0

    summary: dict = {}
    if main:
        if dev and (state["last_eval"] is None or state["last_eval"].get("step") != state["step"]):
            run_eval()
        save_model(accelerator.unwrap_model(model), tokenizer, out / "final")
        summary = {
            "base": config.base,
            "encoder_decoder": encoder_decoder,
            "data": str(config.data),
            "data_sha256": sha256_file(config.data),
            "format_version": FORMAT_VERSION,
            "thoughts": config.thoughts,
            "hyperparameters": {k: v for k, v in asdict(config).items() if k not in ("data", "out", "resume", "thoughts")},
            "method": f"lora r={config.lora_r}" if config.lora_r else "full fine-tuning",
            "examples": len(prepared.examples),
            "examples_by_thought": prepared.by_thought,
            "truncated": prepared.truncated,
            "dropped_by_truncation": prepared.dropped,
            "steps": state["step"],
            "epochs_seen": round(state["step"] * config.grad_accum * config.batch_size * world / len(lengths), 3),
            "tokens_seen": state["tokens"],
            "wall_seconds": round(state["seconds"], 1),
            "tokens_per_second": round(state["tokens"] / max(1e-9, state["seconds"]), 1),
            "init": init,
            "dev_problems": len(dev),
            "dev_accuracy": state["last_eval"],
            "best": state["best"],
            "device": str(accelerator.device),
            "processes": world,
        }
        write_text_atomic(out / "training.json", json.dumps(summary, indent=2) + "\n")
        shutil.rmtree(checkpoint, ignore_errors=True)
        shutil.rmtree(out / "checkpoint.old", ignore_errors=True)
    log.close()
    accelerator.end_training()
    return summary


def _finished_adapter(path: Path) -> tuple[dict, Path]:
    """(its training record, its adapter folder) for what `--init` names: a finished LoRA run
    (training.json and final/) or a shipped student (shipped.json beside its adapter), which is
    what a clean checkout has once the run folder is gone."""
    if (path / "training.json").is_file() and (path / "final" / ADAPTER_CONFIG).is_file():
        return json.loads((path / "training.json").read_text(encoding="utf-8")), path / "final"
    if (path / SHIPPED_MANIFEST).is_file() and (path / ADAPTER_CONFIG).is_file():
        manifest = json.loads((path / SHIPPED_MANIFEST).read_text(encoding="utf-8"))
        return manifest["training"] | {"base": manifest["base"], "data_sha256": manifest["data_sha256"]}, path
    raise TrainError(f"--init {path}: not a finished LoRA run (training.json and final/) or a shipped student (shipped.json)")


def _init_from(model, config: TrainConfig) -> dict:
    """Load the adapter `config.init` names into `model`; what it was, for training.json."""
    run = Path(config.init)
    if not config.lora_r:
        raise TrainError("--init continues a LoRA run; to continue full fine-tuning pass --base RUN/final")
    info, adapter = _finished_adapter(run)
    if info.get("base") != config.base:
        raise TrainError(f"--init {run} was trained on base {info.get('base')!r}, this run on {config.base!r}")
    same_split = (info.get("data_sha256") == sha256_file(config.data)
                  and {k: info["hyperparameters"].get(k) for k in ("seed", "dev_size", "dev_data")}
                  == {"seed": config.seed, "dev_size": config.dev_size, "dev_data": config.dev_data})
    if not same_split:
        raise TrainError(f"--init {run} used other data or another dev split (--seed, --dev-size, --dev-data): "
                         "its dev problems would be trained on or its held-out ones differ")
    try:
        load_adapter_into(model, adapter)
    except (OSError, ValueError) as exc:
        raise TrainError(f"--init: {exc}") from None
    earlier = info.get("init") or {}
    return {"run": str(run), "adapter_sha256": sha256_file(adapter / ADAPTER_WEIGHTS),
            "epochs": math.ceil(info["epochs_seen"] - 1e-9) + earlier.get("epochs", 0),
            "steps": info["steps"] + earlier.get("steps", 0), "tokens_seen": info["tokens_seen"] + earlier.get("tokens_seen", 0),
            "wall_seconds": info["wall_seconds"] + earlier.get("wall_seconds", 0.0)}


def _trainable_state(model) -> dict:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if k in names}


def _save_checkpoint(folder: Path, model, optimizer, scheduler, state: dict) -> None:
    import torch

    temporary = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    torch.save({
        "model": _trainable_state(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "state": state,
        "rng": {"python": random.getstate(), "torch": torch.get_rng_state()},
    }, temporary / "state.pt")
    old = folder.with_name(f"{folder.name}.old")
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    temporary.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(folder: Path, model, optimizer, scheduler, state: dict) -> None:
    import torch

    if not folder.exists() and folder.with_name(f"{folder.name}.old").exists():
        folder = folder.with_name(f"{folder.name}.old")  # killed between the two renames
    if not (folder / "state.pt").exists():
        raise TrainError(f"nothing to resume: no checkpoint in {folder.parent}")
    saved = torch.load(folder / "state.pt", map_location="cpu", weights_only=False)
    missing = model.load_state_dict(saved["model"], strict=False)
    if missing.unexpected_keys:
        raise TrainError("the checkpoint does not fit this model (different base or LoRA settings)")
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    state.update(saved["state"])
    random.setstate(saved["rng"]["python"])
    torch.set_rng_state(saved["rng"]["torch"])
