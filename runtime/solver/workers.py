"""The parent side of the solver sandbox: warm worker processes, deadlines, replacement.

A worker is a separate Python (`-I`, empty environment, cwd `/`) that confines itself before it
accepts work (see sandbox/child.py). Starting one costs tens of milliseconds (hundreds with
sympy), so workers are kept warm and reused; one that times out, crashes or misbehaves is killed
and the next call starts a fresh one.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .sandbox import child as sandbox_child

SANDBOX_DIR = Path(__file__).resolve().parent / "sandbox"
GRACE_SECONDS = 0.5  # wall clock allowed beyond the CPU limit before the parent kills


class WorkerError(Exception):
    """The worker did not answer: `kind` is "timeout" or "crashed"."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class Worker:
    def __init__(self, script: str, *, site: bool, memory_bytes: int, startup_timeout: float):
        argv = [sys.executable, "-I"]
        if not site:
            argv.append("-S")
        argv += [str(SANDBOX_DIR / script), str(memory_bytes)]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"LC_ALL": "C.UTF-8"},  # no inherited secrets
            cwd="/",
            close_fds=True,
            start_new_session=True,  # its own process group: a kill reaches anything it started
        )
        ready = self._receive(time.monotonic() + startup_timeout)
        if not ready.get("ready"):
            self.kill()
            raise WorkerError("crashed", "solver worker failed to start")
        self.confinement: dict = ready.get("confinement") or {}

    def call(self, request: dict, wall_seconds: float) -> dict:
        try:
            sandbox_child.write_message(self.proc.stdin.fileno(), request)
        except (BrokenPipeError, OSError):
            raise self._died() from None
        return self._receive(time.monotonic() + wall_seconds)

    def _receive(self, deadline: float) -> dict:
        fd = self.proc.stdout.fileno()
        header = self._read(fd, sandbox_child.HEADER.size, deadline)
        (size,) = sandbox_child.HEADER.unpack(header)
        if size > sandbox_child.MAX_MESSAGE_BYTES:
            self.kill()
            raise WorkerError("crashed", "solver worker sent an oversized reply")

        return json.loads(self._read(fd, size, deadline).decode("utf-8"))

    def _read(self, fd: int, size: int, deadline: float) -> bytes:
        chunks, remaining = [], size
        while remaining:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.kill()
                raise WorkerError("timeout", "time limit exceeded")
            chunk = os.read(fd, remaining)
            if not chunk:
                raise self._died()
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _died(self) -> WorkerError:
        self.kill()
        code = self.proc.returncode
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            if name in ("SIGXCPU", "SIGKILL"):
                return WorkerError("timeout", f"time limit exceeded (worker ended by {name})")
            return WorkerError("crashed", f"solver worker ended by {name}")
        return WorkerError("crashed", f"solver worker exited ({code})")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


class WorkerPool:
    """Up to `size` warm workers of one kind; thread-safe; survives forks of the parent."""

    def __init__(self, script: str, *, site: bool, memory_bytes: int, startup_timeout: float, size: int = 1):
        self.script, self.site = script, site
        self.memory_bytes, self.startup_timeout = memory_bytes, startup_timeout
        self.size = size
        self._lock = threading.Lock()
        self._reset()
        atexit.register(self.close)

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._idle: list[Worker] = []
        self._slots = threading.BoundedSemaphore(self.size)

    def call(self, request: dict, wall_seconds: float) -> dict:
        if os.getpid() != self._pid:  # a forked child must not share its parent's pipes
            self._reset()
        with self._slots:
            worker = self._take()
            try:
                reply = worker.call(request, wall_seconds)
            except WorkerError:
                worker.kill()
                raise
            with self._lock:
                self._idle.append(worker)
            return reply

    def _take(self) -> Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.kill()
        return Worker(self.script, site=self.site, memory_bytes=self.memory_bytes,
                      startup_timeout=self.startup_timeout)

    def warm(self) -> dict:
        """Start one worker now, so the first real call does not pay for start-up; returns the
        confinement that worker reported."""
        with self._slots:
            worker = self._take()
            with self._lock:
                self._idle.append(worker)
            return worker.confinement

    def close(self) -> None:
        if os.getpid() != self._pid:
            return
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()
