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
                 stop: list[str], on_text: OnText | None = None) -> list[list[Generation]]:
        """`samples` generations for each prompt (greedy when temperature is 0)."""
        ...

    def close(self) -> None:
        ...


def cut_at_stop(text: str, stop: list[str]) -> str:
    for marker in stop:
        index = text.find(marker)
        if index >= 0:
            text = text[:index]
    return text
