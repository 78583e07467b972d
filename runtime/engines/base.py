"""The engine interface: prompts in, generated texts (with timings) out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

# Called with (prompt index, text so far) as tokens arrive, where the engine streams.
OnText = Callable[[int, str], None]


class EngineError(Exception):
    """The engine cannot load or run the model: one line for the user."""


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    tokens: int
    seconds: float                  # generation wall time, prompt processing included
    first_token_s: float | None     # time to the first generated token, where measurable


class Engine(Protocol):
    name: str
    load_seconds: float

    def generate(self, prompts: list[str], *, max_tokens: int, temperature: float, samples: int,
                 stop: list[str], on_text: OnText | None = None,
                 prefixes: list[str] | None = None) -> list[list[Generation]]:
        """`samples` generations for each prompt (greedy when temperature is 0). `prefixes[i]`, where
        given, is the part of `prompts[i]` that does not depend on the question (few-shot examples):
        an engine may compute it once and reuse it."""
        ...

    def close(self) -> None:
        ...


def cut_at_stop(text: str, stop: list[str]) -> str:
    for marker in stop:
        index = text.find(marker)
        if index >= 0:
            text = text[:index]
    return text


def common_prefix_length(sequences: list[list]) -> int:
    """How many leading items every sequence shares."""
    length = 0
    for column in zip(*sequences):
        if any(item != column[0] for item in column):
            break
        length += 1
    return length
