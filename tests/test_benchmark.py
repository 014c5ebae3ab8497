"""examples/benchmark.py: a smoke run in --quick mode (it checks the report, never the timings), and
the rules behind the report (when a run counts as loaded, how targets are judged, the phase clock)."""

import doctest
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_examples import import_example

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPT = EXAMPLES / "benchmark.py"

ROW_KEYS = {
    "name",
    "shape",
    "pass",
    "best_ms",
    "median_ms",
    "gflops",
    "gemm_ms",
    "torch_ms",
    "x_torch",
    "peak_mib",
    "algorithm",
}
ALGORITHMS = {"im2col", "im2col_nhwc", "winograd"}  # what a 2-D convolution row may name
LAYER_ROWS = (
    "conv1d",
    "conv3d",
    "convT2d",
    "depthwise conv",
    "upsample nearest",
    "upsample bilin",
    "maxpool1d",
    "avgpool1d",
    "globalavg1d",
    "maxpool3d",
    "avgpool3d",
    "globalavg3d",
    "bn1d (N,C)",
    "bn1d (N,C,L)",
    "bn3d",
)
STEPS = ("demo step b32", "demo step b64", "digits step", "mnist1d step")
PHASES = ("import", "data", "fit", "evaluation", "save", "pictures", "other")


def test_quick_run_prints_the_table_and_writes_json(tmp_path):
    out_file = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeat", "1", "--warmup", "0", "--script", "--json", str(out_file)],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for header in ("best ms", "median ms", "GFLOP/s", "x torch", "peak MiB", "numpy", "algorithm", "one demo epoch"):
        assert header in out
    for case in ("conv S1", "conv S4", "pool S1", "demo pool2", "demo dense", *STEPS, *LAYER_ROWS):
        assert case in out
    # the machine's load: measured at the start, judged at the end
    assert "machine load at the start: 1-min load average" in out
    assert "1024x1024 matrix product" in out
    assert "machine load: idle;" in out or "machine load: LOADED;" in out
    assert out.rstrip().splitlines()[-2].startswith("the benchmark took ")  # then "wrote FILE"
    # the profile of one demo step: a row per layer, then the loss, the optimizer and the overhead
    assert "one demo training step at batch 2, phase by phase" in out
    for phase in (
        "0 Conv2DVolume",
        "10 Dense",
        "loss forward",
        "loss backward",
        "optimizer step",
        "Sequential's checks and loop",
        "unattributed",
        "whole step",
        "fit, per batch (mean of 8)",
    ):
        assert phase in out
    # the main job, phase by phase
    assert "the main job: examples/train_shapes.py --limit 100 --epochs 1" in out
    for phase in (*PHASES, "whole"):
        assert f"\n{phase:<11} " in out

    result = json.loads(out_file.read_text())
    with_torch = result["meta"]["torch"] is not None
    # the ratios to torch are printed only when torch ran: without it the run says so instead
    assert ("fwd+bwd x torch, worst row (no target): ReLU" in out) == with_torch
    assert ("torch not used" in out) == (not with_torch)
    assert set(result) == {"meta", "rows", "summary", "targets", "load", "scaling", "profile", "epoch", "script"}
    assert {"numpy", "threads", "machine", "quick", "square_gemm_gflops", "seconds"} <= set(result["meta"])
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
    # every other layer has a row on a batch of 2, with its torch module beside it
    assert rows["conv1d"]["shape"] == "2x16x512 F32 k5 p2" and rows["bn1d (N,C)"]["shape"] == "2x512"
    assert rows["depthwise conv"]["shape"] == "2x32x32x32 k3 p1 g32"
    for row in [*new_rows, *(rows[name] for name in LAYER_ROWS)]:
        assert row["pass"] == "fwd+bwd" and row["peak_mib"] > 0
        assert (row["torch_ms"] is not None) == with_torch
    for name in ("conv1d", "conv3d", "convT2d", "depthwise conv"):  # the ones with weights have a rate
        assert rows[name]["gflops"] > 0
    # the training steps: the demo at two batch sizes (2 on --quick), digits and MNIST-1D
    assert [rows[name]["shape"] for name in STEPS] == [
        "batch 2, 3x32x32",
        "batch 2, 3x32x32",
        "batch 2, 1x8x8",
        "batch 2, 1x40",
    ]
    for name in STEPS:
        assert rows[name]["pass"] == "step" and (rows[name]["x_torch"] is not None) == with_torch
    # the demo rows follow build_demo_model: each block pools, then applies ReLU to a quarter of the values
    demo = [row["name"] for row in result["rows"] if row["name"].startswith("demo ")]
    assert demo[:3] == ["demo conv1", "demo pool1", "demo relu1"]
    assert rows["demo pool1"]["shape"] == "2x16x32x32 k2" and rows["demo relu1"]["shape"] == "2x16x16x16"
    assert rows["demo relu3"]["shape"] == "2x64x4x4"
    if with_torch:
        assert {"relu_x_torch", "bn_x_torch", "avgpool_x_torch"} <= set(result["summary"])
    for row in result["rows"]:
        assert set(row) == ROW_KEYS
        assert row["best_ms"] > 0 and row["median_ms"] >= row["best_ms"]
        # every 2-D convolution row names the algorithm its layer picked, and no other row does
        # (a depthwise convolution runs its own kernel, named "depthwise", whatever its algorithm= says)
        assert (row["algorithm"] in {*ALGORITHMS, "depthwise"}) == row["name"].startswith(
            ("conv S", "demo conv", "depthwise")
        )
    conv_s1 = next(r for r in result["rows"] if r["name"] == "conv S1" and r["pass"] == "fwd+bwd")
    assert conv_s1["peak_mib"] > 0
    assert {"s1_peak_mib", "targets_met", "not_judged"} <= set(result["summary"])
    assert result["summary"]["targets_met"] is None  # never judged on --quick batches

    # every target has a line, and none is judged on --quick batches
    targets = {t["key"]: t for t in result["targets"]}
    assert {
        "step32_x_torch",
        "step64_x_torch",
        "digits_x_torch",
        "mnist1d_x_torch",
        "script_x_torch",
        "geomean_x_torch",
        "worst_x_torch",
    } <= set(targets)
    assert {f"layer {name}" for name in LAYER_ROWS} <= set(targets)
    assert targets["worst_x_torch"]["limit"] == 2.0 and targets["step32_x_torch"]["limit"] == 1.3
    for target in result["targets"]:
        expected = "not judged: --quick batches" if target["value"] is not None else "not measured"
        assert target["verdict"] == expected
        assert f"{target['what']}" in out and expected in out
    # the load: one sample at the start, one after each section
    load = result["load"]
    assert [s["label"] for s in load["samples"]][:2] == ["at the start", "after pass 1 of the suite"]
    assert load["samples"][-1]["label"] == "after the main job"
    assert load["best_gflops"] == max(s["gflops"] for s in load["samples"]) > 0

    if result["meta"]["threads"] > 1:  # thread scaling: one thread against all, for the conv suite
        scaled = {row["name"] for row in result["scaling"]}
        assert {"conv S1", "conv S4", "relu S1", "demo step b32", "demo step b64"} <= scaled
        for row in result["scaling"]:
            assert row["one_thread_ms"] > 0 and row["all_threads_ms"] > 0
    assert result["epoch"]["images"] > 0 and result["epoch"]["ours_s"] > 0

    profile = result["profile"]
    assert [row["layer"] for row in profile["layers"]] == ["Conv2DVolume", "MaxPool2D", "ReLU"] * 3 + [
        "Flatten",
        "Dense",
    ]
    assert profile["layers"][0]["input_shape"] == "2x3x32x32" and profile["batch_size"] == 2
    assert [row["part"] for row in profile["parts"]] == [
        "zero_grad",
        "loss forward",
        "loss backward",
        "optimizer step",
        "Sequential's checks and loop",
        "unattributed",
    ]
    for row in profile["layers"]:
        assert row["forward_ms"] > 0 and row["backward_ms"] > 0
        assert (row["torch_forward_ms"] is not None) == with_torch
    # "unattributed" is what the whole step took beyond everything else, so the rows add up to the step
    parts = sum(r["forward_ms"] + r["backward_ms"] for r in profile["layers"]) + sum(r["ms"] for r in profile["parts"])
    assert parts == pytest.approx(profile["step_ms"])
    assert profile["fit_batch_ms"] > 0

    script = result["script"]
    assert script["recipe"] == {
        "optimizer": "SGD",
        "lr": 0.02,
        "momentum": 0.9,
        "epochs": 1,
        "batch_size": 32,
        "seed": 0,
        "n_train": 90,
        "n_val": 10,
    }
    assert list(script["seconds"]) == list(PHASES)
    assert sum(script["seconds"].values()) == pytest.approx(script["whole_s"])
    for phase in ("import", "data", "fit", "evaluation", "save"):
        assert script["seconds"][phase] > 0
    assert 0 <= script["test_accuracy"] <= 1
    assert (script["torch"] is not None) == with_torch
    if with_torch:
        assert script["torch"]["training_s"] > 0
        assert script["whole_x_torch_training"] == pytest.approx(script["whole_s"] / script["torch"]["training_s"])
        assert "the whole script takes" in out


def test_threads_option_sets_minicnn_and_reports_it(tmp_path):
    out_file = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--repeat",
            "1",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--no-torch",
            "--no-epoch",
            "--no-profile",
            "--json",
            str(out_file),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out_file.read_text())
    assert result["meta"]["threads"] == 1 and result["meta"]["torch"] is None
    assert result["scaling"] == [] and result["epoch"] is None  # one thread: nothing to scale
    assert result["profile"] is None and result["script"] is None  # --quick leaves the main job out
    assert all(t["verdict"] == "not measured" for t in result["targets"] if t["key"].endswith("x_torch"))


def test_a_bad_flag_is_one_line():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--idle-gflops", "-3"], check=False, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "benchmark.py: error: argument --idle-gflops: expected a number > 0, got '-3' (see --help)"
    ]


def test_a_bad_warmup_time_is_one_line():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--warmup-ms", "-1"], check=False, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1] == (
        "benchmark.py: error: argument --warmup-ms: expected a number >= 0, got '-1' (see --help)"
    )


def test_warmup_goes_on_for_its_time_floor_before_the_timed_runs():
    benchmark = import_example("benchmark")
    calls = []

    def one_ms():
        calls.append(time.perf_counter())
        time.sleep(0.001)

    times = benchmark.time_runs(one_ms, repeat=3, warmup=1, warmup_seconds=0.03)
    assert len(times) == 3 and all(t >= 0.001 for t in times)
    untimed = calls[:-3]
    # one call was not enough; the floor counts from just before the first call, hence the slack
    assert len(untimed) >= 2 and calls[-3] - calls[0] >= 0.028
    calls.clear()
    assert len(benchmark.time_runs(one_ms, repeat=2, warmup=0, warmup_seconds=0.03)) == 2
    assert len(calls) == 2  # no warm-up asked for: none, whatever the floor


# -- the load rule -------------------------------------------------------------------------------------------
def samples(*rates):
    return [{"label": f"sample {i}", "gflops": rate} for i, rate in enumerate(rates)]


def test_a_steady_idle_run_is_not_loaded():
    load = import_example("_bench_load")
    verdict = load.judge_load(samples(280.0, 275.0, 290.0, 250.0), load_before=0.2, idle_gflops=285.0)
    assert verdict["loaded"] is False and verdict["reasons"] == []
    assert (verdict["best_gflops"], verdict["latest_gflops"], verdict["worst_gflops"]) == (290.0, 250.0, 250.0)
    assert verdict["worst_at"] == "sample 3"
    assert "machine load: idle;" in load.format_load(verdict)


@pytest.mark.parametrize(
    "rates, load_before, idle, reason",
    [
        ((280.0, 200.0, 285.0), 0.1, None, "the GEMM fell to 200.0 GFLOP/s sample 1, 70% of the best sample (285.0)"),
        ((280.0, 285.0), 1.5, None, "the 1-minute load average was 1.50 before the run began (idle is at most 0.5)"),
        ((140.0, 138.0, 141.0), 0.0, 280.0, "the best GEMM sample (141.0 GFLOP/s) is 50% of this machine's idle rate"),
    ],
    ids=["a-dip", "busy-before", "evenly-slow"],
)
def test_each_rule_calls_a_run_loaded(rates, load_before, idle, reason):
    load = import_example("_bench_load")
    verdict = load.judge_load(samples(*rates), load_before=load_before, idle_gflops=idle)
    assert verdict["loaded"] is True
    assert len(verdict["reasons"]) == 1 and verdict["reasons"][0].startswith(reason)
    printed = load.format_load(verdict)
    assert printed.startswith("machine load: LOADED;") and f"loaded because {reason}" in printed


def test_the_load_rule_edges():
    load = import_example("_bench_load")
    # exactly 80% of the best, or a load average of exactly 0.5, is still idle; an unknown load is not held against it
    assert not load.judge_load(samples(100.0, 80.0), load_before=0.5)["loaded"]
    assert not load.judge_load(samples(100.0), load_before=None)["loaded"]
    assert load.judge_load(samples(100.0, 79.9), load_before=None)["loaded"]
    with pytest.raises(ValueError, match="no GEMM samples"):
        load.judge_load([], load_before=0.0)
    monitor = load.LoadMonitor(repeat=1)
    point = monitor.sample("now")
    assert point["label"] == "now" and point["gflops"] > 0 and point["copy_gbps"] > 0
    assert monitor.verdict()["samples"] == [point]


def test_the_memory_copy_is_reported_but_calls_no_run_loaded():
    load = import_example("_bench_load")
    steady = samples(280.0, 276.0)
    assert "memory:" not in load.format_load(load.judge_load(steady, load_before=0.1))  # no copies timed
    varied = [dict(point, copy_gbps=rate) for point, rate in zip(steady, (30.0, 21.0))]
    verdict = load.judge_load(varied, load_before=0.1)
    assert (
        verdict["loaded"] is False and verdict["copy_best_gbps"] == 30.0 and verdict["copy_worst"] == (21.0, "sample 1")
    )
    printed = load.format_load(verdict)
    assert "memory: a 32 MiB copy, best 30.0, worst 21.0 GB/s (sample 1)" in printed
    assert "the memory bandwidth varied (70% of its best; not part of the rule above)" in printed
    even = [dict(point, copy_gbps=rate) for point, rate in zip(steady, (30.0, 29.0))]
    assert "varied" not in load.format_load(load.judge_load(even, load_before=0.1))


def test_the_helpers_docstring_examples_hold():
    for name in ("_bench_load", "_bench_script"):
        failed, tried = doctest.testmod(import_example(name))
        assert tried > 0 and failed == 0, name


# -- judging targets ------------------------------------------------------------------------------------------
def summary_with(**values):
    benchmark = import_example("benchmark")
    summary = {"layers": {name: 1.0 for name in benchmark.LAYER_ROWS}, **values}
    return benchmark, summary


IDLE = {"loaded": False}
LOADED = {"loaded": True}


def test_targets_on_an_idle_machine_are_ok_or_missed():
    benchmark, summary = summary_with(geomean_x_torch=1.4, worst_x_torch=2.1, step32_x_torch=1.3)
    summary["layers"]["conv3d"] = 2.5
    targets = {t["key"]: t for t in benchmark.judge(summary, IDLE, quick=False)}
    assert targets["geomean_x_torch"]["verdict"] == "OK"
    assert targets["worst_x_torch"]["verdict"] == "MISSED"
    assert targets["step32_x_torch"]["verdict"] == "OK"  # at most: the limit itself is met
    assert targets["layer conv3d"]["verdict"] == "MISSED" and targets["layer conv1d"]["verdict"] == "OK"
    assert targets["script_x_torch"]["verdict"] == "not measured"
    assert summary["not_judged"] is None
    assert summary["targets_met"]["worst_x_torch"] is False and "script_x_torch" not in summary["targets_met"]
    printed = benchmark.format_targets(list(targets.values()), summary)
    assert "missed: worst_x_torch, layer conv3d" in printed


@pytest.mark.parametrize(
    "load, quick, reason",
    [(LOADED, False, "machine loaded"), (IDLE, True, "--quick batches"), (LOADED, True, "--quick batches")],
    ids=["loaded", "quick", "quick-and-loaded"],
)
def test_no_target_is_judged_on_a_loaded_machine_or_quick_batches(load, quick, reason):
    benchmark, summary = summary_with(geomean_x_torch=1.0, worst_x_torch=5.0)
    targets = benchmark.judge(summary, load, quick=quick)
    measured = [t for t in targets if t["value"] is not None]
    assert len(measured) == 2 + len(benchmark.LAYER_ROWS)
    assert all(t["verdict"] == f"not judged: {reason}" for t in measured)
    assert summary["targets_met"] is None and summary["not_judged"] == reason
    printed = benchmark.format_targets(targets, summary)
    assert f"not judged: {reason}" in printed and "OK" not in printed and "MISSED" not in printed
    assert printed.endswith(f"targets: not judged ({reason})")


# -- the main job's phase clock -------------------------------------------------------------------------------
def test_the_phase_clock_counts_a_nested_call_for_the_outer_one():
    clock_module = import_example("_bench_script")

    class Job:
        def inner(self):
            return 1

        def outer(self):
            return self.inner() + 1

    clock = clock_module.PhaseClock()
    clock.wrap(Job, "inner", "inner")
    clock.wrap(Job, "outer", "outer")
    assert Job().outer() == 2
    assert list(clock.seconds) == ["outer"]  # inner ran inside outer: its time is outer's
    assert Job().inner() == 1
    assert list(clock.seconds) == ["outer", "inner"]
    clock.restore()
    assert not hasattr(Job.inner, "__wrapped__") and not hasattr(Job.outer, "__wrapped__")
