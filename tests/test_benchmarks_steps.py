import json
import subprocess
import sys


def steps(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.cli", "steps", *args], capture_output=True, text=True,
                          timeout=600)


def test_step_timing_writes_reports(student, tmp_path):
    bundle, _ = student
    # 8 sequences of 40 steps need their own cells beyond the shared prompt: a context sized for one
    # sequence's steps cannot hold them.
    proc = steps("--model", f"{bundle}@f16", "--sequences", "8,1,2,8", "--steps", "40", "--rounds", "2",
                 "--threads", "1", "--out", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads((tmp_path / "decode_steps.json").read_text())
    assert json.loads(proc.stdout) == [result]
    assert result["target"] == "bundle-f16" and result["weights"] == "model-f16.gguf"
    assert result["threads"] == 1 and result["steps"] == 40 and result["relative_to"] == 1
    assert result["prompt_tokens"] > 10
    rows = result["rows"]
    assert [row["sequences"] for row in rows] == [1, 2, 8]  # sorted, each count once
    for row in rows:
        assert row["step_ms"] > 0 and len(row["rounds_ms"]) == 2
        assert abs(row["per_token_ms"] - row["step_ms"] / row["sequences"]) < 1e-2
        assert min(row["rounds_ms"]) <= row["step_ms"] <= max(row["rounds_ms"])
    assert rows[0]["relative"] == 1.0
    markdown = (tmp_path / "decode_steps.md").read_text()
    assert "| sequences | ms a step | ms a token | x the step of 1 |" in markdown
    assert f"| 8 | {rows[2]['step_ms']} | {rows[2]['per_token_ms']} | {rows[2]['relative']} |" in markdown


def test_step_timing_refuses_bad_input_in_one_line(student, tmp_path):
    bundle, _ = student
    for args, message in [
        (["--sequences", "0,2"], "between 1 and 64"),
        (["--sequences", "two"], "whole numbers"),
        (["--steps", "0"], "at least 1"),
        (["--model", f"{bundle}@ct2:float32"], "measures llama.cpp (GGUF) weights"),
        (["--model", str(tmp_path / "nowhere")], "error"),
    ]:
        proc = steps(*(["--model", f"{bundle}@f16"] if "--model" not in args else []), *args, "--out", str(tmp_path))
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "decode_steps.json").exists()
