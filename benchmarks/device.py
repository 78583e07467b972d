"""The machine a result was measured on, and limits that emulate a smaller one.

`profile()` is stored with every result: CPU model, cores (present and used), memory, OS and the
versions of the libraries that decide the numbers. `apply_limits()` runs inside the measured child
process: it pins the process to N cores (so the engines cannot use more than the device has) and
caps its address space (a Raspberry Pi with 4 GB has no swap to hide behind).
"""

from __future__ import annotations

import os
import platform
import re
import resource
from importlib import metadata

LIBRARIES = ("llama_cpp_python", "ctranslate2", "tokenizers", "sympy", "numpy", "torch", "transformers", "etd-tutor")


def cpu_model() -> str:
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return platform.processor() or platform.machine()
    for key in ("model name", "Model", "Hardware", "cpu model"):
        match = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if match:
            return match.group(1).strip()
    return platform.processor() or platform.machine()


def memory_total_bytes() -> int | None:
    try:
        for line in open("/proc/meminfo", encoding="utf-8"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def profile(*, threads: int | None = None, memory_cap: int | None = None) -> dict:
    cores = os.cpu_count() or 1
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "cores": cores,
        "cores_available": available,
        "threads": threads,
        "memory_bytes": memory_total_bytes(),
        "memory_cap_bytes": memory_cap,
        "versions": versions(),
    }


def parse_size(text: str) -> int:
    """`4G`, `512M`, `4096` (MB) -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"not a size: {text!r} (e.g. 4G or 512M)")
    number, unit = float(match.group(1)), match.group(2).upper() or "M"
    return int(number * 1024 ** "KMGT".index(unit) * 1024)


def apply_limits(*, threads: int | None, memory_cap: int | None) -> None:
    if threads and hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cores[:threads])
    if memory_cap:
        # Address space, not resident memory: a conservative stand-in for a device's RAM (the
        # mmapped weights count in full, as they would have to fit there).
        resource.setrlimit(resource.RLIMIT_AS, (memory_cap, memory_cap))
