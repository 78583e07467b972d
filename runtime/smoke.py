"""The smoke decode `runtime doctor` runs in a child process: open a bundle's weights the way
`runtime solve` does, decode a few tokens greedily (several prompts together, then one streamed),
and print one JSON line. If the native engine crashes, only this child dies, and the parent says why.

    python -m runtime.smoke BUNDLE [--engine ENGINE] [--quantization Q]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

PROMPTS = ["Question: Tom has 3 apples and buys 4 more. How many apples does he have?\n",
           "Question: A box holds 6 eggs. How many eggs are in 2 boxes?\n"]
TOKENS = 6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.smoke", description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--engine")
    parser.add_argument("--quantization")
    args = parser.parse_args(argv)

    from .bundle import BundleError, open_bundle
    from .engines import EngineError, open_engine

    try:
        manifest = open_bundle(args.bundle, hashes=False)  # the parent checks the hashes
        started = time.perf_counter()
        engine = open_engine(args.bundle, manifest, engine=args.engine, quantization=args.quantization)
        loaded = time.perf_counter() - started
        try:
            started = time.perf_counter()
            together = engine.generate(PROMPTS, max_tokens=TOKENS, temperature=0.0, samples=1, stop=[])
            alone = engine.generate(PROMPTS[:1], max_tokens=TOKENS, temperature=0.0, samples=1, stop=[])
            seconds = time.perf_counter() - started
        finally:
            engine.close()
    except (BundleError, EngineError, ValueError, RuntimeError) as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 1
    tokens = sum(g.tokens for runs in together + alone for g in runs)
    print(json.dumps({"ok": tokens > 0, "tokens": tokens, "load_s": loaded, "decode_s": seconds,
                      "engine": engine.name, "error": None if tokens else "the model decoded no tokens"}))
    return 0 if tokens else 1


if __name__ == "__main__":
    sys.exit(main())
