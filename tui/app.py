"""The math tutor: type a word problem, watch the student think, follow the steps, check yourself.

Built on `runtime.student.Student`, the same object behind `runtime solve`. Solving runs in a
thread worker, so the interface never freezes; a failure becomes a notification.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Header, Input, Label, ListItem, ListView, OptionList, Select, Static, TabbedContent, TabPane

from runtime.solver import answers_match, parse_number
from runtime.student import MODES, Solution, Student
from runtime.thoughts import Thought, format_number

from .explain import check_answer, describe_attempts, explain_steps, other_ways

EXAMPLES: list[dict] = json.loads((Path(__file__).parent / "examples.json").read_text(encoding="utf-8"))
THOUGHT_TITLES = {Thought.POT: "Program (PoT)", Thought.EOT: "Equations (EoT)", Thought.COT: "Steps in words (CoT)"}


class ThoughtPanel(VerticalScroll):
    """One thought: the solver's verdict, then the text the student wrote (highlighted for PoT)."""

    def __init__(self, thought: Thought, **kwargs):
        super().__init__(**kwargs)
        self.thought = thought
        self.text = ""

    def compose(self) -> ComposeResult:
        yield Static("waiting for a question", classes="verdict")
        yield Static("", classes="rationale")

    def show_text(self, text: str) -> None:
        self.text = text
        body = Syntax(text, "python", word_wrap=True, background_color="default") if self.thought is Thought.POT else Text(text)
        self.query_one(".rationale", Static).update(body)

    def show_verdict(self, message: str, ok: bool | None) -> None:
        verdict = self.query_one(".verdict", Static)
        verdict.update(message)
        verdict.set_class(ok is True, "ok")
        verdict.set_class(ok is False, "failed")


class ExamplesScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Close")]

    def compose(self) -> ComposeResult:
        yield OptionList(*[f"{e['title']}: {e['question']}" for e in EXAMPLES], id="examples")

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(EXAMPLES[event.option_index]["question"])


@dataclass
class HistoryEntry:
    question: str
    mode: str
    answer: float | None


class TutorApp(App):
    """A learner types a word problem; the student solves it with programs, equations and words."""

    TITLE = "Math tutor"
    CSS_PATH = "tutor.tcss"
    BINDINGS = [
        # Function keys: the ctrl+letter keys belong to the text inputs' own editing.
        Binding("f2", "examples", "Examples"),
        Binding("f3", "cycle_mode", "Mode"),
        Binding("f4", "focus_check", "Check answer"),
        Binding("f6", "another_way", "Another way"),
        Binding("f5", "toggle_dark", "Theme"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, model: str | None = None, mode: str = "etd",
                 open_student: Callable[[str | None], Student] | None = None, show_timings: bool = True):
        super().__init__()
        self.model = model
        self.mode = mode if mode in MODES else "etd"
        self.open_student = open_student or (lambda name: Student.open(name, check_runs=True))
        self.show_timings = show_timings
        self.student: Student | None = None
        self.solution: Solution | None = None
        self.history: list[HistoryEntry] = []
        self.way = 0  # which of the solution's distinct verified paths "another way" shows
        self.rating = False  # the shown answer's sampled paths are still being drawn

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="ask"):
            yield Input(placeholder="Type a word problem and press Enter (F2: examples)", id="question")
            yield Select([(m, m) for m in MODES], value=self.mode, allow_blank=False, id="mode")
        yield Static("", id="answer")
        yield Static("", id="confidence")
        yield Static("", id="reason")
        with TabbedContent(id="tabs"):
            for thought in (Thought.POT, Thought.EOT, Thought.COT):
                with TabPane(THOUGHT_TITLES[thought].split(" (")[-1].rstrip(")"), id=f"tab-{thought.value}"):
                    yield ThoughtPanel(thought, id=f"panel-{thought.value}")
            with TabPane("Steps", id="tab-steps"):
                yield VerticalScroll(Static("Solve a problem to see its steps.", id="steps"))
            with TabPane("Another way", id="tab-another"):
                yield VerticalScroll(Static("Solve a problem, then press F6 for another way to it.", id="another"))
            with TabPane("History", id="tab-history"):
                yield ListView(id="history")
        with Horizontal(id="check"):
            yield Input(placeholder="your answer", id="mine")
            yield Button("Check my answer", id="check-button")
            yield Label("", id="check-result")
        yield Footer()

    def update_subtitle(self) -> None:
        shown = Path(self.model).name if self.model else "default"
        self.sub_title = f"model: {shown}  mode: {self.mode}"

    def on_mount(self) -> None:
        self.update_subtitle()
        self.query_one("#question", Input).focus()

    # -- commands -----------------------------------------------------------------------------

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        for mode in MODES:
            yield SystemCommand(f"Mode: {mode}", f"solve with the {mode} mode", lambda m=mode: self.set_mode(m))
        yield SystemCommand("Examples", "pick one of the example problems", self.action_examples)
        from runtime.models import list_bundles

        for name, folder, manifest, problem in list_bundles():
            if manifest is not None:
                yield SystemCommand(f"Model: {name}", f"switch to the bundle in {folder}",
                                    lambda f=str(folder): self.set_model(f))

    def action_examples(self) -> None:
        def picked(question: str | None) -> None:
            if question:
                field = self.query_one("#question", Input)
                field.value = question
                field.focus()

        self.push_screen(ExamplesScreen(), picked)

    def action_cycle_mode(self) -> None:
        self.set_mode(MODES[(MODES.index(self.mode) + 1) % len(MODES)])

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def action_focus_check(self) -> None:
        self.query_one("#mine", Input).focus()

    def action_another_way(self) -> None:
        """The next distinct path the solver verified (greedy thoughts, then sampled paths), in turn."""
        if self.solution is None:
            self.notify("Solve a problem first.", severity="warning")
            return
        ways = other_ways(self.solution)
        view = self.query_one("#another", Static)
        if len(ways) < 2:
            view.update("The student found no other way that works for this problem."
                        + ("" if ways else " (none of its attempts gave an answer)"))
        else:
            self.way = (self.way + 1) % len(ways)
            run = ways[self.way]
            source = "its first try" if run.sample == 0 else f"sampled attempt {run.sample}"
            view.update(Text(f"Way {self.way + 1} of {len(ways)}: {THOUGHT_TITLES[Thought(run.thought)]}, {source}; "
                             f"answer {format_number(run.result['answer'])}\n\n{run.text}"))
        self.query_one("#tabs", TabbedContent).active = "tab-another"

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.query_one("#mode", Select).value = mode
        self.update_subtitle()

    def set_model(self, model: str | None) -> None:
        if self.student is not None:
            self.student.close()
        self.student, self.model = None, model
        self.update_subtitle()
        self.notify(f"switched to {model}")

    @on(Select.Changed, "#mode")
    def mode_changed(self, event: Select.Changed) -> None:
        if event.value != Select.BLANK:
            self.set_mode(str(event.value))

    # -- solving ------------------------------------------------------------------------------

    @on(Input.Submitted, "#question")
    def submitted(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            self.notify("Type a word problem first.", severity="warning")
            return
        self.start(question)

    def start(self, question: str) -> None:
        self.query_one("#answer", Static).update("thinking ...")
        self.query_one("#confidence", Static).update("")
        self.query_one("#reason", Static).update("")
        self.query_one("#check-result", Label).update("")
        for thought in Thought:
            panel = self.query_one(f"#panel-{thought.value}", ThoughtPanel)
            panel.show_verdict("waiting" if self.mode in ("etd", "vote", thought.value) else "not used in this mode", None)
            panel.show_text("")
        self.solve(question, self.mode)

    @work(thread=True, exclusive=True, group="solve")
    def solve(self, question: str, mode: str) -> None:
        try:
            if self.student is None:
                self.call_from_thread(self.query_one("#answer", Static).update, "loading the model ...")
                self.student = self.open_student(self.model)
                self.call_from_thread(self.query_one("#answer", Static).update, "thinking ...")

            def streamed(thought: Thought, text: str) -> None:
                self.call_from_thread(self.query_one(f"#panel-{thought.value}", ThoughtPanel).show_text, text)

            # Every view, to teach, shown as soon as it is there; then sampled paths, so the tutor knows
            # when it does not know (in etd: the answer waits for them no longer than it takes to decode it).
            solution = self.student.solve(question, mode=mode, on_text=streamed, lazy=False)
            if mode == "etd" and solution.answer is not None:
                self.call_from_thread(self.show, solution, rating=True)
                solution = self.student.rate([solution])[0]
        except Exception as exc:  # the engine failed: say so, keep the app alive
            self.call_from_thread(self.failed, f"{type(exc).__name__}: {exc}")
            return
        self.call_from_thread(self.show, solution)

    def failed(self, message: str) -> None:
        self.query_one("#answer", Static).update("")
        self.notify(f"Could not solve: {message}", severity="error", timeout=8)

    def show(self, solution: Solution, rating: bool = False) -> None:
        """`rating`: the sampled paths are still being drawn; the verdict follows with a second call."""
        self.solution, self.way, self.rating = solution, 0, rating
        answer = self.query_one("#answer", Static)
        if solution.answer is None:
            answer.update("No answer: none of the thoughts worked out")
        elif solution.verdict == "no answer":
            answer.update(f"No reliable answer (the student's best guess: {format_number(solution.answer)})")
        else:
            answer.update(f"Answer: {format_number(solution.answer)}")
        answer.set_class(solution.answer is None or solution.verdict == "no answer", "failed")
        rating_line = self.query_one("#confidence", Static)
        if rating:
            rating_line.update("Checking how sure the student is: a few more attempts at this problem ...")
        elif solution.verdict is not None:
            rating_line.update(f"{solution.verdict.capitalize()}: confidence {solution.confidence:.2f}. {describe_attempts(solution)}")
        else:
            rating_line.update("")
        for verdict in ("sure", "unsure", "no answer"):
            rating_line.set_class(solution.verdict == verdict, verdict.replace(" ", "-"))
        if rating:
            return  # the panels, steps and history follow with the verdict
        self.query_one("#another", Static).update("Press F6 for another way to this problem.")
        reason = f"{solution.mode}: {solution.reason}"
        if self.show_timings:
            reason += f"  ({solution.timings['total_s']:.1f} s on {solution.engine})"
        self.query_one("#reason", Static).update(reason)
        for run in solution.thoughts:
            if run.sample:
                continue
            panel = self.query_one(f"#panel-{run.thought}", ThoughtPanel)
            panel.show_text(run.text)
            result = run.result
            if result["answer"] is not None:
                mark = "chosen" if run.thought == solution.thought else "ran"
                agrees = answers_match(result["answer"], solution.answer)
                panel.show_verdict(f"{mark}: answer {format_number(result['answer'])}"
                                   + ("" if agrees else " (differs from the chosen answer)"), True)
            else:
                panel.show_verdict(f"failed ({result['error_kind']}): {result['error']}", False)
        self.query_one("#steps", Static).update(explain_steps(solution))
        if solution.thought:
            self.query_one("#tabs", TabbedContent).active = f"tab-{solution.thought}"
        self.history.append(HistoryEntry(solution.question, solution.mode, solution.answer))
        shown = format_number(solution.answer) if solution.answer is not None else "-"
        self.query_one("#history", ListView).append(ListItem(Label(f"{shown:>8}  [{solution.mode}] {solution.question}")))

    @on(ListView.Selected, "#history")
    def history_selected(self, event: ListView.Selected) -> None:
        entry = self.history[event.list_view.index or 0]
        self.query_one("#question", Input).value = entry.question
        self.query_one("#question", Input).focus()

    # -- check my answer ----------------------------------------------------------------------

    @on(Button.Pressed, "#check-button")
    @on(Input.Submitted, "#mine")
    def check(self) -> None:
        label = self.query_one("#check-result", Label)
        mine = parse_number(self.query_one("#mine", Input).value)
        if mine is None:
            label.update("Enter your answer as a number.")
            return
        if self.solution is None or self.solution.answer is None:
            label.update("Solve a problem first.")
            return
        if self.rating:
            label.update("The student is still checking how sure it is of its answer; check again in a moment.")
            return
        label.update(check_answer(self.solution, mine))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="tutor", description="A math tutor in the terminal, fully offline.")
    parser.add_argument("--model", help="bundle folder or name (default: the default bundle)")
    parser.add_argument("--mode", default="etd", choices=list(MODES), help="default etd")
    args = parser.parse_args(argv)
    TutorApp(model=args.model, mode=args.mode).run()
    return 0
