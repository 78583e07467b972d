"""A teacher's outputs, kept compressed in a folder so a long labelling survives losing its run folder.

Labelling GSM8K's train split with a local teacher takes tens of CPU hours, more than any one
machine lives. `distill.build` replays the problems a transcript already holds (with the teacher
seconds they cost then), asks the teacher only about the others and adds their candidates. The folder is small enough to commit (gzipped shards of the teacher's text
only; no question or solution of the dataset is stored), so the same `distill data build` command
on a fresh machine replays it through the solver in minutes and goes on where it stopped.

Layout: `transcript.json` (what the outputs depend on: teacher, dataset, split, thoughts, modes,
sub-questions; and the history of the other settings) and `part-NNNN.jsonl.gz`, one JSON line per
problem. A shard is full at `SHARD_SIZE` problems and never changes after; only the last one is
rewritten, atomically, after each teacher call.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from runtime.files import file_lines, write_bytes_atomic, write_text_atomic
from runtime.thoughts import Thought

from .base import Candidate

SHARD_SIZE = 512
CONFIG = "transcript.json"
LOCK = ".lock"  # ignored by git


class TranscriptError(Exception):
    """The folder is not a transcript of this teacher and data (the outputs would not be its own)."""


def _candidate_to_dict(candidate: Candidate) -> dict:
    data: dict = {"thought": candidate.thought.value, "text": candidate.text}
    if candidate.path:
        data["path"] = candidate.path
    if candidate.shown_answer:
        data["shown_answer"] = True
    if candidate.question is not None:
        data.update(question=candidate.question, gold=candidate.gold, suffix=candidate.suffix)
    return data


def _candidate_from_dict(data: dict) -> Candidate:
    return Candidate(Thought(data["thought"]), str(data["text"]), path=int(data.get("path", 0)),
                     shown_answer=bool(data.get("shown_answer", False)), question=data.get("question"),
                     gold=data.get("gold"), suffix=str(data.get("suffix", "")))


class Transcript:
    """id -> (candidates, seconds) read from a folder; `add` writes the newest shard atomically."""

    def __init__(self, folder: Path, identity: dict, settings: dict):
        self.folder = Path(folder)
        self.entries: dict[str, dict] = {}
        self.shards: list[list[str]] = []  # problem ids per shard, in writing order
        config_path = self.folder / CONFIG
        if config_path.exists():
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise TranscriptError(f"{config_path}: not a transcript ({exc})") from None
            if config.get("identity") != identity:
                differ = sorted(k for k in set(identity) | set(config.get("identity", {}))
                                if identity.get(k) != config.get("identity", {}).get(k))
                raise TranscriptError(f"{self.folder} holds another teacher's or data's outputs "
                                      f"(differs in {', '.join(differ)}); choose another --transcript")
            self._read_shards()
            history = config.get("history", [])
        elif self.folder.exists() and any(p.name != LOCK for p in self.folder.iterdir()):
            raise TranscriptError(f"{self.folder} exists and is not a transcript (no {CONFIG}); choose another --transcript")
        else:
            history = []
        if not history or history[-1]["settings"] != settings:
            history.append({"from_problem": len(self.entries), "settings": settings})
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(self.folder)
        write_text_atomic(config_path, json.dumps({"identity": identity, "history": history}, indent=1) + "\n")

    def _read_shards(self) -> None:
        for path in sorted(self.folder.glob("part-*.jsonl.gz")):
            ids = []
            try:
                lines = file_lines(gzip.decompress(path.read_bytes()).decode("utf-8"))
            except (OSError, EOFError, UnicodeDecodeError) as exc:
                raise TranscriptError(f"{path}: unreadable ({exc}); restore it from git") from None
            for line in lines:
                entry = json.loads(line)
                self.entries[entry["id"]] = entry
                ids.append(entry["id"])
            self.shards.append(ids)

    def get(self, problem_id: str) -> tuple[list[Candidate], float] | None:
        entry = self.entries.get(problem_id)
        if entry is None:
            return None
        return [_candidate_from_dict(c) for c in entry["candidates"]], float(entry.get("seconds", 0.0))

    def add(self, items: list[tuple[str, list[Candidate], float]]) -> None:
        """Store (problem id, candidates, teacher seconds) and rewrite the shards that changed."""
        changed = set()
        for problem_id, candidates, seconds in items:
            if problem_id in self.entries:
                continue
            if not self.shards or len(self.shards[-1]) >= SHARD_SIZE:
                self.shards.append([])
            self.shards[-1].append(problem_id)
            changed.add(len(self.shards) - 1)
            self.entries[problem_id] = {"id": problem_id, "seconds": round(seconds, 3),
                                        "candidates": [_candidate_to_dict(c) for c in candidates]}
        for index in sorted(changed):
            text = "".join(json.dumps(self.entries[i], ensure_ascii=False) + "\n" for i in self.shards[index])
            # mtime=0: the same outputs give the same bytes, so git sees no change in a full shard
            write_bytes_atomic(self.folder / f"part-{index:04d}.jsonl.gz",
                               gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))

    def __len__(self) -> int:
        return len(self.entries)

    def close(self) -> None:
        """Let another build open the folder (the lock also goes when the process ends)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _lock(folder: Path):
    """Held while the transcript is open: two builds adding to one folder would overwrite each other's
    newest shard. The kernel drops it when the process ends, killed or not."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return None
    handle = open(folder / LOCK, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise TranscriptError(f"{folder} is in use by another build; wait for it or stop it") from None
    return handle
