"""`runtime exec` through a real process, as a user runs it."""

import json
import subprocess
import sys

RUNTIME = [sys.executable, "-m", "runtime.cli"]


def run(*args, stdin=b""):
    return subprocess.run([*RUNTIME, *args], input=stdin, capture_output=True, timeout=60)


def test_program_from_stdin():
    proc = run("exec", "--thought", "pot", stdin=b"clips_may = 48 / 2\nans = 48 + clips_may\n")
    assert proc.returncode == 0
    out = proc.stdout.decode()
    assert out.startswith("answer: 72\n") and "clips_may = 24" in out and "unused" not in out
    padded = run("exec", "--thought", "pot", stdin=b"clips_may = 48 / 2\nspare = 48 * 2\nans = 48 + clips_may\n")
    assert "unused: line 2 never reaches the answer" in padded.stdout.decode()


def test_equations_from_file_as_json(tmp_path):
    path = tmp_path / "eot.txt"
    path.write_text("meals = x\npackages = 8 * meals\npackages + meals = 27\nans = meals\n")
    proc = run("exec", "-t", "eot", str(path), "--json")
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert data["answer"] == 3.0 and data["thought"] == "eot" and data["error"] is None
    assert set(data) == {"thought", "answer", "error", "error_kind", "steps", "output", "note", "seconds", "unused_lines"}
    assert data["steps"][0] == {"name": "meals", "value": 3.0, "expression": "meals = x"}


def test_failed_rationale_exits_1_with_reason():
    proc = run("exec", "-t", "pot", stdin=b"import os\nans = 1")
    assert proc.returncode == 1
    assert "unsafe" in proc.stdout.decode() and b"Traceback" not in proc.stderr


def test_bad_input_is_one_line_exit_2(tmp_path):
    missing = run("exec", "-t", "pot", str(tmp_path / "nope.py"))
    assert missing.returncode == 2
    assert missing.stderr.decode().strip().count("\n") == 0 and b"Traceback" not in missing.stderr
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe\x00ans")
    proc = run("exec", "-t", "eot", str(binary))
    assert proc.returncode == 2 and "not UTF-8" in proc.stderr.decode()
    assert run("exec", stdin=b"ans=1").returncode == 2  # --thought is required
    assert run("exec", "-t", "sql").returncode == 2


def test_help_does_not_import_heavy_modules():
    code = ("import sys; sys.argv=['runtime','--help']\nfrom runtime import cli\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('sympy', 'torch', 'transformers', 'llama_cpp', 'ctranslate2') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert "HEAVY []" in proc.stdout.decode()
