"""MaxPool2D and AvgPool2D on the worker threads: the same bits for any thread count (and on both of
MaxPool2D's paths), and the same values as in one piece."""

import numpy as np
import pytest
import reference as ref
import reference_layers as ref_layers

from minicnn import AvgPool2D, MaxPool2D
from minicnn.kernels import pooling

# Batches of several chunks (a chunk holds about 1 MiB of input), the last one partial.
CASES = {
    "2x2-pairs-path": ((40, 16, 32, 32), 2, None, 0),
    "k3-s2-pad1-general-path": ((40, 16, 31, 30), 3, 2, 1),
    "2x2-odd-width-general-path": ((40, 16, 32, 31), 2, None, 0),
}


@pytest.mark.parametrize("shape, kernel, stride, padding", CASES.values(), ids=CASES)
def test_same_bits_for_any_thread_count(rng, threads, shape, kernel, stride, padding):
    x = rng.integers(0, 4, size=shape).astype(np.float32)  # many ties
    pool = MaxPool2D(kernel, stride, padding)
    dout = rng.standard_normal(pool.output_shape(shape)).astype(np.float32)
    results = []
    for count in (1, 2, 3):
        threads(count)
        out = pool(x)
        results.append((out, pool.backward(dout)))
    for out, dx in results[1:]:
        assert np.array_equal(out, results[0][0]) and np.array_equal(dx, results[0][1])


@pytest.mark.parametrize("shape", [(3, 2, 6, 8), (1, 3, 2, 2), (2, 1, 10, 4)], ids=["6x8", "2x2", "10x4"])
def test_pairs_path_matches_the_loops_with_ties(rng, threads, shape):
    threads(2)
    x = rng.integers(0, 3, size=shape).astype(np.float64)
    pool = MaxPool2D(2)
    out = pool(x)
    expected, _ = ref.maxpool_forward(x, (2, 2), (2, 2))
    np.testing.assert_array_equal(out, expected)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(pool.backward(dout), ref.maxpool_backward(x, dout, (2, 2), (2, 2)))


def test_pairs_path_in_eval_mode_keeps_nothing(rng):
    pool = MaxPool2D(2).eval()
    x = rng.standard_normal((2, 3, 4, 4))
    out = pool(x)
    np.testing.assert_array_equal(out, ref.maxpool_forward(x, (2, 2), (2, 2))[0])
    with pytest.raises(RuntimeError, match="eval mode"):
        pool.backward(np.ones(out.shape))


@pytest.mark.parametrize(("kernel", "stride", "padding"), [(2, None, 0), (3, 2, 1)], ids=["k2", "k3-s2-p1"])
def test_avgpool_same_bits_for_any_thread_count_and_in_one_piece(rng, threads, monkeypatch, kernel, stride, padding):
    x = rng.standard_normal((24, 16, 31, 30)).astype(np.float32)  # 1.4 MB: split over the threads
    pool = AvgPool2D(kernel, stride, padding)
    dout = rng.standard_normal(pool.output_shape(x.shape)).astype(np.float32)
    results = []
    for count in (1, 2, 3):
        threads(count)
        results.append((pool(x), pool.backward(dout)))
    monkeypatch.setattr(pooling, "AVG_PARALLEL_MIN_SIZE", 2**62)  # one piece on the calling thread
    results.append((pool(x), pool.backward(dout)))
    for out, dx in results[1:]:
        assert np.array_equal(out, results[0][0]) and np.array_equal(dx, results[0][1])
    # and the threaded values are right: the naive loops on two of the samples (each is on its own)
    pads = tuple((p, p) for p in pool.padding)
    expected = ref_layers.avgpool_forward(x[:2], pool.kernel_size, pool.stride, pads)
    np.testing.assert_allclose(results[0][0][:2], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        results[0][1][:2],
        ref_layers.avgpool_backward(
            (2,) + x.shape[1:], dout[:2].astype(np.float64), pool.kernel_size, pool.stride, pads
        ),
        rtol=1e-5,
        atol=1e-6,
    )
