"""The float32 reference: transformers on the very weights a bundle was converted from.

Quantized engines are judged against it (accuracy and speed ratios), so it runs the runtime's own
pipeline (`Student`): only the engine differs. It needs the `train` extra (torch, transformers) and
the source checkpoint recorded in the bundle manifest; it is a measuring stick, never a runtime path.
"""

from __future__ import annotations

import time
from pathlib import Path

from runtime.bundle import load_manifest
from runtime.engines.base import EngineError, Generation, OnText, Until, common_prefix_length, cut_at_stop
from runtime.student import Student

CHUNK = 8  # sequences per generate call: bounds the float32 KV cache (~40 MB per sequence here)


class TransformersEngine:
    name = "transformers"

    def __init__(self, source: str, *, threads: int | None = None):
        try:
            import torch
            from distill.train.model import BaseLoadError, load_base, load_trained
        except ImportError as exc:
            raise EngineError(f"the float32 reference needs the train extra ({exc.name} is missing)") from None
        if threads:
            torch.set_num_threads(threads)
        started = time.perf_counter()
        path = Path(source)
        try:
            if source.endswith(".gguf") or source == "smollm2":
                model, tokenizer, encoder_decoder = load_base(source, dtype=torch.float32)
            elif path.is_dir():
                model, tokenizer, encoder_decoder = load_trained(path)
            else:
                raise EngineError(f"the reference checkpoint {source} is missing")
        except BaseLoadError as exc:
            raise EngineError(str(exc)) from None
        if encoder_decoder:
            raise EngineError("the float32 reference serves causal students only")
        self.torch = torch
        self.model = model.float().eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._cached_prefix = None
        self.weights_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        self.load_seconds = time.perf_counter() - started

    def generate(self, prompts, *, max_tokens, temperature, samples, stop, on_text: OnText | None = None,
                 until: Until | None = None, prefixes: list[str] | None = None):
        # The shared prefix is found from the tokens themselves (prompts sorted, grouped by it).
        jobs = [(index, prompt) for index, prompt in enumerate(prompts) for _ in range(samples)]
        # Prompts of one thought share a long few-shot prefix: batch them together and compute
        # that prefix once (its KV cache is repeated over the batch; only the questions are new).
        jobs.sort(key=lambda job: job[1])
        tokens = {index: self.tokenizer(prompt, add_special_tokens=False)["input_ids"] for index, prompt in jobs}
        results: list[list[Generation]] = [[] for _ in prompts]
        for chunk in group_by_prefix(jobs, tokens):
            encoded = [tokens[index] for index, _ in chunk]
            started = time.perf_counter()
            outputs = self._generate_chunk(encoded, max_tokens=max_tokens, temperature=temperature, stop=stop,
                                           until=until)
            seconds = time.perf_counter() - started
            for (index, _), ids, generated in zip(chunk, encoded, outputs):
                text = cut_at_stop(self.tokenizer.decode(generated, skip_special_tokens=True), stop)
                if on_text:
                    on_text(index, text)
                results[index].append(Generation(text, len(ids), len(generated), seconds, None))
        return results

    def _generate_chunk(self, encoded: list[list[int]], *, max_tokens, temperature, stop,
                        until: Until | None = None) -> list[list[int]]:
        torch = self.torch
        shared = common_prefix_length(encoded)
        shared = min(shared, min(len(ids) for ids in encoded) - 1)   # at least one new token each
        prefix, tails = encoded[0][:shared], [ids[shared:] for ids in encoded]
        width = max(len(t) for t in tails)
        pad = self.tokenizer.pad_token_id
        # [prefix][padding][question]: the padding is masked out and positions follow the mask.
        rows = [prefix + [pad] * (width - len(t)) + t for t in tails]
        mask = [[1] * shared + [0] * (width - len(t)) + [1] * len(t) for t in tails]
        options = dict(max_new_tokens=max_tokens, pad_token_id=pad)
        if stop:
            options.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        if until is not None:
            options["stopping_criteria"] = [self._until_criterion(len(rows[0]), until)]
        if temperature > 0:
            options.update(do_sample=True, temperature=temperature, top_k=40)
        else:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            if shared:
                options["past_key_values"] = self._prefilled_cache(prefix, len(rows), len(rows[0]) + max_tokens)
            output = self.model.generate(input_ids=torch.tensor(rows), attention_mask=torch.tensor(mask), **options)
        return [[t for t in row[len(rows[0]):].tolist() if t != pad] for row in output]

    def _until_criterion(self, width: int, until: Until):
        """`until` as a transformers stopping criterion: asked per row when its last token holds a
        newline, with the row's generated text."""
        from transformers import StoppingCriteria

        tokenizer, torch = self.tokenizer, self.torch

        class UntilCriterion(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.tensor([
                    "\n" in tokenizer.decode(row[-1:]) and until(tokenizer.decode(row[width:], skip_special_tokens=True))
                    for row in input_ids.tolist()], dtype=torch.bool, device=input_ids.device)

        return UntilCriterion()

    def _prefilled_cache(self, prefix: list[int], batch: int, length: int):
        """A static KV cache for `batch` rows whose first len(prefix) positions hold the prefix.

        Static, because a growing (dynamic) cache copies every layer's keys and values at each
        step: with a 900-token few-shot prefix that copy was half of the decode time.
        """
        from transformers import StaticCache

        key = tuple(prefix)
        if self._cached_prefix is None or self._cached_prefix[0] != key:
            output = self.model(input_ids=self.torch.tensor([prefix]), use_cache=True)
            self._cached_prefix = (key, [(layer.keys, layer.values) for layer in output.past_key_values.layers])
        cache = StaticCache(config=self.model.config, max_cache_len=length)
        for layer, (keys, values) in zip(cache.layers, self._cached_prefix[1]):
            layer.update(keys.expand(batch, -1, -1, -1), values.expand(batch, -1, -1, -1))
        return cache

    def close(self) -> None:
        self.model = None


def group_by_prefix(jobs: list[tuple[int, str]], tokens: dict[int, list[int]]) -> list[list[tuple[int, str]]]:
    """Consecutive jobs (sorted by prompt) in chunks of at most CHUNK that share most of their prompt."""
    chunks: list[list[tuple[int, str]]] = []
    for job in jobs:
        if chunks and len(chunks[-1]) < CHUNK:
            first = tokens[chunks[-1][0][0]]
            if common_prefix_length([first, tokens[job[0]]]) * 2 >= len(first):
                chunks[-1].append(job)
                continue
        chunks.append([job])
    return chunks


def open_reference(bundle: str | Path, *, threads: int | None = None) -> Student:
    """A Student whose engine is transformers float32 on the bundle's source checkpoint."""
    manifest = load_manifest(bundle)
    engine = TransformersEngine(str(manifest.source["source"]), threads=threads)
    return Student(Path(bundle), manifest, engine, few_shot=manifest.source.get("trained") is False)
