"""Randomized differential test of every built-in layer against PyTorch, through the public API.

Each case draws a random geometry (small sizes, odd corners: kernels as large as the input,
strides larger than the kernel, "same" with even kernels and stride > 1, groups, dilation,
no bias), copies the layer's parameters into torch, and compares the forward, dx and every
dparam in float64 (to a few ulps) and float32 (within a tolerance scaled to the magnitudes).
Further tests check that the numbers are the same bits for any thread count and batches that
split into chunks, and that unusual inputs (views, Fortran order, read-only, big-endian,
other dtypes) give the same numbers and are never written to.

Seeded, so every run draws the same cases; raise ``CASES_PER_FAMILY`` for a longer hunt
(1000 per family and dtype take about a minute).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import minicnn as mc

torch = pytest.importorskip("torch")
F = torch.nn.functional

# -- the cases -------------------------------------------------------------------------------


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _same_pads(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    """Keras' "same": ceil(size / s) outputs, the odd padding at the end."""
    eff = d * (k - 1) + 1
    total = max((math.ceil(size / s) - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def _conv_case(rng, nd: int):
    """A random Conv1D / Conv2DVolume / Conv3D, its torch twin and an input shape."""
    cin = int(rng.integers(1, 7))
    groups = int(rng.choice(_divisors(cin)))
    cout = groups * int(rng.integers(1, 4))
    if rng.random() < 0.2:  # depthwise
        groups, cout = cin, cin
    maxsize = {1: 12, 2: 9, 3: 5}[nd]
    k = tuple(int(rng.integers(1, min(5, maxsize) + 1)) for _ in range(nd))
    s = tuple(int(rng.integers(1, 5)) for _ in range(nd))
    d = tuple(int(rng.integers(1, 3)) if rng.random() < 0.3 else 1 for _ in range(nd))
    kind = rng.choice(["int", "tuple", "same", "valid"] + (["causal"] if nd == 1 else []))
    if kind == "int":
        p = int(rng.integers(0, max(k) // 2 + 1))
        padding, pads = p, [(p, p)] * nd
    elif kind == "tuple":
        pp = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
        padding, pads = pp, [(q, q) for q in pp]
    elif kind == "valid":
        padding, pads = "valid", [(0, 0)] * nd
    else:
        padding, pads = str(kind), None
    # input sizes: at least the dilated kernel minus the padding, sometimes exactly it
    sizes = []
    for i in range(nd):
        eff = d[i] * (k[i] - 1) + 1
        lo = max(1, eff - (0 if pads is None else sum(pads[i])))
        if kind in ("same", "causal"):
            lo = 1
        hi = max(lo, maxsize)
        sizes.append(lo if rng.random() < 0.25 else int(rng.integers(lo, hi + 1)))
    if kind == "same":
        pads = [_same_pads(sizes[i], k[i], s[i], d[i]) for i in range(nd)]
    elif kind == "causal":
        pads = [(d[0] * (k[0] - 1), 0)]
    n = int(rng.integers(1, 6))
    bias = bool(rng.random() < 0.7)
    seed = int(rng.integers(2**31))
    kw = {"stride": s if rng.random() < 0.5 else (s[0] if len(set(s)) == 1 else s), "padding": padding}
    kw["dilation"] = d if len(set(d)) > 1 else (d[0] if rng.random() < 0.5 else d)
    if nd == 2:
        algorithms = ["auto", "im2col"] + (["im2col_nhwc"] if groups == 1 else [])  # documented: groups=1 only
        if k == (3, 3) and s == (1, 1) and d == (1, 1) and groups == 1:
            algorithms.append("winograd")
        kw["algorithm"] = str(rng.choice(algorithms))
        layer = mc.Conv2DVolume(cin, cout, k, bias=bias, rng=np.random.default_rng(seed), groups=groups, **kw)
    else:
        cls = mc.Conv1D if nd == 1 else mc.Conv3D
        layer = cls(cin, cout, k, groups=groups, bias=bias, rng=np.random.default_rng(seed), **kw)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    flat_pads = [q for pair in reversed(pads) for q in pair]  # F.pad wants the last axis first

    def twin(x, params):
        w, b = params[0], params[1] if bias else None
        return conv(F.pad(x, flat_pads), w, b, stride=s, dilation=d, groups=groups)

    return layer, twin, (n, cin, *sizes), f"{layer!r} on {(n, cin, *sizes)}"


def _conv_transpose_case(rng):
    cin = int(rng.integers(1, 7))
    groups = int(rng.choice(_divisors(cin)))
    cout = groups * int(rng.integers(1, 4))
    k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    s = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    d = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if rng.random() < 0.3 else (1, 1)
    op = tuple(int(rng.integers(0, max(si, di))) for si, di in zip(s, d))
    p = tuple(int(rng.integers(0, di * (ki - 1) + 1)) for ki, di in zip(k, d))
    hw = []
    for i in range(2):
        # output (H-1)*s - 2p + d(k-1) + op + 1 must be >= 1
        lo = 1
        while (lo - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 < 1:
            lo += 1
        hw.append(int(rng.integers(lo, max(lo, 8) + 1)))
    n = int(rng.integers(1, 6))
    bias = bool(rng.random() < 0.7)
    seed = int(rng.integers(2**31))
    layer = mc.ConvTranspose2D(
        cin, cout, k, stride=s, padding=p, output_padding=op, groups=groups, bias=bias,
        dilation=d, rng=np.random.default_rng(seed),
    )  # fmt: skip

    def twin(x, params):
        w, b = params[0], params[1] if bias else None
        return F.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op, groups=groups, dilation=d)

    return layer, twin, (n, cin, *hw), f"ConvTranspose2D({cin}, {cout}, {k}, s={s}, p={p}, op={op}, g={groups}, d={d})"


def _pool_case(rng, nd: int, kind: str):
    maxsize = {1: 12, 2: 9, 3: 6}[nd]
    k = tuple(int(rng.integers(1, 5)) for _ in range(nd))
    s = tuple(int(rng.integers(1, 6)) for _ in range(nd)) if rng.random() < 0.8 else None
    p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
    sizes = []
    for i in range(nd):
        lo = max(1, k[i] - 2 * p[i])
        sizes.append(lo if rng.random() < 0.25 else int(rng.integers(lo, max(lo, maxsize) + 1)))
    n, c = int(rng.integers(1, 6)), int(rng.integers(1, 7))
    as_int = rng.random() < 0.4 and len(set(k)) == 1 and len(set(p)) == 1
    args = (k[0] if as_int else k, None if s is None else s, p[0] if as_int else p)
    cls = getattr(mc, f"{kind}Pool{nd}D")
    layer = cls(*args)
    stride = k if s is None else s
    if kind == "Max":
        fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nd]

        def twin(x, params):
            return fn(x, k, stride, p)
    else:
        fn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]
        # zero padding counted in the average, padded by hand: torch's avg_pool3d refuses an
        # unpadded input smaller than the kernel even where the padding makes it fit
        flat_pads = [q for pp in reversed(p) for q in (pp, pp)]

        def twin(x, params):
            return fn(F.pad(x, flat_pads), k, stride, 0)

    return layer, twin, (n, c, *sizes), f"{cls.__name__}{args} on {(n, c, *sizes)}"


def _global_case(rng, nd: int):
    sizes = tuple(int(rng.integers(1, 8)) for _ in range(nd))
    n, c = int(rng.integers(1, 6)), int(rng.integers(1, 7))
    layer = getattr(mc, f"GlobalAvgPool{nd}D")()

    def twin(x, params):
        return x.mean(dim=tuple(range(2, 2 + nd)))

    return layer, twin, (n, c, *sizes), f"GlobalAvgPool{nd}D on {(n, c, *sizes)}"


def _upsample_case(rng):
    sf = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    mode = str(rng.choice(["nearest", "bilinear"]))
    as_int = rng.random() < 0.4
    layer = mc.Upsample2D(sf[0] if as_int else sf, mode=mode)
    factor = (sf[0], sf[0]) if as_int else sf
    shape = (int(rng.integers(1, 6)), int(rng.integers(1, 7)), int(rng.integers(1, 9)), int(rng.integers(1, 9)))

    def twin(x, params):
        extra = {"align_corners": False} if mode == "bilinear" else {}
        return F.interpolate(x, scale_factor=factor, mode=mode, **extra)

    return layer, twin, shape, f"Upsample2D({factor}, {mode}) on {shape}"


def _dense_case(rng):
    fin, fout = int(rng.integers(1, 13)), int(rng.integers(1, 13))
    bias = bool(rng.random() < 0.7)
    layer = mc.Dense(fin, fout, bias=bias, rng=np.random.default_rng(int(rng.integers(2**31))))

    def twin(x, params):
        return F.linear(x, params[0], params[1] if bias else None)

    return layer, twin, (int(rng.integers(1, 6)), fin), f"Dense({fin}, {fout}, bias={bias})"


def _elementwise_case(rng):
    shape = tuple(int(rng.integers(1, 6)) for _ in range(int(rng.integers(2, 5))))
    which = str(rng.choice(["ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Flatten", "Dropout0"]))
    if which == "LeakyReLU":
        slope = float(rng.choice([0.01, 0.2, 1.5, 0.0, -0.3]))
        layer = mc.LeakyReLU(slope)

        def twin(x, params):
            return F.leaky_relu(x, slope)
    elif which == "Flatten":
        layer = mc.Flatten()

        def twin(x, params):
            return x.reshape(x.shape[0], -1)
    elif which == "Dropout0":
        layer = mc.Dropout(0.0, rng=np.random.default_rng(0))

        def twin(x, params):
            return x * 1
    else:
        layer = getattr(mc, which)()
        fn = {"ReLU": torch.relu, "Tanh": torch.tanh, "Sigmoid": torch.sigmoid}[which]

        def twin(x, params):
            return fn(x)

    return layer, twin, shape, which


def _residual_case(rng):
    c = int(rng.integers(1, 5))
    k = int(rng.choice([1, 3, 5]))
    seed = int(rng.integers(2**31))
    layer = mc.Residual(mc.Conv2DVolume(c, c, k, padding="same", rng=np.random.default_rng(seed)), mc.Tanh())
    shape = (int(rng.integers(1, 5)), c, int(rng.integers(1, 8)), int(rng.integers(1, 8)))

    def twin(x, params):
        return x + torch.tanh(F.conv2d(x, params[0], params[1], padding=k // 2))

    return layer, twin, shape, f"Residual(Conv2DVolume({c}, {c}, {k}, 'same'), Tanh) on {shape}"


FAMILIES = {
    "Conv1D": lambda rng: _conv_case(rng, 1),
    "Conv2DVolume": lambda rng: _conv_case(rng, 2),
    "Conv3D": lambda rng: _conv_case(rng, 3),
    "ConvTranspose2D": _conv_transpose_case,
    **{
        f"{kind}Pool{nd}D": (lambda rng, nd=nd, kind=kind: _pool_case(rng, nd, kind))
        for kind in ("Max", "Avg")
        for nd in (1, 2, 3)
    },
    **{f"GlobalAvgPool{nd}D": (lambda rng, nd=nd: _global_case(rng, nd)) for nd in (1, 2, 3)},
    "Upsample2D": _upsample_case,
    "Dense": _dense_case,
    "elementwise": _elementwise_case,
    "Residual": _residual_case,
}

# -- running both sides ----------------------------------------------------------------------


def _as_dtype(layer, dtype) -> None:
    """Give every Parameter of ``layer`` the dtype ``dtype`` (so float64 grads are float64)."""
    for p in layer.parameters():
        p.data = p.data.astype(dtype)
        p.grad = np.zeros_like(p.data)


def _ours(layer, x, dout):
    layer.zero_grad()
    y = layer.forward(x)
    dx = layer.backward(dout)
    return y, dx, [p.grad.copy() for p in layer.parameters()]


def _torch(twin, layer, x, dout):
    xt = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    params = [torch.tensor(p.data.astype(np.float64), requires_grad=True) for p in layer.parameters()]
    y = twin(xt, params)
    y.backward(torch.tensor(np.asarray(dout, np.float64)))
    return (
        y.detach().numpy(),
        xt.grad.numpy(),
        [p.grad.numpy() if p.grad is not None else 0 * p.detach().numpy() for p in params],
    )


def _close(name: str, got, want, dtype, slack: float = 1.0) -> str | None:
    got = np.asarray(got)
    if got.shape != want.shape:
        return f"{name}: shape {got.shape}, torch {want.shape}"
    if got.dtype != dtype:
        return f"{name}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    scale = max(1.0, float(np.abs(want).max(initial=0)))
    tol = (1e-11 if dtype == np.float64 else 2e-5) * scale * slack
    err = float(np.abs(got.astype(np.float64) - want).max(initial=0))
    if not err <= tol:
        return f"{name}: max error {err:.3g} > {tol:.3g} (scale {scale:.3g})"
    return None


def _compare(layer, twin, shape, dtype, rng) -> list[str]:
    x = rng.standard_normal(shape).astype(dtype)
    _as_dtype(layer, dtype)
    out_shape = layer.output_shape(shape)
    dout = rng.standard_normal(out_shape).astype(dtype)
    x0, dout0 = x.copy(), dout.copy()
    y, dx, grads = _ours(layer, x, dout)
    ty, tdx, tgrads = _torch(twin, layer, x, dout)
    problems = [_close("y", y, ty, dtype), _close("dx", dx, tdx, dtype)]
    problems += [_close(f"d{n}", g, tg, dtype) for (n, _), g, tg in zip(layer.named_parameters(), grads, tgrads)]
    if not (np.array_equal(x, x0) and np.array_equal(dout, dout0)):
        problems.append("x or dout was modified in place")
    return [p for p in problems if p]


# What a layer may raise on a case: each is a finding, reported with the case (numpy's
# RuntimeWarnings are errors in the test run).
_CRASHES = (ArithmeticError, LookupError, RuntimeError, TypeError, ValueError, Warning)

CASES_PER_FAMILY = 15  # per family and dtype (see the module docstring)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_random_layers_match_torch(family, dtype):
    rng = np.random.default_rng(sum(map(ord, family)))
    failures = []
    for i in range(CASES_PER_FAMILY):
        layer, twin, shape, what = FAMILIES[family](rng)
        try:
            problems = _compare(layer, twin, shape, dtype, rng)
        except _CRASHES as exc:  # a crash is a finding too: report it with its case
            problems = [f"raised {type(exc).__name__}: {exc}"]
        if problems:
            failures.append(f"case {i} {what}: " + "; ".join(problems))
    assert not failures, "\n".join(failures)


# -- batch normalisation: several training steps, then eval ---------------------------------


def _bn_case(rng):
    kind = str(rng.choice(["1d-NC", "1d-NCL", "2d", "3d"]))
    c = int(rng.integers(1, 7))
    spatial = {"1d-NC": 0, "1d-NCL": 1, "2d": 2, "3d": 3}[kind]
    sizes = tuple(int(rng.integers(1, 6 if spatial < 3 else 4)) for _ in range(spatial))
    n = int(rng.integers(2 if math.prod(sizes) == 1 else 1, 6))
    eps = float(rng.choice([1e-5, 1e-3, 0.5]))
    momentum = float(rng.choice([0.0, 0.1, 0.5, 1.0]))
    cls = {"1d-NC": mc.BatchNorm1D, "1d-NCL": mc.BatchNorm1D, "2d": mc.BatchNorm2D, "3d": mc.BatchNorm3D}[kind]
    return cls(c, eps=eps, momentum=momentum), (n, c, *sizes), f"{cls.__name__}({c}, eps={eps}, momentum={momentum})"


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_random_batch_norm_matches_torch(dtype):
    rng = np.random.default_rng(2024)
    failures = []
    for i in range(CASES_PER_FAMILY):
        layer, shape, what = _bn_case(rng)
        c = shape[1]
        layer.weight.data[...] = rng.standard_normal(c)
        layer.bias.data[...] = rng.standard_normal(c)
        _as_dtype(layer, dtype)
        for buffer in (layer.running_mean, layer.running_var):  # float64 statistics for a float64 check
            buffer.data = buffer.data.astype(dtype)
        rm = torch.zeros(c, dtype=torch.float64)
        rv = torch.ones(c, dtype=torch.float64)
        problems = []
        try:
            for step in range(3):
                x = (rng.standard_normal(shape) * rng.uniform(0.1, 5) + rng.uniform(-3, 3)).astype(dtype)
                dout = rng.standard_normal(shape).astype(dtype)
                y, dx, (dw, db) = _ours(layer, x, dout)
                xt = torch.tensor(x.astype(np.float64), requires_grad=True)
                wt = torch.tensor(layer.weight.data.astype(np.float64), requires_grad=True)
                bt = torch.tensor(layer.bias.data.astype(np.float64), requires_grad=True)
                yt = F.batch_norm(xt, rm, rv, wt, bt, training=True, momentum=layer.momentum, eps=layer.eps)
                yt.backward(torch.tensor(dout.astype(np.float64)))
                for name, got, want in (
                    ("y", y, yt),
                    ("dx", dx, xt.grad),
                    ("dweight", dw, wt.grad),
                    ("dbias", db, bt.grad),
                ):
                    # a batch of two has ill-conditioned statistics: float32's dx (torch's too) loses more
                    problems.append(_close(f"step {step} {name}", got, want.detach().numpy(), dtype, slack=5))
                for name, want in (("running_mean", rm), ("running_var", rv)):
                    problems.append(_close(f"step {step} {name}", getattr(layer, name).data, want.numpy(), dtype))
            layer.eval()
            x = rng.standard_normal(shape).astype(dtype)
            y = layer.forward(x)
            yt = F.batch_norm(
                torch.tensor(x.astype(np.float64)), rm, rv, wt.detach(), bt.detach(), training=False, eps=layer.eps
            )
            problems.append(_close("eval y", y, yt.numpy(), dtype))
            if int(layer.num_batches_tracked.data) != 3:
                problems.append(f"num_batches_tracked {layer.num_batches_tracked.data}")
        except _CRASHES as exc:
            problems.append(f"raised {type(exc).__name__}: {exc}")
        problems = [p for p in problems if p]
        if problems:
            failures.append(f"case {i} {what} on {shape}: " + "; ".join(problems))
    assert not failures, "\n".join(failures)


# -- threads and chunks: the same bits for any thread count ----------------------------------


def _big_batch(family: str, rng, n: int):
    """A case of ``family`` with its batch axis set to ``n`` (large enough to split into chunks)."""
    layer, twin, shape, what = FAMILIES[family](rng)
    return layer, twin, (n, *shape[1:]), what


@pytest.mark.parametrize("family", list(FAMILIES))
def test_random_layers_same_bits_for_any_thread_count(family, threads):
    rng = np.random.default_rng(7 + sum(map(ord, family)))
    failures = []
    for i in range(2):
        layer, twin, shape, what = _big_batch(family, rng, int(rng.choice([33, 64, 100])))
        x = rng.standard_normal(shape).astype(np.float32)
        dout = rng.standard_normal(layer.output_shape(shape)).astype(np.float32)
        runs = []
        for n in (1, 2, 1):
            threads(n)
            runs.append(_ours(layer, x, dout))
        for run in runs[1:]:
            same = [np.array_equal(a, b) for a, b in zip(runs[0][:2] + tuple(runs[0][2]), run[:2] + tuple(run[2]))]
            if not all(same):
                failures.append(f"case {i} {what} on {shape}: not the same bits (y, dx, dparams: {same})")
        ty, tdx, tgrads = _torch(twin, layer, x, dout)
        problems = [_close("y", runs[0][0], ty, np.float32), _close("dx", runs[0][1], tdx, np.float32)]
        problems += [_close("dparam", g, tg, np.float32) for g, tg in zip(runs[0][2], tgrads)]
        problems = [p for p in problems if p]
        if problems:
            failures.append(f"case {i} {what} on {shape}: " + "; ".join(problems))
    assert not failures, "\n".join(failures)


def test_batch_norm_same_bits_for_any_thread_count(threads):
    for shape in [(64, 3, 4, 4), (100, 5), (64, 2, 7), (40, 3, 2, 3, 4)]:
        runs = []
        for n in (1, 2):
            threads(n)
            layer = {2: mc.BatchNorm1D, 3: mc.BatchNorm1D, 4: mc.BatchNorm2D, 5: mc.BatchNorm3D}[len(shape)](shape[1])
            x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            dout = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
            y, dx, grads = _ours(layer, x, dout)
            runs.append([y, dx, *grads, layer.running_mean.data.copy(), layer.running_var.data.copy(), layer.eval()(x)])
        assert all(np.array_equal(a, b) for a, b in zip(*runs)), shape


# -- unusual inputs: views, orders, read-only, byte order, dtypes ----------------------------


def _variants(x: np.ndarray) -> dict[str, np.ndarray]:
    """``x``'s values in other memory layouts and byte orders (all float32)."""
    wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), np.float32)
    wide[..., ::2] = x
    transposed = np.ascontiguousarray(np.swapaxes(x, 0, -1)).swapaxes(0, -1)
    readonly = x.copy()
    readonly.flags.writeable = False
    return {
        "strided slice": wide[..., ::2],
        "transposed view": transposed,
        "fortran order": np.asfortranarray(x),
        "read-only": readonly,
        "big-endian": x.astype(">f4"),
        "negative strides": x[::-1].copy()[::-1],
    }


@pytest.mark.parametrize("family", list(FAMILIES))
def test_random_layers_take_any_memory_layout(family):
    rng = np.random.default_rng(11 + sum(map(ord, family)))
    failures = []
    for i in range(2):
        layer, _, shape, what = FAMILIES[family](rng)
        x = rng.standard_normal(shape).astype(np.float32)
        dout = rng.standard_normal(layer.output_shape(shape)).astype(np.float32)
        want = _ours(layer, x, dout)
        for name, xv in _variants(x).items():
            for dname, dv in {"contiguous": dout.copy(), **_variants(dout)}.items():
                if name != "strided slice" and dname != "contiguous" and dname != name:
                    continue  # the same layout for both, or one of them odd: enough combinations
                x_before, d_before = xv.copy(), dv.copy()
                try:
                    got = _ours(layer, xv, dv)
                except _CRASHES as exc:
                    failures.append(f"case {i} {what}: x {name}, dout {dname}: raised {type(exc).__name__}: {exc}")
                    continue
                for label, a, b in zip(
                    ("y", "dx", *("d" + n for n, _ in layer.named_parameters())),
                    want[:2] + tuple(want[2]),
                    got[:2] + tuple(got[2]),
                ):
                    # numpy's sums follow the memory order, so another layout may round a sum
                    # (a bias gradient, a global average) differently in the last bit: close, not
                    # equal. A big-endian x gives native float32 out: test_big_endian_... below
                    if b.dtype.type is not np.float32 or not np.allclose(
                        a, b, rtol=1e-6, atol=1e-6 * max(1, np.abs(a).max())
                    ):
                        failures.append(f"case {i} {what}: x {name}, dout {dname}: {label} differs ({b.dtype})")
                if not (np.array_equal(xv, x_before) and np.array_equal(dv, d_before)):
                    failures.append(f"case {i} {what}: x {name}, dout {dname}: input modified in place")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_random_layers_dtypes(family):
    """float64 stays float64; float16 and integers compute in float32 (as_float's documented rule)."""
    rng = np.random.default_rng(13 + sum(map(ord, family)))
    failures = []
    layer, _, shape, what = FAMILIES[family](rng)
    x = rng.integers(-3, 4, shape)
    dout = rng.standard_normal(layer.output_shape(shape))
    ref32 = _ours(layer, x.astype(np.float32), dout.astype(np.float32))
    for dtype, want in [
        (np.float64, np.float64),
        (np.float16, np.float32),
        (np.int64, np.float32),
        (np.int8, np.float32),
        (bool, np.float32),
    ]:
        xv = (x > 0) if dtype is bool else x.astype(dtype)
        try:
            y, dx, _ = _ours(layer, xv, dout.astype(want))
        except _CRASHES as exc:
            failures.append(f"{what}: x {np.dtype(dtype)}: raised {type(exc).__name__}: {exc}")
            continue
        if y.dtype != want or dx.dtype != want:
            failures.append(f"{what}: x {np.dtype(dtype)}: y {y.dtype}, dx {dx.dtype}, expected {np.dtype(want)}")
        if dtype is not bool and not np.allclose(y, ref32[0], rtol=1e-5, atol=1e-5 * max(1, np.abs(ref32[0]).max())):
            failures.append(f"{what}: x {np.dtype(dtype)}: y differs from the float32 result")
    # uint8 is pixels: / 255
    xu = rng.integers(0, 256, shape).astype(np.uint8)
    y = layer.forward(xu)
    ref = layer.forward(xu.astype(np.float32) / np.float32(255))
    if y.dtype != np.float32 or not np.array_equal(y, ref):
        failures.append(f"{what}: uint8 x is not x / 255 in float32")
    assert not failures, "\n".join(failures)


def _chunked_cases():
    """Layers and inputs large enough that the kernels split the batch into chunks."""
    rng = np.random.default_rng(5)
    conv2 = [
        (mc.Conv2DVolume(8, 16, 3, padding=1, algorithm=a, rng=rng), F.conv2d, {"padding": 1})
        for a in ("im2col", "im2col_nhwc", "winograd", "auto")
    ]
    conv2 += [
        (mc.Conv2DVolume(8, 8, 3, stride=2, padding="same", groups=8, rng=rng), None, None),
        (mc.Conv2DVolume(8, 12, (2, 3), dilation=2, groups=4, rng=rng), F.conv2d, {"dilation": 2, "groups": 4}),
    ]
    cases = [(layer, (64, 8, 16, 16), fn, kw) for layer, fn, kw in conv2]
    transpose = {"stride": 2, "padding": 1, "output_padding": 1}
    cases += [
        (mc.Conv1D(16, 16, 5, padding="causal", rng=rng), (64, 16, 64), None, None),
        (mc.Conv1D(16, 16, 4, stride=2, groups=16, rng=rng), (64, 16, 64), F.conv1d, {"stride": 2, "groups": 16}),
        (mc.Conv3D(4, 8, 3, padding=1, rng=rng), (16, 4, 8, 8, 8), F.conv3d, {"padding": 1}),
        (mc.ConvTranspose2D(8, 8, 3, rng=rng, **transpose), (64, 8, 8, 8), F.conv_transpose2d, transpose),
    ]
    cases += [
        (mc.MaxPool2D(3, 2, 1), (64, 16, 16, 16), F.max_pool2d, {"kernel_size": 3, "stride": 2, "padding": 1}),
        (mc.AvgPool2D(3, 2, 1), (64, 16, 16, 16), F.avg_pool2d, {"kernel_size": 3, "stride": 2, "padding": 1}),
        (mc.MaxPool3D(2), (16, 8, 8, 8, 8), F.max_pool3d, {"kernel_size": 2}),
        (mc.AvgPool1D(4, 3, 2), (64, 16, 64), F.avg_pool1d, {"kernel_size": 4, "stride": 3, "padding": 2}),
        (
            mc.Upsample2D((2, 3), "bilinear"),
            (64, 8, 16, 16),
            F.interpolate,
            {"scale_factor": (2, 3), "mode": "bilinear"},
        ),
        (mc.Dense(256, 128, rng=rng), (256, 256), F.linear, {}),
    ]
    return cases


def test_chunked_batches_match_torch_and_thread_counts(threads, chunk_calls):
    for layer, shape, fn, kw in _chunked_cases():
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        dout = np.random.default_rng(1).standard_normal(layer.output_shape(shape)).astype(np.float32)
        runs = []
        for n in (1, 2):
            threads(n)
            y, dx, grads = _ours(layer, x, dout)
            runs.append([y, dx, *grads])
        assert all(np.array_equal(a, b) for a, b in zip(*runs)), repr(layer)
        if fn is None:  # "same" / "causal": checked against torch on small batches above
            continue

        def twin(xt, params, fn=fn, kw=kw):
            return fn(xt, *params, **kw)

        ty, tdx, tgrads = _torch(twin, layer, x, dout)
        problems = [_close("y", runs[0][0], ty, np.float32), _close("dx", runs[0][1], tdx, np.float32)]
        problems += [_close("dparam", g, tg, np.float32) for g, tg in zip(runs[0][2:], tgrads)]
        assert not [p for p in problems if p], (repr(layer), problems)
    assert any(chunk < total for total, chunk in chunk_calls), "no case split its batch into chunks"


_BIG_ENDIAN_LAYERS = {
    "Conv1D": lambda: mc.Conv1D(2, 3, 3, rng=np.random.default_rng(0)),
    "MaxPool2D": lambda: mc.MaxPool2D(2),
    "AvgPool2D": lambda: mc.AvgPool2D(2),
    "Upsample2D": lambda: mc.Upsample2D(2),
    "ReLU": lambda: mc.ReLU(),
    "Tanh": lambda: mc.Tanh(),
    "Flatten": lambda: mc.Flatten(),
    "BatchNorm1D": lambda: mc.BatchNorm1D(2),
}


@pytest.mark.parametrize("name", list(_BIG_ENDIAN_LAYERS))
def test_big_endian_input_gives_native_float32(name):
    layer = _BIG_ENDIAN_LAYERS[name]()
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)[: 3 if name in ("Conv1D", "BatchNorm1D") else 4])
    y = layer(x.astype(">f4"))
    dx = layer.backward(np.ones(y.shape, ">f4"))
    assert y.dtype == np.float32 and dx.dtype == np.float32, (y.dtype.str, dx.dtype.str)
    assert np.array_equal(y, layer(x.astype(np.float32)))
