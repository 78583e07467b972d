"""llama.cpp batched greedy decoding gives what decoding one prompt at a time gives, on a real GGUF
(the tiny memorising student converted to f16)."""

import pytest

from runtime.engines.base import EngineError
from runtime.engines.llamacpp import LlamaCppEngine
from runtime.thoughts import STOP_SEQUENCES, Thought, format_prompt


@pytest.fixture(scope="module")
def engine(student):
    bundle, _ = student
    engine = LlamaCppEngine(next(bundle.glob("*.gguf")), threads=2)
    yield engine
    engine.close()


def run(engine, prompts, *, batch_size, **options):
    engine.batch_size = batch_size
    options = {"max_tokens": 96, "temperature": 0.0, "samples": 1, "stop": list(STOP_SEQUENCES), **options}
    return [g[0] for g in engine.generate(prompts, **options)]


def prompts_for(problems):
    # grouped by thought, as Student.solve_batch sends them: each group shares a prefix
    return [format_prompt(p.question, t) for t in (Thought.POT, Thought.EOT, Thought.COT) for p in problems]


def test_batched_equals_one_at_a_time(student, engine):
    _, problems = student
    prompts = prompts_for(problems)
    alone = run(engine, prompts, batch_size=1)
    together = run(engine, prompts, batch_size=5)   # 12 prompts: chunks of 5, 5 and 2
    assert [g.text for g in together] == [g.text for g in alone]
    assert [g.tokens for g in together] == [g.tokens for g in alone]
    assert [g.prompt_tokens for g in together] == [g.prompt_tokens for g in alone]
    assert all(g.text.strip() and g.seconds > 0 and g.first_token_s is not None for g in together)
    # the memorised answers are in there: the programs name `ans`, the prose ends with the number
    assert all("ans" in g.text for g in together[:4]) and all("The answer is" in g.text for g in together[8:])


def test_stops_and_token_limits_apply_per_sequence(student, engine):
    _, problems = student
    prompts = prompts_for(problems[:2]) + [format_prompt("What is 2 plus 2?", Thought.POT)]
    for options in ({"max_tokens": 3}, {"stop": ["ans", "\n"]}, {"stop": ["="], "max_tokens": 40}):
        alone = run(engine, prompts, batch_size=1, **options)
        together = run(engine, prompts, batch_size=8, **options)
        assert [g.text for g in together] == [g.text for g in alone], options
        # in pairs: each chunk sizes its own context and shared prefix
        assert [g.text for g in run(engine, prompts, batch_size=2, **options)] == [g.text for g in alone], options
        limit = options.get("max_tokens", 96)
        assert all(g.tokens <= limit for g in together)
        assert not any(s in g.text for g in together for s in options.get("stop", []))


def test_streaming_reports_each_prompt_by_its_index(student, engine):
    _, problems = student
    prompts = prompts_for(problems[:3])
    seen: dict[int, list[str]] = {}
    generations = engine.generate(prompts, max_tokens=48, temperature=0.0, samples=1, stop=list(STOP_SEQUENCES),
                                  on_text=lambda index, text: seen.setdefault(index, []).append(text))
    assert sorted(seen) == list(range(len(prompts)))
    for index, texts in seen.items():
        assert texts[-1] == generations[index][0].text
        assert all(a == b[:len(a)] for a, b in zip(texts, texts[1:]))  # each update extends the last


def test_identical_prompts_and_too_long_prompts(student, engine):
    _, problems = student
    prompt = format_prompt(problems[0].question, Thought.POT)
    alone = run(engine, [prompt], batch_size=1)
    together = run(engine, [prompt] * 3, batch_size=8)   # the whole prompt is the shared prefix
    assert [g.text for g in together] == [alone[0].text] * 3
    with pytest.raises(EngineError, match="does not fit the context"):
        run(engine, [prompt, "word " * 3000], batch_size=8)


def test_sampled_paths_are_decoded_together_and_reproducible(student, engine):
    """Several samples of several prompts in one batched call: each prompt gets its count, each path
    its token limit, and the paths are the same for the engine's seed on every call."""
    _, problems = student
    engine.batch_size = 8
    prompts = [format_prompt(problems[0].question, Thought.POT), format_prompt(problems[0].question, Thought.EOT)]
    first = engine.generate(prompts, max_tokens=12, temperature=0.9, samples=3, stop=list(STOP_SEQUENCES))
    assert [len(g) for g in first] == [3, 3] and all(g.tokens <= 12 for paths in first for g in paths)
    again = engine.generate(prompts, max_tokens=12, temperature=0.9, samples=3, stop=list(STOP_SEQUENCES))
    assert [[g.text for g in paths] for paths in again] == [[g.text for g in paths] for paths in first]


def test_prompts_sharing_prefixes_at_several_depths_decode_as_if_alone(student, engine):
    # question-major order with repeats, as a teacher sends them: the prefix tree shares the examples,
    # each question across its thoughts, and a repeated prompt whole
    _, problems = student
    prompts = [format_prompt(p.question, t) for p in problems[:3] for t in (Thought.POT, Thought.EOT, Thought.POT)]
    alone = run(engine, prompts, batch_size=1)
    engine.batch_size = 9
    together = engine.decode_together(prompts, [0.0] * len(prompts), max_tokens=96, stop=list(STOP_SEQUENCES))
    assert [g.text for g in together] == [g.text for g in alone]
    assert together[0].text == together[2].text


def test_finished_slots_are_refilled_and_decode_as_if_alone(student, engine):
    """Continuous batching: more prompts than slots, of different lengths, so slots free up at
    different steps and later prompts (a question's thoughts as a group) enter while others are
    mid-generation; every text is as decoded alone."""
    _, problems = student
    few_shot = "Solve the problems.\n\n"   # a prefix every prompt shares, as a teacher's examples
    grouped = [few_shot + format_prompt(p.question, t) for p in problems for t in (Thought.POT, Thought.EOT, Thought.COT)]
    # ... and with a prompt that shares nothing with the others: no common prefix at all
    for prompts in (grouped, grouped[:1] + ["What is 2 plus 2?"] + grouped[1:]):
        alone = run(engine, prompts, batch_size=1)
        assert len({g.tokens for g in alone}) > 2   # slots free up at different steps
        for slots in (2, 3, 5):
            engine.batch_size = slots
            together = engine.decode_together(prompts, [0.0] * len(prompts), max_tokens=96, stop=list(STOP_SEQUENCES))
            assert [g.text for g in together] == [g.text for g in alone], slots
            assert [g.tokens for g in together] == [g.tokens for g in alone], slots


def test_another_path_decodes_in_its_slot_from_the_cached_prompt(student, engine):
    """`again`: a prompt's next path starts in its own slot from the prompt's cells already in the cache
    (its generated cells dropped). Asked greedily, the second path must be the first again, token for
    token, with as many slots as prompts and with fewer (slots refilled while others start over);
    sampled paths come in the number asked for and are reproducible."""
    _, problems = student
    few_shot = "Solve the problems.\n\n"
    prompts = [few_shot + format_prompt(p.question, t) for p in problems[:3] for t in (Thought.POT, Thought.EOT)]
    alone = run(engine, prompts, batch_size=1)
    for slots in (6, 2):
        engine.batch_size = slots
        asked: list[tuple[int, str]] = []

        def once_more(index: int, text: str) -> float | None:
            asked.append((index, text))
            return 0.0 if len([i for i, _ in asked if i == index]) == 1 else None

        paths = engine.decode_paths(prompts, [0.0] * len(prompts), max_tokens=96, stop=list(STOP_SEQUENCES), again=once_more)
        assert [[g.text for g in p] for p in paths] == [[g.text, g.text] for g in alone], slots
        assert [[g.tokens for g in p] for p in paths] == [[g.tokens, g.tokens] for g in alone], slots
        assert sorted(asked) == sorted((i, g.text) for i, g in enumerate(alone) for _ in range(2))

    engine.batch_size = 4
    extra = {0: 2, 3: 1}  # sampled paths wanted after the greedy one, per prompt

    def sampled(index: int, text: str) -> float | None:
        if extra.get(index, 0) <= 0:
            return None
        extra[index] -= 1
        return 0.9

    first = engine.decode_paths(prompts, [0.0] * len(prompts), max_tokens=24, stop=list(STOP_SEQUENCES), again=sampled)
    assert [len(p) for p in first] == [3, 1, 1, 2, 1, 1] and all(g.tokens <= 24 for p in first for g in p)
    assert [p[0].text for p in first] == [g.text[:len(p[0].text)] for p, g in zip(first, alone)]
    extra.update({0: 2, 3: 1})
    second = engine.decode_paths(prompts, [0.0] * len(prompts), max_tokens=24, stop=list(STOP_SEQUENCES), again=sampled)
    assert [[g.text for g in p] for p in second] == [[g.text for g in p] for p in first]


def test_admission_groups_keep_a_questions_paths_together():
    from runtime.engines.llamacpp_batch import admission_groups

    examples = [9, 9, 9]
    prompts = [examples + [1, 2, 5], examples + [1, 2, 6], examples + [1, 2, 7], examples + [3, 4, 5], examples + [3, 8, 8]]
    assert admission_groups(prompts, 3, slots=8) == [[0, 1, 2], [3, 4]]
    assert admission_groups(prompts, 3, slots=2) == [[0, 1], [2], [3, 4]]
    assert admission_groups(prompts, 5, slots=8) == [[0], [1], [2], [3], [4]]
