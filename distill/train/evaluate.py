"""Greedy-decode dev problems with a model being trained, solve with the runtime's solver."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.engines.base import cut_at_stop
from runtime.solver import answers_match, execute, select_etd
from runtime.thoughts import STOP_SEQUENCES, Thought, format_prompt


@dataclass
class DevProblem:
    question: str
    gold: float




def generate(model, tokenizer, prompts: list[str], *, encoder_decoder: bool, max_new_tokens: int, batch_size: int,
             samples: int = 1, seed: int = 0) -> list[str]:
    """One text per prompt (greedy), or `samples` texts per prompt, sampled at temperature 0.7,
    prompt after prompt."""
    import torch

    if samples > 1:
        torch.manual_seed(seed)

    outputs: list[str] = []
    side = tokenizer.padding_side
    tokenizer.padding_side = "left" if not encoder_decoder else "right"
    was_training = model.training
    model.eval()
    stopping = _stop_at_stop_sequences(tokenizer)
    try:
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start:start + batch_size]
            if encoder_decoder:
                encoded = tokenizer([p + tokenizer.eos_token for p in batch], return_tensors="pt", padding=True,
                                    add_special_tokens=False)
            else:
                encoded = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
            encoded = {k: v.to(model.device) for k, v in encoded.items()}
            sampling = dict(do_sample=True, temperature=0.7, top_k=40, num_return_sequences=samples) if samples > 1 \
                else dict(do_sample=False)
            with torch.no_grad():
                generated = model.generate(**encoded, max_new_tokens=max_new_tokens, **sampling, **stopping,
                                           eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
            if not encoder_decoder:
                generated = generated[:, encoded["input_ids"].shape[1]:]
            texts = tokenizer.batch_decode(generated, skip_special_tokens=True)
            outputs += [cut_at_stop(text, list(STOP_SEQUENCES)).strip() for text in texts]
    finally:
        tokenizer.padding_side = side
        if was_training:
            model.train()
    return outputs


def _stop_at_stop_sequences(tokenizer) -> dict:
    """generate() options that end a sequence at the runtime's stop sequences, as the engines do.

    An undertrained student rarely writes EOS: without this every batch runs to max_new_tokens.
    The text is cut at the stops either way; a tokenizer that cannot spell them just stops later.
    """
    from transformers import StopStringCriteria

    try:
        StopStringCriteria(tokenizer, list(STOP_SEQUENCES))
    except ValueError:
        return {}
    return {"stop_strings": list(STOP_SEQUENCES), "tokenizer": tokenizer}


def solve_problems(model, tokenizer, problems: list[DevProblem], thoughts: list[Thought], *, encoder_decoder: bool,
                   max_new_tokens: int = 256, batch_size: int = 8, prompt=format_prompt, samples: int = 1,
                   seed: int = 0) -> dict[Thought, list[list]]:
    """thought -> per problem, its `samples` SolverResults (greedy when samples is 1)."""
    results = {}
    for thought in thoughts:
        texts = generate(model, tokenizer, [prompt(p.question, thought) for p in problems], encoder_decoder=encoder_decoder,
                         max_new_tokens=max_new_tokens, batch_size=batch_size, samples=samples, seed=seed)
        solved = [execute(thought, text) for text in texts]
        results[thought] = [solved[i * samples:(i + 1) * samples] for i in range(len(problems))]
    return results


def evaluate(model, tokenizer, problems: list[DevProblem], thoughts: list[Thought], *, encoder_decoder: bool,
             max_new_tokens: int = 256, batch_size: int = 8, prompt=format_prompt) -> dict:
    """Accuracy per thought and for the ETD rule (PoT, else EoT, else CoT) on `problems`.
    `prompt(question, thought)` builds the input (few-shot for an untuned base)."""
    per_sample = solve_problems(model, tokenizer, problems, thoughts, encoder_decoder=encoder_decoder,
                                max_new_tokens=max_new_tokens, batch_size=batch_size, prompt=prompt)
    results = {thought: [samples[0] for samples in solved] for thought, solved in per_sample.items()}
    report = {"problems": len(problems)}
    for thought, solved in results.items():
        report[thought.value] = sum(answers_match(r.answer, p.gold) for r, p in zip(solved, problems)) / max(1, len(problems))
    etd = [select_etd([results[t][i] for t in thoughts]) for i in range(len(problems))]
    report["etd"] = sum(answers_match(s.answer, p.gold) for s, p in zip(etd, problems)) / max(1, len(problems))
    return report
