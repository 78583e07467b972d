"""Training examples: ETD records formatted by runtime/thoughts.py, tokenized, batched by length.

The loss covers the target only: prompt positions get label -100. Batches group examples of
similar length so padding wastes little compute; the batch order of every epoch is a pure
function of (seed, epoch), which is what lets a resumed run see exactly the same data order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from runtime.thoughts import format_example

from ..records import Record

IGNORE = -100


@dataclass
class Tokenized:
    input_ids: list[int]
    labels: list[int]          # causal: aligned with input_ids; seq2seq: the decoder targets
    thought: str


@dataclass
class Prepared:
    examples: list[Tokenized]
    truncated: int = 0
    dropped: int = 0           # nothing of the target survived truncation
    tokens: int = 0
    by_thought: dict = field(default_factory=dict)


def prepare(records: list[Record], tokenizer, *, max_length: int, encoder_decoder: bool) -> Prepared:
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no end-of-sequence token")
    out = Prepared(examples=[])
    for record in records:
        example = format_example(record.question, record.thought, record.rationale)
        prompt = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
        target = tokenizer(example.target, add_special_tokens=False)["input_ids"] + [eos]
        if encoder_decoder:
            was = len(prompt) > max_length or len(target) > max_length
            prompt, target = prompt[:max_length], target[:max_length]
            item = Tokenized(prompt + [eos], target, record.thought)
        else:
            ids = prompt + target
            was = len(ids) > max_length
            labels = [IGNORE] * len(prompt) + target
            ids, labels = ids[:max_length], labels[:max_length]
            if all(label == IGNORE for label in labels):
                out.dropped += 1
                continue
            item = Tokenized(ids, labels, record.thought)
        out.truncated += was
        out.tokens += len(item.input_ids) + (len(item.labels) if encoder_decoder else 0)
        out.by_thought[record.thought] = out.by_thought.get(record.thought, 0) + 1
        out.examples.append(item)
    return out


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Length-grouped batches in a shuffled order, deterministic in (seed, epoch)."""
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    # Sort within large windows: similar lengths share a batch, the epoch still mixes everything.
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(examples: list[Tokenized], pad_id: int, *, encoder_decoder: bool):
    import torch

    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    if encoder_decoder:
        label_width = max(len(e.labels) for e in examples)
        labels = torch.full((len(examples), label_width), IGNORE, dtype=torch.long)
    else:
        labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids)
        attention[row, :n] = 1
        labels[row, : len(example.labels)] = torch.tensor(example.labels)
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def padding_share(lengths: list[int], batches: list[list[int]]) -> float:
    """The share of a padded batch's positions that are padding, over an epoch's batches."""
    padded = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    return 1 - sum(lengths[i] for batch in batches for i in batch) / padded if padded else 0.0
