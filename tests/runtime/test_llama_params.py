"""llama.cpp's model parameters come from one function, chosen for the CPU, and every load uses them."""

import ast
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.cpu import CpuInfo, parse_cpuinfo
from runtime.engines.llama_params import ENV_OVERRIDE, LlamaParams, llama_params

REPO = Path(__file__).resolve().parents[2]

SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu avx avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 avx512_fp16 amx_tile amx_int8
"""
ZEN4 = """processor\t: 0
model name\t: AMD EPYC 9B14
flags\t\t: fpu avx avx2 avx512f avx512_vnni avx512_bf16
"""
RASPBERRY_PI_5 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
"""


def test_cpuinfo_is_read_for_x86_and_arm():
    xeon = parse_cpuinfo(SAPPHIRE_RAPIDS, machine="x86_64", cores=2)
    assert xeon.amx and xeon.model.startswith("Intel(R) Xeon(R) Platinum 8481C")
    assert xeon.summary() == {"AVX2": True, "AVX-512": True, "AVX512-VNNI": True, "AVX512-BF16": True, "AMX": True}
    assert not parse_cpuinfo(ZEN4, machine="x86_64", cores=2).amx
    pi = parse_cpuinfo(RASPBERRY_PI_5, machine="aarch64", cores=4)
    assert not pi.amx and pi.summary() == {"NEON": True, "ARM dotprod": True, "ARM i8mm": False}


def test_extra_buffer_types_are_off_only_where_amx_is_present_unless_overridden():
    amx = parse_cpuinfo(SAPPHIRE_RAPIDS, machine="x86_64", cores=2)
    plain = parse_cpuinfo(ZEN4, machine="x86_64", cores=2)
    pi = parse_cpuinfo(RASPBERRY_PI_5, machine="aarch64", cores=4)
    assert llama_params(amx, env={}).use_extra_bufts is False
    assert "AMX" in llama_params(amx, env={}).reason
    assert llama_params(plain, env={}).use_extra_bufts is True
    assert llama_params(pi, env={}).use_extra_bufts is True
    assert llama_params(CpuInfo("x86_64", "unknown", 1), env={}).use_extra_bufts is True
    assert llama_params(amx, env={ENV_OVERRIDE: "on"}).use_extra_bufts is True
    assert llama_params(plain, env={ENV_OVERRIDE: "off"}).use_extra_bufts is False
    assert llama_params(plain, env={ENV_OVERRIDE: "auto"}).use_extra_bufts is True


# Every way of loading a model into llama.cpp, as it would appear in source.
LOADERS = ("Llama", "llama_model_load_from_file", "llama_load_model_from_file")
SERVER = ".".join(("llama_cpp", "server"))  # spelled so that this file does not match itself
ALLOWED = {Path("runtime/engines/llama_params.py"), Path("tests/llama_server.py")}


def test_no_source_file_loads_a_llama_model_around_the_one_function():
    offenders = []
    for package in ("runtime", "distill", "convert", "benchmarks", "tui", "tests"):
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO)
            if relative in ALLOWED:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                    if name in LOADERS:
                        offenders.append(f"{relative}:{node.lineno} calls {name}")
                if isinstance(node, ast.Constant) and node.value == SERVER:
                    offenders.append(f"{relative}:{node.lineno} starts llama_cpp.server directly")
    assert not offenders, offenders


@pytest.fixture
def loads(monkeypatch):
    """Every llama.cpp model load in this process, as the `use_extra_bufts` it passed."""
    import llama_cpp.llama_cpp as native

    seen = []
    original = native.llama_model_load_from_file

    def recording(path, params):
        seen.append(bool(params.use_extra_bufts))
        return original(path, params)

    monkeypatch.setattr(native, "llama_model_load_from_file", recording)
    return seen


@pytest.mark.parametrize("setting", ["off", "on"])
def test_engine_fidelity_check_and_teacher_pass_the_chosen_parameters(student, loads, monkeypatch, setting):
    """Forced both ways (the default on this CPU may be llama.cpp's own), each loader must follow."""
    from convert.fidelity import llamacpp_tokens
    from distill.teachers.llamacpp import LlamaCppTeacher
    from runtime.bundle import load_manifest
    from runtime.engines import open_engine
    from runtime.thoughts import Thought
    from transformers import PreTrainedTokenizerFast

    monkeypatch.setenv(ENV_OVERRIDE, setting)
    bundle, problems = student
    gguf = bundle / load_manifest(bundle).find("llama.cpp").path

    engine = open_engine(bundle, load_manifest(bundle), engine="llama.cpp")
    try:  # the batch decoder makes its own contexts on the engine's model
        engine.generate(["Question: a\n", "Question: b\n"], max_tokens=2, temperature=0.0, samples=1, stop=[])
        assert bool(engine.llm.model_params.use_extra_bufts) is (setting == "on")
    finally:
        engine.close()
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(bundle / "tokenizer.json"))
    llamacpp_tokens(gguf, tokenizer, ["Question: a\n"], 2)
    teacher = LlamaCppTeacher(str(gguf), max_tokens=2, n_ctx=1024)
    try:
        teacher.generate(problems[0], [Thought.POT])
    finally:
        teacher.llm.close()
    assert loads == [setting == "on"] * 3


def test_a_native_crash_in_the_smoke_child_becomes_one_line_with_cause_and_fix():
    from runtime.doctor import interpret_smoke

    crashed = subprocess.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"],
                             capture_output=True, text=True)
    assert crashed.returncode == -signal.SIGSEGV
    result = interpret_smoke(crashed.returncode, crashed.stdout, crashed.stderr, extra_buffers=True)
    assert not result.ok and result.signal == "SIGSEGV" and "\n" not in result.detail
    assert "crashed with SIGSEGV" in result.detail and "fix:" in result.detail
    illegal = interpret_smoke(-signal.SIGILL, "", "", extra_buffers=False)
    assert "instructions this CPU lacks" in illegal.detail and "--no-binary llama-cpp-python" in illegal.detail


def run_cli(*args, env):
    return subprocess.run([sys.executable, "-m", "runtime.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600, cwd=str(REPO))


def test_doctor_on_the_tiny_student(student, tmp_path):
    bundle, _ = student
    env = dict(os.environ, ETD_HOME=str(tmp_path / "home"))
    proc = run_cli("doctor", "--model", str(bundle), "--json", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] and {"cpu", "llama.cpp", "engine parameters", "bundle", "decode", "solver pot", "solver eot",
                             "sandbox", "cache", "network"} <= set(checks)
    assert checks["decode"]["status"] == "ok" and checks["decode"]["data"]["tokens"] > 0
    assert checks["engine parameters"]["data"]["use_extra_bufts"] is llama_params().use_extra_bufts
    sandbox = checks["sandbox"]["data"]
    assert sandbox["pot"]["file_size_bytes"] == 0 and sandbox["pot"]["processes"] == 0
    assert sandbox["pot"]["address_space_bytes"] > 0
    table = run_cli("doctor", "--model", str(bundle), env=env)
    assert table.returncode == 0 and table.stdout.strip().endswith("all checks passed")


def test_doctor_and_solve_report_weights_that_do_not_run_in_one_line(student, tmp_path):
    """A bundle whose files match their hashes but whose GGUF llama.cpp cannot load: the doctor says
    so with exit 1, and `runtime solve` refuses with one line (exit 2), both without a traceback."""
    import shutil

    from runtime.bundle import describe_files, load_manifest

    bundle, _ = student
    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    manifest = load_manifest(broken)
    gguf = broken / manifest.find("llama.cpp").path
    gguf.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    manifest.files = describe_files(broken)
    (broken / "student.json").write_text(manifest.to_json())
    env = dict(os.environ, ETD_HOME=str(tmp_path / "home"))
    doctor = run_cli("doctor", "--model", str(broken), env=env)
    assert doctor.returncode == 1 and "Traceback" not in doctor.stdout + doctor.stderr
    assert [line for line in doctor.stdout.splitlines() if line.startswith("decode") and " fail " in line]
    solve = run_cli("solve", "What is 2 plus 3?", "--model", str(broken), "--engine", "llama.cpp", env=env)
    assert solve.returncode == 2 and "Traceback" not in solve.stderr
    assert "does not run here" in solve.stderr and len(solve.stderr.strip().splitlines()) <= 2
