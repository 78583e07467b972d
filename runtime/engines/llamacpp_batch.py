"""Decoding several prompts at once with llama.cpp, greedy or sampled: one forward pass per step for all.

llama-cpp-python's completion API decodes one sequence at a time; on a CPU a 135M model's decode step
is bound by reading the weights, so stepping several sequences together costs little more than one.
The prompts form a prefix tree (`prefix_tree`): each shared token (the few-shot examples, the
question the thoughts share, the whole prompt of sampled paths) is evaluated once, its KV cell
tagged with every sequence through it (a unified KV cache); then one token per unfinished sequence
per step. With fewer slots than prompts, a finished sequence's cells are freed and the next prompts
enter in the same step (continuous batching), the examples shared into them from a held copy.

A prompt can be decoded again in its own slot (`again`, e.g. a teacher's next sampled path while none so
far verifies): its generated cells are dropped and its prompt's cells kept, so nothing is read twice.

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

Again = Callable[[int, str], "float | None"]  # (prompt index, the path's text) -> another path's temperature, or None

BATCH_TOKENS = 512  # tokens per llama_decode call while reading prompts
# Flash attention on: llama.cpp's CPU kernel skips masked KV cells, so a sequence attends only to its own
# cells of the unified cache. Measured on the 1.5B teacher, 32 sequences, 24 decoded tokens each (AMD EPYC
# Zen 4, 2 cores, no AMX): 50.1 tok/s on, 37.3 off, 40.9 llama.cpp's "auto".
FLASH_ATTENTION = 1


def generate_batch(llm, prompts: list[list[int]], *, max_tokens: int, stop: list[str], threads: int,
                   on_text: Callable[[int, str], None] | None = None, until: Until | None = None,
                   temperature: float | list[float] = 0.0, top_k: int = 40, seed: int = 0,
                   slots: int | None = None) -> list[Generation]:
    """One generation per tokenized prompt (see `generate_paths`, which this is with no `again`)."""
    return [paths[0] for paths in generate_paths(llm, prompts, max_tokens=max_tokens, stop=stop, threads=threads,
                                                 on_text=on_text, until=until, temperature=temperature, top_k=top_k,
                                                 seed=seed, slots=slots)]


def generate_paths(llm, prompts: list[list[int]], *, max_tokens: int, stop: list[str], threads: int,
                   on_text: Callable[[int, str], None] | None = None, until: Until | None = None,
                   temperature: float | list[float] = 0.0, top_k: int = 40, seed: int = 0,
                   slots: int | None = None, again: Again | None = None) -> list[list[Generation]]:
    """Generations per tokenized prompt: one, or more where `again(index, text)`, called as a prompt's
    latest path ends, returns the temperature of another path from that prompt (None: no more). The
    next path decodes in the same slot right away, from the prompt's cells already in the cache.

    One generation per tokenized prompt (greedy at temperature 0, else sampled; a list of
    temperatures gives each prompt its own, so a greedy answer and sampled paths share the forward
    passes); text is cut at the first stop string, like llama-cpp-python's
    `create_completion(stop=...)`, and ends where `until` accepts it.

    At most `slots` sequences are live at once (default: all): when one ends, the next prompts take
    its slot in the same forward pass as the others' next tokens (continuous batching), so a long
    straggler does not leave the batch nearly empty. Prompts enter in order, consecutive prompts that
    share more than the prefix common to all (one question's thoughts and paths) together."""
    import llama_cpp

    rng = np.random.default_rng(seed)
    temperatures = list(temperature) if isinstance(temperature, list) else [temperature] * len(prompts)

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
    slots = max(1, min(count, slots or count))
    # Every prompt's tokens but its last begin with `shared` tokens (the few-shot examples): read once,
    # held by an extra sequence (`holder`) and shared into each slot as its prompt enters.
    shared = common_prefix_length([p[:-1] for p in prompts])
    groups = admission_groups(prompts, shared, slots)
    holder = slots
    widest = max(len(p) - shared for p in prompts) + max_tokens
    ctx = batch_context(llm, shared + slots * widest + slots, slots + 1, threads)
    batch = llama_cpp.llama_batch_init(BATCH_TOKENS, 0, slots + 1)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    memory = llama_cpp.llama_get_memory(ctx)
    try:
        def decode(entries: list[tuple[int, int, list[int], int]]) -> dict[int, int]:
            """entries: (token, position, slot ids, prompt index wanting its next token or -1), in
            causal order; returns the next token (argmax or sampled) per prompt index that asked."""
            picks: dict[int, int] = {}
            for start in range(0, len(entries), BATCH_TOKENS):
                chunk = entries[start:start + BATCH_TOKENS]
                batch.n_tokens = len(chunk)
                for i, (token, pos, seqs, wants) in enumerate(chunk):
                    batch.token[i] = token
                    batch.pos[i] = pos
                    batch.n_seq_id[i] = len(seqs)
                    for k, seq in enumerate(seqs):
                        batch.seq_id[i][k] = seq
                    batch.logits[i] = wants >= 0
                status = llama_cpp.llama_decode(ctx, batch)
                if status != 0:
                    raise EngineError(f"llama.cpp could not decode the batch (status {status})")
                for i, (_, _, _, wants) in enumerate(chunk):
                    if wants >= 0:
                        row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, i), shape=(n_vocab,))
                        picks[wants] = pick(row, temperatures[wants])
            return picks

        started = time.perf_counter()
        decode([(token, pos, [holder], -1) for pos, token in enumerate(prompts[0][:shared])])
        generated: list[list[int]] = [[] for _ in range(count)]
        texts = [""] * count
        paths: list[list[Generation]] = [[] for _ in range(count)]
        first: float | None = None
        restarting: list[int] = []  # prompts whose next path begins this step, in their slots
        free = list(range(slots - 1, -1, -1))
        slot_of: dict[int, int] = {}
        nexts: dict[int, int] = {}   # live prompt -> its sampled token, not yet decoded
        waiting = list(reversed(groups))
        while waiting or nexts or restarting:
            entries = []
            # The live sequences' next tokens, the prompts starting another path, then those entering.
            for s, token in nexts.items():
                entries.append((token, len(prompts[s]) + len(generated[s]) - 1, [slot_of[s]], s))
            entries += [(prompts[s][-1], len(prompts[s]) - 1, [slot_of[s]], s) for s in restarting]
            restarting = []
            entering = []
            while waiting and len(waiting[-1]) <= len(free):
                group = waiting.pop()
                for s in group:
                    slot_of[s] = free.pop()
                    if shared:
                        llama_cpp.llama_memory_seq_cp(memory, holder, slot_of[s], 0, shared)
                entering.append(group)
            for group in entering:
                for token, pos, members in prefix_tree([prompts[s][shared:] for s in group]):
                    entries.append((token, shared + pos, [slot_of[group[m]] for m in members], -1))
                entries += [(prompts[s][-1], len(prompts[s]) - 1, [slot_of[s]], s) for s in group]
            picks = decode(entries)
            if first is None:
                first = time.perf_counter() - started
            nexts = {}
            for s, token in picks.items():
                done = llama_cpp.llama_vocab_is_eog(vocab, token)
                if not done:
                    generated[s].append(token)
                    text = llm.detokenize(generated[s]).decode("utf-8", errors="ignore")
                    cut = cut_at_stop(text, stop)
                    ended = until is not None and ends_line(texts[s], cut) and until(cut)
                    texts[s] = cut
                    if on_text:
                        on_text(s, cut)
                    done = cut != text or ended or len(generated[s]) >= max_tokens
                if done:
                    paths[s].append(Generation(texts[s], len(prompts[s]), len(generated[s]),
                                               time.perf_counter() - started, first))
                    following = again(s, texts[s]) if again is not None else None
                    if following is not None:
                        # Keep the prompt's cells but its last token, which is decoded again to draw the
                        # next path's first token at its own temperature.
                        llama_cpp.llama_memory_seq_rm(memory, slot_of[s], len(prompts[s]) - 1, -1)
                        generated[s], texts[s], temperatures[s] = [], "", following
                        restarting.append(s)
                        continue
                    slot = slot_of.pop(s)
                    llama_cpp.llama_memory_seq_rm(memory, slot, -1, -1)
                    free.append(slot)
                else:
                    nexts[s] = token
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)
    return paths


def batch_context(llm, tokens: int, sequences: int, threads: int):
    """A llama.cpp context on the loaded model for `sequences` sequences and `tokens` cells in all,
    as every batched decode here uses it (unified cache, flash attention); the caller frees it."""
    import llama_cpp

    params = llama_cpp.llama_context_default_params()
    params.n_ctx = -(-tokens // 256) * 256
    params.n_batch = params.n_ubatch = BATCH_TOKENS
    params.n_seq_max = sequences
    params.n_threads = params.n_threads_batch = threads
    params.kv_unified = True   # a shared prefix cell can belong to every sequence
    params.flash_attn_type = FLASH_ATTENTION
    params.no_perf = True
    ctx = llama_cpp.llama_init_from_model(llm.model, params)
    if not ctx:
        raise EngineError(f"llama.cpp could not make a context of {params.n_ctx} tokens for {sequences} sequences")
    return ctx


def step_seconds(llm, prompt: list[int], sequences: int, *, steps: int, threads: int) -> list[float]:
    """Seconds of each of `steps` decode steps that advance `sequences` sequences by one token each,
    after they share `prompt` (read once), in a context made as `generate_paths` makes it: what one
    step of a batch of greedy or sampled paths costs on this CPU, without the sampling around it."""
    import llama_cpp

    if sequences < 1 or steps < 1 or not prompt:
        raise EngineError("step timing needs a prompt, at least one sequence and at least one step")
    if len(prompt) > BATCH_TOKENS:
        raise EngineError(f"the prompt ({len(prompt)} tokens) is longer than one batch ({BATCH_TOKENS})")
    ctx = batch_context(llm, len(prompt) + sequences * (steps + 1), sequences, threads)  # each its own new cells
    batch = llama_cpp.llama_batch_init(BATCH_TOKENS, 0, sequences)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    times = []
    try:
        batch.n_tokens = len(prompt)
        for i, token in enumerate(prompt):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, i, sequences
            for k in range(sequences):
                batch.seq_id[i][k] = k
            batch.logits[i] = i == len(prompt) - 1
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise EngineError("llama.cpp could not decode the prompt")
        last = prompt[-1]
        for step in range(steps):
            batch.n_tokens = sequences
            for k in range(sequences):
                # each sequence its own next token, as sampled paths diverge
                batch.token[k] = (last + 1 + step * sequences + k) % n_vocab
                batch.pos[k], batch.n_seq_id[k], batch.seq_id[k][0], batch.logits[k] = len(prompt) + step, 1, k, 1
            started = time.perf_counter()
            if llama_cpp.llama_decode(ctx, batch) != 0:
                raise EngineError(f"llama.cpp could not decode a step of {sequences} sequences")
            llama_cpp.llama_get_logits_ith(ctx, sequences - 1)  # the logits are ready, as a sampler would read them
            times.append(time.perf_counter() - started)
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)
    return times


def admission_groups(prompts: list[list[int]], shared: int, slots: int) -> list[list[int]]:
    """Prompt indexes in order, in runs that enter the batch together: consecutive prompts sharing
    more than the `shared` tokens common to all (one question's thoughts and paths), at most `slots`
    a run, so their common part is read once."""
    groups: list[list[int]] = []
    for s, prompt in enumerate(prompts):
        if groups and len(groups[-1]) < slots and \
                common_prefix_length([prompt[:-1], prompts[groups[-1][-1]][:-1]]) > shared:
            groups[-1].append(s)
        else:
            groups.append([s])
    return groups


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
