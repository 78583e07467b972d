"""The worker side of the solver sandbox: confinement, framing and the request loop.

Standard library only. A worker script imports this by path, loads what it needs (math, sympy),
calls `serve(handle, memory_bytes)`, and from then on runs with:

- an address-space limit (memory bombs raise MemoryError), no core files, no file writes
  (RLIMIT_FSIZE 0), no new processes (RLIMIT_NPROC 0 after dropping root), no new file
  descriptors (RLIMIT_NOFILE at the ones already open: no open(), no sockets), and its own
  network namespace where the kernel allows one. Dropping root and the descriptor limit apply
  where model-written code runs (the PoT worker), not to the EoT worker that gets our trees;
- a CPU timer per request (SIGPROF raises in the program) and an RLIMIT_CPU backstop that kills
  the process if C code ignores the timer; the parent adds a wall-clock deadline on top.

Messages are 4-byte big-endian lengths followed by UTF-8 JSON, on the worker's stdin/stdout.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import struct
import sys

HEADER = struct.Struct(">I")
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
NOBODY = 65534


class CpuTimeExceeded(BaseException):
    """Raised by the CPU timer. A BaseException so that nothing the program does swallows it."""


def read_message(fd: int) -> dict | None:
    header = _read_exact(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_MESSAGE_BYTES:
        raise ValueError("message too large")
    body = _read_exact(fd, size)
    if body is None:
        return None
    return json.loads(body.decode("utf-8"))


def write_message(fd: int, message: dict) -> None:
    body = json.dumps(message, allow_nan=False).encode("utf-8")
    data = HEADER.pack(len(body)) + body
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = os.read(fd, remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _leave_network() -> bool:
    """Move into an empty network namespace (root only; skipped where not permitted). True if it did."""
    if os.geteuid() != 0:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.unshare(0x40000000) == 0  # CLONE_NEWNET
    except Exception:
        return False


def confinement(network_namespace: bool) -> dict:
    """What this process is held to, read back from the kernel (reported to the parent at start-up,
    so that `runtime doctor` shows what is in force, not what was asked for)."""
    def limit(which: int):
        soft, _ = resource.getrlimit(which)
        return None if soft == resource.RLIM_INFINITY else soft

    return {"network_namespace": network_namespace, "uid": os.getuid(),
            "address_space_bytes": limit(resource.RLIMIT_AS), "file_size_bytes": limit(resource.RLIMIT_FSIZE),
            "processes": limit(resource.RLIMIT_NPROC), "open_files": limit(resource.RLIMIT_NOFILE),
            "core_bytes": limit(resource.RLIMIT_CORE)}


def confine(memory_bytes: int, *, runs_model_code: bool = True) -> tuple[int, int, dict]:
    """Limit this process for good. Returns (request fd, reply fd, the confinement in force).

    `runs_model_code=False` is for the EoT worker: it gets a tree our grammar built, never text
    or code from the model, and sympy imports submodules lazily on first use, so it keeps its
    user and may open (read) files; every resource limit still applies.
    """
    # Keep private copies of the pipes and point 0/1/2 at /dev/null, so that nothing a program
    # manages to print can corrupt the message stream.
    request_fd, reply_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)

    isolated = _leave_network()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    if runs_model_code and os.geteuid() == 0:
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        except OSError:
            pass
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    except (ValueError, OSError):
        pass
    if runs_model_code:
        highest = max(request_fd, reply_fd) + 1
        resource.setrlimit(resource.RLIMIT_NOFILE, (highest, highest))
    signal.signal(signal.SIGPROF, _on_cpu_timer)
    sys.setrecursionlimit(400)
    return request_fd, reply_fd, confinement(isolated)


def _on_cpu_timer(signum, frame):
    raise CpuTimeExceeded()


def _arm_cpu_limit(cpu_seconds: float) -> None:
    signal.setitimer(signal.ITIMER_PROF, max(cpu_seconds, 0.001))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    # Backstop: if the timer cannot interrupt (long C call), the kernel ends the process.
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used + cpu_seconds) + 2
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _disarm_cpu_limit() -> None:
    signal.setitimer(signal.ITIMER_PROF, 0)


def serve(handle, memory_bytes: int, *, runs_model_code: bool = True) -> None:
    """Answer requests until the parent closes the pipe. `handle(request) -> dict`."""
    request_fd, reply_fd, confined = confine(memory_bytes, runs_model_code=runs_model_code)
    write_message(reply_fd, {"ready": True, "confinement": confined})
    while True:
        try:
            request = read_message(request_fd)
        except (ValueError, UnicodeDecodeError):
            return
        if request is None:
            return
        try:
            _arm_cpu_limit(float(request.get("cpu", 2.0)))
            reply = handle(request)
        except CpuTimeExceeded:
            reply = {"error": "time limit exceeded", "kind": "timeout"}
        except MemoryError:
            reply = {"error": "memory limit exceeded", "kind": "memory"}
        except RecursionError:
            reply = {"error": "recursion too deep", "kind": "runtime"}
        except Exception as exc:  # the worker must survive whatever the program did
            reply = {"error": f"{type(exc).__name__}: {exc}"[:500], "kind": "runtime"}
        finally:
            _disarm_cpu_limit()
        try:
            write_message(reply_fd, reply)
        except (ValueError, TypeError):  # e.g. NaN in a value the handler forgot to clean
            write_message(reply_fd, {"error": "unserialisable result", "kind": "runtime"})
