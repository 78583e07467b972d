"""results.json, results.md and the PNG plots of a run folder, recomputed from its records.

Ratios are to the reference target (the transformers float32 one when the run has it, else the
first): on a shared, noisy machine a ratio measured in one run holds better than a time.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import asdict
from pathlib import Path

from runtime.files import write_text_atomic

from . import metrics
from .suite import load_config, read_jsonl
from .targets import Target

SCHEMA_VERSION = 1
PLOTS = {"accuracy": "accuracy.png", "latency": "latency.png", "tradeoff": "tradeoff.png"}
CONFIDENCE_PLOTS = {"reliability": "reliability.png", "coverage": "coverage.png"}  # runs with --paths
# runtime.solver.ETD_RULE, as a reader of an old report needs it said.
ETD_RULES = {
    1: "etd answer: the first of PoT, EoT, CoT that gave one (rule 1, the papers').",
    2: "etd answer: the first of PoT, EoT, CoT that gave a plausible one, non-negative and whole unless an "
       "earlier thought agrees; else the first answer (rule 2).",
}


def build_results(out: Path) -> dict:
    config = load_config(out)
    targets = [Target(**t) for t in config.targets]
    reference = next((t for t in targets if t.reference), targets[0])
    records = {t.label: read_jsonl(out / "records" / f"{t.label}.jsonl") for t in targets}
    rows = []
    for target in targets:
        summary_path = out / "targets" / f"{target.label}.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        rows.append({
            "label": target.label, "engine": target.engine, "quantization": target.quantization,
            "bundle": target.bundle, "reference": target.label == reference.label,
            "size_bytes": summary.get("size_bytes"), "peak_rss_bytes": summary.get("peak_rss_bytes"),
            "load_s": summary.get("load_s_median"), "error": summary.get("error"),
            "records": len(records[target.label]),
            "accuracy": metrics.accuracy(records[target.label]),
            "latency": metrics.latency(read_jsonl(out / "latency" / f"{target.label}.jsonl")),
            "throughput": metrics.throughput(records[target.label]),
            "agreement_with_reference": metrics.agreement(records[target.label], records[reference.label]),
            "confidence": confidence_figures(records[target.label]),
        })
    steps, operations = gold_lengths(config)
    for row in rows:
        row["by_steps"] = metrics.accuracy_by_steps(records[row["label"]], steps)
        by_dataset = {}
        for dataset in dict.fromkeys(r["dataset"] for r in records[row["label"]]):
            found = metrics.accuracy_by_operations([r for r in records[row["label"]] if r["dataset"] == dataset],
                                                   operations)
            if found:
                by_dataset[dataset] = found
        row["by_operations"] = by_dataset
        row["unused_steps"] = metrics.unused_steps(records[row["label"]])
    base = next(r for r in rows if r["reference"])
    for row in rows:
        row["vs_reference"] = versus(row, base)
    expected = len(config.modes) * len(_problem_keys(config))
    settings = {k: v for k, v in asdict(config).items() if k != "device"}
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "complete": all(r["records"] == expected and not r["error"] for r in rows),
        "settings": settings, "device": config.device, "reference": base["label"],
        "targets": rows,
        "files": {"markdown": "results.md",
                  "plots": dict(PLOTS) | (CONFIDENCE_PLOTS if any(r["confidence"] for r in rows) else {})},
    }


def gold_lengths(config) -> tuple[dict[str, int], dict[str, int]]:
    """Problem id -> its gold solution's steps (GSM8K's calculator annotations), and problem id -> its
    gold equation's operations (SVAMP, ASDiv, MultiArith), for the run's datasets; a set whose data
    cannot be read is left out of the tables."""
    from distill.problems import DataError, load_problems

    steps: dict[str, int] = {}
    operations: dict[str, int] = {}
    for dataset in config.datasets:
        name, split = dataset.split("/")
        try:
            problems = load_problems(name, split, config.data_dir).problems
        except DataError:
            continue
        if name == "gsm8k":
            steps |= {p.id: metrics.solution_steps(p.solution) for p in problems if p.solution}
        else:
            counted = {p.id: metrics.equation_operations(p.equation) for p in problems}
            operations |= {key: n for key, n in counted.items() if n is not None}
    return steps, operations


def confidence_figures(records: list[dict]) -> dict:
    """dataset (and "all") -> the calibration figures of the etd records that carry sampled paths."""
    from .calibration import summary

    figures = {}
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        found = summary([r for r in records if r["dataset"] == dataset])
        if found:
            figures[dataset] = found
    if len(figures) > 1:
        figures["all"] = summary(records)
    return figures


def _problem_keys(config) -> list:
    from .suite import load_plan_problems

    return load_plan_problems(config)


def versus(row: dict, base: dict) -> dict:
    """Accuracy differences in points and speed/memory ratios against the reference row."""
    modes = {}
    for mode, figures in row["accuracy"].items():
        theirs = base["accuracy"].get(mode, {}).get("all", {})
        mine_latency, base_latency = row["latency"].get(mode, {}), base["latency"].get(mode, {})
        mine_rate, base_rate = row["throughput"].get(mode, {}), base["throughput"].get(mode, {})
        difference = None
        if figures["all"]["accuracy"] is not None and theirs.get("accuracy") is not None:
            difference = round(figures["all"]["accuracy"] - theirs["accuracy"], 2)
        modes[mode] = {
            "accuracy_points": difference,
            "latency_p50_ratio": metrics.ratio(mine_latency.get("p50_s"), base_latency.get("p50_s")),
            "throughput_ratio": metrics.ratio(mine_rate.get("problems_per_s"), base_rate.get("problems_per_s")),
        }
    return {"modes": modes, "peak_rss_ratio": metrics.ratio(row["peak_rss_bytes"], base["peak_rss_bytes"]),
            "size_ratio": metrics.ratio(row["size_bytes"], base["size_bytes"])}


def _mb(value: int | None) -> str:
    return "–" if value is None else f"{value / 1e6:.1f}"


def _num(value, suffix: str = "") -> str:
    return "–" if value is None else f"{value}{suffix}"


def to_markdown(results: dict) -> str:
    device, settings = results["device"], results["settings"]
    limits = ", ".join(f"{d} first {n}" for d, n in settings["limits"].items())
    compared = len(results["targets"]) > 1   # one target has nothing to be compared with
    lines = [
        "# Benchmark results", "",
        f"{device['cpu']} ({device['machine']}), {device['cores_available']} of {device['cores']} cores available, "
        f"threads {settings['threads'] or 'engine default'}, {(device['memory_bytes'] or 0) / 2**30:.1f} GiB memory"
        + (f", memory cap {settings['memory_cap'] / 2**30:.1f} GiB" if settings["memory_cap"] else "") + "; "
        + ", ".join(f"{k} {v}" for k, v in device["versions"].items() if v) + ".",
        "",
        f"Datasets: {', '.join(settings['datasets'])}" + (f" ({limits})" if limits else "")
        + (f", first {settings['limit']} of each" if settings["limit"] else "")
        + f"; modes {', '.join(settings['modes'])}; greedy, max {settings['max_tokens']} tokens per generation"
        + (" (or until it loops: `repeating` below)" if settings.get("run_version", 1) >= 3 else "") + "; "
        f"accuracy from batch mode ({settings['batch_size']} questions per engine call), latency from "
        f"{settings['latency_sample']} questions per mode solved one at a time"
        + (" (etd as `runtime solve` does it: a thought only where the ones before it gave no "
           + ("answer)" if settings.get("etd_rule", 1) == 1 else "plausible answer)")
           if "etd" in settings["modes"] and settings.get("run_version", 1) >= 2 else "")
        + "." + (" " + ETD_RULES[settings.get("etd_rule", 1)] if "etd" in settings["modes"] else "")
        + (f" Reference: `{results['reference']}`." if compared else "")
        + ("" if results["complete"] else " **Incomplete run: some targets have not finished.**"),
        "", "## Accuracy (%)", "",
    ]
    datasets = settings["datasets"]
    lines += ["| model | mode | " + " | ".join(datasets) + " | all |" + (" agrees with reference |" if compared else ""),
              "|---|---|" + "---|" * (len(datasets) + 1 + compared)]
    for row in results["targets"]:
        for mode, figures in row["accuracy"].items():
            cells = [_num(figures["datasets"].get(d, {}).get("accuracy")) for d in datasets]
            agree = row["agreement_with_reference"].get(mode, {}).get("agreement")
            lines.append(f"| {row['label']} | {mode} | " + " | ".join(cells)
                         + f" | **{_num(figures['all']['accuracy'])}** ({figures['all']['correct']}/{figures['all']['n']})"
                         + (f" | {_num(agree, '%')} |" if compared else " |"))
    lines += ["", "## Each thought alone (first sample), and why it failed", "",
              "| model | mode | thought | accuracy % | wrong answer | solver failures by kind |", "|---|---|---|---|---|---|"]
    # Derived modes read the etd generations: their thoughts are etd's, row for row.
    derived = settings.get("derive_modes") and "etd" in settings["modes"]
    for row in results["targets"]:
        for mode, figures in row["accuracy"].items():
            if derived and mode != "etd":
                continue
            for thought, t in figures["all"]["thoughts"].items():
                kinds = ", ".join(f"{k} {v}" for k, v in t["failures"].items()) or "–"
                lines.append(f"| {row['label']} | {mode} | {thought} | {_num(t['accuracy'])} | {t['wrong']} | {kinds} |")
    stepped = [(row, mode, b) for row in results["targets"] for mode, b in row.get("by_steps", {}).items()]
    if stepped:
        names = [name for name, _, _ in metrics.STEP_BUCKETS]
        lines += ["", "## GSM8K by steps in the gold solution (calculator annotations): accuracy % (problems)", "",
                  "| model | mode | " + " | ".join(f"{n} steps" for n in names) + " |", "|---|---|" + "---|" * len(names)]
        for row, mode, buckets in stepped:
            lines.append(f"| {row['label']} | {mode} | "
                         + " | ".join(f"{_num(buckets[n]['accuracy'])} ({buckets[n]['n']})" for n in names) + " |")
    counted = [(row, dataset, mode, b) for row in results["targets"]
               for dataset, modes in row.get("by_operations", {}).items() for mode, b in modes.items()]
    if counted:
        names = [name for name, _, _ in metrics.OPERATION_BUCKETS]
        lines += ["", "## By operations in the gold equation (one-step, two-step, more): accuracy % (problems)", "",
                  "| model | mode | dataset | " + " | ".join(f"{n} op." for n in names) + " |",
                  "|---|---|---|" + "---|" * len(names)]
        for row, dataset, mode, buckets in counted:
            lines.append(f"| {row['label']} | {mode} | {dataset} | " + " | ".join(_operations_cell(buckets[n]) for n in names) + " |")
        lines += ["", "ASDiv's formulas with remainders, ratios, comparisons or units are left out. \"longer\": the share "
                  "of the greedy programs with more operations than the gold equation (extra steps)."]
    padded = [(row, dataset, u) for row in results["targets"] for dataset, u in row.get("unused_steps", {}).items()]
    if padded:
        lines += ["", "## Programs with steps the answer never uses", "",
                  "| model | dataset | programs with an answer | with unused steps % | their accuracy % | the others' accuracy % |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {row['label']} | {dataset} | {u['programs']} | {_num(u['with_unused'])} | {_num(u['accuracy_with'])} "
                  f"| {_num(u['accuracy_without'])} |" for row, dataset, u in padded]
        lines += ["", "The greedy program of each problem (etd's), as the solver reads it: a line that computes a value "
                  "that never reaches `ans` is a step added for nothing (`runtime exec` names them); a given "
                  "number the answer does not use is not counted."]
    lines += ["", "## Speed and memory", "",
              "| model | mode | latency p50 / p90 / p99 s | first token s | decode tok/s | prompt tok/s | solver s "
              "| batch problems/s | batch tok/s | load s | peak RSS MB | on disk MB |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in results["targets"]:
        for mode in list(row["accuracy"]) + [m for m in row["latency"] if m not in row["accuracy"]]:
            lat, rate = row["latency"].get(mode, {}), row["throughput"].get(mode, {})
            lines.append(
                f"| {row['label']} | {mode} | {_num(lat.get('p50_s'))} / {_num(lat.get('p90_s'))} / {_num(lat.get('p99_s'))} "
                f"| {_num(lat.get('first_token_p50_s'))} | {_num(_round(lat.get('decode_tok_s')))} "
                f"| {_num(_round(lat.get('prompt_tok_s')))} | {_num(lat.get('solver_p50_s'))} "
                f"| {_num(rate.get('problems_per_s'))} | {_num(rate.get('tokens_per_s'))} | {_num(row['load_s'])} "
                f"| {_mb(row['peak_rss_bytes'])} | {_mb(row['size_bytes'])} |")
    lines += ["", "First-token time and prompt tok/s need a streaming engine (llama.cpp); batched engines "
              "(CTranslate2, transformers) report tokens over the whole call as decode tok/s. llama.cpp decodes "
              "greedy prompts together too (a question's thoughts, a batch's questions), so its decode tok/s is "
              "per sequence while sharing each step with the others. "
              "Peak RSS is the kernel's count for the model's process (wait4), loading included."
              + (" The reference's size is its float32 parameters (what a float32 checkpoint takes on disk)."
                 if compared else "")]
    if compared:
        lines += ["", f"## Against the reference ({results['reference']})", "",
                  "| model | mode | accuracy (points) | latency p50 | batch throughput | peak RSS | size on disk |",
                  "|---|---|---|---|---|---|---|"]
        for row in results["targets"]:
            vs = row["vs_reference"]
            for mode, m in vs["modes"].items():
                points = m["accuracy_points"]
                lines.append(f"| {row['label']} | {mode} | {'–' if points is None else f'{points:+.2f}'} "
                             f"| {_num(m['latency_p50_ratio'], '×')} | {_num(m['throughput_ratio'], '×')} "
                             f"| {_num(vs['peak_rss_ratio'], '×')} | {_num(vs['size_ratio'], '×')} |")
    lines += confidence_markdown(results)
    errors = [row for row in results["targets"] if row["error"]]
    if errors:
        lines += ["", "## Failed", ""] + [f"- `{row['label']}`: {row['error']}" for row in errors]
    lines += ["", "## Plots", "", f"![accuracy]({PLOTS['accuracy']})", "", f"![latency]({PLOTS['latency']})", "",
              f"![tradeoff]({PLOTS['tradeoff']})", ""]
    if "reliability" in results["files"]["plots"]:
        lines += [f"![reliability]({CONFIDENCE_PLOTS['reliability']})", "", f"![coverage]({CONFIDENCE_PLOTS['coverage']})", ""]
    return "\n".join(lines)


def _operations_cell(bucket: dict) -> str:
    longer = bucket.get("pot_longer")
    return f"{_num(bucket['accuracy'])} ({bucket['n']}" + (f"; {_num(longer)}% longer)" if longer is not None else ")")


def confidence_markdown(results: dict) -> list[str]:
    rows = [(row, dataset, f) for row in results["targets"] for dataset, f in row.get("confidence", {}).items()]
    if not rows:
        return []
    lines = ["", "## Confidence (etd with sampled paths)", "",
             f"Each etd answer is rated from its sampled paths (half PoT, half EoT, at temperature; {rows[0][2]['paths']} "
             "stored per problem, the calibration reads its first K) and the student's stored calibration "
             "(`runtime/confidence.py`). ECE: expected calibration error over 10 "
             "bins; AUROC: how well confidence separates right from wrong answers; per verdict, the share of problems "
             "and how many of those are right; self-consistency: the majority over the greedy answer and the paths.", "",
             "| model | dataset | n | etd accuracy % | ECE | AUROC | sure: share / accuracy % | unsure | no answer "
             "| self-consistency accuracy % | calibrated |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row, dataset, f in rows:
        cells = []
        for verdict in ("sure", "unsure", "no answer"):
            v = f["verdicts"][verdict]
            cells.append(f"{_num(_pct(v['share']))} / {_num(_pct(v['accuracy']))}")
        lines.append(f"| {row['label']} | {dataset} | {f['n']} | {_num(_pct(f['accuracy']))} | {_num(f['ece'])} "
                     f"| {_num(f['auroc'])} | " + " | ".join(cells)
                     + f" | {_num(_pct(f['self_consistency_accuracy']))} | {'yes' if f['calibrated'] else 'no'} |")
    return lines


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def short_labels(labels: list[str]) -> tuple[str, list[str]]:
    """("smollm2-base-", ["q8_0", "ct2-int8", ...]): the shared prefix, cut at a dash, and the rest."""
    import os

    prefix = os.path.commonprefix(labels) if len(labels) > 1 else ""
    prefix = prefix[: prefix.rfind("-") + 1]
    return prefix, [label[len(prefix):] or label for label in labels]


def write_plots(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = results["targets"]
    modes = results["settings"]["modes"]
    datasets = results["settings"]["datasets"]
    prefix, names = short_labels([r["label"] for r in rows])
    colors = [f"C{i % 10}" for i in range(len(rows))]
    suffix = f" — {prefix.rstrip('-')}" if prefix else ""

    figure, axes = plt.subplots(1, len(modes), figsize=(max(5, 2 + 1.4 * len(datasets)) * len(modes), 4.2), squeeze=False)
    width = 0.8 / max(1, len(rows))
    top = max([5.0] + [row["accuracy"].get(m, {}).get("datasets", {}).get(d, {}).get("accuracy") or 0
                       for row in rows for m in modes for d in datasets])
    for axis, mode in zip(axes[0], modes):
        x = np.arange(len(datasets))
        for i, row in enumerate(rows):
            values = [row["accuracy"].get(mode, {}).get("datasets", {}).get(d, {}).get("accuracy") or 0 for d in datasets]
            bars = axis.bar(x + i * width - 0.4 + width / 2, values, width, label=names[i], color=colors[i])
            axis.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
        axis.set_xticks(x, [d.split("/")[0] for d in datasets])
        axis.set_ylim(0, top * 1.15)
        axis.set_ylabel("accuracy %")
        axis.set_title(f"{mode}{suffix}")
    axes[0][0].legend(fontsize=7)
    figure.suptitle("accuracy per dataset", fontsize=10)
    _save(figure, out / PLOTS["accuracy"])

    figure, axis = plt.subplots(figsize=(max(6, 1.1 * len(rows) * len(modes)), 4.2))
    series, ticks, tick_colors = [], [], []
    for i, row in enumerate(rows):
        for mode in modes:
            values = [r["total_s"] for r in read_jsonl(out / "latency" / f"{row['label']}.jsonl") if r["mode"] == mode]
            if values:
                series.append(values)
                ticks.append(f"{names[i]}\n{mode}")
                tick_colors.append(colors[i])
    if series:
        boxes = axis.boxplot(series, showfliers=True, patch_artist=True)
        for patch, color in zip(boxes["boxes"], tick_colors):
            patch.set_facecolor(color)
            patch.set_alpha(0.5)
        axis.set_xticks(range(1, len(ticks) + 1), ticks, fontsize=7)
    axis.set_ylabel("seconds per question, end to end")
    axis.set_title(f"latency, one question at a time{suffix}")
    _save(figure, out / PLOTS["latency"])

    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    markers = "osD^v<>"
    for i, row in enumerate(rows):
        for k, mode in enumerate(modes):
            lat = row["latency"].get(mode, {}).get("p50_s")
            acc = row["accuracy"].get(mode, {}).get("all", {}).get("accuracy")
            if lat is None or acc is None:
                continue
            size = 30 + (row["peak_rss_bytes"] or 0) / 4e6
            axis.scatter([lat], [acc], s=size, alpha=0.6, color=colors[i], marker=markers[k % len(markers)],
                         label=f"{names[i]} {mode} ({_mb(row['peak_rss_bytes'])} MB)")
    axis.set_xlabel("latency p50, s")
    axis.set_ylabel("accuracy %, all datasets")
    axis.set_ylim(bottom=0)
    axis.set_title(f"accuracy vs latency, marker area = peak RSS{suffix}", fontsize=9)
    if axis.get_legend_handles_labels()[0]:  # nothing to show where no latency was measured
        axis.legend(fontsize=6, loc="best", markerscale=0.4)
    _save(figure, out / PLOTS["tradeoff"])
    if "reliability" in results["files"]["plots"]:
        write_confidence_plots(results, out)


def write_confidence_plots(results: dict, out: Path) -> None:
    """The reliability diagram (accuracy against mean confidence per bin) and accuracy against
    coverage (answer only the most confident share), one line per model and dataset."""
    import matplotlib.pyplot as plt

    series = [(f"{row['label']} {dataset}", f) for row in results["targets"]
              for dataset, f in row.get("confidence", {}).items() if dataset != "all"]
    figure, axis = plt.subplots(figsize=(5.5, 5))
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for name, f in series:
        bins = [b for b in f["reliability"] if b["n"]]
        axis.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o",
                  label=f"{name} (ECE {f['ece']:.3f})")
    axis.set_xlabel("confidence (bin mean)")
    axis.set_ylabel("share right")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_title("reliability diagram", fontsize=10)
    axis.legend(fontsize=7)
    _save(figure, out / CONFIDENCE_PLOTS["reliability"])

    figure, axis = plt.subplots(figsize=(6, 4.5))
    for name, f in series:
        axis.plot([c["coverage"] for c in f["coverage"]], [c["accuracy"] for c in f["coverage"]],
                  label=f"{name} (AUROC {f['auroc'] if f['auroc'] is not None else '–'})")
        sure = f["verdicts"]["sure"]
        if sure["n"]:
            axis.scatter([sure["share"]], [sure["accuracy"]], marker="*", s=80)
    axis.set_xlabel("coverage (share of problems answered, most confident first)")
    axis.set_ylabel("accuracy of the answered")
    axis.set_ylim(0, 1.02)
    axis.set_title("accuracy vs coverage (stars: the `sure` verdict)", fontsize=10)
    axis.legend(fontsize=7)
    _save(figure, out / CONFIDENCE_PLOTS["coverage"])


def _save(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    temporary = path.with_name(f".{path.name}.tmp")
    figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
    temporary.replace(path)


def write_reports(out: Path) -> dict:
    results = build_results(out)
    try:
        import matplotlib  # noqa: F401  (the bench extra)
    except ImportError:
        results["files"]["plots"] = {}
        print("benchmarks: matplotlib is missing, no plots (pip install 'etd-tutor[bench]')", file=sys.stderr)
    write_text_atomic(out / "results.json", json.dumps(results, indent=2) + "\n")
    write_text_atomic(out / "results.md", to_markdown(results))
    if results["files"]["plots"]:
        write_plots(results, out)
    return results
