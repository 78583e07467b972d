"""`benchmarks card FILE`: the result tables of a document (MODEL_CARD.md), regenerated from result folders.

A document marks each table it takes from the results, and says where from:

    <!-- generated: benchmarks compare benchmarks/results/base benchmarks/results/student --modes etd -->
    | A | B | mode | ...
    <!-- end generated -->

    <!-- generated: benchmarks/results/student/results.md#Speed and memory -->
    ...
    <!-- end generated -->

A source is a `benchmarks compare` command line (its table, without the title that holds the runs'
timestamps) or PATH#HEADING (that `## HEADING` section of a results.md). Paths are relative to the
document's folder. Between the blocks the document is prose and stays as written; the test suite runs
`refresh` on the committed card, so the card and the committed results cannot drift apart.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from . import compare

BLOCK = re.compile(r"(?P<open><!-- generated: (?P<source>[^\n]*?) -->\n)(?P<body>.*?)(?P<close><!-- end generated -->)", re.S)


class CardError(ValueError):
    """A generated block that cannot be regenerated: an unknown source, a missing folder or section."""


def sources(text: str) -> list[str]:
    return [m["source"] for m in BLOCK.finditer(text)]


def refresh(text: str, root: Path) -> tuple[str, list[str]]:
    """`text` with every generated block's body regenerated, and the sources of the blocks that changed."""
    if text.count("<!-- generated:") != len(sources(text)):
        raise CardError("a '<!-- generated: SOURCE -->' line has no '<!-- end generated -->' after it")
    if not sources(text):
        raise CardError("no '<!-- generated: SOURCE -->' blocks")
    stale = []

    def replace(match: re.Match) -> str:
        body = generate(match["source"], root)
        if body != match["body"]:
            stale.append(match["source"])
        return match["open"] + body + match["close"]

    return BLOCK.sub(replace, text), stale


def generate(source: str, root: Path) -> str:
    """The markdown a block's source stands for, ending with a newline."""
    words = shlex.split(source)
    if words[:2] == ["benchmarks", "compare"]:
        a, b, modes = parse_compare(words[2:], source)
        try:
            differences = compare.compare(compare.load_results(root / a), compare.load_results(root / b), modes)
        except compare.CompareError as exc:
            raise CardError(f"{source}: {exc}") from None
        return compare.to_markdown(differences, title=False)
    path, sep, heading = source.partition("#")
    if not sep or not heading:
        raise CardError(f"unknown source {source!r}: give `benchmarks compare A B [--modes M]` or PATH#HEADING")
    try:
        markdown = (root / path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CardError(f"{source}: no file {root / path}") from None
    return section(markdown, heading, source)


def parse_compare(words: list[str], source: str) -> tuple[str, str, list[str] | None]:
    from .suite import RunError, parse_modes

    if len(words) == 2:
        return words[0], words[1], None
    if len(words) == 4 and words[2] == "--modes":
        try:
            return words[0], words[1], parse_modes(words[3])
        except RunError as exc:
            raise CardError(f"{source}: {exc}") from None
    raise CardError(f"{source}: expected `benchmarks compare A B [--modes M]`")


def section(markdown: str, heading: str, source: str) -> str:
    """The body of `## heading`, up to the next heading of level 1 or 2, blank lines trimmed."""
    match = re.search(rf"^## {re.escape(heading.strip())}[ \t]*\n(.*?)(?=^#{{1,2}} |\Z)", markdown, re.S | re.M)
    if not match:
        raise CardError(f"{source}: no section '## {heading.strip()}'")
    return match.group(1).strip("\n") + "\n"
