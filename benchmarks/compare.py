"""`benchmarks compare A B`: what changed between two result folders (B against A).

Targets are matched by label; when the runs share none (say, the base bundle against a trained
student), their first targets are compared. Accuracy differences are in points and as a ratio B/A (none
where A is 0), for the datasets and modes both runs measured; "all" pools only the datasets both
measured, so a one-dataset run is not set against another run's four. Speed and memory are ratios B/A.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import metrics


class CompareError(ValueError):
    """A folder holds no results.json (run `benchmarks report` on it first)."""


def load_results(path: Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise CompareError(f"no results in {path}: no such folder or file")
    file = path / "results.json" if path.is_dir() else path
    try:
        return json.loads(file.read_text())
    except FileNotFoundError:
        raise CompareError(f"no results in {path} (expected {file}; `benchmarks report {path}` writes it)") from None
    except json.JSONDecodeError as exc:
        raise CompareError(f"{file} is not valid JSON: {exc}") from None


def compare(a: dict, b: dict, modes: list[str] | None = None) -> dict:
    """B against A; `modes` keeps only those modes (default: every mode both runs measured)."""
    rows_a = {r["label"]: r for r in a["targets"]}
    rows_b = {r["label"]: r for r in b["targets"]}
    pairs = [(label, label) for label in rows_a if label in rows_b]
    if not pairs:
        pairs = [(a["targets"][0]["label"], b["targets"][0]["label"])]
    compared = []
    for label_a, label_b in pairs:
        ra, rb = rows_a[label_a], rows_b[label_b]
        per_mode = {}
        for mode in [m for m in ra["accuracy"] if m in rb["accuracy"] and (modes is None or m in modes)]:
            acc_a, acc_b = ra["accuracy"][mode], rb["accuracy"][mode]
            shared = [d for d in acc_a["datasets"] if d in acc_b["datasets"]]
            datasets = {d: _difference(acc_a["datasets"][d]["accuracy"], acc_b["datasets"][d]["accuracy"]) for d in shared}
            lat_a, lat_b = ra["latency"].get(mode, {}), rb["latency"].get(mode, {})
            rate_a, rate_b = ra["throughput"].get(mode, {}), rb["throughput"].get(mode, {})
            per_mode[mode] = {
                "datasets": datasets,
                "all": _difference(_pooled(acc_a, shared), _pooled(acc_b, shared)),
                "latency_p50_ratio": metrics.ratio(lat_b.get("p50_s"), lat_a.get("p50_s")),
                "throughput_ratio": metrics.ratio(rate_b.get("problems_per_s"), rate_a.get("problems_per_s")),
            }
        compared.append({"a": label_a, "b": label_b, "modes": per_mode,
                         "peak_rss_ratio": metrics.ratio(rb.get("peak_rss_bytes"), ra.get("peak_rss_bytes")),
                         "size_ratio": metrics.ratio(rb.get("size_bytes"), ra.get("size_bytes"))})
    same_device = a["device"].get("cpu") == b["device"].get("cpu")
    return {"a": a["generated_at"], "b": b["generated_at"], "same_cpu": same_device, "targets": compared}


def _pooled(accuracy: dict, datasets: list[str]) -> float | None:
    """Accuracy over `datasets` alone: the run's own "all" when it measured exactly these."""
    if set(datasets) == set(accuracy["datasets"]):
        return accuracy["all"]["accuracy"]
    rows = [accuracy["datasets"][d] for d in datasets]
    if not rows or any("n" not in r for r in rows):
        return None
    n = sum(r["n"] for r in rows)
    return round(100 * sum(r["correct"] for r in rows) / n, 2) if n else None


def _difference(a: float | None, b: float | None) -> dict:
    # Points and the ratio: "5x the base" is how a distillation result is usually stated.
    return {"a": a, "b": b, "points": None if a is None or b is None else round(b - a, 2),
            "ratio": metrics.ratio(b, a)}


def to_markdown(differences: dict, *, title: bool = True) -> str:
    # Without the title (it holds the runs' timestamps) the table is what MODEL_CARD.md embeds.
    lines = [f"# B ({differences['b']}) against A ({differences['a']})", ""] if title else []
    if not differences["same_cpu"]:
        lines += ["Measured on different CPUs: compare the accuracy; take the speed ratios with care.", ""]
    lines += ["| A | B | mode | dataset | A % | B % | points | B/A | latency p50 B/A | throughput B/A | peak RSS B/A |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for pair in differences["targets"]:
        for mode, figures in pair["modes"].items():
            rows = list(figures["datasets"].items())
            if len(rows) != 1:  # with one shared dataset "all" is that dataset again
                rows.append(("all", figures["all"]))
            for dataset, d in rows:
                points = "–" if d["points"] is None else f"{d['points']:+.2f}"
                speed = dataset == rows[-1][0]  # speed and memory are per model: on the last row
                lines.append(f"| {pair['a']} | {pair['b']} | {mode} | {dataset} | {_cell(d['a'])} | {_cell(d['b'])} | {points} | {_times(d['ratio'])} "
                             f"| {_cell(figures['latency_p50_ratio'] if speed else None)} "
                             f"| {_cell(figures['throughput_ratio'] if speed else None)} "
                             f"| {_cell(pair['peak_rss_ratio'] if speed else None)} |")
    return "\n".join(lines) + "\n"


def _times(value) -> str:
    return "–" if value is None else f"{value:.1f}×"


def _cell(value) -> str:
    return "–" if value is None else str(value)
