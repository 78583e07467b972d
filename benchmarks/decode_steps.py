"""What one llama.cpp decode step costs with 1, 2, 4, ... sequences decoding together, on this CPU.

The runtime decodes several sequences at once: a question's thoughts, a batch's questions, and the K
sampled paths that rate an answer's confidence. Whether that pays depends on the CPU: on 2 cores of
a Zen 4 EPYC a step of 4 sequences cost 2.6x a step of one, so 4 sampled paths take ~2.6x as long as
one greedy path of the same length. This measures it for a bundle's GGUF weights, the way the
batch decoder runs (`runtime.engines.llamacpp_batch.step_seconds`): the student's prompt read once,
then steps of one new token per sequence. Medians per round, rounds alternating over the sequence
counts, so a drift of the machine shows as rounds that disagree.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from runtime.thoughts import Thought, format_prompt

from .solver_throughput import cpu_model
from .targets import Target, TargetError

QUESTION = ("Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for "
            "her friends every day with four. She sells the remainder at the farmers' market daily for $2 per "
            "fresh duck egg. How much in dollars does she make every day at the farmers' market?")
MAX_SEQUENCES = 64


def parse_sequences(spec: str) -> list[int]:
    """`1,2,4,8` -> [1, 2, 4, 8]; a ValueError names what is wrong."""
    try:
        counts = [int(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--sequences takes whole numbers separated by commas, not {spec!r}") from None
    if not counts or any(not 1 <= n <= MAX_SEQUENCES for n in counts):
        raise ValueError(f"--sequences: each count must be between 1 and {MAX_SEQUENCES}")
    return sorted(set(counts))


def measure(target: Target, sequences: list[int], *, steps: int = 40, rounds: int = 2,
            threads: int | None = None) -> dict:
    """Per sequence count: the median step in each round, their median, per token, and relative to the
    smallest count's step."""
    from runtime.engines.base import EngineError
    from runtime.engines.llamacpp import default_threads
    from runtime.engines.llamacpp_batch import step_seconds
    from runtime.engines.llama_params import load_llama

    if target.engine != "llama.cpp":
        raise TargetError(f"{target.label}: step timing measures llama.cpp (GGUF) weights, not {target.engine}")
    threads = threads or default_threads()
    path = Path(target.bundle) / target.weights_path
    try:
        llm = load_llama(path, n_ctx=512, threads=threads, seed=0)
    except (ValueError, RuntimeError) as exc:
        raise TargetError(f"{target.label}: llama.cpp cannot load {path.name}: {exc}") from None
    medians: dict[int, list[float]] = {n: [] for n in sequences}
    try:
        prompt = llm.tokenize(format_prompt(QUESTION, Thought.POT).encode("utf-8"), add_bos=True, special=True)
        step_seconds(llm, prompt, 1, steps=3, threads=threads)  # warm: pages in the weights
        for _ in range(rounds):
            for n in sequences:
                medians[n].append(statistics.median(step_seconds(llm, prompt, n, steps=steps, threads=threads)))
    except EngineError as exc:
        raise TargetError(f"{target.label}: {exc}") from None
    finally:
        llm.close()
    one = statistics.median(medians[sequences[0]])
    rows = []
    for n in sequences:
        step = statistics.median(medians[n])
        rows.append({"sequences": n, "step_ms": round(step * 1e3, 3), "per_token_ms": round(step * 1e3 / n, 3),
                     "relative": round(step / one, 2), "rounds_ms": [round(m * 1e3, 3) for m in medians[n]]})
    return {"target": target.label, "weights": target.weights_path, "processor": cpu_model(), "threads": threads,
            "prompt_tokens": len(prompt), "steps": steps, "rounds": rounds, "relative_to": sequences[0], "rows": rows}


def to_markdown(results: list[dict]) -> str:
    lines = ["# Decode step cost by sequences decoded together (llama.cpp)", ""]
    for result in results:
        lines += [f"{result['target']} ({result['weights']}) on {result['processor']}, {result['threads']} threads; "
                  f"a {result['prompt_tokens']}-token prompt read once, then {result['steps']} steps per count, "
                  f"{result['rounds']} rounds (median of the rounds' medians).", "",
                  f"| sequences | ms a step | ms a token | x the step of {result['relative_to']} | each round's median ms |",
                  "| ---: | ---: | ---: | ---: | --- |"]
        for row in result["rows"]:
            rounds = ", ".join(str(m) for m in row["rounds_ms"])
            lines.append(f"| {row['sequences']} | {row['step_ms']} | {row['per_token_ms']} | {row['relative']} | {rounds} |")
        lines.append("")
    return "\n".join(lines)
