import json
import subprocess
import sys


def test_solver_benchmark_writes_reports(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.cli", "solver", "--repeats", "2", "--out", str(tmp_path)],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-500:]
    result = json.loads((tmp_path / "solver_throughput.json").read_text())
    for key in ("pot", "eot", "cot", "bare_exec"):
        assert result[key]["calls"] > 0 and result[key]["median_ms"] > 0
    assert result["pot_overhead_vs_bare_exec"]["ratio"] > 1  # a process boundary cannot be free
    assert "| PoT program, sandboxed |" in (tmp_path / "solver_throughput.md").read_text()
