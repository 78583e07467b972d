"""The float32 reference engine: its shared-prefix cache must not change what it generates."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    from tests.tiny_models import make_llama, make_tokenizer

    folder = tmp_path_factory.mktemp("reference")
    texts = [f"Question: Sam has {n} apples and buys {n + 3} more. How many apples now?\nAnswer: {2 * n + 3}\n"
             for n in range(40)]
    tokenizer = make_tokenizer(texts, folder / "tokenizer", vocab_size=400)
    return make_llama(folder / "model", tokenizer, init_range=0.2)


def test_prefix_cached_batch_equals_plain_generation(tiny_llama):
    import torch

    from benchmarks.reference import TransformersEngine

    engine = TransformersEngine(str(tiny_llama))
    prefix = "".join(f"Question: Sam has {n} apples and buys {n + 3} more. How many apples now?\nAnswer: {2 * n + 3}\n"
                     for n in range(6))
    # Questions of different lengths: the batch is left-padded between the shared prefix and each tail.
    tails = ["Question: Sam has 7 apples.\nAnswer:", "Question: Sam has 12 apples and buys 15 more apples today.\nAnswer:",
             "Question: How many?\nAnswer:"]
    prompts = [prefix + tail for tail in tails]
    batched = engine.generate(prompts, max_tokens=12, temperature=0.0, samples=1, stop=["Question:"])
    assert all(len(results) == 1 for results in batched)

    model, tokenizer = engine.model, engine.tokenizer
    for prompt, results in zip(prompts, batched):
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            plain = model.generate(input_ids=ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        expected = tokenizer.decode(plain[0, ids.shape[1]:], skip_special_tokens=True).split("Question:")[0]
        assert results[0].text == expected
        assert results[0].prompt_tokens == ids.shape[1]
    assert any(results[0].text.strip() for results in batched)  # a real continuation, not an empty stop
    # The prefix is computed once and reused by the next batch with the same prefix.
    cached = engine._cached_prefix
    engine.generate(list(reversed(prompts)), max_tokens=4, temperature=0.0, samples=1, stop=[])
    assert engine._cached_prefix is cached
