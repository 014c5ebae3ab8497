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
    # the ratios to torch are printed only when torch ran: without it the run says so instead
    with_torch = result["meta"]["torch"] is not None
    assert ("fwd+bwd x torch, worst row (no target): ReLU" in proc.stdout) == with_torch
    assert ("torch not used" in proc.stdout) == (not with_torch)
    assert set(result) == {"meta", "rows", "summary", "scaling", "epoch"}
    assert {"numpy", "threads", "machine", "quick", "square_gemm_gflops"} <= set(result["meta"])
    assert result["meta"]["quick"] is True
    names = {(row["name"], row["pass"]) for row in result["rows"]}
    for shape in ("S1", "S2", "S3", "S4"):
        assert (f"conv {shape}", "fwd") in names and (f"conv {shape}", "fwd+bwd") in names
    # ReLU, BatchNorm2D and AvgPool2D rows on S1's conv output (2x32x32x32 on --quick batches)
    # and the demo's first maps (2x16x32x32), each with a torch twin
    rows = {row["name"]: row for row in result["rows"]}
    for name, shape in (("S1", "2x32x32x32"), ("demo1", "2x16x32x32")):
        assert rows[f"relu {name}"]["shape"] == shape
        assert rows[f"bn {name}"]["shape"] == shape
        assert rows[f"avgpool {name}"]["shape"] == f"{shape} k2"
        assert rows[f"avgpool {name} k3"]["shape"] == f"{shape} k3 s2 p1"
    new_rows = [row for row in result["rows"] if row["name"].startswith(("relu ", "bn ", "avgpool ", "demo relu"))]
    assert len(new_rows) == 11
    for row in new_rows:
        assert row["pass"] == "fwd+bwd" and row["peak_mib"] > 0
        assert (row["torch_ms"] is not None) == (result["meta"]["torch"] is not None)
    # the demo rows follow build_demo_model: each block pools, then applies ReLU to a quarter of the values
    demo = [row["name"] for row in result["rows"] if row["name"].startswith("demo ")]
    assert demo[:3] == ["demo conv1", "demo pool1", "demo relu1"]
    assert rows["demo pool1"]["shape"] == "2x16x32x32 k2" and rows["demo relu1"]["shape"] == "2x16x16x16"
    assert rows["demo relu3"]["shape"] == "2x64x4x4"
    if result["meta"]["torch"] is not None:
        assert {"relu_x_torch", "bn_x_torch", "avgpool_x_torch"} <= set(result["summary"])
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
        assert {"conv S1", "conv S4", "relu S1", "demo train step"} <= scaled
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
