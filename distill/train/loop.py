"""The training loop: one screen of AdamW, warm-up + cosine, accumulation, clipping, checkpoints.

Runs the same on CPU, one GPU, or several processes under `accelerate launch --multi_gpu` or `torchrun`
(Accelerate places the model and syncs gradients; on a machine without CUDA the processes join over
gloo). Precision is fp32 or bf16 autocast (`precision.py`: `auto` measures which is faster here). The
loss logged per step is the mean over its micro-batches and processes, so one process with
`--grad-accum N` and N processes log the same curve. A checkpoint is written every `save_every` optimizer steps,
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

from ..problems import gsm8k_dev_ids
from ..records import read_records
from .data import collate, epoch_batches, padding_share, prepare
from .evaluate import DevProblem, evaluate
from .loss import can_skip_unlabelled, labelled_positions_loss
from .model import apply_lora, load_adapter_into, load_base, save_model
from .precision import PRECISIONS, Precision, choose, measure_step

PRECISION_FILE = "precision.json"


class TrainError(Exception):
    """Bad training input: the message is one line for the user."""


@dataclass
class TrainConfig:
    data: str
    out: str
    base: str = "smollm2"
    epochs: float = 1.0
    max_steps: int | None = None
    train_tokens: int | None = None  # or: about this many tokens (recipes compared at equal tokens)
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
    precision: str = "auto"       # auto | fp32 | bf16 (autocast; see precision.py)
    seed: int = 0
    save_every: int = 200
    eval_every: int = 0           # 0: evaluate only at the end
    dev_size: int = 32            # problems held out of training for evaluation
    dev_data: str | None = None   # or evaluate on the questions of this records file
    eval_max_new_tokens: int = 256
    eval_batch_size: int = 8
    threads: int | None = None
    resume: bool = False
    init: str | None = None       # a finished LoRA run or a shipped student: its adapter is the starting point
    thoughts: list[str] = field(default_factory=list)  # filled from the data


# What a run's numeric settings must be; a flag's name follows its field (`eval_batch_size`: --eval-batch-size).
# `--lr 0` is allowed: it checks that a run started with --init reproduces its adapter exactly.
AT_LEAST = {"batch_size": 1, "grad_accum": 1, "max_length": 1, "max_steps": 1, "train_tokens": 1, "lora_r": 0,
            "lr": 0, "warmup": 0, "weight_decay": 0, "save_every": 0, "eval_every": 0, "dev_size": 0,
            "eval_max_new_tokens": 1, "eval_batch_size": 1, "threads": 1}
POSITIVE = ("epochs", "lora_alpha", "clip")


def check_settings(settings) -> None:
    """TrainError (one line naming the flag) for a setting out of range. `settings` is a TrainConfig or anything
    with some of its fields as attributes (the CLI's arguments, checked before any data or model loads)."""
    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    for name, low in AT_LEAST.items():
        value = getattr(settings, name, None)
        if value is not None and value < low:
            raise TrainError(f"{flag(name)} must be at least {low}, not {value}")
    for name in POSITIVE:
        value = getattr(settings, name, None)
        if value is not None and value <= 0:
            raise TrainError(f"{flag(name)} must be positive, not {value}")
    if getattr(settings, "max_steps", None) is not None and getattr(settings, "train_tokens", None) is not None:
        raise TrainError("give --max-steps or --train-tokens, not both")


def _lr_lambda(warmup_steps: int, total: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _split_dev(records, config: TrainConfig):
    """(training records, dev problems evaluated during training). GSM8K's dev problems (`gsm8k:dev`)
    and everything derived from them (perturbed copies, sub-questions) are never trained on; the
    first `dev_size` of them are the dev problems, unless `dev_data` names others. Data without
    them holds out a seeded sample of `dev_size` problems instead."""
    parent = {id(r): r.problem_id.split("~")[0] for r in records}
    fixed = gsm8k_dev_ids()
    train_records = [r for r in records if parent[id(r)] not in fixed]
    if config.dev_data:
        dev_records = list(read_records(config.dev_data))
    elif len(train_records) < len(records):
        order = sorted(fixed & set(parent.values()), key=lambda i: int(i.rsplit("-", 1)[1]))
        held = set(order[:config.dev_size])
        dev_records = [r for r in records if parent[id(r)] in held and "~" not in r.problem_id]
    else:
        ids = sorted(set(parent.values()))
        rng = random.Random(config.seed)
        held = set(rng.sample(ids, min(config.dev_size, max(0, len(ids) - 1))))
        dev_records = [r for r in records if parent[id(r)] in held and "~" not in r.problem_id]
        train_records = [r for r in records if parent[id(r)] not in held]
    seen, dev = set(), []
    for record in dev_records:
        if record.question not in seen:
            seen.add(record.question)
            dev.append(DevProblem(record.question, record.gold))
    return train_records, dev


def _distributed_launch() -> int:
    """Processes the launcher started (torchrun, `accelerate launch --multi_gpu`): 1 when run alone."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def train(config: TrainConfig, *, progress=None) -> dict:
    import torch
    from accelerate import Accelerator, PartialState
    from accelerate.utils import broadcast_object_list

    check_settings(config)
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
    held_out = len({r.problem_id.split("~")[0] for r in records} - {r.problem_id.split("~")[0] for r in train_records})

    if config.precision not in PRECISIONS:
        raise TrainError(f"unknown precision {config.precision!r} (choose from {', '.join(PRECISIONS)})")
    # Without CUDA, Accelerate joins launched processes (gloo) only when told the run is on the CPU;
    # otherwise each would train alone, all writing the same run folder.
    launched = _distributed_launch()
    cuda = torch.cuda.is_available()
    partial = PartialState(cpu=launched > 1 and not cuda)
    if partial.num_processes != launched:
        raise TrainError(f"the launcher started {launched} processes but they did not join one run "
                         f"(Accelerate sees {partial.num_processes})")
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
    world = partial.num_processes
    # Every process takes the same number of batches an epoch (one left waiting would hang the others).
    batches_per_epoch = math.ceil(len(lengths) / config.batch_size) // world * world
    if not batches_per_epoch:
        raise TrainError(f"{len(lengths)} training examples cannot give each of {world} processes a batch")
    if config.max_steps:
        total = config.max_steps
    elif config.train_tokens:  # the steps that read about that many tokens, from the data's mean batch
        per_step = sum(lengths) / math.ceil(len(lengths) / config.batch_size) * config.grad_accum * world
        total = max(1, round(config.train_tokens / per_step))
    else:
        total = max(1, math.ceil(batches_per_epoch * config.epochs / config.grad_accum / world))
    padding = padding_share(lengths, epoch_batches(lengths, config.batch_size, config.seed, 0))

    precision = _stored_precision(out, config) if config.resume else None
    if precision is None:
        first = collate([prepared.examples[i] for i in epoch_batches(lengths, config.batch_size, config.seed, 0)[0]],
                        tokenizer.pad_token_id, encoder_decoder=encoder_decoder)
        decided = [choose(config.precision, cuda=cuda, cuda_bf16=cuda and torch.cuda.is_bf16_supported(),
                          measure=lambda p: measure_step(model, first, p)) if partial.is_main_process else None]
        broadcast_object_list(decided)  # every process trains at rank 0's choice
        precision = decided[0]
    # Autocast here rather than Accelerate's mixed_precision: that is fixed once per process, and one
    # process may train several times (feedback rounds, tests) at different precisions.
    accelerator = Accelerator(mixed_precision="no", cpu=launched > 1 and not cuda)
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
    main = accelerator.is_main_process
    rank = accelerator.process_index
    log_path = out / "train_log.jsonl"
    log = open(log_path, "a", encoding="utf-8") if main else open(os.devnull, "w", encoding="utf-8")
    if main:
        write_text_atomic(out / PRECISION_FILE, json.dumps(precision.as_dict()) + "\n")
        log.write(json.dumps({"precision": precision.as_dict(), "padded_share": round(padding, 4),
                              "processes": world}) + "\n")
        log.flush()
    metric = "etd" if len(config.thoughts) > 1 else config.thoughts[0]
    sparse_loss = can_skip_unlabelled(model, encoder_decoder=encoder_decoder, processes=world)

    def run_eval():
        report = evaluate(accelerator.unwrap_model(model), tokenizer, dev, [Thought(t) for t in config.thoughts],
                          encoder_decoder=encoder_decoder, max_new_tokens=config.eval_max_new_tokens,
                          batch_size=config.eval_batch_size)
        state["last_eval"] = report
        log.write(json.dumps({"step": state["step"], "eval": report}) + "\n")
        log.flush()
        if state["best"] is None or report[metric] > state["best"][metric]:
            state["best"] = dict(report, step=state["step"])
            save_model(accelerator.unwrap_model(model), tokenizer, out / "best")
        return report

    started = time.perf_counter() - state["seconds"]
    window_tokens, window_start, micro = 0, time.perf_counter(), 0
    step_loss, step_tokens = 0.0, 0
    while state["step"] < total:
        batches = epoch_batches(lengths, config.batch_size, config.seed, state["epoch"])[:batches_per_epoch][rank::world]
        while state["batch"] < len(batches) and state["step"] < total:
            indices = batches[state["batch"]]
            batch = collate([prepared.examples[i] for i in indices], tokenizer.pad_token_id, encoder_decoder=encoder_decoder)
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            boundary = (micro + 1) % config.grad_accum == 0
            with nullcontext() if boundary else accelerator.no_sync(model):
                with torch.autocast(accelerator.device.type, dtype=torch.bfloat16, enabled=precision.name == "bf16"):
                    loss = labelled_positions_loss(model, batch) if sparse_loss else model(**batch).loss
                accelerator.backward(loss / config.grad_accum)
            micro += 1
            state["batch"] += 1
            step_loss += loss.item() / config.grad_accum
            step_tokens += int(batch["attention_mask"].sum()) + (int((batch["labels"] != -100).sum()) if encoder_decoder else 0)
            if not boundary:
                continue
            if world > 1:  # the step's loss over every process, and the tokens they all read
                summed = accelerator.reduce(torch.tensor([step_loss, float(step_tokens)], device=accelerator.device), "sum")
                step_loss, step_tokens = summed[0].item() / world, int(summed[1].item())
            state["tokens"] += step_tokens
            window_tokens += step_tokens
            logged_loss, step_loss, step_tokens = step_loss, 0.0, 0
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
                entry = {"step": state["step"], "epoch": state["epoch"], "loss": round(logged_loss, 5),
                         "lr": scheduler.get_last_lr()[0], "tokens": state["tokens"], "tokens_per_s": round(rate, 1),
                         "elapsed_s": round(state["seconds"], 1)}
                log.write(json.dumps(entry) + "\n")
                log.flush()
                if progress:
                    progress(state["step"], total, logged_loss, rate)
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
            "precision": precision.as_dict(),
            "padded_share": round(padding, 4),
            "examples": len(prepared.examples),
            "examples_by_thought": prepared.by_thought,
            "truncated": prepared.truncated,
            "dropped_by_truncation": prepared.dropped,
            "steps": state["step"],
            "epochs_seen": round(state["step"] * config.grad_accum * world / batches_per_epoch, 3),
            "tokens_seen": state["tokens"],
            "wall_seconds": round(state["seconds"], 1),
            "tokens_per_second": round(state["tokens"] / max(1e-9, state["seconds"]), 1),
            "init": init,
            "dev_problems": len(dev),
            "held_out_problems": held_out,
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


def _stored_precision(out: Path, config: TrainConfig) -> Precision | None:
    """A resumed run keeps the precision it started with (a new probe could choose the other)."""
    try:
        stored = Precision(**json.loads((out / PRECISION_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return stored if config.precision in ("auto", stored.name) else None


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
