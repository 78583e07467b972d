import pytest

from runtime.engines.base import cut_at_stop
from runtime.thoughts import (FORMAT_VERSION, LOOP_LINES, PROMPTS, STOP_SEQUENCES, FormatVersionError, Thought,
                              check_format_version, format_cot_answer, format_example, format_prompt, is_looping,
                              parse_thought)


def test_prompts_are_the_papers():
    assert format_prompt("  How many?  ", "cot") == "Question: How many?\nLet's think step by step.\n"
    assert format_prompt("Q", Thought.POT) == "Question: Q\nLet's break down the code step by step\n"
    assert format_prompt("Q", "eot") == "Question: Q\nSystem of linear equations: (Do not simplify)\n"
    assert set(PROMPTS) == set(Thought)


def test_example_target_is_trimmed_with_one_newline():
    example = format_example("Q", "pot", "\nans = 1\n\n")
    assert example.prompt.endswith("step by step\n") and example.target == "ans = 1\n"


def test_cot_answer_sentence():
    assert format_cot_answer(12.0) == "The answer is 12."
    assert format_cot_answer(2.5) == "The answer is 2.5."


def test_unknown_thought_and_version():
    with pytest.raises(ValueError, match="choose from cot, pot, eot"):
        parse_thought("python")
    check_format_version(FORMAT_VERSION)
    with pytest.raises(FormatVersionError, match="rebuild"):
        check_format_version("etd-0", what="model bundle")


def test_a_rationale_that_loops_is_recognised_as_its_lines_complete():
    chain = "x = 16 / 3\n" + "".join(f"x_{i} = x_{i - 1} * 4\n" for i in range(2, 2 + LOOP_LINES))
    assert is_looping(chain)
    assert not is_looping(chain[:-1])                       # the last line is not complete yet
    assert not is_looping(chain.split("\n", 2)[-1] + "ans = x_9\n")  # one line short, then it ends
    # a week of days is a legitimate chain: seven lines of one shape
    week = "".join(f"day_{i} = day_{i - 1} + 2\n" for i in range(2, 9)) + "ans = day_8\n"
    assert not is_looping(week)
    # a cycle of two shapes, and the same sentence over and over
    cycle = "".join(f"a_{i} = a_{i - 1} * 2\nb_{i} = a_{i} + 1\n" for i in range(1, 1 + LOOP_LINES))
    assert is_looping(cycle) and not is_looping("".join(cycle.splitlines(True)[:-2]))
    assert is_looping("She has 5 apples.\n" * LOOP_LINES)
    assert not is_looping("\n" * 40) and not is_looping("") and not is_looping("ans = 1")


def test_a_looping_generation_is_a_failure_of_its_own_kind():
    from runtime.student import run_rationale

    program = "ans = 3\n" + "".join(f"x_{i} = {i} * 2\n" for i in range(LOOP_LINES))
    result = run_rationale(Thought.POT, program)
    assert result.answer is None and result.error_kind == "repeating" and "looped" in result.error
    assert run_rationale(Thought.POT, "ans = 3\nx_1 = 2\n").answer == 3   # the same program short of a loop runs


def test_a_new_block_ends_the_generation():
    program = "x = 16 - 3 - 4\nans = x * 2"
    # the untuned base, after few-shot examples, writes its instruction line again and goes on
    assert cut_at_stop(program + "\n\nLet's break down the code step by step\nx = 1\n", list(STOP_SEQUENCES)) == program + "\n"
    assert cut_at_stop(program + "\nQuestion: How many?", list(STOP_SEQUENCES)) == program


def test_no_gold_rationale_counts_as_looping_or_holds_a_stop(data_dir):
    """What the student is taught never trips the loop stop (at LOOP_LINES = 5 some would) and
    never holds a stop sequence."""
    from distill.problems import load_problems
    from distill.teachers.gold import GoldTeacher

    teacher = GoldTeacher()
    texts = [candidate.text for problem in load_problems("gsm8k", "train", data_dir).problems
             for candidate in teacher.generate(problem, list(Thought))]
    assert len(texts) > 20_000
    targets = [format_example("Q", "pot", text).target for text in texts]
    assert not [target for target in targets if is_looping(target)]
    assert not [target for target in targets if cut_at_stop(target, list(STOP_SEQUENCES)) != target]
