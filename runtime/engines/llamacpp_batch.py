"""Decoding several prompts at once with llama.cpp, greedy or sampled: one forward pass per step for all.

llama-cpp-python's completion API decodes one sequence at a time; on a CPU a 135M model's decode step
is bound by reading the weights, so stepping several sequences together costs little more than one.
The prompts form a prefix tree (`prefix_tree`): each shared token (the few-shot examples, the
question the thoughts share, the whole prompt of sampled paths) is evaluated once, its KV cell
tagged with every sequence through it (a unified KV cache); then one token per unfinished sequence
per step.

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
    """One generation per tokenized prompt (greedy at temperature 0, else sampled; a list of
    temperatures gives each prompt its own, so a greedy answer and sampled paths share the forward
    passes); text is cut at the first stop string, like llama-cpp-python's
    `create_completion(stop=...)`, and ends where `until` accepts it."""
    import llama_cpp

    rng = np.random.default_rng(seed)
    temperatures = temperature if isinstance(temperature, list) else [temperature] * len(prompts)

    def pick(row: np.ndarray, temperature: float) -> int:
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
    nodes = prefix_tree(prompts)
    needed = len(nodes) + count + count * max_tokens
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
            for i, (_, _, seqs, logits) in enumerate(entries):
                if logits:
                    row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, i), shape=(n_vocab,))
                    picks.append(pick(row, temperatures[seqs[0]]))
            return picks

        started = time.perf_counter()
        everyone = list(range(count))
        # Every shared token once, tagged with all the sequences whose prompts pass through it; then
        # each prompt's last token, whose logits start that sequence.
        entries = [(token, pos, seqs, False) for token, pos, seqs in nodes]
        entries += [(prompts[s][-1], len(prompts[s]) - 1, [s], True) for s in everyone]
        nexts: dict[int, int] = {}
        for start in range(0, len(entries), BATCH_TOKENS):
            chunk = entries[start:start + BATCH_TOKENS]
            picks = decode(chunk)
            nexts.update(zip([seqs[0] for _, _, seqs, wants in chunk if wants], picks))

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


def prefix_tree(prompts: list[list[int]]) -> list[tuple[int, int, list[int]]]:
    """The prompts' tokens but their last, as a prefix tree in decoding order: (token, position,
    sequences through it). A prompt shares the longest prefix it has with any earlier prompt, so few-shot
    examples, a question its thoughts share, and the whole prompt of K sampled paths are each
    evaluated once. Parents come before children, as causal decoding needs."""
    nodes: list[tuple[int, int, list[int]]] = []
    owner: list[list[int]] = []  # per prompt: the node index of each of its tokens but the last
    for s, prompt in enumerate(prompts):
        body = prompt[:-1]
        best, length = -1, 0
        for j in range(s):
            shared = common_prefix_length([body, prompts[j][:-1]])
            if shared > length:
                best, length = j, shared
        mine = owner[best][:length] if best >= 0 else []
        for index in mine:
            nodes[index][2].append(s)
        for position in range(length, len(body)):
            mine.append(len(nodes))
            nodes.append((body[position], position, [s]))
        owner.append(mine)
    return nodes
