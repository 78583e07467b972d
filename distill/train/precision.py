"""fp32 or bf16 autocast for training, chosen by measurement where it could go either way.

bf16 autocast halves the bytes a matrix multiply reads and, on CPUs with bf16 matrix units (AMX,
AVX512-BF16) or on CUDA, runs the multiplies on them: 2-3x the tokens/s of fp32 when it pays. On
CPUs without them torch emulates bf16 and is slower than fp32. `auto` therefore takes fp32 on a CPU
without such a unit, bf16 on CUDA that supports it, and otherwise measures: one forward and backward
pass of the model itself on a slice of the first training batch in each precision, bf16 kept only
when it is clearly faster (`MARGIN`). The weights and optimizer stay fp32 either way (autocast).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from runtime.cpu import cpu_info

PRECISIONS = ("auto", "fp32", "bf16")
MARGIN = 1.15          # bf16 must measure this much faster than fp32 to be chosen
PROBE_ROWS, PROBE_TOKENS, PROBE_REPEATS = 4, 128, 2
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")   # "bf16": ARMv8.6 BFloat16 instructions


@dataclass(frozen=True)
class Precision:
    name: str                     # "fp32" or "bf16": what the run uses
    reason: str                   # why, for the log and training.json
    fp32_tokens_per_s: float | None = None   # the probe's measurements, when it ran
    bf16_tokens_per_s: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def cpu_has_bf16_unit() -> bool:
    return any(flag in cpu_info().flags for flag in BF16_CPU_FLAGS)


def choose(requested: str, *, cuda: bool, cuda_bf16: bool = False, measure=None) -> Precision:
    """The precision for `requested` ("auto", "fp32" or "bf16"). `measure(precision) -> tokens/s`
    times the model; only `auto` on a CPU with a bf16 unit calls it."""
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r} (choose from {', '.join(PRECISIONS)})")
    if requested != "auto":
        return Precision(requested, "asked for")
    if cuda:
        return Precision("bf16", "CUDA with bf16") if cuda_bf16 else Precision("fp32", "CUDA without bf16 support")
    if not cpu_has_bf16_unit():
        return Precision("fp32", "this CPU has no bf16 matrix unit (AMX, AVX512-BF16 or ARM BF16)")
    fp32, bf16 = measure("fp32"), measure("bf16")
    chosen = "bf16" if bf16 >= MARGIN * fp32 else "fp32"
    return Precision(chosen, f"measured: bf16 autocast {bf16 / fp32:.2f}x fp32 (chosen above {MARGIN}x)",
                     round(fp32, 1), round(bf16, 1))


def measure_step(model, batch: dict, precision: str) -> float:
    """Tokens/s of forward + backward on `batch` (a slice of it: `PROBE_ROWS` x `PROBE_TOKENS`) on
    the CPU at `precision`, the best of `PROBE_REPEATS` after one warm-up. Leaves no gradients."""
    import torch

    probe = {k: v[:PROBE_ROWS, :PROBE_TOKENS] for k, v in batch.items()}
    if probe["labels"].shape == probe["input_ids"].shape:  # causal: the slice may hold only prompt tokens
        probe["labels"] = probe["input_ids"].masked_fill(probe["attention_mask"] == 0, -100)
    tokens = int(probe["attention_mask"].sum())
    best = float("inf")
    rng = torch.get_rng_state()
    for attempt in range(PROBE_REPEATS + 1):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(**probe).loss
        loss.backward()
        model.zero_grad(set_to_none=True)
        if attempt:
            best = min(best, time.perf_counter() - started)
    torch.set_rng_state(rng)
    return tokens / best
