"""examples/benchmark.py: a smoke run in --quick mode (it checks the report, never the timings)."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "benchmark.py"

ROW_KEYS = {"name", "shape", "pass", "best_ms", "median_ms", "gflops", "gemm_ms", "torch_ms", "x_torch", "peak_mib",
            "algorithm"}
ALGORITHMS = {"im2col", "im2col_nhwc", "winograd"}


def test_quick_run_prints_the_table_and_writes_json(tmp_path):
    out_file = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeat", "1", "--warmup", "0", "--json", str(out_file)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for header in ("best ms", "median ms", "GFLOP/s", "x torch", "peak MiB", "numpy", "algorithm",
                   "one demo epoch"):
        assert header in proc.stdout
    for case in ("conv S1", "conv S4", "pool S1", "demo pool2", "demo dense", "demo train step"):
        assert case in proc.stdout

    result = json.loads(out_file.read_text())
    assert set(result) == {"meta", "rows", "summary", "scaling", "epoch"}
    assert {"numpy", "threads", "machine", "quick", "square_gemm_gflops"} <= set(result["meta"])
    assert result["meta"]["quick"] is True
    names = {(row["name"], row["pass"]) for row in result["rows"]}
    for shape in ("S1", "S2", "S3", "S4"):
        assert (f"conv {shape}", "fwd") in names and (f"conv {shape}", "fwd+bwd") in names
    for row in result["rows"]:
        assert set(row) == ROW_KEYS
        assert row["best_ms"] > 0 and row["median_ms"] >= row["best_ms"]
        # every convolution row names the algorithm its layer picked, and no other row does
        assert (row["algorithm"] in ALGORITHMS) == row["name"].startswith(("conv", "demo conv"))
    conv_s1 = next(r for r in result["rows"] if r["name"] == "conv S1" and r["pass"] == "fwd+bwd")
    assert conv_s1["peak_mib"] > 0
    assert {"s1_peak_mib", "targets_met"} <= set(result["summary"])
    assert result["summary"]["targets_met"] is None  # never judged on --quick batches

    if result["meta"]["threads"] > 1:  # thread scaling: one thread against all, for the conv suite
        scaled = {row["name"] for row in result["scaling"]}
        assert {"conv S1", "conv S4", "demo train step"} <= scaled
        for row in result["scaling"]:
            assert row["one_thread_ms"] > 0 and row["all_threads_ms"] > 0
    assert result["epoch"]["images"] > 0 and result["epoch"]["ours_s"] > 0


def test_threads_option_sets_minicnn_and_reports_it(tmp_path):
    out_file = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeat", "1", "--warmup", "0", "--threads", "1", "--no-torch",
         "--no-epoch", "--json", str(out_file)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out_file.read_text())
    assert result["meta"]["threads"] == 1 and result["meta"]["torch"] is None
    assert result["scaling"] == [] and result["epoch"] is None  # one thread: nothing to scale
