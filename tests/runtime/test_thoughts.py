import pytest

from runtime.thoughts import (FORMAT_VERSION, PROMPTS, FormatVersionError, Thought, check_format_version,
                              format_cot_answer, format_example, format_prompt, parse_thought)


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
