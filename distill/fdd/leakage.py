"""Does generated data leak the test sets? Word n-gram overlap, as the FDD paper's analysis.

For each generated question: the share of its word n-grams that occur in some test question,
and the test question it overlaps most. Near-duplicates (share >= threshold) are dropped before
training; the distribution is reported per round.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


@dataclass
class Overlap:
    share: float          # of the question's n-grams found in the test set
    closest: str | None   # id of the test question sharing the most n-grams


class NgramIndex:
    """The n-grams of every test question, for fast overlap queries."""

    def __init__(self, questions: dict[str, str], n: int = 8):
        self.n = n
        self.owners: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for qid, text in questions.items():
            for gram in ngrams(text, n):
                self.owners[gram].add(qid)

    def overlap(self, question: str) -> Overlap:
        grams = ngrams(question, self.n)
        if not grams:
            return Overlap(0.0, None)
        hits: dict[str, int] = defaultdict(int)
        found = 0
        for gram in grams:
            owners = self.owners.get(gram)
            if owners:
                found += 1
                for owner in owners:
                    hits[owner] += 1
        closest = max(hits, key=hits.get) if hits else None
        return Overlap(round(found / len(grams), 4), closest)


def summarize(shares: list[float], threshold: float) -> dict:
    """Counts per overlap band and how many were removed as near-duplicates."""
    bands = {"0": 0, "(0, 0.1]": 0, "(0.1, 0.5)": 0, f">= {threshold}": 0}
    for share in shares:
        if share >= threshold:
            bands[f">= {threshold}"] += 1
        elif share == 0:
            bands["0"] += 1
        elif share <= 0.1:
            bands["(0, 0.1]"] += 1
        else:
            bands["(0.1, 0.5)"] += 1
    return {"questions": len(shares), "bands": bands, "removed": bands[f">= {threshold}"],
            "max": max(shares, default=0.0), "mean": round(sum(shares) / len(shares), 4) if shares else 0.0}
