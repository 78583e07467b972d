"""What this CPU can do, as far as the engines care: the instruction-set flags that change which
kernels llama.cpp and CTranslate2 run (AVX2, AVX-512, AVX512-BF16, AMX on x86-64; NEON, dot
product, i8mm, SVE on ARM). Read from /proc/cpuinfo, never by running an instruction.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

# Flags as Linux names them in /proc/cpuinfo ("flags" on x86, "Features" on ARM).
X86_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
ARM_FLAGS = ("asimd", "asimddp", "i8mm", "sve", "bf16")  # asimd is NEON on 64-bit ARM
AMX_FLAGS = ("amx_tile", "amx_int8", "amx_bf16")


@dataclass(frozen=True)
class CpuInfo:
    machine: str                      # platform.machine(): x86_64, aarch64, ...
    model: str                        # "model name" (x86) or the CPU part, where the kernel says
    cores: int
    flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def amx(self) -> bool:
        return any(flag in self.flags for flag in AMX_FLAGS)

    def summary(self) -> dict[str, bool]:
        """The flags that matter, by their usual names."""
        named = {"AVX2": "avx2", "AVX-512": "avx512f", "AVX512-VNNI": "avx512_vnni", "AVX512-BF16": "avx512_bf16",
                 "AMX": "amx_tile", "NEON": "asimd", "ARM dotprod": "asimddp", "ARM i8mm": "i8mm"}
        if self.machine.startswith(("arm", "aarch")):
            keys = ("NEON", "ARM dotprod", "ARM i8mm")
        else:
            keys = ("AVX2", "AVX-512", "AVX512-VNNI", "AVX512-BF16", "AMX")
        return {key: named[key] in self.flags or (key == "NEON" and "neon" in self.flags) for key in keys}


def parse_cpuinfo(text: str, *, machine: str, cores: int) -> CpuInfo:
    """The flags and model name from /proc/cpuinfo's text (the first processor's entry)."""
    flags: set[str] = set()
    model = ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key in ("flags", "features") and not flags:
            flags = set(value.split())
        elif key in ("model name", "cpu model", "hardware") and not model:
            model = value.strip()
    return CpuInfo(machine=machine, model=model or machine, cores=cores, flags=frozenset(flags))


@lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    import os

    machine = platform.machine() or "unknown"
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux: no flags known, which the callers treat as "nothing special"
        text = ""
    return parse_cpuinfo(text, machine=machine, cores=os.cpu_count() or 1)
