"""`runtime solve` end to end with real engines: a tiny student memorised and converted here to
GGUF (llama.cpp) and CTranslate2, and the real SmolLM2 default bundle."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.tiny_models import make_llama, make_tokenizer  # noqa: F401

RUNTIME = [sys.executable, "-m", "runtime.cli"]
KEYS = {"schema_version", "question", "mode", "answer", "thought", "reason", "thoughts", "timings", "model", "engine", "error",
        "confidence", "verdict", "distribution", "confidence_detail", "samples"}


def run(*args, env=None, timeout=300):
    return subprocess.run([*RUNTIME, *args], capture_output=True, timeout=timeout, env=env)


@pytest.mark.parametrize("engine", ["llama.cpp", "ctranslate2"])
@pytest.mark.parametrize("mode", ["etd", "vote", "pot", "eot", "cot"])
def test_every_mode_on_both_engines(student, engine, mode):
    bundle, problems = student
    problem = problems[0]
    proc = run("solve", problem.question, "--model", str(bundle), "--engine", engine, "--mode", mode, "--json")
    assert proc.returncode == 0, proc.stderr.decode()[-500:]
    result = json.loads(proc.stdout)
    assert set(result) == KEYS and result["schema_version"] == 1
    assert result["answer"] == problem.answer and result["engine"] == engine and result["mode"] == mode
    # etd stops at the first thought that answers: the memorised program runs, so that is all it needs.
    assert [t["thought"] for t in result["thoughts"]] == (["pot", "eot", "cot"] if mode == "vote" else
                                                          ["pot"] if mode == "etd" else [mode])
    assert {"thought", "sample", "text", "result", "tokens", "seconds", "first_token_s"} <= set(result["thoughts"][0])
    assert set(result["timings"]) == {"load_s", "first_token_s", "generation_s", "solver_s", "total_s"}
    if mode == "etd":  # with confidence (the default): sampled paths, half PoT and half EoT, and a verdict
        assert result["verdict"] in ("sure", "unsure", "no answer") and 0 <= result["confidence"] <= 1
        assert sorted(t["thought"] for t in result["samples"]) == ["eot"] * 4 + ["pot"] * 4
        counted = sum(g["count"] for g in result["distribution"])
        assert counted == sum(t["result"]["answer"] is not None for t in result["samples"])
        assert result["confidence_detail"]["paths"] == 8 and result["confidence_detail"]["calibrated"] is False
    else:
        assert result["confidence"] is None and result["verdict"] is None and result["samples"] == []


def assert_lazy_etd(result: dict) -> None:
    """The thoughts an etd solve generated: PoT, EoT, CoT in order, up to the first that settled it."""
    from runtime.solver import SolverResult, select_etd
    from runtime.thoughts import Thought

    names = [t["thought"] for t in result["thoughts"]]
    assert names == ["pot", "eot", "cot"][:len(names)] and names
    results = [SolverResult(Thought(t["thought"]), t["result"]["answer"]) for t in result["thoughts"]]
    assert not any(select_etd(results[:k]).settled for k in range(1, len(results)))
    assert select_etd(results).settled or len(names) == 3
    assert result["answer"] == select_etd(results).answer


def test_etd_generates_a_thought_only_where_the_earlier_ones_failed(student, garbage):
    bundle, problems = student
    full = json.loads(run("solve", problems[3].question, "--model", str(bundle), "--json", "--all-thoughts").stdout)
    lazy = json.loads(run("solve", problems[3].question, "--model", str(bundle), "--json").stdout)
    assert [t["thought"] for t in full["thoughts"]] == ["pot", "eot", "cot"]
    assert [t["thought"] for t in lazy["thoughts"]] == ["pot"] and lazy["thoughts"][0]["text"] == full["thoughts"][0]["text"]
    assert lazy["answer"] == full["answer"] == problems[3].answer and lazy["thought"] == full["thought"] == "pot"
    # Where the program and the equations fail, etd goes on to the prose. (Its texts are not compared
    # with --all-thoughts: one prompt streams through create_completion, which drops the random
    # model's multi-byte characters that the batched decoder keeps.)
    lazy = json.loads(run("solve", "What is 2 plus 2?", "--model", str(garbage), "--json", "--max-tokens", "24").stdout)
    assert [t["thought"] for t in lazy["thoughts"]] == ["pot", "eot", "cot"]
    assert_lazy_etd(lazy)


def test_human_output_shows_answer_then_thought(student):
    bundle, problems = student
    proc = run("solve", problems[1].question, "--model", str(bundle), "--mode", "pot")
    out = proc.stdout.decode().splitlines()
    assert proc.returncode == 0 and out[0] == f"answer: {int(problems[1].answer)}" and out[2] == "--- pot ---"


def test_human_output_gives_the_answer_before_the_sampled_paths_rate_it(student, capsys, monkeypatch):
    """etd with confidence: the answer line is out (flushed) before the sampled paths are drawn."""
    from runtime.cli import main
    from runtime.student import Student

    bundle, problems = student
    rate, seen_before_rating = Student.rate, []

    def watched(self, solutions, **kwargs):
        seen_before_rating.append(capsys.readouterr().out)
        return rate(self, solutions, **kwargs)

    monkeypatch.setattr(Student, "rate", watched)
    assert main(["solve", problems[1].question, "--model", str(bundle), "--max-tokens", "128"]) == 0
    rest = capsys.readouterr().out.splitlines()
    assert seen_before_rating == [f"answer: {int(problems[1].answer)}\n"]
    assert rest[0].startswith("confidence: ") and "of 8 sampled paths agree" in rest[0] and rest[1].startswith("why: etd")


def test_samples_vote(student):
    bundle, problems = student
    proc = run("solve", problems[2].question, "--model", str(bundle), "--mode", "vote", "--samples", "2", "--json")
    result = json.loads(proc.stdout)
    assert len(result["thoughts"]) == 6 and "answers agree" in result["reason"]


def test_batch_mode_resumes(student, tmp_path):
    bundle, problems = student
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"id": p.id, "question": p.question}) + "\n" for p in problems))
    out = tmp_path / "answers.jsonl"
    first = problems[0]
    # written raw, as the runtime writes JSON (ensure_ascii=False): a U+2028 must not cut the line
    before = {"id": first.id, "answer": first.answer, "note": "from before\u2028"}
    out.write_text(json.dumps(before, ensure_ascii=False) + "\n{\"id\": \"cut", encoding="utf-8")
    proc = run("solve", "--file", str(questions), "--out", str(out), "--model", str(bundle), "--mode", "pot")
    assert proc.returncode == 0, proc.stderr.decode()[-500:]
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n") if line]
    assert [line["id"] for line in lines] == [p.id for p in problems]
    assert lines[0]["note"] == "from before\u2028"  # not solved again
    assert all(line["answer"] == p.answer for line, p in zip(lines[1:], problems[1:]))
    assert "3 of 3 answered (1 were already done)" in proc.stdout.decode()


NO_TORCH = textwrap.dedent("""
    import sys
    from runtime import cli
    code = cli.main(sys.argv[1:])
    heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)
    print('HEAVY', heavy, 'CODE', code, file=sys.stderr)
""")


def test_runtime_path_never_imports_torch(student):
    bundle, problems = student
    for engine in ("llama.cpp", "ctranslate2"):
        proc = subprocess.run([sys.executable, "-c", NO_TORCH, "solve", problems[0].question, "--model", str(bundle),
                               "--engine", engine, "--json"], capture_output=True, timeout=300)
        assert "HEAVY [] CODE 0" in proc.stderr.decode(), proc.stderr.decode()[-500:]


GUARD = textwrap.dedent("""
    import socket
    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")
    socket.socket.connect = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
""")


def test_solves_with_the_network_cut(student, tmp_path):
    bundle, problems = student
    (tmp_path / "sitecustomize.py").write_text(GUARD)
    env = dict(os.environ, PYTHONPATH=str(tmp_path), HF_HUB_OFFLINE="1")
    check = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', 9))"],
                           env=env, capture_output=True)
    assert b"network disabled by the test" in check.stderr  # the guard is really in place
    proc = run("solve", problems[3].question, "--model", str(bundle), "--json", env=env)
    assert proc.returncode == 0 and json.loads(proc.stdout)["answer"] == problems[3].answer


def test_bad_input(student, tmp_path):
    bundle, _ = student
    cases = [
        (["solve", "   ", "--model", str(bundle)], "the question is empty"),
        (["solve", "x" * 100_000, "--model", str(bundle)], "the limit is"),
        (["solve", "How many?", "--model", str(tmp_path / "missing")], "no bundle"),
        (["solve", "How many?", "--model", str(bundle), "--mode", "guess"], "invalid choice"),
        (["solve", "--model", str(bundle)], "give a question or --file"),
        (["tutor", "--model", str(tmp_path / "missing")], "no bundle"),  # before the screen opens
    ]
    for args, message in cases:
        proc = run(*args)
        err = proc.stderr.decode()
        assert proc.returncode == 2 and message in err and "Traceback" not in err, (args, err[-300:])


def test_corrupted_bundle_is_refused(student, tmp_path):
    import shutil

    bundle, _ = student
    copy = tmp_path / "damaged"
    shutil.copytree(bundle, copy)
    gguf = copy / "model-f16.gguf"
    gguf.write_bytes(gguf.read_bytes()[:5000])
    proc = run("solve", "How many?", "--model", str(copy))
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "damaged" in err and "model-f16.gguf" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def garbage(tmp_path_factory) -> Path:
    """A bundle of random weights: it writes no runnable program and no solvable equations."""
    from convert.bundle import load_source, make_bundle, parse_targets

    folder = tmp_path_factory.mktemp("garbage")
    tokenizer = make_tokenizer(["ans = 1 + 2\n", "Question: how many?\n"] * 10, folder / "tok", vocab_size=300)
    base = make_llama(folder / "random", tokenizer, hidden=64, init_range=0.5)
    make_bundle(load_source(str(base)), parse_targets("gguf:f16"), folder / "bundle", fidelity=False, log=lambda _: None)
    return folder / "bundle"


def test_garbage_model_gives_a_clear_error(garbage):
    for mode in ("pot", "eot"):  # prose would still yield its last number; programs and equations cannot
        proc = run("solve", "What is 2 plus 2?", "--model", str(garbage), "--json", "--mode", mode,
                   "--max-tokens", "24")
        result = json.loads(proc.stdout)
        assert proc.returncode == 1 and result["answer"] is None
        assert result["error"].startswith("no thought gave an answer")
        assert result["thoughts"][0]["result"]["error_kind"] in ("syntax", "unsafe", "no_answer", "runtime")


def test_real_smollm2_default_bundle(tmp_path):
    """With no --model: the student this checkout ships (runtime/shipped), else the untuned base."""
    shipped = Path(__file__).resolve().parents[2] / "runtime" / "shipped" / "shipped.json"
    expected = json.loads(shipped.read_text())["name"] if shipped.is_file() else "smollm2-base"
    env = {k: v for k, v in os.environ.items() if k != "ETD_STUDENT_ADAPTER"} | {"ETD_HOME": str(tmp_path / "home")}
    proc = run("solve", "Tom has 5 apples and buys 7 more. How many apples does he have?", "--json",
               "--max-tokens", "48", env=env, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr.decode()[-500:]
    result = json.loads(proc.stdout)
    assert result["model"] == expected
    assert_lazy_etd(result)
    assert "building the default bundle" in proc.stderr.decode()
    models = run("models", "--json", env=env)
    listing = json.loads(models.stdout)
    assert listing["default"] == expected and listing["bundles"][0]["ok"]


@pytest.mark.parametrize("engine", ["llama.cpp", "ctranslate2"])
def test_solve_batch_equals_one_at_a_time(student, engine):
    from runtime.student import Student

    bundle, problems = student
    with_student = Student.open(str(bundle), engine=engine)
    try:
        questions = [p.question for p in problems]
        batch = with_student.solve_batch(questions, mode="etd", lazy=False)
        alone = [with_student.solve(q, mode="etd", lazy=False) for q in questions]
        assert [s.question for s in batch] == [" ".join(q.split()) for q in questions]
        assert [[t.text for t in s.thoughts] for s in batch] == [[t.text for t in s.thoughts] for s in alone]
        assert [s.answer for s in batch] == [p.answer for p in problems]
        assert all(len(s.thoughts) == 3 and t.prompt_tokens > 0 and t.tokens > 0 for s in batch for t in s.thoughts)
        lazy = with_student.solve_batch(questions, mode="etd")
        assert [(s.answer, s.thought) for s in lazy] == [(s.answer, s.thought) for s in batch]
        assert [[t.text for t in s.thoughts] for s in lazy] == [[t.text for t in s.thoughts][:1] for s in batch]
    finally:
        with_student.close()


def test_ct2_static_prefix_gives_the_same_text(student):
    """Prompts sharing a prefix run with it as CTranslate2's cached static prompt; the output must
    be token for token what the whole prompts give (the bundle's float32 CT2 model is exact)."""
    from runtime.engines.ct2 import CTranslate2Engine
    from runtime.thoughts import STOP_SEQUENCES, Thought, format_prompt

    bundle, problems = student
    engine = CTranslate2Engine(bundle / "ct2-float32", bundle / "tokenizer.json")
    try:
        prefix = "Solve each problem.\n\n"   # ends in newlines: its own tokens differ from the joined prompt's
        prompts = [prefix + format_prompt(p.question, t) for t in (Thought.POT, Thought.EOT) for p in problems]
        options = dict(max_tokens=96, temperature=0.0, samples=1, stop=list(STOP_SEQUENCES))
        shared = engine.generate(prompts, prefixes=[prefix] * len(prompts), **options)
        whole = engine.generate(prompts, **options)
        assert [g[0].text for g in shared] == [g[0].text for g in whole]
        assert [g[0].prompt_tokens for g in shared] == [g[0].prompt_tokens for g in whole]
        assert all(g[0].text.strip() for g in shared)
    finally:
        engine.close()


def test_every_engine_ends_a_generation_at_the_line_until_accepts(student):
    """`until` (how a looping rationale is stopped) ends each sequence right after the first line
    it accepts, text kept, on every decoding path: llama.cpp batched and streamed, CTranslate2 and
    the float32 reference."""
    from benchmarks.reference import TransformersEngine
    from runtime.engines.ct2 import CTranslate2Engine
    from runtime.engines.llamacpp import LlamaCppEngine
    from runtime.thoughts import STOP_SEQUENCES, Thought, format_prompt

    bundle, problems = student
    batched = LlamaCppEngine(next(bundle.glob("*.gguf")), threads=2, batch_size=8)
    streamed = LlamaCppEngine(next(bundle.glob("*.gguf")), threads=2, batch_size=1)
    engines = [batched, streamed, CTranslate2Engine(bundle / "ct2-float32", bundle / "tokenizer.json"),
               TransformersEngine(str(bundle.parent / "run" / "final"))]
    prompts = [format_prompt(p.question, t) for t in (Thought.POT, Thought.COT) for p in problems]
    options = dict(max_tokens=96, temperature=0.0, samples=1, stop=list(STOP_SEQUENCES))
    asked: list[str] = []

    def one_line(text: str) -> bool:
        asked.append(text)
        return text.count("\n") >= 1

    try:
        for engine in engines:
            full = [g[0] for g in engine.generate(prompts, **options)]
            asked.clear()
            cut = [g[0] for g in engine.generate(prompts, until=one_line, **options)]
            assert asked and all(text.count("\n") == 1 for text in asked), engine   # asked as a line completes
            for whole, short in zip(full, cut):
                head = whole.text.split("\n")[0] + "\n"
                assert whole.text.strip().count("\n") >= 1, whole.text    # the memorised rationales run longer
                assert whole.text.startswith(short.text) and short.text.startswith(head), (engine, short.text)
                assert "\n" not in short.text[len(head):] and short.tokens < whole.tokens
    finally:
        for engine in engines:
            engine.close()


def test_shipped_adapter_becomes_the_default_student(tmp_path):
    """A LoRA adapter on the real SmolLM2 base, shipped the way the trained student ships: the
    runtime builds the default bundle from base GGUF + adapter with no torch, and it computes what
    transformers + PEFT compute."""
    import numpy as np
    import torch
    from distill.train.model import apply_lora, load_base
    from runtime.engines.llama_params import load_llama
    from runtime.thoughts import FORMAT_VERSION

    model, tokenizer, _ = load_base("smollm2")
    model = apply_lora(model, rank=2, alpha=4, encoder_decoder=False)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.02)
    shipped = tmp_path / "shipped"
    model.save_pretrained(shipped)
    (shipped / "shipped.json").write_text(json.dumps({
        "name": "smollm2-test-etd", "base": "smollm2", "thoughts": ["pot", "eot", "cot"],
        "format_version": FORMAT_VERSION, "quantizations": ["q8_0"]}))
    env = dict(os.environ, ETD_HOME=str(tmp_path / "home"), ETD_STUDENT_ADAPTER=str(shipped))
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, "solve", "Tom has 5 apples and buys 7 more. How many?",
                           "--mode", "pot", "--max-tokens", "24", "--json"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert "HEAVY [] CODE" in proc.stderr, proc.stderr[-1000:]
    assert "building the default bundle (smollm2-test-etd)" in proc.stderr
    assert json.loads(proc.stdout)["model"] == "smollm2-test-etd"
    listing = json.loads(run("models", "--json", env=env).stdout)
    assert listing["default"] == "smollm2-test-etd" and listing["packaged"] == ["smollm2-test-etd", "smollm2-base"]
    # The untuned base stays reachable by name, to compare with.
    base = run("solve", "Tom has 5 apples and buys 7 more. How many?", "--model", "smollm2-base", "--mode", "pot",
               "--max-tokens", "24", "--json", env=env, timeout=600)
    assert json.loads(base.stdout)["model"] == "smollm2-base", base.stderr.decode()[-500:]
    assert "building the bundle (smollm2-base)" in base.stderr.decode()
    assert json.loads((tmp_path / "home" / "bundles" / "smollm2-base" / "student.json").read_text())["source"]["trained"] is False
    bundle = tmp_path / "home" / "bundles" / "smollm2-test-etd"
    manifest = json.loads((bundle / "student.json").read_text())
    assert manifest["source"]["trained"] is True and [w["quantization"] for w in manifest["weights"]] == ["q8_0"]
    assert not list(bundle.glob("*f32*"))            # the float32 intermediate is not kept

    merged = model.merge_and_unload().eval()
    ids = tokenizer("Question: Tom has 5 apples and buys 7 more.", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        expected = merged(torch.tensor([ids])).logits[0].argmax(-1).numpy()
    llm = load_llama(bundle / "model-q8_0.gguf", n_ctx=128, threads=2, logits_all=True)
    try:
        llm.eval(ids)
        got = np.array(llm.scores[: len(ids)]).argmax(-1)
    finally:
        llm.close()
    assert (got == expected).mean() >= 0.8, (got, expected)

    # A newer student shipped under the same name (an upgrade): the cached bundle is rebuilt from it,
    # once; the old bundle is not served.
    from safetensors.torch import load_file, save_file

    from runtime.files import sha256_file

    weights = load_file(shipped / "adapter_model.safetensors")
    save_file({k: v * 2 if "lora_B" in k else v for k, v in weights.items()}, shipped / "adapter_model.safetensors")
    again = run("solve", "Tom has 5 apples and buys 7 more. How many?", "--mode", "pot", "--max-tokens", "8",
                "--json", env=env, timeout=600)
    assert "the shipped student changed" in again.stderr.decode(), again.stderr.decode()[-500:]
    rebuilt = json.loads((bundle / "student.json").read_text())
    assert rebuilt["source"]["source_sha256"] == sha256_file(shipped / "adapter_model.safetensors")
    assert rebuilt["source"]["source_sha256"] != manifest["source"]["source_sha256"]
    assert sorted(p.name for p in bundle.parent.iterdir()) == ["smollm2-base", "smollm2-test-etd"]
    third = run("solve", "Tom has 5 apples and buys 7 more. How many?", "--mode", "pot", "--max-tokens", "8",
                "--json", env=env, timeout=600)
    assert "building" not in third.stderr.decode() and "changed" not in third.stderr.decode()

    # A new student ships with `--keep-previous`: the one it replaces stays reachable under its own name,
    # built from its own adapter, and the confidence map fitted for it goes with it.
    from distill.ship import keep_previous

    (shipped / "confidence.json").write_text('{"fitted_for": "v1"}')
    earlier = keep_previous(shipped, "smollm2-test-etd-v1")
    assert earlier == tmp_path / "students" / "smollm2-test-etd-v1"
    assert (earlier / "confidence.json").read_text() == '{"fitted_for": "v1"}'
    v1_sha = sha256_file(shipped / "adapter_model.safetensors")
    save_file({k: v * 3 if "lora_B" in k else v for k, v in weights.items()}, shipped / "adapter_model.safetensors")
    listing = json.loads(run("models", "--json", env=env).stdout)
    assert listing["default"] == "smollm2-test-etd"
    assert listing["packaged"] == ["smollm2-test-etd", "smollm2-test-etd-v1", "smollm2-base"]
    old = run("solve", "Tom has 5 apples and buys 7 more. How many?", "--model", "smollm2-test-etd-v1", "--mode", "pot",
              "--max-tokens", "8", "--json", env=env, timeout=600)
    assert json.loads(old.stdout)["model"] == "smollm2-test-etd-v1", old.stderr.decode()[-500:]
    kept = json.loads((bundle.parent / "smollm2-test-etd-v1" / "student.json").read_text())
    assert kept["source"]["source"] == str(earlier) and kept["source"]["source_sha256"] == v1_sha
    with pytest.raises(Exception, match="another student"):
        keep_previous(shipped, "smollm2-test-etd-v1")  # the name is taken by other weights
