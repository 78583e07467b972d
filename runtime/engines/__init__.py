"""Inference engines behind one small interface: llama.cpp (GGUF) and CTranslate2 (int8).

No torch or transformers here: an edge device needs neither. `open_engine` picks the engine for a
bundle's weights and imports only that engine's library.
"""

from __future__ import annotations

from pathlib import Path

from ..bundle import Manifest
from .base import Engine, EngineError, Generation

ENGINES = ("llama.cpp", "ctranslate2")


def open_engine(bundle: Path, manifest: Manifest, *, engine: str | None = None, quantization: str | None = None,
                threads: int | None = None, seed: int = 0) -> Engine:
    if engine is not None and engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    if engine is None:
        engine = manifest.weights[0].engine if manifest.weights else "llama.cpp"
    weights = manifest.find(engine, quantization)
    if engine == "llama.cpp":
        from .llamacpp import LlamaCppEngine

        return LlamaCppEngine(Path(bundle) / weights.path, threads=threads, seed=seed)
    from .ct2 import CTranslate2Engine

    if manifest.encoder_decoder:
        raise EngineError("encoder-decoder bundles are not served by the runtime yet; use a causal student")
    # "default" computes in the type the model was saved in (int8 for int8 weights; float32 stays exact).
    return CTranslate2Engine(Path(bundle) / weights.path, Path(bundle) / "tokenizer.json", threads=threads, seed=seed)


__all__ = ["ENGINES", "Engine", "EngineError", "Generation", "open_engine"]
