"""minicnn.kernels.batch_norm against minicnn.ops.normalization: training mode within a stated
tolerance (the kernel adds per-chunk partial sums in float64, the op sums in one reduction), eval
mode's forward bit for bit (the same arithmetic in the same order); the same bits for 1 and 2
threads, below and above the threading threshold, in 1, 2 and 3 spatial dimensions."""

import numpy as np
import pytest

from minicnn import ops
from minicnn.kernels import batch_norm as K

SHAPES = {
    "(N, C)": (6, 5),
    "(N, C)-wide-rows": (256, 40),  # 128 samples a wide row
    "(N, C)-threaded": (2048, 512),  # 16 samples a wide row, in chunks of 1024
    "1-D": (4, 3, 17),
    "2-D": (3, 2, 5, 6),
    "2-D-batch1": (1, 3, 4, 7),
    "3-D": (2, 2, 3, 4, 5),
    "several-chunks": (24, 16, 64, 64),  # 3 chunks of 8 samples
    "partial-last-chunk": (11, 16, 80, 80),  # 5 + 5 + 1 samples
    "odd": (7, 3, 33, 31),
}
# |kernel - op| <= TOL * max|op|: about ten times the largest gap measured (1.9e-7 and 1.3e-16)
TOL = {np.float32: 2e-6, np.float64: 1e-14}


def arrays(rng, shape, dtype):
    """x off-centre, gamma of both signs, beta, running statistics and an upstream gradient."""
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    gamma = (rng.uniform(0.5, 2.0, c) * rng.choice([-1, 1], c)).astype(dtype)
    beta, mean = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    var = rng.uniform(0.5, 3.0, c).astype(dtype)
    return x, gamma, beta, mean, var, rng.standard_normal(shape).astype(dtype)


def assert_near(got, expected, dtype, name):
    assert got.dtype == expected.dtype == dtype and got.shape == expected.shape, name
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL[dtype] * np.abs(expected).max(), err_msg=name)


def training_step(forward, backward, x, gamma, beta, dout):
    out, cache = forward(x, gamma, beta, 1e-5)
    running = ops.batch_norm_running_stats(cache, np.zeros(x.shape[1], np.float32), np.ones(x.shape[1], np.float32))
    return (out, *backward(dout, cache), *running)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES)
def test_training_kernel_is_the_op_within_rounding(rng, threads, shape, dtype):
    threads(2)
    x, gamma, beta, _, _, dout = arrays(rng, shape, dtype)
    got = training_step(K.batch_norm_forward, K.batch_norm_backward, x, gamma, beta, dout)
    expected = training_step(ops.batch_norm_forward, ops.batch_norm_backward, x, gamma, beta, dout)
    names = ["out", "dx", "dgamma", "dbeta", "running_mean", "running_var"]
    for name, g, e in zip(names, got, expected):
        assert_near(g, e, np.float32 if name.startswith("running") else dtype, name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES)
def test_eval_kernel_is_the_op(rng, threads, shape, dtype):
    threads(2)
    x, gamma, beta, mean, var, dout = arrays(rng, shape, dtype)
    out, cache = K.batch_norm_eval_forward(x, gamma, beta, mean, var, 1e-5)
    e_out, e_cache = ops.batch_norm_eval_forward(x, gamma, beta, mean, var, 1e-5)
    assert out.tobytes() == e_out.tobytes()
    for name, g, e in zip(
        ["dx", "dgamma", "dbeta"], K.batch_norm_eval_backward(dout, cache), ops.batch_norm_eval_backward(dout, e_cache)
    ):
        assert_near(g, e, dtype, name)


def test_parameters_are_cast_to_the_input_dtype(rng):
    x, gamma, beta, mean, var, dout = arrays(rng, (4, 3, 5, 5), np.float32)
    up = [v.astype(np.float64) for v in (gamma, beta, mean, var)]
    out, cache = K.batch_norm_forward(x, *up[:2])
    assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in K.batch_norm_backward(dout, cache))
    cast = K.batch_norm_eval_forward(x, *up)[0]
    assert cast.tobytes() == K.batch_norm_eval_forward(x, gamma, beta, mean, var)[0].tobytes()


@pytest.mark.parametrize(
    "shape",
    [SHAPES["several-chunks"], SHAPES["partial-last-chunk"], SHAPES["(N, C)-threaded"], (3, 2, 5, 6)],
    ids=["several-chunks", "partial-last-chunk", "wide-rows-in-chunks", "one-piece"],
)
def test_one_and_two_threads_give_the_same_bits(rng, threads, chunk_calls, shape):
    x, gamma, beta, mean, var, dout = arrays(rng, shape, np.float32)
    results = []
    for count in (1, 2):
        threads(count)
        step = training_step(K.batch_norm_forward, K.batch_norm_backward, x, gamma, beta, dout)
        results.append([*step, K.batch_norm_eval_forward(x, gamma, beta, mean, var)[0]])
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()
    large = np.prod(shape) >= K.PARALLEL_MIN_SIZE
    assert large == (shape != (3, 2, 5, 6))  # the cases are what their names say
    # per count: three passes forward, two backward, one in eval mode, all in the same chunks
    assert len(chunk_calls) == (12 if large else 0) and len(set(chunk_calls)) <= 1


def test_the_threshold(rng, threads, chunk_calls):
    threads(2)
    for n, split in ((7, False), (8, True)):  # 7 samples of 2**17 values, or 8: 2**20 in all
        x, gamma, beta, mean, var, dout = arrays(rng, (n, 2, 256, 256), np.float32)
        chunk_calls.clear()
        _, cache = K.batch_norm_forward(x, gamma, beta)
        K.batch_norm_backward(dout, cache)
        K.batch_norm_eval_forward(x, gamma, beta, mean, var)
        assert len(chunk_calls) == (6 if split else 0)


def test_without_need_dx_the_parameter_gradients_are_the_same_bits(rng):
    x, gamma, beta, _, _, dout = arrays(rng, (16, 16, 32, 32), np.float32)
    _, cache = K.batch_norm_forward(x, gamma, beta)
    skipped = K.batch_norm_backward(dout, cache, need_dx=False)  # first: dx is written over the cache
    dx, dgamma, dbeta = K.batch_norm_backward(dout, cache)
    assert skipped[0] is None and dx is not None
    assert skipped[1].tobytes() == dgamma.tobytes() and skipped[2].tobytes() == dbeta.tobytes()


def test_one_value_per_channel_is_refused_with_the_ops_message():
    with pytest.raises(ValueError, match=r"batch_norm_forward: input of shape \(1, 3, 1, 1\) has one value per"):
        K.batch_norm_forward(np.zeros((1, 3, 1, 1)), np.ones(3), np.zeros(3))


def test_a_tall_batch_keeps_its_statistics_accurate(rng):
    # 300,000 samples of 4 features near 1000: one float32 sum over the samples is off by ~1e-3 of
    # the mean, and its variance is wrong altogether (measured); the kernel adds runs of samples in
    # float32, then the runs in float64 (measured: 5e-8 and 5e-7).
    x = (rng.standard_normal((300_000, 4)) * 0.1 + 1000).astype(np.float32)
    _, cache = K.batch_norm_forward(x, np.ones(4, np.float32), np.zeros(4, np.float32))
    mean, var = cache[3], cache[4]
    exact = x.astype(np.float64)
    np.testing.assert_allclose(mean, exact.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(var, exact.var(axis=0), rtol=1e-5)
