"""Benchmarks: accuracy, latency and memory of the runtime on CPU-only hardware."""
