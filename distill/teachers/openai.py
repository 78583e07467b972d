"""The `openai` teacher: any OpenAI-compatible chat endpoint (hosted APIs, vLLM, Ollama, llama.cpp).

Standard-library HTTP, so it works wherever Python does. Each request is cached on disk under the
sha256 of the full request (URL and body): a rerun costs nothing. 429 and 5xx answers and timeouts
are retried with exponential backoff; anything else, or running out of retries, raises
TeacherError for that problem, which the builder counts and skips.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from runtime.files import write_text_atomic
from runtime.thoughts import Thought

from ..problems import Problem
from .base import Candidate, TeacherError
from .prompts import chat_messages, clean_output

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "etd-tutor" / "teacher"


class OpenAITeacher:
    def __init__(self, base_url: str, model: str, api_key: str | None = None, *, samples: int = 1,
                 temperature: float = 0.0, max_tokens: int = 384, concurrency: int = 4, timeout: float = 60.0,
                 retries: int = 4, cache_dir: Path | None = None, backoff: float = 1.0):
        self.base_url = base_url.rstrip("/")
        self.model, self.api_key = model, api_key
        self.samples, self.temperature, self.max_tokens = samples, temperature, max_tokens
        self.concurrency, self.timeout, self.retries, self.backoff = concurrency, timeout, retries, backoff
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.name = f"openai:{model}"
        self.requests_sent = 0  # real HTTP requests, not cache hits

    @classmethod
    def from_options(cls, *, base_url=None, model=None, api_key=None, **options) -> "OpenAITeacher":
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        model = model or os.environ.get("OPENAI_MODEL")
        if not model:
            raise TeacherError("no model: pass --model or set OPENAI_MODEL")
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        return cls(base_url, model, api_key, **options)

    def request_body(self, question: str, thought: Thought) -> dict:
        body = {
            "model": self.model,
            "messages": chat_messages(question, thought),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "n": self.samples,
        }
        if self.samples > 1 and self.temperature == 0:
            body["temperature"] = 0.7  # n identical greedy samples would be one sample n times
        return body

    def generate(self, problem: Problem, thoughts: list[Thought]) -> list[Candidate]:
        candidates = []
        for thought in thoughts:
            reply = self.complete(self.request_body(problem.question, thought))
            for choice in reply.get("choices", [])[: self.samples]:
                content = (choice.get("message") or {}).get("content") or choice.get("text") or ""
                candidates.append(Candidate(thought, clean_output(content)))
        return candidates

    def ask(self, messages: list[dict], *, n: int = 1, temperature: float = 0.7, max_tokens: int = 256) -> list[str]:
        """Free-form replies to a chat (question generation); cached like every request."""
        body = {"model": self.model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens, "n": n}
        reply = self.complete(body)
        return [(c.get("message") or {}).get("content") or c.get("text") or "" for c in reply.get("choices", [])[:n]]

    def complete(self, body: dict) -> dict:
        url = f"{self.base_url}/chat/completions"
        key = hashlib.sha256(json.dumps({"url": url, "body": body}, sort_keys=True).encode()).hexdigest()
        cached = self.cache_dir / key[:2] / f"{key}.json"
        if cached.is_file():
            try:
                return json.loads(cached.read_text(encoding="utf-8"))["response"]
            except (json.JSONDecodeError, KeyError):
                pass  # a damaged entry is simply asked again
        response = self._post(url, body)
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(cached, json.dumps({"url": url, "request": body, "response": response}))
        return response

    def _post(self, url: str, body: dict) -> dict:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 2))
            self.requests_sent += 1
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                    return json.loads(reply.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                if exc.code not in RETRY_STATUS:
                    raise TeacherError(f"teacher answered {last}") from None
            except (TimeoutError, socket.timeout):
                last = "timeout"
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                    last = "timeout"
                else:
                    raise TeacherError(f"cannot reach teacher at {self.base_url}: {exc.reason}") from None
            except (json.JSONDecodeError, UnicodeDecodeError):
                last = "malformed reply"
        raise TeacherError(f"teacher failed after {self.retries + 1} attempts ({last})")
