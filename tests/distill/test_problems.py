import json

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
