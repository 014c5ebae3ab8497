"""Time minicnn's layers, and PyTorch's where it is installed, on a fixed suite of shapes.

The suite: four convolutions (S1-S4), max pooling of each one's output; ReLU, BatchNorm2D
(training mode) and AvgPool2D (2x2, and 3x3 at stride 2 with padding 1) on S1's output and
on the demo's first feature maps (batch x 16 x 32 x 32); then the demo network layer by
layer, as ``build_demo_model`` orders it, and one whole training step.

For every case the script reports the best and the median of many timed runs (the best
is the figure to compare: noise from the rest of the machine only ever adds time), the
rate in GFLOP/s, the time of plain numpy matrix products doing the same arithmetic (the
floor an im2col convolution can reach), PyTorch's time at the same thread count and our
time as a multiple of it, and the peak extra memory of one forward+backward from a
freshly built layer (measured with tracemalloc, which sees every numpy buffer).

The timed runs come in several passes over the whole suite, each after its own warm-up,
so that a burst of load elsewhere on the machine spoils one pass of a case, not all; and
our time and torch's are taken in the same pass, so their ratio is a fair one even when
the machine's speed drifts.

After the table come the algorithm each convolution picked, the thread scaling (every case
at one thread and at all of them, interleaved), and one whole epoch of the demo training
against the same loop in PyTorch.

Run ``python examples/benchmark.py`` for the full suite (a few minutes on two cores),
``--quick`` for a smoke run on tiny batches, and ``--json FILE`` to keep the results.
PyTorch is never required: without it the torch columns stay empty.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, however it is run

from demo_model import build_demo_model

import minicnn
from minicnn import (
    AvgPool2D,
    BatchNorm2D,
    Conv2DVolume,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
    get_num_threads,
    set_num_threads,
)
from minicnn.datasets import load_shapes, make_shapes
from minicnn.functional import resolve_padding
from minicnn.summary import multiply_accumulates, trace_shapes

try:  # an optional yardstick, never a dependency
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None

# name: (N, C, H=W, F, k, padding, stride)
SUITE = {
    "S1": (64, 16, 32, 32, 3, 1, 1),
    "S2": (32, 3, 32, 16, 5, 2, 1),
    "S3": (128, 1, 28, 8, 3, 0, 1),
    "S4": (16, 64, 16, 64, 3, 1, 2),
}
DEMO_BATCH = 64
EPOCH_BATCH = 32  # examples/train_shapes.py's default
TARGETS = {  # the performance issue's targets: at most these
    "geomean_x_torch": 1.5, "worst_x_torch": 2.5, "s3_x_torch": 1.0, "step_x_torch": 1.8,
    "s1_peak_mib": 60.0, "pool_x_torch": 1.2,
}
# summary key: the row-name prefix of the layers reported without a target (the worst row's x torch)
OTHER_LAYERS = {"relu_x_torch": ("relu ", "demo relu"), "bn_x_torch": ("bn ",), "avgpool_x_torch": ("avgpool ",)}
OTHER_NAMES = {"relu_x_torch": "ReLU", "bn_x_torch": "BatchNorm2D", "avgpool_x_torch": "AvgPool2D"}


# -- measuring ---------------------------------------------------------------------------------
def time_runs(fn, repeat: int, warmup: int) -> list[float]:
    """Wall times in seconds of ``repeat`` calls of ``fn()``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def peak_extra_mib(fn) -> float:
    """Peak memory allocated while ``fn()`` runs, above what was live before, in MiB.

    ``fn`` should build its layer itself, so that workspace buffers a layer keeps between
    calls are counted too; its inputs are made before, and are not counted.
    """
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - before) / 2**20


def blas_threads(n: int | None = None) -> int | None:
    """Get (and with ``n``, set) the thread count of numpy's OpenBLAS, if it can be found."""
    try:
        with open("/proc/self/maps") as fh:  # the shared libraries this process has loaded
            paths = [line.split()[-1] for line in fh if "openblas" in line.lower()]
    except OSError:  # not Linux
        paths = []
    for path in paths[:1]:
        lib = ctypes.CDLL(path)
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", "_64_", ""):
                getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if getter is not None and setter is not None:
                    if n is not None:
                        setter(ctypes.c_int(n))
                    return int(getter())
    return None


def rand(rng, shape) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


class Case:
    """One line of the table: our function to time, and what to compare it with.

    Each contestant runs in its own loop: taking turns call by call would be unfair, as
    each library's idle worker threads and evicted cache lines would slow the other down.
    """

    def __init__(self, name, shape, kind, ours, flops=None, gemm=None, torch_fn=None, peak=None, algorithm=None):
        self.name, self.shape, self.kind, self.flops, self.peak = name, shape, kind, flops, peak
        self.algorithm = algorithm
        self.fns = {key: fn for key, fn in (("ours", ours), ("gemm", gemm), ("torch", torch_fn)) if fn}
        self.times: dict[str, list[float]] = {key: [] for key in self.fns}

    def run(self, repeat: int, warmup: int) -> None:
        for key, fn in self.fns.items():
            self.times[key] += time_runs(fn, repeat, warmup)

    def row(self) -> dict:
        best = {key: min(t) for key, t in self.times.items()}
        row = {"name": self.name, "shape": self.shape, "pass": self.kind,
               "best_ms": best["ours"] * 1e3, "median_ms": statistics.median(self.times["ours"]) * 1e3,
               "gflops": None if self.flops is None else self.flops / best["ours"] / 1e9,
               "gemm_ms": None, "torch_ms": None, "x_torch": None, "peak_mib": self.peak,
               "algorithm": self.algorithm}
        if "gemm" in best:
            row["gemm_ms"] = best["gemm"] * 1e3
        if "torch" in best:
            row["torch_ms"] = best["torch"] * 1e3
            row["x_torch"] = best["ours"] / best["torch"]
        return row


# -- the cases ---------------------------------------------------------------------------------
def conv_cases(name, spec, rng, use_torch: bool, passes=("fwd", "fwd+bwd")) -> list[Case]:
    n, c, hw, f, k, pad, stride = spec
    x = rand(rng, (n, c, hw, hw))
    layer = Conv2DVolume(c, f, k, stride=stride, padding=pad, rng=rng)
    dout = rand(rng, layer(x).shape)
    _, _, oh, ow = dout.shape
    ckk, l_out = c * k * k, oh * ow
    flops = 2.0 * n * f * l_out * ckk
    shape = f"{n}x{c}x{hw}x{hw} F{f} k{k} p{pad} s{stride}"

    # The matrix products of an im2col convolution, one 2-D GEMM each, on ready arrays:
    # what would be left if gathering the columns and scattering them back cost nothing.
    w2, cols2, d2 = rand(rng, (f, ckk)), rand(rng, (ckk, n * l_out)), rand(rng, (f, n * l_out))

    def gemm_fwd():
        return w2 @ cols2

    def gemm_fwd_bwd():
        return w2 @ cols2, d2 @ cols2.T, w2.T @ d2

    def ours_fwd():
        return layer.forward(x)

    def ours_fwd_bwd():
        layer.forward(x)
        return layer.backward(dout)

    def fresh_fwd_bwd():  # the output stays alive through backward, as in a network
        fresh = Conv2DVolume(c, f, k, stride=stride, padding=pad, rng=np.random.default_rng(0))
        y = fresh.forward(x)
        return y, fresh.backward(dout)

    torch_fwd = torch_fwd_bwd = None
    if use_torch:
        tx = torch.from_numpy(x).requires_grad_()
        tw = torch.from_numpy(layer.weight.data.copy()).requires_grad_()
        tb = torch.zeros(f, requires_grad=True)
        tdout = torch.from_numpy(dout)

        def torch_fwd():
            with torch.no_grad():
                return torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=pad)

        def torch_fwd_bwd():
            tx.grad = tw.grad = tb.grad = None
            torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=pad).backward(tdout)

    algorithm = layer.algorithm_for(x.shape)
    cases = []
    if "fwd" in passes:
        cases.append(Case(name, shape, "fwd", ours_fwd, flops, gemm_fwd, torch_fwd, algorithm=algorithm))
    if "fwd+bwd" in passes:
        cases.append(Case(name, shape, "fwd+bwd", ours_fwd_bwd, 3 * flops, gemm_fwd_bwd, torch_fwd_bwd,
                          peak_extra_mib(fresh_fwd_bwd), algorithm=algorithm))
    return cases


def layer_case(name, label, make, shape_nchw, rng, torch_op=None) -> Case:
    """Forward+backward of the layer ``make()`` builds, against ``torch_op(tx)`` with autograd.

    ``torch_op`` takes the input tensor and returns the output tensor (None: no torch column).
    """
    x = rand(rng, shape_nchw)
    layer = make()
    dout = rand(rng, layer(x).shape)

    def ours():
        layer.forward(x)
        return layer.backward(dout)

    def fresh():
        again = make()
        y = again.forward(x)
        return y, again.backward(dout)

    torch_fn = None
    if torch_op is not None:
        tx = torch.from_numpy(x).requires_grad_()
        tdout = torch.from_numpy(dout)

        def torch_fn():
            tx.grad = None
            torch_op(tx).backward(tdout)

    label = "x".join(map(str, shape_nchw)) + (f" {label}" if label else "")
    return Case(name, label, "fwd+bwd", ours, torch_fn=torch_fn, peak=peak_extra_mib(fresh))


def pool_case(name, shape_nchw, rng, use_torch: bool) -> Case:
    """2x2 max pooling."""
    op = (lambda t: torch.nn.functional.max_pool2d(t, 2)) if use_torch else None
    return layer_case(name, "k2", lambda: MaxPool2D(2), shape_nchw, rng, op)


def relu_case(name, shape_nchw, rng, use_torch: bool) -> Case:
    """ReLU in training mode (it keeps its mask)."""
    op = torch.relu if use_torch else None
    return layer_case(name, "", ReLU, shape_nchw, rng, op)


def avgpool_case(name, shape_nchw, kernel, stride, padding, rng, use_torch: bool) -> Case:
    """Average pooling, the zero padding counted in the average as in both libraries' defaults."""
    op = None
    if use_torch:
        def op(t):
            return torch.nn.functional.avg_pool2d(t, kernel, stride, padding)
    label = f"k{kernel}" + ("" if stride == kernel else f" s{stride}") + (f" p{padding}" if padding else "")
    return layer_case(name, label, lambda: AvgPool2D(kernel, stride, padding), shape_nchw, rng, op)


def batchnorm_case(name, shape_nchw, rng, use_torch: bool) -> Case:
    """Training-mode BatchNorm2D: batch statistics, running statistics, dx, dgamma and dbeta."""
    c = shape_nchw[1]
    op = None
    if use_torch:
        weight, bias = torch.ones(c, requires_grad=True), torch.zeros(c, requires_grad=True)
        running_mean, running_var = torch.zeros(c), torch.ones(c)

        def op(t):
            weight.grad = bias.grad = None
            return torch.nn.functional.batch_norm(t, running_mean, running_var, weight, bias, training=True)
    return layer_case(name, "", lambda: BatchNorm2D(c), shape_nchw, rng, op)


def dense_case(name, n, fin, fout, rng, use_torch: bool) -> Case:
    x, dout = rand(rng, (n, fin)), rand(rng, (n, fout))
    layer = Dense(fin, fout, rng=rng)
    w = layer.weight.data

    def ours():
        layer.forward(x)
        return layer.backward(dout)

    def gemm():
        return x @ w.T, dout.T @ x, dout @ w

    torch_fn = None
    if use_torch:
        tx = torch.from_numpy(x).requires_grad_()
        tw = torch.from_numpy(w.copy()).requires_grad_()
        tb = torch.zeros(fout, requires_grad=True)
        tdout = torch.from_numpy(dout)

        def torch_fn():
            tx.grad = tw.grad = tb.grad = None
            torch.nn.functional.linear(tx, tw, tb).backward(tdout)

    return Case(name, f"{n}x{fin} -> {fout}", "fwd+bwd", ours, 3 * 2.0 * n * fin * fout, gemm, torch_fn)


def torch_twin(model: Sequential):
    """The same network in PyTorch, with the same initial weights, for the step timing."""
    nn = torch.nn
    layers = []
    for layer in model.layers:
        if isinstance(layer, Conv2DVolume):
            pads = resolve_padding(layer.padding, (32, 32), layer.kernel_size, layer.stride, layer.dilation)
            if any(before != after for before, after in pads):
                raise NotImplementedError("the torch twin needs symmetric padding")
            twin = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                             padding=tuple(p[0] for p in pads), dilation=layer.dilation)
        elif isinstance(layer, Dense):
            twin = nn.Linear(layer.in_features, layer.out_features)
        elif isinstance(layer, MaxPool2D):
            twin = nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
        else:
            twin = {ReLU: nn.ReLU, Flatten: nn.Flatten}[type(layer)]()
        if hasattr(layer, "weight"):
            with torch.no_grad():
                twin.weight.copy_(torch.from_numpy(layer.weight.data))
                twin.bias.copy_(torch.from_numpy(layer.bias.data))
        layers.append(twin)
    return nn.Sequential(*layers)


def train_step_case(batch, rng, use_torch: bool) -> Case:
    """One SGD step (forward, backward, update) of the demo network, as fit runs it."""
    model = build_demo_model(rng=rng)
    model.layers[0].input_grad = False  # as fit does: nothing needs dL/dx of the images (nor in torch)
    x = rand(rng, (batch, 3, 32, 32))
    y = rng.integers(0, 6, size=batch)
    opt = minicnn.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss = minicnn.SoftmaxCrossEntropy()

    def step():
        opt.zero_grad()
        loss(model.forward(x), y)
        model.backward(loss.backward())
        opt.step()

    torch_fn = None
    if use_torch:
        tmodel = torch_twin(model)
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_fn():
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
            topt.step()

    # forward and backward are three matrix products each: 3 x 2 FLOPs per multiply-accumulate
    shapes = trace_shapes(model.layers, (1, 3, 32, 32))
    macs = sum(multiply_accumulates(layer, shape) for layer, shape in zip(model.layers, shapes))
    return Case("demo train step", f"batch {batch}, 3x32x32", "step", step, 3 * 2.0 * batch * macs,
                torch_fn=torch_fn)


def demo_layer_cases(batch, rng, use_torch: bool) -> list[Case]:
    """The demo network's conv, pool, ReLU and dense layers, each at the shape it sees in the network."""
    model = build_demo_model()
    shape = (batch, 3, 32, 32)
    cases, count = [], {"conv": 0, "pool": 0, "relu": 0}
    for layer in model.layers:
        if isinstance(layer, Conv2DVolume):
            count["conv"] += 1
            pads = resolve_padding(layer.padding, shape[2:], layer.kernel_size, layer.stride, layer.dilation)
            spec = (batch, shape[1], shape[2], layer.out_channels, layer.kernel_size[0], pads[0][0], layer.stride[0])
            cases += conv_cases(f"demo conv{count['conv']}", spec, rng, use_torch, passes=("fwd+bwd",))
        elif isinstance(layer, MaxPool2D):
            count["pool"] += 1
            cases.append(pool_case(f"demo pool{count['pool']}", shape, rng, use_torch))
        elif isinstance(layer, ReLU):
            count["relu"] += 1
            cases.append(relu_case(f"demo relu{count['relu']}", shape, rng, use_torch))
        elif isinstance(layer, Dense):
            cases.append(dense_case("demo dense", batch, layer.in_features, layer.out_features, rng, use_torch))
        shape = layer.output_shape(shape)
    return cases


def build_cases(args, rng) -> list[Case]:
    use_torch = torch is not None and not args.no_torch
    suite, batch = SUITE, DEMO_BATCH
    if args.quick:  # the same layers on batches of 2
        suite, batch = {name: (2,) + spec[1:] for name, spec in SUITE.items()}, 2
    cases = []
    for name, spec in suite.items():
        cases += conv_cases(f"conv {name}", spec, rng, use_torch)
    pool_shapes = {}
    for name, (n, _, hw, f, k, pad, stride) in suite.items():  # max-pooling each conv's output
        out_hw = (hw + 2 * pad - k) // stride + 1
        pool_shapes[name] = (n, f, out_hw, out_hw)
        cases.append(pool_case(f"pool {name}", pool_shapes[name], rng, use_torch))
    # The other layers on S1's conv output and on the demo's first (batch x 16 x 32 x 32).
    for name, shape in (("S1", pool_shapes["S1"]), ("demo1", (batch, 16, 32, 32))):
        cases.append(relu_case(f"relu {name}", shape, rng, use_torch))
        cases.append(batchnorm_case(f"bn {name}", shape, rng, use_torch))
        cases.append(avgpool_case(f"avgpool {name}", shape, 2, 2, 0, rng, use_torch))
        cases.append(avgpool_case(f"avgpool {name} k3", shape, 3, 2, 1, rng, use_torch))
    # The demo network layer by layer, then one whole training step.
    cases += demo_layer_cases(batch, rng, use_torch)
    cases.append(train_step_case(batch, rng, use_torch))
    return cases


SCALING_CASES = {("conv S1", "fwd+bwd"), ("conv S2", "fwd+bwd"), ("conv S3", "fwd+bwd"), ("conv S4", "fwd+bwd"),
                 ("pool S1", "fwd+bwd"), ("relu S1", "fwd+bwd"), ("demo train step", "step")}


def thread_scaling(cases: list[Case], threads: int, args) -> list[dict]:
    """Our time at one thread and at ``threads``, taking turns pass by pass, for a few cases."""
    rows = []
    for case in cases:
        if (case.name, case.kind) not in SCALING_CASES:
            continue
        times: dict[int, list[float]] = {1: [], threads: []}
        for _ in range(args.passes):
            for count in times:
                set_num_threads(count)
                times[count] += time_runs(case.fns["ours"], args.repeat, args.warmup)
        set_num_threads(threads)
        one, many = min(times[1]), min(times[threads])
        rows.append({"name": case.name, "pass": case.kind, "one_thread_ms": one * 1e3,
                     "all_threads_ms": many * 1e3, "threads": threads, "speedup": one / many})
    return rows


def epoch_data(quick: bool):
    """The demo's training images: the whole train split, or 64 fresh ones for a smoke run."""
    if quick:
        return make_shapes(64, seed=0)
    return load_shapes("train")


def demo_epoch(args, use_torch: bool) -> dict:
    """One epoch of examples/train_shapes.py's training (batch 32, SGD with momentum), ours
    through ``fit`` and the same loop in PyTorch, on the same images in the same order."""
    X, y = epoch_data(args.quick)
    times: dict[str, list[float]] = {"ours": [], "torch": []}
    for _ in range(1 if args.quick else 2):  # taking turns, best of two each
        model = build_demo_model(rng=np.random.default_rng(args.seed))
        opt = minicnn.SGD(model.parameters(), lr=0.02, momentum=0.9)
        start = time.perf_counter()
        model.fit(X, y, loss=minicnn.SoftmaxCrossEntropy(), optimizer=opt, epochs=1, batch_size=EPOCH_BATCH,
                  seed=args.seed, progress=False)
        times["ours"].append(time.perf_counter() - start)
        if use_torch:
            tmodel = torch_twin(build_demo_model(rng=np.random.default_rng(args.seed)))
            topt = torch.optim.SGD(tmodel.parameters(), lr=0.02, momentum=0.9)
            tx, ty = torch.from_numpy(np.ascontiguousarray(X, np.float32)), torch.from_numpy(y)
            order = torch.from_numpy(np.random.default_rng(args.seed).permutation(len(X)))
            start = time.perf_counter()
            for first in range(0, len(X), EPOCH_BATCH):
                batch = order[first:first + EPOCH_BATCH]
                topt.zero_grad()
                torch.nn.functional.cross_entropy(tmodel(tx[batch]), ty[batch]).backward()
                topt.step()
            times["torch"].append(time.perf_counter() - start)
    ours = min(times["ours"])
    theirs = min(times["torch"]) if times["torch"] else None
    return {"images": len(X), "batch_size": EPOCH_BATCH, "ours_s": ours, "torch_s": theirs,
            "x_torch": None if theirs is None else ours / theirs}


# -- reporting ---------------------------------------------------------------------------------
COLUMNS = [  # (key, header, format)
    ("name", "case", "{:<16}"), ("shape", "shape", "{:<24}"), ("pass", "pass", "{:<7}"),
    ("best_ms", "best ms", "{:>9.2f}"), ("median_ms", "median ms", "{:>9.2f}"),
    ("gflops", "GFLOP/s", "{:>7.1f}"), ("gemm_ms", "gemm ms", "{:>8.2f}"),
    ("torch_ms", "torch ms", "{:>8.2f}"), ("x_torch", "x torch", "{:>7.2f}"),
    ("peak_mib", "peak MiB", "{:>8.1f}"), ("algorithm", "algorithm", "{:<11}"),
]


def format_table(rows: list[dict]) -> str:
    widths = [len(fmt.format("" if "<" in fmt else 0.0)) for _, _, fmt in COLUMNS]
    header = " ".join(h.ljust(w) if "<" in fmt else h.rjust(w) for (_, h, fmt), w in zip(COLUMNS, widths))
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(" ".join("-".rjust(w) if row[key] is None else fmt.format(row[key])
                              for (key, _, fmt), w in zip(COLUMNS, widths)))
    return "\n".join(lines)


def summarize(rows: list[dict], quick: bool) -> dict:
    """The issue's targets, checked on this run's numbers."""
    by_name = {(r["name"], r["pass"]): r for r in rows}
    summary: dict = {}
    ratios = {name: by_name[(f"conv {name}", "fwd+bwd")]["x_torch"] for name in SUITE}
    if all(v is not None for v in ratios.values()):
        worst = max(ratios, key=ratios.get)
        summary["geomean_x_torch"] = math.exp(statistics.fmean(math.log(v) for v in ratios.values()))
        summary["worst_x_torch"] = ratios[worst]
        summary["worst_shape"] = worst
        summary["s3_x_torch"] = ratios["S3"]
    step = by_name[("demo train step", "step")]["x_torch"]
    if step is not None:
        summary["step_x_torch"] = step
    pools = [r["x_torch"] for (name, _), r in by_name.items() if name.startswith("pool ")]
    if all(v is not None for v in pools):
        summary["pool_x_torch"] = max(pools)  # the worst of the pool rows
    for key, prefix in OTHER_LAYERS.items():  # reported, with no target
        ratios = [r["x_torch"] for (name, _), r in by_name.items() if name.startswith(prefix)]
        if ratios and all(v is not None for v in ratios):
            summary[key] = max(ratios)
    summary["s1_peak_mib"] = by_name[("conv S1", "fwd+bwd")]["peak_mib"]
    checks = {key: summary[key] <= limit for key, limit in TARGETS.items() if key in summary}
    summary["targets_met"] = None if quick else checks  # tiny batches say nothing about the targets
    return summary


def format_summary(summary: dict) -> str:
    lines = []
    if "geomean_x_torch" in summary:
        lines.append(f"conv fwd+bwd x torch: geometric mean {summary['geomean_x_torch']:.2f} "
                     f"(target <= {TARGETS['geomean_x_torch']}), worst {summary['worst_x_torch']:.2f} on "
                     f"{summary['worst_shape']} (target <= {TARGETS['worst_x_torch']}), S3 "
                     f"{summary['s3_x_torch']:.2f} (target < {TARGETS['s3_x_torch']})")
    if "step_x_torch" in summary:
        lines.append(f"demo train step x torch: {summary['step_x_torch']:.2f} (target <= {TARGETS['step_x_torch']})")
    if "pool_x_torch" in summary:
        lines.append(f"MaxPool2D fwd+bwd x torch, worst pool row: {summary['pool_x_torch']:.2f} "
                     f"(target <= {TARGETS['pool_x_torch']})")
    others = [f"{OTHER_NAMES[key]} {summary[key]:.2f}" for key in OTHER_LAYERS if key in summary]
    if others:
        lines.append("fwd+bwd x torch, worst row (no target): " + ", ".join(others))
    lines.append(f"conv S1 peak extra memory of one fwd+bwd: {summary['s1_peak_mib']:.1f} MiB "
                 f"(target <= {TARGETS['s1_peak_mib']})")
    if summary["targets_met"] is None:
        lines.append("targets: not judged on --quick batches")
    else:
        lines.append("targets: " + ", ".join(f"{k} {'OK' if ok else 'MISSED'}"
                                              for k, ok in summary["targets_met"].items()))
    return "\n".join(lines)


def format_scaling(rows: list[dict]) -> str:
    lines = [f"{'case':<16} {'pass':<7} {'1 thread ms':>11} {'all ms':>9} {'threads':>7} {'speedup':>7}"]
    for r in rows:
        lines.append(f"{r['name']:<16} {r['pass']:<7} {r['one_thread_ms']:>11.2f} {r['all_threads_ms']:>9.2f} "
                     f"{r['threads']:>7} {r['speedup']:>7.2f}")
    return "\n".join(lines)


def format_epoch(epoch: dict) -> str:
    line = (f"one demo epoch ({epoch['images']} images, batch {epoch['batch_size']}): "
            f"minicnn {epoch['ours_s']:.2f} s")
    if epoch["torch_s"] is not None:
        line += f", torch {epoch['torch_s']:.2f} s, x torch {epoch['x_torch']:.2f}"
    return line


# -- main --------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: batches of 2, one short pass (the numbers mean nothing)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for minicnn and for torch (default: every core)")
    parser.add_argument("--passes", type=int, default=None, help="passes over the suite (default 5, quick 1)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed runs per case in each pass (default 6, quick 2)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed runs per case before each pass (default 2, quick 1)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    parser.add_argument("--no-epoch", action="store_true", help="skip the whole-epoch comparison")
    parser.add_argument("--json", metavar="FILE", help="also write the table and the summary as JSON")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs and weights")
    args = parser.parse_args(argv)
    defaults = {"passes": (1, 5), "repeat": (2, 6), "warmup": (1, 2)}  # (quick, full)
    for key, (quick, full) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    threads = args.threads or get_num_threads()
    before = get_num_threads()
    set_num_threads(threads)
    try:
        return run(args, threads)
    finally:
        set_num_threads(before)


def run(args, threads: int) -> dict:
    rng = np.random.default_rng(args.seed)
    use_torch = torch is not None and not args.no_torch
    meta = {
        "python": platform.python_version(), "numpy": np.__version__, "minicnn": minicnn.__version__,
        "torch": torch.__version__ if use_torch else None,
        "machine": f"{platform.machine()} {platform.processor()}".strip(), "platform": platform.platform(),
        "cpus": os.cpu_count(), "threads": threads, "blas_threads": blas_threads(threads),
        "passes": args.passes, "repeat": args.repeat, "warmup": args.warmup, "quick": args.quick,
        "dtype": "float32",
    }
    if use_torch:
        torch.set_num_threads(threads)
        meta["torch_threads"] = torch.get_num_threads()
    size = 64 if args.quick else 1024
    a, b = rand(rng, (size, size)), rand(rng, (size, size))
    meta["square_gemm_gflops"] = 2.0 * size**3 / min(time_runs(lambda: a @ b, args.repeat, args.warmup)) / 1e9
    print(f"minicnn {meta['minicnn']} benchmark: python {meta['python']}, numpy {meta['numpy']}, "
          f"torch {meta['torch'] or 'not used'}")
    print(f"machine: {meta['machine']}, {meta['cpus']} CPUs; threads: minicnn {threads}, numpy BLAS "
          f"{meta['blas_threads']} (1 per minicnn thread inside conv and pooling), torch "
          f"{meta.get('torch_threads', '-')}; float32")
    print(f"timing: best and median over {args.passes} pass(es) of the suite, each running every case "
          f"{args.warmup} time(s) untimed, then {args.repeat} times timed")
    print(f"numpy float32 {size}x{size} matrix product: {meta['square_gemm_gflops']:.1f} GFLOP/s", flush=True)

    cases = build_cases(args, rng)
    for _ in range(args.passes):
        for case in cases:
            case.run(args.repeat, args.warmup)
    rows = [case.row() for case in cases]

    print()
    print(format_table(rows))
    print("(gemm ms: numpy matrix products with the same FLOP count as the case, on ready operands;"
          " peak MiB: one fwd+bwd from a fresh layer; algorithm: the one Conv2DVolume picked)")
    summary = summarize(rows, args.quick)
    print(format_summary(summary))

    scaling = []
    if threads > 1:
        scaling = thread_scaling(cases, threads, args)
        print()
        print("thread scaling (minicnn only; every case at 1 thread and at all, taking turns):")
        print(format_scaling(scaling))
    epoch = None
    if not args.no_epoch:
        epoch = demo_epoch(args, use_torch)
        print()
        print(format_epoch(epoch))
    result = {"meta": meta, "rows": rows, "summary": summary, "scaling": scaling, "epoch": epoch}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
