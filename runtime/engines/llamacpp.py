"""llama.cpp through llama-cpp-python: GGUF weights, memory-mapped, streaming.

Greedy calls with several prompts (a question's three thoughts, a batch of questions) decode them
together (`llamacpp_batch.py`): measured on 2 cores, 8 questions x 3 thoughts at 160 tokens took
21.7 s instead of 36.5 s with the base's few-shot prompts and 23.3 s instead of 30.3 s with a
trained student's short prompts, for ~45 MB more peak RSS. Several samples (or sampled prompts) are
decoded together the same way; a single sampled prompt streams, one token at a time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .base import EngineError, Generation, OnText, Until, ends_line
from .llama_params import load_llama
from .llamacpp_batch import Again, generate_batch, generate_paths


def default_threads() -> int:
    # Measured on 2 vCPUs: llama.cpp q8_0 decoded 33 tok/s on 1 thread and 74 on 2; use all cores.
    return max(1, os.cpu_count() or 1)


class LlamaCppEngine:
    name = "llama.cpp"

    def __init__(self, path: Path, *, threads: int | None = None, seed: int = 0, n_ctx: int = 2048,
                 batch_size: int = 8):
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            raise EngineError("llama-cpp-python is not installed") from None
        if not Path(path).is_file():
            raise EngineError(f"no GGUF file at {path}")
        threads = threads or default_threads()
        started = time.perf_counter()
        try:
            self.llm = load_llama(path, n_ctx=n_ctx, threads=threads, seed=seed)
        except (ValueError, RuntimeError) as exc:
            raise EngineError(f"llama.cpp cannot load {path.name}: {exc}") from None
        self.load_seconds = time.perf_counter() - started
        self.threads, self.seed = threads, seed
        self.batch_size = batch_size  # sequences decoded together (greedy); 1 = one at a time

    def generate(self, prompts, *, max_tokens, temperature, samples, stop, on_text: OnText | None = None,
                 until: Until | None = None, prefixes: list[str] | None = None):
        # `prefixes` needs no handling: the shared token prefix is found from the prompts themselves.
        if self.batch_size > 1 and temperature == 0 and samples == 1 and len(prompts) > 1:
            return self._generate_batched(prompts, max_tokens=max_tokens, stop=stop, on_text=on_text, until=until)
        if self.batch_size > 1 and temperature > 0 and len(prompts) * samples > 1:
            return self._sample_batched(prompts, samples, max_tokens=max_tokens, temperature=temperature, stop=stop,
                                        until=until)
        # One at a time: llama.cpp keeps the KV cache of the tokens the next prompt starts with, so
        # prompts of one thought in a row evaluate only their question.
        results = []
        for index, prompt in enumerate(prompts):
            prompt_tokens = len(self._tokenize(prompt, max_tokens))
            generations = []
            for _ in range(samples):
                started = time.perf_counter()
                first, text, count = None, "", 0
                stream = self.llm.create_completion(prompt, max_tokens=max_tokens, temperature=temperature,
                                                    top_k=1 if temperature == 0 else 40, stop=stop, stream=True)
                for chunk in stream:
                    choice = chunk["choices"][0]
                    if choice.get("finish_reason") is not None and not choice["text"]:
                        break  # the closing chunk carries no token
                    if first is None:
                        first = time.perf_counter() - started
                    count += 1
                    before, text = text, text + choice["text"]
                    if on_text:
                        on_text(index, text)
                    if until is not None and ends_line(before, text) and until(text):
                        stream.close()  # ends the generation where it stands
                        break
                generations.append(Generation(text, prompt_tokens, count, time.perf_counter() - started, first))
            results.append(generations)
        return results

    def _generate_batched(self, prompts, *, max_tokens, stop, on_text, until):
        """Greedy, at most `batch_size` sequences decoding at once, a finished one's slot going to the
        next prompt in the order given (so prompts of one thought, which share their few-shot prefix,
        go together)."""
        tokenized = [self._tokenize(p, max_tokens) for p in prompts]
        return [[generation] for generation in generate_batch(
            self.llm, tokenized, max_tokens=max_tokens, stop=stop, threads=self.threads, on_text=on_text, until=until,
            slots=self.batch_size)]

    def _sample_batched(self, prompts, samples, *, max_tokens, temperature, stop, until):
        """`samples` sampled paths per prompt, decoded together: the paths of one prompt share all of it,
        so it is read once. Seeded by the engine's seed, so a question gets the same paths each time it
        is asked (the same confidence, too)."""
        jobs = [(index, self._tokenize(prompt, max_tokens)) for index, prompt in enumerate(prompts) for _ in range(samples)]
        results: list[list] = [[] for _ in prompts]
        for start in range(0, len(jobs), self.batch_size):
            chunk = jobs[start:start + self.batch_size]
            generations = generate_batch(self.llm, [tokens for _, tokens in chunk], max_tokens=max_tokens, stop=stop,
                                         threads=self.threads, until=until, temperature=temperature,
                                         seed=self.seed + start)
            for (index, _), generation in zip(chunk, generations):
                results[index].append(generation)
        return results

    def decode_together(self, prompts: list[str], temperatures: list[float], *, max_tokens: int, stop: list[str],
                        until: Until | None = None, seed: int | None = None) -> list[Generation]:
        """One generation per prompt, each at its own temperature, at most `batch_size` decoding at
        once: a finished sequence's slot goes to the next prompt in the order given (keep prompts that
        share a prefix together), e.g. a teacher's greedy and sampled paths for many problems.
        `seed`: the sampling seed (default the engine's); calls that sample the same prompts again
        need different seeds to draw different paths."""
        return [paths[0] for paths in self.decode_paths(prompts, temperatures, max_tokens=max_tokens, stop=stop,
                                                         until=until, seed=seed)]

    def decode_paths(self, prompts: list[str], temperatures: list[float], *, max_tokens: int, stop: list[str],
                     until: Until | None = None, seed: int | None = None, again: Again | None = None) -> list[list[Generation]]:
        """`decode_together`, and more paths per prompt where `again(index, text)` returns the next path's
        temperature as the last ends (decoded in the same slot, its prompt not read again)."""
        tokens = [self._tokenize(p, max_tokens) for p in prompts]
        return generate_paths(self.llm, tokens, max_tokens=max_tokens, stop=stop, threads=self.threads, until=until,
                              temperature=list(temperatures), seed=self.seed if seed is None else seed,
                              slots=self.batch_size, again=again)

    def _tokenize(self, prompt: str, max_tokens: int) -> list[int]:
        """The prompt's tokens as `create_completion` feeds them (BOS where the model asks for one),
        refused when they and `max_tokens` do not fit the context."""
        tokens = self.llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        if len(tokens) + max_tokens > self.llm.n_ctx():
            raise EngineError(f"the prompt ({len(tokens)} tokens) does not fit the context of {self.llm.n_ctx()}")
        return tokens

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            llm.close()
