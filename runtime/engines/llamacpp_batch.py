"""Decoding several prompts at once with llama.cpp, greedy or sampled: one forward pass per step for all.

llama-cpp-python's completion API decodes one sequence at a time; on a CPU a 135M model's decode step
is bound by reading the weights, so stepping several sequences together costs little more than one.
The prompts' shared token prefix (the few-shot examples, or the question the three thoughts share)
is evaluated once, its KV cells tagged with every sequence (a unified KV cache), then each prompt's
tail, then one token per unfinished sequence per step.

Each call makes its own small llama.cpp context on the loaded model, sized for that call, and frees it:
the engine's long-lived context stays as it was, and memory is only held while decoding.

Sampling (temperature > 0) draws each next token from the top-k of the softmax at that temperature,
with numpy's generator seeded per call, so K samples of one question are K sequences that share
the whole prompt: it is evaluated once, and the K paths decode together (what confidence needs).
"""

from __future__ import annotations

import ctypes
import time
from typing import Callable

import numpy as np

from .base import EngineError, Generation, Until, common_prefix_length, cut_at_stop, ends_line

BATCH_TOKENS = 512  # tokens per llama_decode call while reading prompts


def generate_batch(llm, prompts: list[list[int]], *, max_tokens: int, stop: list[str], threads: int,
                   on_text: Callable[[int, str], None] | None = None, until: Until | None = None,
                   temperature: float | list[float] = 0.0, top_k: int = 40, seed: int = 0) -> list[Generation]:
    """One generation per tokenized prompt (greedy at temperature 0, else sampled; lists of
    temperatures and token limits give each prompt its own, so a greedy answer and sampled paths can
    share the forward passes); text is cut at
    the first stop string, like llama-cpp-python's `create_completion(stop=...)`, and ends where
    `until` accepts it."""
    import llama_cpp

    rng = np.random.default_rng(seed)

    def pick(row: np.ndarray) -> int:
        if temperature <= 0:
            return int(row.argmax())
        k = min(top_k, row.shape[0]) if top_k > 0 else row.shape[0]
        top = np.argpartition(row, -k)[-k:]
        scaled = (row[top].astype(np.float64) - row[top].max()) / temperature
        weights = np.exp(scaled)
        return int(top[rng.choice(k, p=weights / weights.sum())])

    count = len(prompts)
    if count == 0:
        return []
    if any(not p for p in prompts):
        raise EngineError("an empty prompt cannot be decoded")
    # Keep at least one token of every prompt out of the shared part: its logits start that sequence.
    shared = min(common_prefix_length(prompts), min(len(p) for p in prompts) - 1)
    needed = shared + sum(len(p) - shared for p in prompts) + count * max_tokens
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = -(-needed // 256) * 256
    params.n_batch = params.n_ubatch = BATCH_TOKENS
    params.n_seq_max = count
    params.n_threads = params.n_threads_batch = threads
    params.kv_unified = True   # a shared prefix cell can belong to every sequence
    params.no_perf = True
    ctx = llama_cpp.llama_init_from_model(llm.model, params)
    if not ctx:
        raise EngineError(f"llama.cpp could not make a context of {params.n_ctx} tokens for {count} sequences")
    batch = llama_cpp.llama_batch_init(BATCH_TOKENS, 0, count)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    try:
        def decode(entries: list[tuple[int, int, list[int], bool]]) -> list[int]:
            """entries: (token, position, sequence ids, wants logits); returns the next token (argmax
            or sampled) of each entry that wanted logits, in order."""
            batch.n_tokens = len(entries)
            for i, (token, pos, seqs, logits) in enumerate(entries):
                batch.token[i] = token
                batch.pos[i] = pos
                batch.n_seq_id[i] = len(seqs)
                for k, seq in enumerate(seqs):
                    batch.seq_id[i][k] = seq
                batch.logits[i] = logits
            status = llama_cpp.llama_decode(ctx, batch)
            if status != 0:
                raise EngineError(f"llama.cpp could not decode the batch (status {status})")
            picks = []
            for i, (_, _, _, logits) in enumerate(entries):
                if logits:
                    row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, i), shape=(n_vocab,))
                    picks.append(pick(row))
            return picks

        started = time.perf_counter()
        everyone = list(range(count))
        prefix = prompts[0][:shared]
        for start in range(0, shared, BATCH_TOKENS):
            decode([(t, start + j, everyone, False) for j, t in enumerate(prefix[start:start + BATCH_TOKENS])])

        # Each prompt's tail; a sequence's first token comes from the logits of its last prompt token.
        tails = [(s, shared + j, t, j == len(prompts[s]) - shared - 1)
                 for s in everyone for j, t in enumerate(prompts[s][shared:])]
        nexts: dict[int, int] = {}
        for start in range(0, len(tails), BATCH_TOKENS):
            chunk = tails[start:start + BATCH_TOKENS]
            picks = decode([(t, pos, [s], last) for s, pos, t, last in chunk])
            nexts.update(zip([s for s, _, _, last in chunk if last], picks))

        generated: list[list[int]] = [[] for _ in everyone]
        texts = [""] * count
        seconds = [0.0] * count
        first = time.perf_counter() - started
        active = list(everyone)
        while active:
            still = []
            for s in active:
                token = nexts[s]
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    seconds[s] = time.perf_counter() - started
                    continue
                generated[s].append(token)
                text = llm.detokenize(generated[s]).decode("utf-8", errors="ignore")
                cut = cut_at_stop(text, stop)
                ended = until is not None and ends_line(texts[s], cut) and until(cut)
                texts[s] = cut
                if on_text:
                    on_text(s, cut)
                if cut != text or ended or len(generated[s]) >= max_tokens:
                    seconds[s] = time.perf_counter() - started
                    continue
                still.append(s)
            active = still
            if active:
                picks = decode([(nexts[s], len(prompts[s]) + len(generated[s]) - 1, [s], True) for s in active])
                nexts = dict(zip(active, picks))
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)
    return [Generation(texts[s], len(prompts[s]), len(generated[s]), seconds[s], first) for s in everyone]
