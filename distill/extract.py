"""A low-rank adapter from any trained student, for shipping through the adapter path.

The runtime ships a student as a LoRA adapter on its packaged base (`distill ship`), within the size
the repository takes. A full fine-tuning run, or a LoRA run of a rank too large to ship, is turned into
the best LoRA of a smaller rank: per linear layer, the truncated SVD of its weight update (the best
rank-r approximation in the Frobenius norm). Changes the adapter cannot carry (embeddings, norms: the
runtime merges linear-layer adapters only) are dropped and reported with their share of the update.
Fidelity is measured, not assumed: the share of the update's squared norm each rank keeps, and how
often the extracted model's next token equals the trained model's on the run's own examples.

Pure numpy here; loading the models (torch) happens at the edges (`measure_agreement`, `ship`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

PEFT_PREFIX = "base_model.model."
RANKS = (8, 16, 32, 48, 64, 96, 128, 192, 256)


@dataclass
class Factors:
    """One weight update's SVD, kept to cut at any rank."""
    u: np.ndarray
    s: np.ndarray
    vt: np.ndarray

    @property
    def energy(self) -> float:
        return float((self.s.astype(np.float64) ** 2).sum())

    def kept(self, rank: int) -> float:
        return float((self.s[:rank].astype(np.float64) ** 2).sum())

    def lora(self, rank: int) -> tuple[np.ndarray, np.ndarray]:
        """(A: rank x in, B: out x rank) with B @ A the best rank-`rank` approximation."""
        r = min(rank, self.s.shape[0])
        return np.ascontiguousarray(self.vt[:r]), np.ascontiguousarray(self.u[:, :r] * self.s[:r])


@dataclass
class Updates:
    linear: dict[str, Factors]                     # module ("model.layers.0.self_attn.q_proj") -> its update's SVD
    dropped: dict[str, float] = field(default_factory=dict)   # weight name -> squared norm of a change not carried

    @property
    def energy(self) -> float:
        return sum(f.energy for f in self.linear.values()) + sum(self.dropped.values())

    def retained(self, rank: int) -> float:
        """The share of the whole update's squared norm a rank-`rank` adapter keeps."""
        total = self.energy
        return sum(f.kept(rank) for f in self.linear.values()) / total if total else 1.0

    def dropped_share(self) -> float:
        total = self.energy
        return sum(self.dropped.values()) / total if total else 0.0

    def parameters(self, rank: int) -> int:
        return sum(min(rank, f.s.shape[0]) * (f.u.shape[0] + f.vt.shape[1]) for f in self.linear.values())


def is_linear(name: str, array: np.ndarray) -> bool:
    """A linear layer's weight the runtime's adapter merge takes (not the embeddings, not a norm)."""
    return array.ndim == 2 and name.endswith(".weight") and "embed" not in name and "lm_head" not in name


def updates(base: dict[str, np.ndarray], tuned: dict[str, np.ndarray]) -> Updates:
    """The SVD of every linear layer's update `tuned - base`; other changed tensors as dropped."""
    out = Updates(linear={})
    for name, after in tuned.items():
        before = base.get(name)
        if before is None or before.shape != after.shape:
            raise ValueError(f"{name}: the trained model and the base differ in shape (another base?)")
        delta = after.astype(np.float32) - before.astype(np.float32)
        if not delta.any():
            continue
        if is_linear(name, delta):
            u, s, vt = np.linalg.svd(delta, full_matrices=False)
            out.linear[name.removesuffix(".weight")] = Factors(u, s, vt)
        else:
            out.dropped[name] = float((delta.astype(np.float64) ** 2).sum())
    return out


def adapter(found: Updates, rank: int) -> tuple[dict[str, np.ndarray], dict]:
    """(PEFT tensors, adapter_config) of the rank-`rank` extraction: lora_alpha = r, so B @ A is the update."""
    tensors = {}
    for module, factors in found.linear.items():
        a, b = factors.lora(rank)
        tensors[f"{PEFT_PREFIX}{module}.lora_A.weight"] = a.astype(np.float32)
        tensors[f"{PEFT_PREFIX}{module}.lora_B.weight"] = b.astype(np.float32)
    targets = sorted({module.rsplit(".", 1)[-1] for module in found.linear})
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": rank, "lora_dropout": 0.0,
              "target_modules": targets, "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
              "use_dora": False, "inference_mode": True}
    return tensors, config


def choose_rank(agreement: dict[int, float], sizes: dict[int, int], *, target: float, limit: int) -> int:
    """The smallest rank whose measured agreement reaches `target` within `limit` bytes; else the
    most faithful one that fits."""
    fitting = [r for r in sorted(agreement) if sizes[r] <= limit]
    if not fitting:
        raise ValueError(f"no rank fits in {limit / 2**20:.0f} MB")
    good = [r for r in fitting if agreement[r] >= target]
    return good[0] if good else max(fitting, key=lambda r: (agreement[r], -r))


def _numpy_state(model) -> dict[str, np.ndarray]:
    state = {name: tensor.detach().float().cpu().numpy() for name, tensor in model.state_dict().items()}
    embed = state.get("model.embed_tokens.weight")
    if embed is not None and "lm_head.weight" in state and np.array_equal(state["lm_head.weight"], embed):
        del state["lm_head.weight"]  # tied: one matrix, counted once
    return state


def extract_run(folder, base: str, records: list, *, rank: int | None, target: float, limit: int,
                examples: int = 32, log=print) -> tuple[dict[str, np.ndarray], dict, dict]:
    """(float16 PEFT tensors, adapter_config, report) for the trained model in `folder` (full weights or a
    LoRA adapter) on `base`: rank `rank`, or the smallest of `RANKS` whose next-token agreement with the
    trained model on `examples` of `records` reaches `target` within `limit` bytes."""
    import torch

    from .train.data import prepare
    from .train.model import load_base, load_trained

    trained, tokenizer, _ = load_trained(folder)
    original, _, _ = load_base(base)
    log("decomposing the weight updates (truncated SVD per linear layer)")
    found = updates(_numpy_state(original), _numpy_state(trained))
    if not found.linear:
        raise ValueError("the trained model's linear layers equal the base's: nothing to ship")
    batch = prepare(records[:examples], tokenizer, max_length=256, encoder_decoder=False).examples
    if not batch:
        raise ValueError("no examples to measure the extraction on")

    def predictions(model) -> list:
        model.eval()
        out = []
        with torch.no_grad():
            for example in batch:
                ids = torch.tensor([example.input_ids])
                logits = model(input_ids=ids).logits[0, :-1]
                labelled = torch.tensor(example.labels[1:]) != -100
                out.append(logits[labelled].argmax(-1))
        return out

    reference = predictions(trained)
    positions = sum(len(p) for p in reference)
    extracted = copy.deepcopy(original)  # the base with each rank's updates written into its linear layers
    base_state, state = original.state_dict(), extracted.state_dict()

    def agreement(r: int) -> float:
        tensors, _ = adapter(found, r)
        with torch.no_grad():
            for module in found.linear:
                a = torch.from_numpy(tensors[f"{PEFT_PREFIX}{module}.lora_A.weight"])
                b = torch.from_numpy(tensors[f"{PEFT_PREFIX}{module}.lora_B.weight"])
                state[f"{module}.weight"].copy_(base_state[f"{module}.weight"] + b @ a)
        return sum(int((p == q).sum()) for p, q in zip(predictions(extracted), reference)) / positions

    def size(r: int) -> int:
        return 2 * found.parameters(r)  # float16

    candidates = [rank] if rank else [r for r in RANKS if size(r) <= limit]
    measured = {}
    for r in candidates:
        measured[r] = agreement(r)
        log(f"rank {r}: {size(r) / 2**20:.1f} MB, keeps {found.retained(r):.1%} of the update, "
            f"next token as the trained model's on {measured[r]:.1%} of {positions} positions")
        if not rank and measured[r] >= target:
            break
    chosen = rank or choose_rank(measured, {r: size(r) for r in measured}, target=target, limit=limit)
    tensors, config = adapter(found, chosen)
    report = {"rank": chosen, "from": str(folder), "positions": positions, "target_agreement": target,
              "agreement": {str(r): round(v, 4) for r, v in measured.items()},
              "retained": {str(r): round(found.retained(r), 4) for r in measured},
              "dropped": sorted(found.dropped), "dropped_share": round(found.dropped_share(), 4)}
    return {k: v.astype(np.float16) for k, v in tensors.items()}, config, report
