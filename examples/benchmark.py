"""Time minicnn's layers, and PyTorch's where it is installed, on a fixed suite of shapes.

For every case the script reports, after a warm-up, the best and the median of several
runs (the best is the figure to compare: the machine's noise only ever adds time), the
rate in GFLOP/s, the time of plain numpy matrix products doing the same arithmetic
(the floor an im2col convolution can reach), PyTorch's time at the same thread count
and our time as a multiple of it, and the peak extra memory of one forward+backward
from a freshly built layer (measured with tracemalloc, which sees every numpy buffer).

Run ``python examples/benchmark.py`` for the full suite (a few minutes on two cores),
``--quick`` for a smoke run on tiny shapes, and ``--json FILE`` to keep the table.
PyTorch is never required: without it the torch columns are left empty.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import platform
import statistics
import time
import tracemalloc

import numpy as np

import minicnn
from minicnn import Conv2DVolume, Dense, Flatten, MaxPool2D, ReLU, Sequential

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
TARGETS = {"geomean_x_torch": 3.0, "worst_x_torch": 4.0, "s1_peak_mib": 60.0}


# -- the demo network ------------------------------------------------------------------------
def demo_network(rng: np.random.Generator) -> Sequential:
    """The demo CNN for 3x32x32 images and 6 classes."""
    return Sequential(
        Conv2DVolume(3, 16, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2),
        Conv2DVolume(16, 32, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2),
        Flatten(), Dense(32 * 8 * 8, 6, rng=rng),
    )


def softmax_xent_grad(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient (used until minicnn's loss lands)."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    n = len(labels)
    loss = -float(np.mean(np.log(p[np.arange(n), labels])))
    p[np.arange(n), labels] -= 1
    return loss, p / n


class InlineSGD:
    """Plain momentum SGD, the update of torch.optim.SGD (used until minicnn.SGD lands)."""

    def __init__(self, params, lr: float, momentum: float = 0.0) -> None:
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.velocity = [np.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        for p, v in zip(self.params, self.velocity):
            v *= self.momentum
            v += p.grad
            p.data -= self.lr * v

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad[...] = 0


def make_optimizer(params, lr: float, momentum: float):
    """minicnn.SGD when it is implemented, else the inline stand-in; returns (optimizer, label)."""
    if hasattr(minicnn.SGD, "step"):
        return minicnn.SGD(params, lr, momentum=momentum), "minicnn.SGD"
    return InlineSGD(params, lr, momentum=momentum), "inline SGD (minicnn.SGD not implemented yet)"


def make_loss():
    """A function (logits, labels) -> dL/dlogits, from minicnn's loss when it is implemented."""
    loss_cls = minicnn.SoftmaxCrossEntropy
    if hasattr(loss_cls, "backward") and callable(loss_cls):
        loss = loss_cls()

        def grad(logits, labels):
            loss(logits, labels)
            return loss.backward()

        return grad, "minicnn.SoftmaxCrossEntropy"
    return (lambda logits, labels: softmax_xent_grad(logits, labels)[1]), "inline softmax cross-entropy"


# -- measuring ---------------------------------------------------------------------------------
def time_it(fn, repeat: int, warmup: int) -> tuple[float, float]:
    """(best, median) wall time of ``fn()`` in seconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


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


def rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


# -- the cases ---------------------------------------------------------------------------------
class Row(dict):
    """One line of the table (a dict, so it goes straight into the JSON)."""


def conv_rows(name, spec, args, rng) -> list[Row]:
    n, c, hw, f, k, pad, stride = spec
    x = rand(rng, (n, c, hw, hw))
    layer = Conv2DVolume(c, f, k, stride=stride, padding=pad, rng=rng)
    out = layer(x)
    dout = rand(rng, out.shape)
    _, _, oh, ow = out.shape
    ckk, l_out = c * k * k, oh * ow
    flops = 2.0 * n * f * l_out * ckk
    shape = f"{n}x{c}x{hw}x{hw} F{f} k{k} p{pad} s{stride}"

    # The matrix products of an im2col convolution, one 2-D GEMM each, on ready arrays:
    # what is left when gathering the columns and scattering them back cost nothing.
    w2 = rand(rng, (f, ckk))
    cols2 = rand(rng, (ckk, n * l_out))
    d2 = rand(rng, (f, n * l_out))

    def gemm_fwd():
        return w2 @ cols2

    def gemm_fwd_bwd():
        return w2 @ cols2, d2 @ cols2.T, w2.T @ d2

    def ours_fwd():
        return layer.forward(x)

    def ours_fwd_bwd():
        layer.forward(x)
        return layer.backward(dout)

    def fresh_fwd_bwd():
        fresh = Conv2DVolume(c, f, k, stride=stride, padding=pad, rng=np.random.default_rng(0))
        fresh.forward(x)
        return fresh.backward(dout)

    torch_fwd = torch_fwd_bwd = None
    if torch is not None and not args.no_torch:
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

    peak = peak_extra_mib(fresh_fwd_bwd)
    return [
        measure(f"conv {name}", shape, "fwd", ours_fwd, args, flops, gemm_fwd, torch_fwd),
        measure(f"conv {name}", shape, "fwd+bwd", ours_fwd_bwd, args, 3 * flops, gemm_fwd_bwd,
                torch_fwd_bwd, peak),
    ]


def pool_row(label, shape_nchw, args, rng) -> Row:
    x = rand(rng, shape_nchw)
    layer = MaxPool2D(2)
    dout = rand(rng, layer(x).shape)

    def ours():
        layer.forward(x)
        return layer.backward(dout)

    def fresh():
        pool = MaxPool2D(2)
        pool.forward(x)
        return pool.backward(dout)

    torch_fn = None
    if torch is not None and not args.no_torch:
        tx = torch.from_numpy(x).requires_grad_()
        tdout = torch.from_numpy(dout)

        def torch_fn():
            tx.grad = None
            torch.nn.functional.max_pool2d(tx, 2).backward(tdout)

    n, c, h, w = shape_nchw
    return measure(label, f"{n}x{c}x{h}x{w} k2", "fwd+bwd", ours, args, None, None, torch_fn,
                   peak_extra_mib(fresh))


def dense_row(label, n, fin, fout, args, rng) -> Row:
    x = rand(rng, (n, fin))
    layer = Dense(fin, fout, rng=rng)
    dout = rand(rng, (n, fout))
    w = layer.weight.data

    def ours():
        layer.forward(x)
        return layer.backward(dout)

    def gemm():
        return x @ w.T, dout.T @ x, dout @ w

    torch_fn = None
    if torch is not None and not args.no_torch:
        tx = torch.from_numpy(x).requires_grad_()
        tw = torch.from_numpy(w.copy()).requires_grad_()
        tb = torch.zeros(fout, requires_grad=True)
        tdout = torch.from_numpy(dout)

        def torch_fn():
            tx.grad = tw.grad = tb.grad = None
            torch.nn.functional.linear(tx, tw, tb).backward(tdout)

    return measure(label, f"{n}x{fin} -> {fout}", "fwd+bwd", ours, args, 3 * 2.0 * n * fin * fout, gemm,
                   torch_fn)


def train_step_row(batch, args, rng, meta) -> Row:
    model = demo_network(rng)
    x = rand(rng, (batch, 3, 32, 32))
    y = rng.integers(0, 6, size=batch)
    opt, meta["optimizer"] = make_optimizer(model.parameters(), 0.01, 0.9)
    loss_grad, meta["loss"] = make_loss()

    def step():
        opt.zero_grad()
        logits = model.forward(x)
        model.backward(loss_grad(logits, y))
        opt.step()

    torch_fn = None
    if torch is not None and not args.no_torch:
        nn = torch.nn
        tmodel = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 8 * 8, 6),
        )
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_fn():
            topt.zero_grad()
            nn.functional.cross_entropy(tmodel(tx), ty).backward()
            topt.step()

    flops = 0.0  # the convolutions and the dense layer, forward and backward
    for conv_spec in ((3, 16, 32), (16, 32, 16)):
        cin, cout, hw = conv_spec
        flops += 3 * 2.0 * batch * cout * hw * hw * cin * 9
    flops += 3 * 2.0 * batch * 32 * 8 * 8 * 6
    return measure("demo train step", f"batch {batch}, 3x32x32", "step", step, args, flops, None, torch_fn)


def measure(name, shape, kind, fn, args, flops, gemm_fn, torch_fn, peak=None) -> Row:
    best, median = time_it(fn, args.repeat, args.warmup)
    row = Row(name=name, shape=shape, pass_=kind, best_ms=best * 1e3, median_ms=median * 1e3,
              gflops=None if flops is None else flops / best / 1e9,
              gemm_ms=None, torch_ms=None, x_torch=None, peak_mib=peak)
    if gemm_fn is not None:
        row["gemm_ms"] = time_it(gemm_fn, args.repeat, args.warmup)[0] * 1e3
    if torch_fn is not None:
        row["torch_ms"] = time_it(torch_fn, args.repeat, args.warmup)[0] * 1e3
        row["x_torch"] = row["best_ms"] / row["torch_ms"]
    row["pass"] = row.pop("pass_")
    return row


# -- reporting ---------------------------------------------------------------------------------
COLUMNS = [  # (key, header, format)
    ("name", "case", "{:<16}"), ("shape", "shape", "{:<24}"), ("pass", "pass", "{:<7}"),
    ("best_ms", "best ms", "{:>9.2f}"), ("median_ms", "median ms", "{:>9.2f}"),
    ("gflops", "GFLOP/s", "{:>7.1f}"), ("gemm_ms", "gemm ms", "{:>8.2f}"),
    ("torch_ms", "torch ms", "{:>8.2f}"), ("x_torch", "x torch", "{:>7.2f}"),
    ("peak_mib", "peak MiB", "{:>8.1f}"),
]


def format_table(rows: list[Row]) -> str:
    widths = [len(fmt.format(*([""] if "<" in fmt else [0.0]))) for _, _, fmt in COLUMNS]
    header = " ".join(h.rjust(w) if "<" not in fmt else h.ljust(w)
                      for (_, h, fmt), w in zip(COLUMNS, widths))
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = []
        for (key, _, fmt), w in zip(COLUMNS, widths):
            value = row.get(key)
            cells.append("-".rjust(w) if value is None else fmt.format(value))
        lines.append(" ".join(cells))
    return "\n".join(lines)


def summarize(rows: list[Row], quick: bool) -> dict:
    """The issue's targets, checked on this run's numbers."""
    by_name = {(r["name"], r["pass"]): r for r in rows}
    summary: dict = {}
    ratios = {name: by_name[(f"conv {name}", "fwd+bwd")]["x_torch"] for name in SUITE}
    if all(v is not None for v in ratios.values()):
        worst = max(ratios, key=ratios.get)
        summary["geomean_x_torch"] = math.exp(statistics.fmean(math.log(v) for v in ratios.values()))
        summary["worst_x_torch"] = ratios[worst]
        summary["worst_shape"] = worst
    summary["s1_peak_mib"] = by_name[("conv S1", "fwd+bwd")]["peak_mib"]
    summary["pool_vs_conv"] = {
        pool: by_name[(pool, "fwd+bwd")]["best_ms"] / by_name[(conv, "fwd+bwd")]["best_ms"]
        for pool, conv in (("demo pool1", "demo conv1"), ("demo pool2", "demo conv2"))
    }
    checks = {key: summary[key] <= limit for key, limit in TARGETS.items() if key in summary}
    checks["pool_not_slower_than_conv"] = all(r <= 1.0 for r in summary["pool_vs_conv"].values())
    summary["targets_met"] = None if quick else checks  # tiny shapes say nothing about the targets
    return summary


def format_summary(summary: dict) -> str:
    lines = []
    if "geomean_x_torch" in summary:
        lines.append(f"conv fwd+bwd x torch: geometric mean {summary['geomean_x_torch']:.2f} "
                     f"(target <= {TARGETS['geomean_x_torch']}), worst {summary['worst_x_torch']:.2f} on "
                     f"{summary['worst_shape']} (target <= {TARGETS['worst_x_torch']})")
    lines.append(f"conv S1 peak extra memory of one fwd+bwd: {summary['s1_peak_mib']:.1f} MiB "
                 f"(target <= {TARGETS['s1_peak_mib']})")
    lines.append("MaxPool2D fwd+bwd / preceding conv fwd+bwd: "
                 + ", ".join(f"{k} {v:.2f}" for k, v in summary["pool_vs_conv"].items()) + " (target <= 1)")
    if summary["targets_met"] is None:
        lines.append("targets: not judged on --quick shapes")
    else:
        lines.append("targets: " + ", ".join(f"{k} {'OK' if ok else 'MISSED'}"
                                              for k, ok in summary["targets_met"].items()))
    return "\n".join(lines)


def square_gemm_gflops(rng, size: int, args) -> float:
    a, b = rand(rng, (size, size)), rand(rng, (size, size))
    return 2.0 * size**3 / time_it(lambda: a @ b, args.repeat, args.warmup)[0] / 1e9


# -- main --------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: tiny batches, few repeats (numbers mean nothing)")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for numpy's BLAS and for torch (default 2)")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per case (default 10, quick 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs first (default 2, quick 1)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    parser.add_argument("--json", metavar="FILE", help="also write the table and the summary as JSON")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 2 if args.quick else 10
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    suite = SUITE
    batch = DEMO_BATCH
    if args.quick:  # the same layers on batches of 2
        suite = {name: (2,) + spec[1:] for name, spec in SUITE.items()}
        batch = 2

    meta = {
        "python": platform.python_version(), "numpy": np.__version__, "minicnn": minicnn.__version__,
        "torch": None if torch is None or args.no_torch else torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "platform": platform.platform(), "cpus": __import__("os").cpu_count(),
        "threads": args.threads, "blas_threads": blas_threads(args.threads),
        "repeat": args.repeat, "warmup": args.warmup, "quick": args.quick, "dtype": "float32",
    }
    if meta["torch"]:
        torch.set_num_threads(args.threads)
        meta["torch_threads"] = torch.get_num_threads()
    meta["square_gemm_gflops"] = square_gemm_gflops(rng, 64 if args.quick else 1024, args)
    print(f"minicnn {meta['minicnn']} benchmark: python {meta['python']}, numpy {meta['numpy']}, "
          f"torch {meta['torch'] or 'not used'}")
    print(f"machine: {meta['machine']}, {meta['cpus']} CPUs; threads: numpy BLAS {meta['blas_threads']}, "
          f"torch {meta.get('torch_threads', '-')}; float32; best and median of {args.repeat} runs "
          f"after {args.warmup} warm-up")
    print(f"numpy float32 square GEMM: {meta['square_gemm_gflops']:.1f} GFLOP/s", flush=True)

    rows: list[Row] = []
    for name, spec in suite.items():
        rows += conv_rows(name, spec, args, rng)
    for name, spec in suite.items():  # max-pooling the output of each convolution
        n, _, hw, f, k, pad, stride = spec
        out_hw = (hw + 2 * pad - k) // stride + 1
        rows.append(pool_row(f"pool {name}", (n, f, out_hw, out_hw), args, rng))
    # The demo network layer by layer, then one whole training step.
    rows += [r for r in conv_rows("demo1", (batch, 3, 32, 16, 3, 1, 1), args, rng) if r["pass"] == "fwd+bwd"]
    rows.append(pool_row("demo pool1", (batch, 16, 32, 32), args, rng))
    rows += [r for r in conv_rows("demo2", (batch, 16, 16, 32, 3, 1, 1), args, rng) if r["pass"] == "fwd+bwd"]
    rows.append(pool_row("demo pool2", (batch, 32, 16, 16), args, rng))
    for r in rows:
        r["name"] = r["name"].replace("conv demo", "demo conv")
    rows.append(dense_row("demo dense", batch, 32 * 8 * 8, 6, args, rng))
    rows.append(train_step_row(batch, args, rng, meta))

    print()
    print(format_table(rows))
    print("(gemm ms: numpy matrix products with the same FLOP count as the case, on ready operands;"
          " peak MiB: one fwd+bwd from a fresh layer)")
    print(f"demo train step: {meta['loss']}, {meta['optimizer']}")
    summary = summarize(rows, args.quick)
    print(format_summary(summary))
    result = {"meta": meta, "rows": rows, "summary": summary}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
