import os
from pathlib import Path

import pytest

from runtime.thoughts import Thought, format_example

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared benchmark data: $ETD_DATA_DIR, else ../shared/data beside the repository."""
    path = Path(os.environ.get("ETD_DATA_DIR") or REPO.parent / "shared" / "data")
    if not (path / "gsm8k" / "train.jsonl").is_file():
        pytest.fail(f"benchmark data not found at {path}: set ETD_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def student(data_dir, tmp_path_factory):
    """A tiny llama that has memorised 4 GSM8K problems, as a bundle with both engines."""
    from convert.bundle import load_source, make_bundle, parse_targets
    from distill.build import build
    from distill.problems import load_problems
    from distill.records import read_records
    from distill.teachers.gold import GoldTeacher
    from distill.train.loop import TrainConfig, train
    from tests.tiny_models import make_llama, make_tokenizer

    folder = tmp_path_factory.mktemp("student")
    problems = load_problems("gsm8k", "train", data_dir).problems[:4]
    data = folder / "etd.jsonl"
    build(problems, GoldTeacher(), [Thought.POT, Thought.EOT, Thought.COT], data)
    texts = []
    for r in read_records(data):
        example = format_example(r.question, r.thought, r.rationale)
        texts.append(example.prompt + example.target)
    tokenizer = make_tokenizer(texts, folder / "tokenizer")
    base = make_llama(folder / "base", tokenizer)
    train(TrainConfig(data=str(data), out=str(folder / "run"), base=str(base), max_steps=300, batch_size=6, lr=3e-3,
                      warmup=10, dev_size=0, save_every=0, threads=2))
    bundle = folder / "bundle"
    make_bundle(load_source(str(folder / "run"), which="final"), parse_targets("gguf:f16,ct2:float32"), bundle,
                fidelity=False, log=lambda _: None)
    return bundle, problems


