"""MaxPool2D on the worker threads: the same bits for any thread count, on both of its paths."""

import numpy as np
import pytest
import reference as ref

from minicnn import MaxPool2D
from minicnn.threads import get_num_threads, set_num_threads


@pytest.fixture
def threads():
    before = get_num_threads()
    yield set_num_threads
    set_num_threads(before)


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
    out = pool(rng.standard_normal((2, 3, 4, 4)))
    assert out.shape == (2, 3, 2, 2) and pool._saved is None
