"""The `llamacpp` teacher: a local GGUF model through llama-cpp-python, with the same prompts."""

from __future__ import annotations

import os
from pathlib import Path

from runtime.thoughts import STOP_SEQUENCES, Thought

from ..problems import Problem
from .base import Candidate, TeacherError
from runtime.fewshot import few_shot_prompt

from .prompts import clean_output


class LlamaCppTeacher:
    concurrency = 1  # one model, one context

    def __init__(self, model_path: str, *, samples: int = 1, temperature: float = 0.0, max_tokens: int = 384,
                 seed: int = 0, threads: int | None = None, n_ctx: int = 4096):
        path = Path(model_path)
        if not path.is_file():
            raise TeacherError(f"no GGUF model at {path}")
        from runtime.engines.llama_params import load_llama

        threads = threads or max(1, min(os.cpu_count() or 1, 8))
        self.llm = load_llama(path, n_ctx=n_ctx, threads=threads, seed=seed)
        self.samples, self.temperature, self.max_tokens = samples, temperature, max_tokens
        self.name = f"llamacpp:{path.name}"

    def generate(self, problem: Problem, thoughts: list[Thought]) -> list[Candidate]:
        candidates = []
        for thought in thoughts:
            prompt = few_shot_prompt(problem.question, thought)
            temperature = self.temperature if self.samples == 1 or self.temperature > 0 else 0.7
            for _ in range(self.samples):
                try:
                    out = self.llm.create_completion(prompt, max_tokens=self.max_tokens, temperature=temperature,
                                                     stop=list(STOP_SEQUENCES))
                except ValueError as exc:  # e.g. prompt longer than the context
                    raise TeacherError(f"llama.cpp refused the prompt: {exc}") from None
                candidates.append(Candidate(thought, clean_output(out["choices"][0]["text"])))
        return candidates

    def ask(self, messages: list[dict], *, n: int = 1, temperature: float = 0.7, max_tokens: int = 256) -> list[str]:
        """Free-form replies to a chat (question generation), through the model's chat template."""
        replies = []
        for _ in range(n):
            try:
                out = self.llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=temperature)
            except ValueError as exc:
                raise TeacherError(f"llama.cpp refused the chat: {exc}") from None
            replies.append(out["choices"][0]["message"]["content"] or "")
        return replies
