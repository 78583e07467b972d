"""`benchmarks card`: a document's generated blocks are rebuilt from result folders, the prose is kept."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.card import CardError, refresh

RESULTS_MD = """# Benchmark results

## Accuracy (%)

| model | mode | all |
|---|---|---|
| student | etd | 15.0 |

## Speed and memory

| model | latency p50 s | peak RSS MB |
|---|---|---|
| student | 2.5 | 310.2 |

A footnote about the columns.

## Against the reference

nothing
"""


def results(label: str, gsm8k: float, svamp: float) -> dict:
    datasets = {"gsm8k/test": {"accuracy": gsm8k}, "svamp/test": {"accuracy": svamp}}
    modes = {mode: {"datasets": datasets, "all": {"accuracy": (gsm8k + svamp) / 2}} for mode in ("etd", "pot")}
    return {"generated_at": label, "device": {"cpu": "same"},
            "targets": [{"label": label, "accuracy": modes, "latency": {}, "throughput": {}}]}


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    for name, gsm8k, svamp in (("base", 2.5, 10.0), ("student", 15.0, 30.0)):
        (tmp_path / "results" / name).mkdir(parents=True)
        (tmp_path / "results" / name / "results.json").write_text(json.dumps(results(name, gsm8k, svamp)))
    (tmp_path / "results" / "student" / "results.md").write_text(RESULTS_MD)
    return tmp_path


CARD = """# A card

Prose that stays.

<!-- generated: benchmarks compare results/base results/student --modes etd -->
stale
<!-- end generated -->

More prose.

<!-- generated: results/student/results.md#Speed and memory -->
<!-- end generated -->
"""


def test_blocks_are_regenerated_and_the_prose_kept(folder):
    text, stale = refresh(CARD, folder)
    assert stale == ["benchmarks compare results/base results/student --modes etd",
                     "results/student/results.md#Speed and memory"]
    assert text.startswith("# A card\n\nProse that stays.\n\n") and "More prose.\n" in text
    assert "stale" not in text
    # The compare table for etd only: 2.5 -> 15.0 is +12.5 points and 6x; 10 -> 30 is 3x.
    assert "| base | student | etd | gsm8k/test | 2.5 | 15.0 | +12.50 | 6.0× |" in text
    assert "| base | student | etd | svamp/test | 10.0 | 30.0 | +20.00 | 3.0× |" in text
    assert "| pot |" not in text and "against A" not in text  # no other mode, no title
    # The section, footnote included, up to the next heading.
    assert "| student | 2.5 | 310.2 |\n\nA footnote about the columns.\n<!-- end generated -->" in text
    assert "Against the reference" not in text and "Accuracy (%)" not in text
    # Refreshed once, the card is up to date.
    assert refresh(text, folder) == (text, [])


def test_every_mode_without_modes(folder):
    text, _ = refresh("<!-- generated: benchmarks compare results/base results/student -->\n<!-- end generated -->\n", folder)
    assert "| base | student | pot | all | 6.25 | 22.5 | +16.25 | 3.6× |" in text


@pytest.mark.parametrize("card,message", [
    ("<!-- generated: results/student/results.md#Speed and memory -->\nno end\n", "no '<!-- end generated -->'"),
    ("no blocks at all\n", "no '<!-- generated"),
    ("<!-- generated: results/student/results.md -->\n<!-- end generated -->\n", "unknown source"),
    ("<!-- generated: results/student/results.md#Nowhere -->\n<!-- end generated -->\n", "no section '## Nowhere'"),
    ("<!-- generated: results/none/results.md#Speed and memory -->\n<!-- end generated -->\n", "no file"),
    ("<!-- generated: benchmarks compare results/base results/none -->\n<!-- end generated -->\n", "no results in"),
    ("<!-- generated: benchmarks compare results/base results/student --modes nope -->\n<!-- end generated -->\n", "unknown mode"),
    ("<!-- generated: benchmarks compare results/base -->\n<!-- end generated -->\n", "expected `benchmarks compare A B"),
])
def test_bad_blocks_are_clear_errors(folder, card, message):
    with pytest.raises(CardError, match=re.escape(message)):
        refresh(card, folder)


def card_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.cli", "card", *args], capture_output=True, text=True, timeout=120)


def test_the_command_checks_then_rewrites(folder):
    card = folder / "CARD.md"
    card.write_text(CARD)
    check = card_command(str(card), "--check")
    assert check.returncode == 1 and "out of date: results/student/results.md#Speed and memory" in check.stderr
    assert card.read_text() == CARD  # --check changes nothing
    assert card_command(str(card)).returncode == 0
    assert "+12.50" in card.read_text() and "Prose that stays." in card.read_text()
    again = card_command(str(card), "--check")
    assert again.returncode == 0, again.stderr
    card.write_text("<!-- generated: results/student/results.md#Nowhere -->\n<!-- end generated -->\n")
    broken = card_command(str(card))
    assert broken.returncode == 2 and "no section" in broken.stderr and "Traceback" not in broken.stderr
    missing = card_command(str(folder / "NOCARD.md"), "--check")
    assert missing.returncode == 2 and missing.stderr.strip() == f"benchmarks: error: no such card: {folder / 'NOCARD.md'}"


def test_compare_into_a_closed_pipe_is_quiet(folder):
    # `benchmarks compare A B | head`: the reader is gone before the table is written. BrokenPipeError
    # is an OSError, which `benchmarks` reports as an error; it must be a quiet exit 0 instead.
    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run([sys.executable, "-m", "benchmarks.cli", "compare", str(folder / "results" / "base"),
                           str(folder / "results" / "student"), "--modes", "etd"],
                          stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(write)
    assert proc.returncode == 0 and proc.stderr == ""
