"""examples/benchmark.py: a smoke run in --quick mode (it checks the report, never the timings)."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "benchmark.py"

ROW_KEYS = {"name", "shape", "pass", "best_ms", "median_ms", "gflops", "gemm_ms", "torch_ms", "x_torch", "peak_mib"}


def test_quick_run_prints_the_table_and_writes_json(tmp_path):
    out_file = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeat", "1", "--warmup", "0", "--json", str(out_file)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for header in ("best ms", "median ms", "GFLOP/s", "x torch", "peak MiB", "numpy"):
        assert header in proc.stdout
    for case in ("conv S1", "conv S4", "pool S1", "demo pool2", "demo dense", "demo train step"):
        assert case in proc.stdout

    result = json.loads(out_file.read_text())
    assert set(result) == {"meta", "rows", "summary"}
    assert {"numpy", "threads", "machine", "quick"} <= set(result["meta"])
    assert result["meta"]["quick"] is True
    names = {(row["name"], row["pass"]) for row in result["rows"]}
    for shape in ("S1", "S2", "S3", "S4"):
        assert (f"conv {shape}", "fwd") in names and (f"conv {shape}", "fwd+bwd") in names
    for row in result["rows"]:
        assert set(row) == ROW_KEYS
        assert row["best_ms"] > 0 and row["median_ms"] >= row["best_ms"]
    conv_s1 = next(r for r in result["rows"] if r["name"] == "conv S1" and r["pass"] == "fwd+bwd")
    assert conv_s1["peak_mib"] > 0
    assert {"s1_peak_mib", "pool_vs_conv", "targets_met"} <= set(result["summary"])
