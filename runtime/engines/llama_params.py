"""The one place that decides how llama.cpp loads a model on this CPU, and the one way to load it.

Every GGUF the project runs through llama.cpp (the runtime engine and its batch decoder, convert's
fidelity check, the benchmark worker, the llama.cpp teacher, the tests) is opened by `load_llama`,
with the parameters `llama_params()` chooses.

Why: llama.cpp's CPU backend places weights in "extra buffer types" where it has special kernels for
them: AMX tiles on Intel Xeons from Sapphire Rapids on, and repacked (interleaved) q4_0/iq4_nl/q8_0
layouts for AVX2/AVX-512/NEON. On CPUs with AMX the AMX path crashes (SIGSEGV in
`ggml_backend_amx_mul_mat` during `llama_decode`, on SmolLM2's q8_0 and q4_1 weights alike), and
building llama-cpp-python with GGML_AMX_* off does not help while GGML_NATIVE is on. Loading with
`use_extra_bufts = false` keeps every weight in the plain CPU buffer: no AMX, no repacking.

Policy, decided by measurement (see POLICY_MEASURED): extra buffer types are turned off where the
CPU has AMX, and left on elsewhere, where repacking is what makes q4_0 fast (on ARM, the Raspberry
Pi's architecture, repacked q4_0/q8_0 are llama.cpp's fastest kernels). `ETD_LLAMA_EXTRA_BUFFERS`
= `on` | `off` | `auto` (default) overrides the decision, for a CPU this rule gets wrong.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..cpu import CpuInfo, cpu_info

ENV_OVERRIDE = "ETD_LLAMA_EXTRA_BUFFERS"

# Measured on an AMD EPYC (Zen 4; AVX-512, AVX512-VNNI and AVX512-BF16, no AMX), 2 cores, llama-cpp-python
# 0.3.36, the shipped student (SmolLM2-135M), a 128-token prompt then 64 decoded tokens, one sequence;
# tokens per second, the median of 5 runs, in two alternating rounds (round 1, round 2):
POLICY_MEASURED = {
    # quantization: {"with"/"without" extra buffer types: ((prompt, decode) round 1, (prompt, decode) round 2)}
    "q8_0": {"with": ((437, 84.7), (466, 89.1)), "without": ((415, 85.0), (432, 80.4))},    # within noise
    "q4_0": {"with": ((535, 101), (707, 123)), "without": ((381, 85.7), (276, 78.3))},      # repacking: ~1.4x decode
    "q4_1": {"with": ((215, 90.7), (193, 81.1)), "without": ((186, 87.7), (216, 88.4))},    # no repacked kernel
}
# So turning them off everywhere would cost q4_0 a third of its decode speed on AVX-512 (and more on
# ARM, where llama.cpp's repacked NEON kernels are its fastest), for nothing where there is no AMX.


@dataclass(frozen=True)
class LlamaParams:
    """What `load_llama` passes to llama.cpp beyond the caller's context settings, and why."""

    use_extra_bufts: bool
    reason: str

    def to_dict(self) -> dict:
        return {"use_extra_bufts": self.use_extra_bufts, "reason": self.reason}


def llama_params(cpu: CpuInfo | None = None, env: dict | None = None) -> LlamaParams:
    """The model parameters that are safe and fast on this CPU (or on `cpu`, for tests)."""
    cpu = cpu or cpu_info()
    env = os.environ if env is None else env
    override = (env.get(ENV_OVERRIDE) or "auto").strip().lower()
    if override in ("on", "1", "true"):
        return LlamaParams(True, f"extra buffer types on: {ENV_OVERRIDE}={override}")
    if override in ("off", "0", "false"):
        return LlamaParams(False, f"extra buffer types off: {ENV_OVERRIDE}={override}")
    if cpu.amx:
        return LlamaParams(False, "extra buffer types off: this CPU has AMX, and llama.cpp's AMX matmul "
                                  "crashes (SIGSEGV); weights stay in the plain CPU buffer")
    return LlamaParams(True, "extra buffer types on (llama.cpp's default): no AMX on this CPU, and weight "
                             "repacking speeds up q4_0 here")


_PATCH_LOCK = threading.Lock()


@contextmanager
def chosen_defaults(params: LlamaParams | None = None):
    """While open, llama-cpp-python's `llama_model_default_params()` returns the chosen parameters.

    llama-cpp-python's `Llama` (and its server, which the teacher tests run) builds its model
    parameters from those defaults inside its constructor and has no argument for `use_extra_bufts`,
    so the function it reads is swapped for the duration (under a lock)."""
    import llama_cpp.llama_cpp as native

    params = params or llama_params()
    with _PATCH_LOCK:
        original = native.llama_model_default_params

        def defaults():
            value = original()
            value.use_extra_bufts = params.use_extra_bufts
            return value

        native.llama_model_default_params = defaults
        try:
            yield params
        finally:
            native.llama_model_default_params = original


def load_llama(path: str | os.PathLike, *, n_ctx: int, threads: int, seed: int = 0, logits_all: bool = False,
               params: LlamaParams | None = None):
    """A `llama_cpp.Llama` on `path` with this CPU's safe parameters, both thread counts set (left to
    their defaults, one busy core made decoding many times slower), and quiet. The parameters it
    was given are checked on the loaded model."""
    import llama_cpp

    with chosen_defaults(params) as params:
        llm = llama_cpp.Llama(model_path=str(Path(path)), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                              seed=seed, logits_all=logits_all, verbose=False)
    if bool(llm.model_params.use_extra_bufts) != params.use_extra_bufts:  # a llama-cpp-python that reads them elsewhere
        llm.close()
        raise RuntimeError("llama-cpp-python ignored the chosen model parameters (use_extra_bufts); "
                           "this version of it is not supported")
    return llm
