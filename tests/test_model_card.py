"""MODEL_CARD.md says what the committed results and the shipped student say."""

import json
import re
import shlex
from pathlib import Path

from benchmarks.card import refresh
from benchmarks.cli import build_parser
from benchmarks.suite import parse_datasets, parse_modes

REPO = Path(__file__).resolve().parent.parent
CARD = REPO / "MODEL_CARD.md"


def card() -> str:
    return CARD.read_text(encoding="utf-8")


def test_tables_are_what_the_committed_results_generate():
    _, stale = refresh(card(), REPO)
    assert not stale, f"run `benchmarks card MODEL_CARD.md`: stale {stale}"


def test_recipe_is_the_shipped_students():
    manifest = json.loads((REPO / "runtime" / "shipped" / "shipped.json").read_text())
    training, text = manifest["training"], card()
    hyper = training["hyperparameters"]
    for fact in (f"{training['steps']:,} steps", f"{training['tokens_seen']:,} tokens", f"{training['examples']:,}",
                 f"r = {hyper['lora_r']}", "lr " + f"{hyper['lr']:.0e}".replace("e-0", "e-"), f"{hyper['warmup']:g} warm-up steps",
                 f"{hyper['batch_size']} examples", f"max length {hyper['max_length']}",
                 f"{training['wall_seconds']:,.0f} s", f"{manifest['adapter_bytes'] / 1e6:.1f} MB",
                 f"sha256 `{manifest['data_sha256'][:8]}"):
        assert fact in text, fact
    dev = manifest["accuracy"]["dev"]
    for thought, name in (("pot", "PoT"), ("eot", "EoT"), ("cot", "CoT"), ("etd", "ETD")):
        assert f"{name} {100 * dev[thought]:.1f}%" in text, thought


def benchmark_commands(text: str) -> dict[Path, list[str]]:
    """`benchmarks run ... --out FOLDER` lines of the card (continuations joined), by folder."""
    joined = text.replace("\\\n", " ")
    commands = {}
    for line in joined.splitlines():
        if line.strip().startswith("benchmarks run "):
            args = build_parser().parse_args(shlex.split(line.split("#")[0])[1:])
            commands[REPO / args.out] = args
    return commands


def test_the_cards_commands_made_the_results_it_quotes():
    text = card()
    quoted = {REPO / m.split("#")[0].rsplit("/", 1)[0] for m in re.findall(r"<!-- generated: (\S+#[^>]*?) -->", text)}
    quoted = {folder for folder in quoted if folder.parent.name != "dataset-stats"}  # below
    commands = benchmark_commands(text)
    assert quoted and quoted <= set(commands), f"no `benchmarks run` line for {quoted - set(commands)}"
    for folder in quoted:
        args, settings = commands[folder], json.loads((folder / "run.json").read_text())
        datasets, limits = parse_datasets(args.datasets)
        assert (datasets, limits, parse_modes(args.modes)) == (settings["datasets"], settings["limits"], settings["modes"])
        results = json.loads((folder / "results.json").read_text())
        assert results["complete"] is True
        entries = args.model.split(",")
        assert len(entries) == len(results["targets"])
        for entry, target in zip(entries, results["targets"]):
            bundle, _, weights = entry.partition("@")      # BUNDLE or BUNDLE@[engine:]quantization
            assert target["label"].startswith(Path(bundle).name + "-")
            assert not weights or target["quantization"] == weights.rsplit(":", 1)[-1]


def test_the_cards_dataset_tables_name_their_command_and_dataset():
    text = card()
    folders = {m for m in re.findall(r"<!-- generated: dataset-stats/([^/]+)/stats\.md#", text)}
    assert folders, "the data section quotes no `distill data stats --out` tables"
    prose = " ".join(text.split())
    for name in folders:
        assert re.search(rf"`distill data stats [^`]+ --out dataset-stats/{re.escape(name)}`", prose), name
        stats = json.loads((REPO / "dataset-stats" / name / "stats.json").read_text())
        digests = [stats["sha256"]] if isinstance(stats["sha256"], str) else list(stats["sha256"].values())
        tables = (REPO / "dataset-stats" / name / "stats.md").read_text()
        assert all(f"`{digest}`" in tables for digest in digests)
        assert f"| records | {stats['counts']['records']:,} |" in tables


def test_headline_is_the_measured_gsm8k_figure():
    text = card()
    results = json.loads((REPO / "benchmarks" / "results" / "smollm2-etd-epoch1" / "results.json").read_text())
    student = next(t for t in results["targets"] if t["quantization"] == "q8_0")
    gsm8k = student["accuracy"]["etd"]["datasets"]["gsm8k/test"]
    headline = next(line for line in text.splitlines() if line.startswith("**"))
    assert f"{gsm8k['accuracy']:.1f}% of the full GSM8K test set ({gsm8k['correct']} of {gsm8k['n']:,})" in headline
    p50 = student["latency"]["etd"]["p50_s"]
    assert f"{p50:.2f} s per question at the median" in text
    readme = next(line for line in (REPO / "README.md").read_text().splitlines() if "MODEL_CARD.md" in line)
    assert f"{gsm8k['accuracy']:.1f}% of GSM8K" in readme   # the README quotes the same figure
