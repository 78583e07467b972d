"""The engine interface: prompts in, generated texts (with timings) out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

# Called with (prompt index, text so far) as tokens arrive, where the engine streams.
OnText = Callable[[int, str], None]
# Called with a generation's text so far each time it completes a line: True ends that generation
# (text kept), e.g. `thoughts.is_looping`.
Until = Callable[[str], bool]


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
                 stop: list[str], on_text: OnText | None = None, until: Until | None = None,
                 prefixes: list[str] | None = None) -> list[list[Generation]]:
        """`samples` generations for each prompt (greedy when temperature is 0), each ending at
        max_tokens, its first stop string (cut off) or the first completed line `until` accepts.
        `prefixes[i]`, where given, is the part of `prompts[i]` that does not depend on the
        question (few-shot examples): an engine may compute it once and reuse it."""
        ...

    def close(self) -> None:
        ...


def cut_at_stop(text: str, stop: list[str]) -> str:
    for marker in stop:
        index = text.find(marker)
        if index >= 0:
            text = text[:index]
    return text


def ends_line(old: str, new: str) -> bool:
    """Did the text grow from `old` to `new` by a piece holding a newline (a line completed)?"""
    return "\n" in new[len(old):] if new.startswith(old) else "\n" in new


def common_prefix_length(sequences: list[list]) -> int:
    """How many leading items every sequence shares."""
    length = 0
    for column in zip(*sequences):
        if any(item != column[0] for item in column):
            break
        length += 1
    return length
