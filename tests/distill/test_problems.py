import json
import os
import socket
import subprocess
import sys
import time

import pytest

from distill.problems import DataError, load_problems


def test_gsm8k_train_loads_every_problem(data_dir):
    loaded = load_problems("gsm8k", "train", data_dir)
    assert len(loaded.problems) == 7473 and not loaded.skipped
    first = loaded.problems[0]
    assert first.source == "gsm8k/train" and first.answer == 72.0 and "<<48/2=24>>" in first.solution


def test_gsm8k_dev_is_300_training_problems_chosen_by_hash(data_dir):
    import hashlib

    from distill.problems import gsm8k_dev_ids

    train = load_problems("gsm8k", "train", data_dir).problems
    dev = load_problems("gsm8k", "dev", data_dir).problems
    assert len(dev) == 300 and {p.source for p in dev} == {"gsm8k/dev"}
    by_id = {p.id: p for p in train}
    assert all(by_id[p.id].question == p.question and by_id[p.id].answer == p.answer for p in dev)
    # the stored ids are the rule's: the 300 smallest salted hashes from the 100th problem on, in the split's order
    ranked = sorted([p.id for p in train[100:]], key=lambda i: hashlib.sha256(f"etd-dev-1:{i}".encode()).hexdigest())
    assert gsm8k_dev_ids() == set(ranked[:300]) == {p.id for p in dev}
    assert not gsm8k_dev_ids() & {p.id for p in train[:100]}
    assert [p.id for p in dev] == [p.id for p in train if p.id in gsm8k_dev_ids()]
    assert len(load_problems("gsm8k", "dev", data_dir, limit=7).problems) == 7


def test_asdiv_skips_non_numeric_with_a_count(data_dir):
    loaded = load_problems("asdiv", "test", data_dir)
    assert len(loaded.problems) == 2093
    assert loaded.skipped == {"non-numeric answer": 212}


def test_environment_variable_is_the_default(data_dir, monkeypatch):
    monkeypatch.setenv("ETD_DATA_DIR", str(data_dir))
    assert len(load_problems("multiarith", "test").problems) == 600


@pytest.mark.parametrize("dataset, split, message", [
    ("mnist", "test", "unknown dataset"), ("svamp", "train", "has no split"),
])
def test_bad_names(data_dir, dataset, split, message):
    with pytest.raises(DataError, match=message):
        load_problems(dataset, split, data_dir)


def test_missing_dir_and_malformed_line(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_problems("svamp", "test", tmp_path / "nope")
    (tmp_path / "svamp").mkdir()
    (tmp_path / "svamp" / "test.jsonl").write_text(json.dumps({"question": "q", "answer": 1}) + "\n{oops\n")
    with pytest.raises(DataError, match=r"test.jsonl:2: malformed JSON"):
        load_problems("svamp", "test", tmp_path)


def test_no_local_dir_and_no_hub_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("ETD_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="no local data directory"):
        load_problems("svamp", "test")


def test_an_unreachable_hub_fails_in_one_line_at_once(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("ETD_DATA_DIR", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env |= {"HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HOME": str(tmp_path / "hf")}  # no cached copy either
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "distill.cli", "data", "build", "--dataset", "svamp", "--split", "test",
                           "--out", str(tmp_path / "out.jsonl")], capture_output=True, text=True, env=env, timeout=120)
    # The hub client alone retries for ~25 s and prints each retry; the loader checks the host first.
    assert time.monotonic() - started < 15
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "127.0.0.1 is unreachable (offline?)" in proc.stderr and "Retrying" not in proc.stderr
