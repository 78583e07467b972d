"""Does the quantized model say what the source model says? Greedy tokens, side by side."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from runtime.thoughts import Thought, format_prompt

FIDELITY_QUESTIONS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total does it take?",
    "Tom has 5 apples and buys 7 more. He gives 3 to his sister. How many apples does he have now?",
]


@dataclass
class Agreement:
    prompts: int
    exact: int                 # outputs identical to the source, token for token
    token_agreement: float     # mean share of the source's tokens matched before the first divergence
    first_divergence: list     # per prompt: index of the first differing token, or None
    tokenizer_agrees: bool | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def fidelity_prompts(thoughts: list[str]) -> list[str]:
    return [format_prompt(q, Thought(t)) for q in FIDELITY_QUESTIONS for t in thoughts]


def compare(source: list[list[int]], other: list[list[int]], tokenizer_agrees: bool | None = None) -> Agreement:
    firsts, shares = [], []
    for a, b in zip(source, other):
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
        if first is None and len(a) != len(b):
            first = min(len(a), len(b))
        firsts.append(first)
        shares.append(1.0 if first is None else first / max(1, len(a)))
    return Agreement(len(source), sum(f is None for f in firsts), round(sum(shares) / max(1, len(shares)), 4), firsts,
                     tokenizer_agrees)


def source_tokens(model, tokenizer, prompts: list[str], max_new_tokens: int, encoder_decoder: bool) -> list[list[int]]:
    import torch

    outputs = []
    model.eval()
    for prompt in prompts:
        ids = tokenizer(prompt + (tokenizer.eos_token if encoder_decoder else ""), add_special_tokens=False,
                        return_tensors="pt")["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        out = out[0].tolist()
        out = out[ids.shape[1]:] if not encoder_decoder else out[1:]
        outputs.append(_until_eos(out, tokenizer.eos_token_id))
    return outputs


def llamacpp_tokens(path: Path, tokenizer, prompts: list[str], max_new_tokens: int) -> tuple[list[list[int]], bool]:
    from runtime.engines.llama_params import load_llama

    llm = load_llama(path, n_ctx=1024, threads=2)
    outputs, agrees = [], True
    try:
        for prompt in prompts:
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            agrees &= llm.tokenize(prompt.encode(), add_bos=False, special=True) == ids
            llm.reset()
            out = []
            for token in llm.generate(ids, temp=0.0, top_k=1, reset=True):
                if token == llm.token_eos() or len(out) >= max_new_tokens:
                    break
                out.append(token)
            outputs.append(out)
    finally:
        llm.close()
    return outputs, agrees


def ct2_tokens(path: Path, tokenizer, prompts: list[str], max_new_tokens: int, encoder_decoder: bool) -> list[list[int]]:
    import ctranslate2

    outputs = []
    if encoder_decoder:
        model = ctranslate2.Translator(str(path), device="cpu", compute_type="default", intra_threads=2)
        batch = [tokenizer.convert_ids_to_tokens(tokenizer(p + tokenizer.eos_token, add_special_tokens=False)["input_ids"]) for p in prompts]
        results = model.translate_batch(batch, beam_size=1, max_decoding_length=max_new_tokens)
        outputs = [_until_eos(tokenizer.convert_tokens_to_ids(r.hypotheses[0]), tokenizer.eos_token_id) for r in results]
    else:
        model = ctranslate2.Generator(str(path), device="cpu", compute_type="default", intra_threads=2)
        batch = [tokenizer.convert_ids_to_tokens(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        results = model.generate_batch(batch, max_length=max_new_tokens, sampling_topk=1, include_prompt_in_result=False,
                                       end_token=tokenizer.eos_token)
        outputs = [_until_eos(r.sequences_ids[0], tokenizer.eos_token_id) for r in results]
    del model  # never leave a Generator to interpreter shutdown
    return outputs


def _until_eos(tokens: list[int], eos: int) -> list[int]:
    return tokens[: tokens.index(eos)] if eos in tokens else tokens
