"""Teachers against real servers on 127.0.0.1: llama.cpp's OpenAI-compatible server, and small
HTTP servers that answer 429 or never answer."""

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from distill.build import build
from distill.problems import Problem, load_problems
from distill.records import read_records
from distill.teachers.base import TeacherError
from distill.teachers.openai import OpenAITeacher
from distill.teachers.prompts import EXAMPLES
from distill.dataset_stats import has_unknown
from runtime.fewshot import EXAMPLES as STUDENT_EXAMPLES
from runtime.base_model import smollm2_gguf_path
from runtime.solver import answers_match, execute
from runtime.thoughts import Thought, format_prompt

THOUGHTS = [Thought.POT, Thought.EOT]
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.llama_server", "--model", str(smollm2_gguf_path()), "--model_alias", "smollm2",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2", "--n_threads_batch", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(REPO),
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("llama.cpp server did not start")
            time.sleep(0.3)
    yield base_url, proc
    proc.terminate()
    proc.wait(timeout=30)


def test_openai_teacher_with_a_real_server(llama_server, data_dir, tmp_path):
    base_url, server = llama_server
    problems = load_problems("gsm8k", "train", data_dir).problems[:3]
    cache = tmp_path / "cache"
    teacher = OpenAITeacher(base_url, "smollm2", samples=2, temperature=0.7, max_tokens=80, concurrency=2,
                            timeout=120, retries=1, cache_dir=cache)
    first = tmp_path / "first.jsonl"
    stats = build(problems, teacher, THOUGHTS, first)
    assert teacher.requests_sent == len(problems) * len(THOUGHTS)

    # The request shape: system instruction, the worked examples as turns, then the question.
    entries = [json.loads(p.read_text()) for p in cache.rglob("*.json")]
    assert len(entries) == len(problems) * len(THOUGHTS)
    questions = {format_prompt(p.question, t) for p in problems for t in THOUGHTS}
    for entry in entries:
        assert entry["url"] == f"{base_url}/chat/completions"
        request = entry["request"]
        assert request["model"] == "smollm2" and request["n"] == 2
        assert request["temperature"] == 0.7 and request["max_tokens"] == 80
        roles = [m["role"] for m in request["messages"]]
        assert roles == ["system"] + ["user", "assistant"] * len(EXAMPLES) + ["user"]
        assert request["messages"][-1]["content"] in questions
        assert entry["response"]["choices"]

    # Everything generated is either kept (and verifies) or dropped and counted.
    generated = sum(s.generated for s in stats.by_thought.values())
    kept = sum(s.kept for s in stats.by_thought.values())
    failed = sum(sum(s.failures.values()) for s in stats.by_thought.values())
    assert generated >= len(problems) * len(THOUGHTS)
    assert kept + failed == generated and failed > 0
    gold = {p.id: p.answer for p in problems}
    for record in read_records(first):
        assert answers_match(execute(record.thought, record.rationale).answer, gold[record.problem_id])

    # A rerun is served from the cache: the server is gone and no request is made.
    server.terminate()
    server.wait(timeout=30)
    again = OpenAITeacher(base_url, "smollm2", samples=2, temperature=0.7, max_tokens=80, concurrency=2,
                          timeout=5, retries=0, cache_dir=cache)
    second = tmp_path / "second.jsonl"
    stats_again = build(problems, again, THOUGHTS, second)
    assert again.requests_sent == 0 and not stats_again.teacher_errors
    assert second.read_bytes() == first.read_bytes()


class _Handler(BaseHTTPRequestHandler):
    calls = 0
    mode = "429-then-ok"

    def do_POST(self):
        type(self).calls += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "hang":
            time.sleep(3)
            return
        if self.mode == "429-then-ok" and type(self).calls == 1:
            self.send_response(429)
            self.end_headers()
            return
        body = json.dumps({"choices": [{"message": {"content": "```python\nans = 3 + 4\n```"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_server():
    servers = []

    def start(mode):
        handler = type("Handler", (_Handler,), {"calls": 0, "mode": mode})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1", handler

    yield start
    for server in servers:
        server.shutdown()


PROBLEM = Problem(id="t-1", source="test/test", question="What is 3 plus 4?", answer=7.0)


def test_retry_after_429_then_cached(fake_server, tmp_path):
    base_url, handler = fake_server("429-then-ok")
    teacher = OpenAITeacher(base_url, "m", retries=2, backoff=0.01, cache_dir=tmp_path, timeout=5)
    candidates = teacher.generate(PROBLEM, [Thought.POT])
    assert [c.text for c in candidates] == ["ans = 3 + 4"]  # code fence removed
    assert handler.calls == 2 and teacher.requests_sent == 2
    teacher.generate(PROBLEM, [Thought.POT])
    assert handler.calls == 2  # cached


def test_teacher_that_times_out_is_a_counted_skip(fake_server, tmp_path):
    base_url, _ = fake_server("hang")
    teacher = OpenAITeacher(base_url, "m", retries=1, backoff=0.01, cache_dir=tmp_path / "c", timeout=0.3)
    with pytest.raises(TeacherError, match="timeout"):
        teacher.generate(PROBLEM, [Thought.POT])
    stats = build([PROBLEM], teacher, [Thought.POT], tmp_path / "out.jsonl")
    assert stats.teacher_errors and stats.problems == 1
    assert (tmp_path / "out.jsonl").read_text() == ""


def test_examples_in_the_prompts_verify():
    for examples in (EXAMPLES, STUDENT_EXAMPLES):
        for _, rationales in examples:
            answers = {execute(t, text).answer for t, text in rationales.items()}
            assert len(answers) == 1 and None not in answers
    # the teacher is shown systems that solve for their unknown, each a relation of the question
    assert all(has_unknown(rationales[Thought.EOT]) for _, rationales in EXAMPLES)
    assert [q for q, _ in EXAMPLES] == [q for q, _ in STUDENT_EXAMPLES]


def test_llamacpp_teacher_generates_with_the_same_prompts(tmp_path):
    from distill.teachers.llamacpp import LlamaCppTeacher

    teacher = LlamaCppTeacher(str(smollm2_gguf_path()), max_tokens=48, threads=2)
    candidates = teacher.generate(PROBLEM, [Thought.POT, Thought.COT])
    assert [c.thought for c in candidates] == [Thought.POT, Thought.COT]
    assert all(isinstance(c.text, str) and "Question:" not in c.text for c in candidates)
    stats = build([PROBLEM], teacher, [Thought.POT], tmp_path / "out.jsonl")
    pot = stats.by_thought["pot"]
    assert pot.generated == 1 and pot.kept + sum(pot.failures.values()) == 1


def test_llamacpp_teacher_missing_model():
    from distill.teachers.llamacpp import LlamaCppTeacher

    with pytest.raises(TeacherError, match="no GGUF model"):
        LlamaCppTeacher("/nonexistent.gguf")
