"""CTranslate2 int8: batches prompts (and samples) that share a prefix in one call."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .base import EngineError, Generation, OnText, Until, common_prefix_length, cut_at_stop


def default_threads() -> int:
    # Measured on 2 vCPUs: int8 decoding ran ~62 tok/s with 1 intra thread, ~24 with 2.
    return 1


class CTranslate2Engine:
    name = "ctranslate2"

    def __init__(self, path: Path, tokenizer_path: Path, *, threads: int | None = None, seed: int = 0,
                 compute_type: str = "default"):
        try:
            import ctranslate2
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EngineError(f"{exc.name} is not installed") from None
        if not (Path(path) / "model.bin").is_file():
            raise EngineError(f"no CTranslate2 model in {path}")
        if not Path(tokenizer_path).is_file():
            raise EngineError(f"no tokenizer.json at {tokenizer_path}")
        started = time.perf_counter()
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        try:
            self.generator = ctranslate2.Generator(str(path), device="cpu", compute_type=compute_type,
                                                   intra_threads=threads or default_threads())
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"CTranslate2 cannot load {path}: {exc}") from None
        self.load_seconds = time.perf_counter() - started
        self.seed = seed
        config = Path(path) / "config.json"
        self.end_token = json.loads(config.read_text()).get("eos_token") if config.exists() else None

    def generate(self, prompts, *, max_tokens, temperature, samples, stop, on_text: OnText | None = None,
                 until: Until | None = None, prefixes: list[str] | None = None):
        options = dict(max_length=max_tokens, include_prompt_in_result=False)
        if self.end_token:
            options["end_token"] = self.end_token
        if temperature > 0:
            # The seed is process-wide in CTranslate2 4.x (generate_batch takes none): set per call, so a
            # question's samples are the same each time it is asked.
            import ctranslate2

            ctranslate2.set_random_seed(self.seed)
            options.update(sampling_temperature=temperature, sampling_topk=40)
        else:
            options.update(sampling_topk=1)
        results: list[list[Generation]] = [[] for _ in prompts]
        # One call per shared prefix (a thought's few-shot examples): CTranslate2 computes a static
        # prompt once and caches its state, so only each question is new work.
        groups: dict[str, list[int]] = {}
        for index, prompt in enumerate(prompts):
            prefix = prefixes[index] if prefixes and prompt.startswith(prefixes[index]) else ""
            groups.setdefault(prefix, []).append(index)
        for prefix, indices in groups.items():
            encoded = [self.tokenizer.encode(prompts[index], add_special_tokens=False).tokens for index in indices]
            # The prefix's own tokens can end differently ("\n\n" vs "\n","\n" before "Question"):
            # the static prompt is the part the whole prompts really share, token for token.
            shared = 0
            if prefix:
                alone = self.tokenizer.encode(prefix, add_special_tokens=False).tokens
                shared = min(common_prefix_length([alone] + encoded), min(len(t) for t in encoded) - 1)
            static = encoded[0][:shared]
            batch, owners = [], []
            for index, tokens in zip(indices, encoded):
                batch += [tokens[shared:]] * samples
                owners += [index] * samples
            started = time.perf_counter()
            output = self.generator.generate_batch(batch, **options, **({"static_prompt": static} if static else {}),
                                                   callback=self._stopper(len(batch), stop, until))
            seconds = time.perf_counter() - started
            for owner, tokens, result in zip(owners, batch, output):
                ids = result.sequences_ids[0]
                text = cut_at_stop(self.tokenizer.decode(ids, skip_special_tokens=True), stop)
                if on_text:
                    on_text(owner, text)
                # One batched call: each generation reports the batch's time, first-token time unknown.
                results[owner].append(Generation(text, len(static) + len(tokens), len(ids), seconds, None))
        return results

    def _stopper(self, size: int, stop: list[str], until: Until | None):
        """End each sequence at its first stop sequence, as llama.cpp does: without it CTranslate2
        decodes every sequence to max_tokens (one base-model PoT question at a time on 2 busy cores:
        median 6.2 -> 3.3 s; a batch still runs as long as its longest sequence). `until` is asked
        when a token holds a newline, with the whole text so far."""
        generated: list[list[int]] = [[] for _ in range(size)]
        longest = max((len(self.tokenizer.encode(s, add_special_tokens=False).ids) for s in stop), default=1) + 2

        def step(result) -> bool:
            ids = generated[result.batch_id]
            ids.append(result.token_id)
            tail = self.tokenizer.decode(ids[-longest:], skip_special_tokens=True)
            if any(marker in tail for marker in stop):
                return True
            return (until is not None and "\n" in self.tokenizer.decode([result.token_id], skip_special_tokens=True)
                    and until(self.tokenizer.decode(ids, skip_special_tokens=True)))

        return step

    def close(self) -> None:
        generator, self.generator = getattr(self, "generator", None), None
        del generator  # never left to interpreter shutdown (it aborts the process there)
