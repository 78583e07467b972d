"""The tutor driven by Textual's pilot, on a real (tiny, memorised) student and a real engine."""

import asyncio

import pytest

from runtime.engines import EngineError
from runtime.student import Student
from tui.app import EXAMPLES, ExamplesScreen, TutorApp, ThoughtPanel


def make_app(student_bundle, **kwargs):
    bundle, _ = student_bundle
    return TutorApp(model=str(bundle), open_student=lambda name: Student.open(name), show_timings=False, **kwargs)


async def solve(pilot, question: str):
    app = pilot.app
    app.solution = None
    field = app.query_one("#question")
    field.value = question
    field.focus()
    await pilot.press("enter")
    for _ in range(300):
        await pilot.pause(0.05)
        if app.solution is not None and app.solution.question == " ".join(question.split()):
            await pilot.pause()
            return app.solution
    raise AssertionError("no solution appeared")


def text_of(app, selector):
    return str(app.query_one(selector).render())


async def test_type_submit_and_see_answer_and_thoughts(student):
    _, problems = student
    app = make_app(student)
    async with app.run_test(size=(100, 30)) as pilot:
        solution = await solve(pilot, problems[0].question)
        assert solution.answer == problems[0].answer
        assert text_of(app, "#answer") == f"Answer: {int(problems[0].answer)}"
        assert "etd:" in text_of(app, "#reason")
        pot = app.query_one("#panel-pot", ThoughtPanel)
        assert "chosen: answer" in str(pot.query_one(".verdict").render())
        assert "ans = " in pot.text
        eot = app.query_one("#panel-eot", ThoughtPanel)
        assert "ran: answer" in str(eot.query_one(".verdict").render())
        steps = text_of(app, "#steps")
        assert steps.startswith("How the POT thought gets there:") and "So the answer is" in steps
        assert len(app.query_one("#history").children) == 1


async def test_pick_an_example(student):
    app = make_app(student)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, ExamplesScreen)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.query_one("#question").value == EXAMPLES[1]["question"]


async def test_switch_mode(student):
    _, problems = student
    app = make_app(student)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f3")  # etd -> vote
        assert app.mode == "vote" and "mode: vote" in app.sub_title
        app.set_mode("pot")
        solution = await solve(pilot, problems[1].question)
        assert solution.mode == "pot" and [r.thought for r in solution.thoughts] == ["pot"]
        eot = app.query_one("#panel-eot", ThoughtPanel)
        assert "not used in this mode" in str(eot.query_one(".verdict").render())


async def test_check_my_answer(student):
    _, problems = student
    app = make_app(student)
    async with app.run_test(size=(100, 30)) as pilot:
        solution = await solve(pilot, problems[0].question)
        first_step = next(r for r in solution.thoughts if r.thought == solution.thought).result["steps"][0]
        mine = app.query_one("#mine")
        mine.value = str(first_step["value"])
        mine.focus()
        await pilot.press("enter")
        assert "is step 1" in text_of(app, "#check-result")
        mine.value = str(int(problems[0].answer))
        await pilot.click("#check-button")
        assert text_of(app, "#check-result").startswith("Correct")
        mine.value = "not a number"
        await pilot.press("f4", "enter")
        assert "as a number" in text_of(app, "#check-result")


async def test_engine_error_is_a_notification_and_the_app_keeps_working(student):
    bundle, problems = student
    calls = []

    def flaky(name):
        calls.append(name)
        if len(calls) == 1:
            raise EngineError("the model file could not be loaded")
        return Student.open(name)

    app = TutorApp(model=str(bundle), open_student=flaky, show_timings=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one("#question").value = problems[2].question
        app.query_one("#question").focus()
        await pilot.press("enter")
        for _ in range(100):
            await pilot.pause(0.05)
            if any("Could not solve" in n.message for n in app._notifications):
                break
        assert any("could not be loaded" in n.message and n.severity == "error" for n in app._notifications)
        solution = await solve(pilot, problems[2].question)
        assert solution.answer == problems[2].answer


def _snapshot_run(question):
    async def run_before(pilot):
        if question:
            await solve(pilot, question)
    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
def test_snapshot_start_screen(student, snap_compare, size):
    assert snap_compare(make_app(student), terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
def test_snapshot_solved_screen(student, snap_compare, size):
    _, problems = student
    assert snap_compare(make_app(student), terminal_size=size, run_before=_snapshot_run(problems[0].question))
