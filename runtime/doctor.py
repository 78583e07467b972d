"""`runtime doctor`: does the product work on this machine, and if not, why, in one line each.

Native code (llama.cpp, CTranslate2) can kill the process that runs it, so the decode check runs
in a child (`runtime.smoke`); a signal becomes a line with its likely cause and the fix. The same
check guards `runtime solve` and the tutor: before a bundle's weights are first used on this
machine (the default bundle's first build included), the smoke decode runs in a child, and a pass
is remembered in the cache (`smoke-checks.json`, keyed by weights, llama.cpp version, parameters
and CPU), so a crash never is the user's first experience and later runs pay nothing.
"""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .bundle import BundleError, Manifest, load_manifest, verify
from .cpu import CpuInfo, cpu_info
from .files import write_text_atomic
from .models import bundles_dir, default_bundle_name, home, list_bundles, resolve_model

SMOKE_TIMEOUT = 300.0          # seconds: loading a large model from a slow SD card takes a while
SMOKE_RECORDS = "smoke-checks.json"
PROGRAM = "apples = 3\nbought = 4\nans = apples + bought"
EQUATIONS = "% Assume Tom had x apples\nx + 4 = 7\nans = x"


@dataclass
class Check:
    name: str
    status: str        # "ok", "fail" or "info"
    detail: str
    data: dict | None = None

    @property
    def failed(self) -> bool:
        return self.status == "fail"


@dataclass
class SmokeResult:
    ok: bool
    detail: str
    signal: str | None = None
    data: dict | None = None


# --- the smoke decode, in a child --------------------------------------------------------------

def explain_signal(name: str, cpu: CpuInfo, extra_buffers: bool) -> str:
    """The likely cause of a native crash and what to do, in one line."""
    if name == "SIGILL":
        return ("llama.cpp was built for instructions this CPU lacks (a build made on another machine); fix: "
                "pip install --force-reinstall --no-cache-dir --no-binary llama-cpp-python llama-cpp-python")
    if name == "SIGKILL":
        return "killed by the kernel, most likely out of memory; fix: close other programs or use a smaller quantization"
    if cpu.amx and extra_buffers:
        return ("llama.cpp's AMX kernels on this CPU; fix: ETD_LLAMA_EXTRA_BUFFERS=off (the default where AMX is "
                "seen, so something turned it on)")
    return ("a llama.cpp build or model file that does not work on this CPU; fix: ETD_LLAMA_EXTRA_BUFFERS=off, "
            "else reinstall llama-cpp-python from source on this machine "
            "(pip install --force-reinstall --no-cache-dir --no-binary llama-cpp-python llama-cpp-python)")


def smoke_decode(folder: Path, *, engine: str | None = None, quantization: str | None = None,
                 timeout: float = SMOKE_TIMEOUT) -> SmokeResult:
    """Load `folder`'s weights and decode a few tokens in a child process."""
    from .engines.llama_params import llama_params

    argv = [sys.executable, "-m", "runtime.smoke", str(folder)]
    argv += ["--engine", engine] if engine else []
    argv += ["--quantization", quantization] if quantization else []
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              cwd=str(Path(__file__).resolve().parent.parent))
    except subprocess.TimeoutExpired:
        return SmokeResult(False, f"the smoke decode did not finish in {timeout:.0f} s")
    return interpret_smoke(proc.returncode, proc.stdout, proc.stderr, extra_buffers=llama_params().use_extra_bufts)


def signal_name(returncode: int) -> str:
    number = -returncode
    return signal.Signals(number).name if number in signal.Signals._value2member_map_ else f"signal {number}"


def crash_message(returncode: int, *, extra_buffers: bool | None = None) -> str:
    """One line for a child process that a signal ended (returncode < 0): what, the likely cause, the fix."""
    if extra_buffers is None:
        from .engines.llama_params import llama_params

        extra_buffers = llama_params().use_extra_bufts
    name = signal_name(returncode)
    return f"the engine crashed with {name} while loading or decoding: likely {explain_signal(name, cpu_info(), extra_buffers)}"


def interpret_smoke(returncode: int, stdout: str, stderr: str, *, extra_buffers: bool) -> SmokeResult:
    """What the smoke child's exit means: a signal becomes one line with its likely cause and fix."""
    if returncode < 0:
        return SmokeResult(False, crash_message(returncode, extra_buffers=extra_buffers), signal_name(returncode))
    try:
        report = json.loads(stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        return SmokeResult(False, f"the smoke decode failed (exit {returncode}): {last[:200]}")
    if not report.get("ok"):
        return SmokeResult(False, f"the smoke decode failed: {report.get('error')}", data=report)
    return SmokeResult(True, f"{report['tokens']} tokens on {report['engine']} (several prompts together, then one "
                             f"streamed): load {report['load_s']:.2f} s, decode {report['decode_s']:.2f} s", data=report)


def _smoke_key(folder: Path, manifest: Manifest, engine: str | None, quantization: str | None) -> str:
    from .engines.llama_params import llama_params

    weights = manifest.find(engine or (manifest.weights[0].engine if manifest.weights else "llama.cpp"), quantization)
    hashes = sorted(f.sha256 for f in manifest.files if f.path == weights.path or f.path.startswith(weights.path + "/"))
    cpu = cpu_info()
    try:
        from importlib.metadata import version

        engine_version = version("llama_cpp_python" if weights.engine == "llama.cpp" else "ctranslate2")
    except Exception:
        engine_version = "unknown"
    key = json.dumps([hashes, weights.engine, engine_version, llama_params().to_dict()["use_extra_bufts"],
                      cpu.model, sorted(cpu.flags)])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def ensure_runs(folder: Path, manifest: Manifest, *, engine: str | None = None, quantization: str | None = None,
                log=lambda message: None) -> None:
    """Raise BundleError (one line) unless these weights are known to decode on this machine, running
    the smoke decode in a child the first time."""
    try:
        key = _smoke_key(folder, manifest, engine, quantization)
    except BundleError:
        return  # no such weights: opening the engine says so
    if key in _smoke_records():
        return
    log(f"checking that {manifest.name} runs on this CPU (once) ...")
    result = smoke_decode(folder, engine=engine, quantization=quantization)
    if not result.ok:
        raise BundleError(f"{manifest.name} does not run here: {result.detail} (`runtime doctor` for details)")
    remember_pass(key, folder, result)


def _smoke_records() -> dict:
    try:
        records = json.loads((home() / SMOKE_RECORDS).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return records if isinstance(records, dict) else {}


def remember_pass(key: str, folder: Path, result: SmokeResult) -> None:
    records_path = home() / SMOKE_RECORDS
    records = _smoke_records()
    records[key] = {"bundle": str(folder), "checked_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "detail": result.detail}
    try:
        records_path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(records_path, json.dumps(records, indent=1))
    except OSError:
        pass  # a read-only cache only means checking again next time


# --- the checks --------------------------------------------------------------------------------

def check_cpu() -> Check:
    cpu = cpu_info()
    flags = ", ".join(f"{name} {'yes' if present else 'no'}" for name, present in cpu.summary().items())
    return Check("cpu", "info", f"{cpu.model} ({cpu.machine}, {cpu.cores} cores): {flags}",
                 {"model": cpu.model, "machine": cpu.machine, "cores": cpu.cores, "flags": cpu.summary()})


def check_llama_cpp() -> Check:
    try:
        import llama_cpp
    except ImportError as exc:
        return Check("llama.cpp", "fail", f"llama-cpp-python cannot be imported: {exc}")
    info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace").strip()
    features = " ".join(part.split("=")[0].strip() for part in info.replace("CPU :", "").split("|")
                        if part.strip().endswith("= 1"))
    return Check("llama.cpp", "info", f"llama-cpp-python {llama_cpp.__version__}; built with {features or info}",
                 {"version": llama_cpp.__version__, "system_info": info})


def check_engine_params() -> Check:
    from .engines.llama_params import llama_params

    params = llama_params()
    return Check("engine parameters", "info", f"use_extra_bufts={params.use_extra_bufts}: {params.reason}",
                 params.to_dict())


def check_bundle(model: str | None, log) -> tuple[Check, Path | None]:
    try:
        folder = resolve_model(model, log=log)
        manifest = load_manifest(folder)
    except BundleError as exc:
        return Check("bundle", "fail", str(exc)), None
    problems = verify(folder, manifest)
    if problems:
        return Check("bundle", "fail", f"{folder} is damaged: {'; '.join(problems)}"), None
    weights = ", ".join(f"{w.engine}:{w.quantization}" for w in manifest.weights)
    return Check("bundle", "ok", f"{manifest.name} at {folder}: {weights} (every file's sha256 checked)",
                 {"name": manifest.name, "path": str(folder)}), folder


def check_confidence(folder: Path) -> Check:
    """Informational: whether the student knows how far to trust itself (a stored map for these weights)."""
    from .confidence import load_calibration
    from .models import shipped_student

    manifest = load_manifest(folder)
    calibration = load_calibration(folder, manifest, shipped_student(manifest.name))
    if calibration is None:
        return Check("confidence", "info", "no calibration for these weights: confidence is the share of sampled "
                                           "paths that agree (`benchmarks calibrate` fits one)", {"calibrated": False})
    fitted = calibration.fitted_on
    return Check("confidence", "info", f"calibrated: {calibration.paths} sampled paths at temperature "
                                       f"{calibration.temperature}, sure at >= {calibration.sure}, no answer below "
                                       f"{calibration.unsure}; fitted on {fitted.get('problems', '?')} problems of "
                                       f"{', '.join(fitted.get('datasets', [])) or '?'}",
                 {"calibrated": True, "paths": calibration.paths})


def check_decode(folder: Path) -> Check:
    result = smoke_decode(folder)
    if result.ok:  # `runtime solve` need not check these weights again
        remember_pass(_smoke_key(folder, load_manifest(folder), None, None), folder, result)
    return Check("decode", "ok" if result.ok else "fail", result.detail,
                 dict(result.data or {}, signal=result.signal))


def check_solver() -> list[Check]:
    from .solver import execute

    checks = []
    for thought, text, expected in (("pot", PROGRAM, 7.0), ("eot", EQUATIONS, 3.0)):
        result = execute(thought, text)
        ok = result.ok and result.answer == expected
        detail = (f"{'a program' if thought == 'pot' else 'an equation system'} gave {result.answer:g} in "
                  f"{result.seconds * 1000:.0f} ms" if result.ok else f"{result.error_kind}: {result.error}")
        checks.append(Check(f"solver {thought}", "ok" if ok else "fail",
                            detail if ok or not result.ok else f"{detail} (expected {expected:g})"))
    return checks


def describe_confinement(limits: dict) -> str:
    def size(value):
        return "unlimited" if value is None else f"{value / 2**20:.0f} MB"

    parts = ["own network namespace" if limits.get("network_namespace") else "host network namespace (not root)",
             f"uid {limits.get('uid')}", f"address space {size(limits.get('address_space_bytes'))}",
             "no file writes" if limits.get("file_size_bytes") == 0 else f"file writes {size(limits.get('file_size_bytes'))}",
             "no new processes" if limits.get("processes") == 0 else f"processes {limits.get('processes')}",
             f"open files {limits.get('open_files')}"]
    return ", ".join(parts)


def check_sandbox() -> Check:
    from .solver import confinement

    try:
        limits = confinement()
    except Exception as exc:  # a worker that cannot start is the failure to report
        return Check("sandbox", "fail", f"the solver's sandbox workers did not start: {exc}")
    missing = [f"{thought}: {what}" for thought, held in limits.items()
               for what, key in (("no address-space limit", "address_space_bytes"), ("file writes allowed", "file_size_bytes"))
               if held.get(key) is None or (key == "file_size_bytes" and held.get(key) != 0)]
    missing += ["pot: new processes allowed"] if limits["pot"].get("processes") != 0 else []
    detail = "; ".join(f"{thought}: {describe_confinement(held)}" for thought, held in limits.items())
    return Check("sandbox", "fail" if missing else "ok", detail + (f" -- {', '.join(missing)}" if missing else ""), limits)


def check_cache() -> Check:
    found = list_bundles()
    names = ", ".join(f"{name} ({'ok' if problem is None else 'unusable: ' + problem})" for name, _, _, problem in found)
    return Check("cache", "info", f"{bundles_dir()}: {len(found)} bundle(s){': ' + names if names else ''}; "
                                  f"default {default_bundle_name()}", {"folder": str(home()), "bundles": len(found)})


def check_network(timeout: float = 1.0) -> Check:
    """Informational: whether an outside address answers. Nothing needs it."""
    try:
        with socket.create_connection(("1.1.1.1", 443), timeout=timeout):
            reachable = True
    except OSError:
        reachable = False
    return Check("network", "info", f"{'reachable' if reachable else 'not reachable'} (not needed: everything here "
                                    f"runs offline)", {"reachable": reachable})


def run_doctor(model: str | None = None, *, log=lambda message: None) -> list[Check]:
    checks = [check_cpu(), check_llama_cpp(), check_engine_params()]
    bundle, folder = check_bundle(model, log)
    checks.append(bundle)
    if folder is not None:
        checks += [check_confidence(folder), check_decode(folder)]
    checks += check_solver()
    checks += [check_sandbox(), check_cache(), check_network()]
    return checks


def format_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{c.name:<{width}}  {c.status:<4}  {c.detail}" for c in checks]
    failed = [c for c in checks if c.failed]
    lines.append(f"{len(failed)} problem(s) found" if failed else "all checks passed")
    return "\n".join(lines)


def to_json(checks: list[Check]) -> str:
    return json.dumps({"ok": not any(c.failed for c in checks), "checks": [asdict(c) for c in checks]}, ensure_ascii=False)
