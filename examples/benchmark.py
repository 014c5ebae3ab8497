"""Time minicnn's layers, its training steps and its main job, and PyTorch's where it is installed.

The suite: four convolutions (S1-S4), max pooling of each one's output; ReLU, BatchNorm2D
(training mode) and AvgPool2D (2x2, and 3x3 at stride 2 with padding 1) on S1's output and
on the demo's first feature maps (batch x 16 x 32 x 32); one representative shape for each
of the other layers (1-D and 3-D convolution, pooling and BatchNorm, transposed convolution,
upsampling, depthwise convolution); the demo network layer by layer, as ``build_demo_model``
orders it; and whole training steps: the demo at batch 32 and 64, a small CNN on 8x8 digits
and the MNIST-1D paper's CNN.

For every case the script reports the best and the median of many timed runs (the best
is the figure to compare: noise from the rest of the machine only ever adds time), the
rate in GFLOP/s, the time of plain numpy matrix products doing the same arithmetic (the
floor an im2col convolution can reach), PyTorch's time at the same thread count and our
time as a multiple of it, and the peak extra memory of one forward+backward from a
freshly built layer (measured with tracemalloc, which sees every numpy buffer). PyTorch's
side is the same network or layer, made by ``minicnn.export.to_torch`` with the same weights,
trained with the same ``torch.optim`` rule.

The timed runs come in several passes over the whole suite, each after its own warm-up,
so that a burst of load elsewhere on the machine spoils one pass of a case, not all; and
our time and torch's are taken in the same pass, so their ratio is a fair one even when
the machine's speed drifts.

After the table come the algorithm each convolution picked, the thread scaling (a few cases
at one thread and at all of them, interleaved), a profile of one demo training step at
batch 32 (each layer's forward and backward, the loss, the optimizer, Sequential's overhead),
one whole epoch of the demo training against the same loop in PyTorch, and the main job:
``examples/train_shapes.py`` run whole in a fresh process, phase by phase (import, data,
fit, evaluation, save, pictures), against a PyTorch twin of its recipe.

The machine itself is measured too (examples/_bench_load.py): numpy's 1024x1024 matrix
product several times during the run, and the load average before it. On a loaded machine
every number is still printed, but the targets are marked "not judged: machine loaded".

Run ``python examples/benchmark.py`` for the full run (about five minutes on two idle
cores), ``--no-script`` to leave out the main job (the longest part), ``--quick`` for a smoke
run on tiny batches, and ``--json FILE`` to keep the results. PyTorch is never required:
without it the torch columns stay empty.
"""

from __future__ import annotations

import argparse
import ctypes
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

from _bench_load import LoadMonitor, format_load
from _bench_phases import format_profile, profile_step
from _bench_script import demo_script, format_script
from _cli import parser, positive_int, run
from demo_model import build_demo_model

import minicnn
from minicnn import (
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    BatchNorm1D,
    BatchNorm2D,
    BatchNorm3D,
    Conv1D,
    Conv2DVolume,
    Conv3D,
    ConvTranspose2D,
    Dense,
    Flatten,
    GlobalAvgPool1D,
    GlobalAvgPool3D,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    ReLU,
    Sequential,
    Upsample2D,
    get_num_threads,
    set_num_threads,
)
from minicnn.datasets import load_shapes, make_shapes
from minicnn.export import to_torch
from minicnn.functional import resolve_padding
from minicnn.summary import multiply_accumulates

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


def _seeded() -> np.random.Generator:
    return np.random.default_rng(0)


# The layers beyond the demo's, one representative shape each: row name -> (input shape, label, layer)
LAYER_ROWS = {
    "conv1d": ((32, 16, 512), "F32 k5 p2", lambda: Conv1D(16, 32, 5, padding=2, rng=_seeded())),
    "conv3d": ((8, 8, 16, 16, 16), "F16 k3 p1", lambda: Conv3D(8, 16, 3, padding=1, rng=_seeded())),
    "convT2d": ((32, 32, 16, 16), "F16 k2 s2", lambda: ConvTranspose2D(32, 16, 2, stride=2, rng=_seeded())),
    "depthwise conv": (
        (32, 32, 32, 32),
        "k3 p1 g32",
        lambda: Conv2DVolume(32, 32, 3, padding=1, groups=32, rng=_seeded()),
    ),
    "upsample nearest": ((32, 32, 16, 16), "x2", lambda: Upsample2D(2)),
    "upsample bilin": ((32, 32, 16, 16), "x2", lambda: Upsample2D(2, mode="bilinear")),
    "maxpool1d": ((32, 32, 512), "k2", lambda: MaxPool1D(2)),
    "avgpool1d": ((32, 32, 512), "k2", lambda: AvgPool1D(2)),
    "globalavg1d": ((32, 32, 512), "", GlobalAvgPool1D),
    "maxpool3d": ((8, 16, 16, 16, 16), "k2", lambda: MaxPool3D(2)),
    "avgpool3d": ((8, 16, 16, 16, 16), "k2", lambda: AvgPool3D(2)),
    "globalavg3d": ((8, 16, 16, 16, 16), "", GlobalAvgPool3D),
    "bn1d (N,C)": ((256, 512), "", lambda: BatchNorm1D(512)),
    "bn1d (N,C,L)": ((32, 32, 512), "", lambda: BatchNorm1D(32)),
    "bn3d": ((8, 16, 16, 16, 16), "", lambda: BatchNorm3D(16)),
}
LAYER_ROW_TARGET = 2.0  # each of these rows: fwd+bwd at most this many times torch's


def build_digits_model(rng: np.random.Generator | None = None) -> Sequential:
    """A small CNN for 8x8 grayscale digits: (N, 1, 8, 8) -> (N, 10) logits."""
    return Sequential(
        Conv2DVolume(1, 16, 3, padding=1, rng=rng),
        ReLU(),
        MaxPool2D(2),
        Conv2DVolume(16, 32, 3, padding=1, rng=rng),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dense(32 * 2 * 2, 10, rng=rng),
    )


def build_mnist1d_model(rng: np.random.Generator | None = None) -> Sequential:
    """The CNN of the MNIST-1D paper: (N, 1, 40) signals -> (N, 10) logits."""
    return Sequential(
        Conv1D(1, 25, 5, stride=2, padding=1, rng=rng),
        ReLU(),
        Conv1D(25, 25, 3, stride=2, padding=1, rng=rng),
        ReLU(),
        Conv1D(25, 25, 3, stride=2, padding=1, rng=rng),
        ReLU(),
        Flatten(),
        Dense(25 * 5, 10, rng=rng),
    )


# The training steps: row name -> (model builder, batch shape, classes, optimizer and its settings,
# which torch.optim has under the same names)
DEMO_RECIPE = ("SGD", {"lr": 0.02, "momentum": 0.9})  # examples/train_shapes.py's
STEPS = {
    "demo step b32": (build_demo_model, (32, 3, 32, 32), 6, DEMO_RECIPE),
    "demo step b64": (build_demo_model, (DEMO_BATCH, 3, 32, 32), 6, DEMO_RECIPE),
    "digits step": (build_digits_model, (64, 1, 8, 8), 10, ("Adam", {"lr": 1e-3})),
    "mnist1d step": (build_mnist1d_model, (100, 1, 40), 10, ("Adam", {"lr": 1e-2})),
}

TARGETS = {  # the performance issues' targets: key -> (what, at most); ratios are minicnn's time / torch's
    "geomean_x_torch": ("conv fwd+bwd x torch, geometric mean of S1-S4", 1.5),
    "worst_x_torch": ("conv fwd+bwd x torch, worst of S1-S4", 2.0),
    "s3_x_torch": ("conv S3 fwd+bwd x torch", 1.0),
    "step32_x_torch": ("demo train step x torch, batch 32", 1.3),
    "step64_x_torch": ("demo train step x torch, batch 64", 1.2),
    "digits_x_torch": ("digits train step x torch", 1.2),
    "mnist1d_x_torch": ("MNIST-1D train step x torch", 1.2),
    "script_x_torch": ("whole demo script / torch twin's training time", 1.3),
    "pool_x_torch": ("MaxPool2D fwd+bwd x torch, worst pool row", 1.2),
    "s1_peak_mib": ("conv S1 peak extra MiB of one fwd+bwd", 60.0),
}
STEP_TARGETS = {
    "step32_x_torch": "demo step b32",
    "step64_x_torch": "demo step b64",
    "digits_x_torch": "digits step",
    "mnist1d_x_torch": "mnist1d step",
}
# summary key: the row-name prefix of the layers reported without a target (the worst row's x torch)
OTHER_LAYERS = {"relu_x_torch": ("relu ", "demo relu"), "bn_x_torch": ("bn ",), "avgpool_x_torch": ("avgpool ",)}
OTHER_NAMES = {"relu_x_torch": "ReLU", "bn_x_torch": "BatchNorm2D", "avgpool_x_torch": "AvgPool2D"}


# -- measuring ---------------------------------------------------------------------------------
# Untimed calls go on for at least this long before a case's timed runs (full runs' --warmup-ms):
# after other work, a case ran slow for tens of milliseconds on these virtual cores, longer than
# two calls of a short case. (conv S4 fwd+bwd, 2.5 ms a call: best 3.80 ms after 2 untimed calls,
# 2.21 after 12, in the same suite; torch's first calls showed the same.)
WARMUP_SECONDS = 0.04


def time_runs(fn, repeat: int, warmup: int, warmup_seconds: float = 0.0) -> list[float]:
    """Wall times in seconds of ``repeat`` calls of ``fn()``, after ``warmup`` untimed calls and
    as many more as fit in ``warmup_seconds`` (none when ``warmup`` is 0)."""
    began = time.perf_counter()
    done = 0
    while done < warmup or (warmup > 0 and time.perf_counter() - began < warmup_seconds):
        fn()
        done += 1
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
    tracemalloc.start()  # it sees only what is allocated from here on: no collection needed before
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


def blas_kernels() -> str:
    """numpy's BLAS library, version and the CPU kernels it runs, and OPENBLAS_CORETYPE when the
    environment sets it: a pinned older core type (e.g. Haswell on an AVX-512 CPU) makes every
    matrix product here slower, and torch, with BLAS of its own, not."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (no threadpoolctl)"
    libs = [
        f"{i.get('internal_api')} {i.get('version')}, {i.get('architecture') or '?'} kernels"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    return "; ".join(libs or ["unknown"]) + (f" (OPENBLAS_CORETYPE={pinned} in the environment)" if pinned else "")


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

    def run(self, repeat: int, warmup: int, warmup_seconds: float = 0.0) -> None:
        for key, fn in self.fns.items():
            self.times[key] += time_runs(fn, repeat, warmup, warmup_seconds)

    def row(self) -> dict:
        best = {key: min(t) for key, t in self.times.items()}
        row = {
            "name": self.name,
            "shape": self.shape,
            "pass": self.kind,
            "best_ms": best["ours"] * 1e3,
            "median_ms": statistics.median(self.times["ours"]) * 1e3,
            "gflops": None if self.flops is None else self.flops / best["ours"] / 1e9,
            "gemm_ms": None,
            "torch_ms": None,
            "x_torch": None,
            "peak_mib": self.peak,
            "algorithm": self.algorithm,
        }
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
        cases.append(
            Case(
                name,
                shape,
                "fwd+bwd",
                ours_fwd_bwd,
                3 * flops,
                gemm_fwd_bwd,
                torch_fwd_bwd,
                peak_extra_mib(fresh_fwd_bwd),
                algorithm=algorithm,
            )
        )
    return cases


def layer_case(name, label, make, shape_nchw, rng, torch_op=None, twin: bool = False) -> Case:
    """Forward+backward of the layer ``make()`` builds, against ``torch_op(tx)`` with autograd.

    ``torch_op`` takes the input tensor and returns the output tensor (None: no torch column);
    ``twin=True`` makes it the layer's own torch module, from ``to_torch`` with the same weights.
    A layer with weights gets a GFLOP/s figure: forward and backward are three products each.
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

    if twin:
        torch_op = to_torch(Sequential(layer))[0]
    torch_fn = None
    if torch_op is not None:
        tx = torch.from_numpy(x).requires_grad_()
        tdout = torch.from_numpy(dout)

        def torch_fn():
            tx.grad = None  # a module's weight gradients accumulate, as ours do
            torch_op(tx).backward(tdout)

    macs = multiply_accumulates(layer, dout.shape, x.shape)
    flops = 3 * 2.0 * len(x) * macs if macs else None
    algorithm = layer.algorithm_for(x.shape) if hasattr(layer, "algorithm_for") else None
    label = "x".join(map(str, shape_nchw)) + (f" {label}" if label else "")
    return Case(name, label, "fwd+bwd", ours, flops, torch_fn=torch_fn, peak=peak_extra_mib(fresh), algorithm=algorithm)


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


def optimizer_pair(recipe, params, torch_params=None):
    """minicnn's optimizer over ``params`` and, with ``torch_params``, torch.optim's of the same name
    and settings (the update rules are the same)."""
    name, settings = recipe
    ours = getattr(minicnn, name)(params, **settings)
    return ours, None if torch_params is None else getattr(torch.optim, name)(torch_params, **settings)


def step_case(name, rng, use_torch: bool, batch: int | None = None) -> Case:
    """One training step (zero_grad, forward, loss, backward, update) of a ``STEPS`` network, as fit
    runs it, and the same step of its torch twin."""
    build, shape, classes, recipe = STEPS[name]
    shape = shape if batch is None else (batch, *shape[1:])
    model = build(rng=rng)
    model.layers[0].input_grad = False  # as fit does: nothing needs dL/dx of the images (nor in torch)
    x = rand(rng, shape)
    y = rng.integers(0, classes, size=shape[0])
    tmodel = to_torch(model) if use_torch else None
    opt, topt = optimizer_pair(recipe, model.parameters(), None if tmodel is None else tmodel.parameters())
    loss = minicnn.SoftmaxCrossEntropy()

    def step():
        opt.zero_grad()
        loss(model.forward(x), y)
        model.backward(loss.backward())
        opt.step()

    torch_fn = None
    if use_torch:
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_fn():
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
            topt.step()

    # forward and backward are three matrix products each: 3 x 2 FLOPs per multiply-accumulate
    macs = multiply_accumulates(model, None, (1, *shape[1:]))
    label = f"batch {shape[0]}, " + "x".join(map(str, shape[1:]))
    return Case(name, label, "step", step, 3 * 2.0 * shape[0] * macs, torch_fn=torch_fn)


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
    # The other layers, one shape each, against their own torch modules.
    for name, (shape, label, make) in LAYER_ROWS.items():
        shape = (2, *shape[1:]) if args.quick else shape
        cases.append(layer_case(name, label, make, shape, rng, twin=use_torch))
    # The demo network layer by layer, then whole training steps.
    cases += demo_layer_cases(batch, rng, use_torch)
    for name in STEPS:
        cases.append(step_case(name, rng, use_torch, batch=2 if args.quick else None))
    return cases


SCALING_CASES = {
    ("conv S1", "fwd+bwd"),
    ("conv S2", "fwd+bwd"),
    ("conv S3", "fwd+bwd"),
    ("conv S4", "fwd+bwd"),
    ("pool S1", "fwd+bwd"),
    ("relu S1", "fwd+bwd"),
    ("demo step b32", "step"),
    ("demo step b64", "step"),
}


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
                times[count] += time_runs(case.fns["ours"], args.repeat, args.warmup, args.warmup_ms / 1e3)
        set_num_threads(threads)
        one, many = min(times[1]), min(times[threads])
        rows.append(
            {
                "name": case.name,
                "pass": case.kind,
                "one_thread_ms": one * 1e3,
                "all_threads_ms": many * 1e3,
                "threads": threads,
                "speedup": one / many,
            }
        )
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
        model.fit(
            X,
            y,
            loss=minicnn.SoftmaxCrossEntropy(),
            optimizer=opt,
            epochs=1,
            batch_size=EPOCH_BATCH,
            seed=args.seed,
            progress=False,
        )
        times["ours"].append(time.perf_counter() - start)
        if use_torch:
            tmodel = to_torch(build_demo_model(rng=np.random.default_rng(args.seed)))
            topt = torch.optim.SGD(tmodel.parameters(), lr=0.02, momentum=0.9)
            tx, ty = torch.from_numpy(np.ascontiguousarray(X, np.float32)), torch.from_numpy(y)
            order = torch.from_numpy(np.random.default_rng([args.seed, 1]).permutation(len(X)))  # fit's epoch 1
            start = time.perf_counter()
            for first in range(0, len(X), EPOCH_BATCH):
                batch = order[first : first + EPOCH_BATCH]
                topt.zero_grad()
                torch.nn.functional.cross_entropy(tmodel(tx[batch]), ty[batch]).backward()
                topt.step()
            times["torch"].append(time.perf_counter() - start)
    ours = min(times["ours"])
    theirs = min(times["torch"]) if times["torch"] else None
    return {
        "images": len(X),
        "batch_size": EPOCH_BATCH,
        "ours_s": ours,
        "torch_s": theirs,
        "x_torch": None if theirs is None else ours / theirs,
    }


def demo_step_profile(args, use_torch: bool) -> dict:
    """Where one demo training step at batch 32 (train_shapes.py's) spends its time, layer by layer."""
    rng = np.random.default_rng(args.seed)
    batch = 2 if args.quick else EPOCH_BATCH
    model = build_demo_model(rng=rng)
    model.layers[0].input_grad = False  # as inside fit
    x, y = rand(rng, (batch, 3, 32, 32)), rng.integers(0, 6, size=batch)
    tmodel = to_torch(model) if use_torch else None
    opt, topt = optimizer_pair(DEMO_RECIPE, model.parameters(), None if tmodel is None else tmodel.parameters())
    twin = None if tmodel is None else (torch, tmodel, topt)
    # at least one untimed step: torch's first calls set up what every later one reuses
    return profile_step(
        model,
        x,
        y,
        minicnn.SoftmaxCrossEntropy(),
        opt,
        repeat=args.passes * args.repeat,
        warmup=max(args.warmup, 1),
        twin=twin,
    )


# -- reporting ---------------------------------------------------------------------------------
COLUMNS = [  # (key, header, format)
    ("name", "case", "{:<16}"),
    ("shape", "shape", "{:<24}"),
    ("pass", "pass", "{:<7}"),
    ("best_ms", "best ms", "{:>9.2f}"),
    ("median_ms", "median ms", "{:>9.2f}"),
    ("gflops", "GFLOP/s", "{:>7.1f}"),
    ("gemm_ms", "gemm ms", "{:>8.2f}"),
    ("torch_ms", "torch ms", "{:>8.2f}"),
    ("x_torch", "x torch", "{:>7.2f}"),
    ("peak_mib", "peak MiB", "{:>8.1f}"),
    ("algorithm", "algorithm", "{:<11}"),
]


def format_table(rows: list[dict]) -> str:
    widths = [len(fmt.format("" if "<" in fmt else 0.0)) for _, _, fmt in COLUMNS]
    header = " ".join(h.ljust(w) if "<" in fmt else h.rjust(w) for (_, h, fmt), w in zip(COLUMNS, widths))
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            " ".join(
                "-".rjust(w) if row[key] is None else fmt.format(row[key]) for (key, _, fmt), w in zip(COLUMNS, widths)
            )
        )
    return "\n".join(lines)


def summarize(rows: list[dict], script: dict | None = None) -> dict:
    """This run's figures for the targets (keys of ``TARGETS``, each where it was measured), the
    worst row of the layers without a target, and ``layers``: each ``LAYER_ROWS`` row's x torch."""
    by_name = {(r["name"], r["pass"]): r for r in rows}
    summary: dict = {}
    ratios = {name: by_name[(f"conv {name}", "fwd+bwd")]["x_torch"] for name in SUITE}
    if all(v is not None for v in ratios.values()):
        worst = max(ratios, key=ratios.get)
        summary["geomean_x_torch"] = math.exp(statistics.fmean(math.log(v) for v in ratios.values()))
        summary["worst_x_torch"] = ratios[worst]
        summary["worst_shape"] = worst
        summary["s3_x_torch"] = ratios["S3"]
    for key, name in STEP_TARGETS.items():
        if by_name[(name, "step")]["x_torch"] is not None:
            summary[key] = by_name[(name, "step")]["x_torch"]
    if script is not None and script["whole_x_torch_training"] is not None:
        summary["script_x_torch"] = script["whole_x_torch_training"]
    pools = [r["x_torch"] for (name, _), r in by_name.items() if name.startswith("pool ")]
    if all(v is not None for v in pools):
        summary["pool_x_torch"] = max(pools)  # the worst of the pool rows
    for key, prefix in OTHER_LAYERS.items():  # reported, with no target
        ratios = [r["x_torch"] for (name, _), r in by_name.items() if name.startswith(prefix)]
        if ratios and all(v is not None for v in ratios):
            summary[key] = max(ratios)
    summary["s1_peak_mib"] = by_name[("conv S1", "fwd+bwd")]["peak_mib"]
    summary["layers"] = {
        name: by_name[(name, "fwd+bwd")]["x_torch"]
        for name in LAYER_ROWS
        if by_name[(name, "fwd+bwd")]["x_torch"] is not None
    }
    return summary


def judge(summary: dict, load: dict, quick: bool) -> list[dict]:
    """Every target with this run's value and its verdict: "OK", "MISSED", "not judged: <why>"
    (tiny --quick batches, or a loaded machine: see examples/_bench_load.py) or "not measured"
    (no torch, or a section that did not run). Sets ``summary["targets_met"]`` (None when not
    judged) and ``summary["not_judged"]`` (the reason, or None)."""
    reason = "--quick batches" if quick else "machine loaded" if load["loaded"] else None
    wanted = [(key, what, limit, summary.get(key)) for key, (what, limit) in TARGETS.items()]
    wanted += [
        (f"layer {name}", f"{name} fwd+bwd x torch", LAYER_ROW_TARGET, summary["layers"].get(name))
        for name in LAYER_ROWS
    ]
    targets = []
    for key, what, limit, value in wanted:
        if value is None:
            verdict = "not measured"
        elif reason:
            verdict = f"not judged: {reason}"
        else:
            verdict = "OK" if value <= limit else "MISSED"
        targets.append({"key": key, "what": what, "value": value, "limit": limit, "verdict": verdict})
    summary["not_judged"] = reason
    summary["targets_met"] = (
        None if reason else {t["key"]: t["verdict"] == "OK" for t in targets if t["verdict"] in ("OK", "MISSED")}
    )
    return targets


def format_targets(targets: list[dict], summary: dict) -> str:
    """One line per target: what, this run's value, the limit and the verdict."""
    lines = ["targets (x torch: minicnn's time over torch's, both from this run; judged on an idle machine only):"]
    for t in targets:
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        lines.append(f"  {t['what']:<50} {value:>6}  <= {t['limit']:<4g} {t['verdict']}")
    if "worst_shape" in summary:
        lines.append(f"  (the worst convolution is {summary['worst_shape']})")
    others = [f"{OTHER_NAMES[key]} {summary[key]:.2f}" for key in OTHER_LAYERS if key in summary]
    if others:
        lines.append("fwd+bwd x torch, worst row (no target): " + ", ".join(others))
    judged = [t for t in targets if t["verdict"] in ("OK", "MISSED")]
    if judged:
        missed = [t["key"] for t in judged if t["verdict"] == "MISSED"]
        lines.append(
            f"targets: {len(judged) - len(missed)} of {len(judged)} met"
            + (f"; missed: {', '.join(missed)}" if missed else "")
        )
    elif summary["not_judged"]:
        lines.append(f"targets: not judged ({summary['not_judged']})")
    return "\n".join(lines)


def format_scaling(rows: list[dict]) -> str:
    lines = [f"{'case':<16} {'pass':<7} {'1 thread ms':>11} {'all ms':>9} {'threads':>7} {'speedup':>7}"]
    for r in rows:
        lines.append(
            f"{r['name']:<16} {r['pass']:<7} {r['one_thread_ms']:>11.2f} {r['all_threads_ms']:>9.2f} "
            f"{r['threads']:>7} {r['speedup']:>7.2f}"
        )
    return "\n".join(lines)


def format_epoch(epoch: dict) -> str:
    line = f"one demo epoch ({epoch['images']} images, batch {epoch['batch_size']}): minicnn {epoch['ours_s']:.2f} s"
    if epoch["torch_s"] is not None:
        line += f", torch {epoch['torch_s']:.2f} s, x torch {epoch['x_torch']:.2f}"
    return line


# -- main --------------------------------------------------------------------------------------
def _number(text: str, ok, wanted: str) -> float:
    """``text`` as a float if ``ok`` of it holds, else argparse's error for a ``wanted`` number."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not ok(value):  # NaN fails every comparison
        raise argparse.ArgumentTypeError(f"expected a number {wanted}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse ``type``: a number > 0."""
    return _number(text, lambda v: v > 0, "> 0")


def non_negative_float(text: str) -> float:
    """An argparse ``type``: a number >= 0."""
    return _number(text, lambda v: v >= 0, ">= 0")


def parse_args(argv=None) -> argparse.Namespace:
    cli = parser(__doc__.split("\n\n")[0])
    cli.add_argument(
        "--quick", action="store_true", help="a smoke run: batches of 2, one short pass (the numbers mean nothing)"
    )
    cli.add_argument(
        "--threads", type=positive_int, default=None, help="threads for minicnn and for torch (default: every core)"
    )
    cli.add_argument("--passes", type=positive_int, default=None, help="passes over the suite (default 5, quick 1)")
    cli.add_argument(
        "--repeat", type=positive_int, default=None, help="timed runs per case in each pass (default 6, quick 2)"
    )
    cli.add_argument(
        "--warmup", type=int, default=None, help="untimed runs per case before each pass (default 2, quick 1)"
    )
    cli.add_argument(
        "--warmup-ms",
        type=non_negative_float,
        default=None,
        help=f"and untimed runs until this many milliseconds have passed (default {WARMUP_SECONDS * 1e3:g}, quick 0)",
    )
    cli.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    cli.add_argument("--no-epoch", action="store_true", help="skip the whole-epoch comparison")
    cli.add_argument("--no-profile", action="store_true", help="skip the per-phase profile of a demo step")
    cli.add_argument(
        "--script",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time the main job, examples/train_shapes.py run whole, against a torch twin of its "
        "recipe (default: in full runs; with --quick, a 100-image 1-epoch smoke run)",
    )
    cli.add_argument(
        "--idle-gflops",
        type=positive_float,
        default=None,
        help="this machine's numpy float32 1024x1024 matrix product rate when idle, in GFLOP/s: "
        "a run whose best sample is below 80%% of it counts as loaded",
    )
    cli.add_argument("--json", metavar="FILE", help="also write the table and the summary as JSON")
    cli.add_argument("--seed", type=int, default=0, help="seed of the random inputs and weights")
    args = cli.parse_args(argv)
    defaults = {"passes": (1, 5), "repeat": (2, 6), "warmup": (1, 2), "warmup_ms": (0.0, WARMUP_SECONDS * 1e3)}
    for key, (quick, full) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    if args.warmup < 0:
        cli.error(f"argument --warmup: expected a whole number >= 0, got {args.warmup}")
    if args.script is None:
        args.script = not args.quick
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    threads = args.threads or get_num_threads()
    before = get_num_threads()
    set_num_threads(threads)
    try:
        run_benchmark(args, threads)
    finally:
        set_num_threads(before)
    return 0


def run_benchmark(args, threads: int) -> dict:
    """Every section of the benchmark, printed as it ends; returns what ``--json`` writes."""
    began = time.perf_counter()
    monitor = LoadMonitor(idle_gflops=args.idle_gflops, repeat=1 if args.quick else 3)
    rng = np.random.default_rng(args.seed)
    use_torch = torch is not None and not args.no_torch
    meta = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "minicnn": minicnn.__version__,
        "torch": torch.__version__ if use_torch else None,
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "threads": threads,
        "blas_threads": blas_threads(threads),
        "passes": args.passes,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "warmup_ms": args.warmup_ms,
        "quick": args.quick,
        "dtype": "float32",
        "blas": blas_kernels(),
    }
    if use_torch:
        torch.set_num_threads(threads)
        meta["torch_threads"] = torch.get_num_threads()
    meta["square_gemm_gflops"] = monitor.sample("at the start")["gflops"]
    load = "unknown" if monitor.load_before is None else f"{monitor.load_before:.2f}"
    print(
        f"minicnn {meta['minicnn']} benchmark: python {meta['python']}, numpy {meta['numpy']}, "
        f"torch {meta['torch'] or 'not used'}"
    )
    print(
        f"machine: {meta['machine']}, {meta['cpus']} CPUs; threads: minicnn {threads}, numpy BLAS "
        f"{meta['blas_threads']} (1 per minicnn thread inside conv and pooling), torch "
        f"{meta.get('torch_threads', '-')}; float32"
    )
    print(f"numpy's BLAS: {meta['blas']}")
    print(
        f"timing: best and median over {args.passes} pass(es) of the suite, each running every case "
        f"{args.warmup} time(s) untimed (and on for {args.warmup_ms:g} ms at least), then {args.repeat} times timed"
    )
    print(
        f"machine load at the start: 1-min load average {load}, numpy float32 1024x1024 matrix product "
        f"{meta['square_gemm_gflops']:.1f} GFLOP/s"
        + ("" if args.idle_gflops is None else f" (idle: {args.idle_gflops:g})")
    )
    print(
        "  (the product is timed again between sections; the run counts as loaded, and no target is judged, "
        "if a sample falls below 80% of the run's best, the load average was above 0.5 at the start, or "
        "the best is below 80% of --idle-gflops)",
        flush=True,
    )

    cases = build_cases(args, rng)
    for i in range(args.passes):
        for case in cases:
            case.run(args.repeat, args.warmup, args.warmup_ms / 1e3)
        monitor.sample(f"after pass {i + 1} of the suite")
    rows = [case.row() for case in cases]
    print()
    print(format_table(rows))
    print(
        "(gemm ms: numpy matrix products with the same FLOP count as the case, on ready operands;"
        " peak MiB: one fwd+bwd from a fresh layer; algorithm: the one Conv2DVolume picked)",
        flush=True,
    )

    scaling = []
    if threads > 1:
        scaling = thread_scaling(cases, threads, args)
        monitor.sample("after the thread scaling")
        print()
        print("thread scaling (minicnn only; each case at 1 thread and at all, taking turns):")
        print(format_scaling(scaling), flush=True)
    profile = None
    if not args.no_profile:
        profile = demo_step_profile(args, use_torch)
        monitor.sample("after the step profile")
        print()
        print(
            format_profile(
                profile,
                f"one demo training step at batch {profile['batch_size']}, phase by phase "
                "(best of each; minicnn as Sequential runs it, torch module by module):",
            )
        )
        print(
            "(Sequential's checks and loop: the step through model.forward and model.backward less the same "
            "calls made by hand; unattributed: the step less all of the above, noise between the bests of the "
            "parts, and in torch its autograd engine; fit, per batch: the step as fit runs it, with its batch "
            "gathering, finite checks and accuracy, a mean, so it takes noise the best of the other rows does not)",
            flush=True,
        )
    epoch = None
    if not args.no_epoch:
        epoch = demo_epoch(args, use_torch)
        monitor.sample("after the demo epoch")
        print()
        print(format_epoch(epoch), flush=True)
    script = None
    if args.script:
        script = demo_script(torch if use_torch else None, threads, args.quick)
        monitor.sample("after the main job")
        print()
        print(format_script(script), flush=True)

    summary = summarize(rows, script)
    load = monitor.verdict()
    targets = judge(summary, load, args.quick)
    meta["seconds"] = time.perf_counter() - began
    print()
    print(format_load(load))
    print(format_targets(targets, summary))
    print(f"the benchmark took {meta['seconds']:.0f} s")
    result = {
        "meta": meta,
        "rows": rows,
        "summary": summary,
        "targets": targets,
        "load": load,
        "scaling": scaling,
        "profile": profile,
        "epoch": epoch,
        "script": script,
    }
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    raise SystemExit(run(main))
