"""minicnn.kernels.threads: the thread count, run_chunks, per-thread scratch buffers, BLAS held at one thread."""

import copy
import os
import threading

import numpy as np
import pytest

from minicnn.kernels import threads as T


@pytest.fixture
def restore_threads():
    before = T._num_threads
    yield
    T.set_num_threads(before)


def test_default_is_every_core_this_process_may_use(restore_threads):
    T.set_num_threads(None)
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert T.get_num_threads() == expected


@pytest.mark.parametrize("n", [1, 3, np.int64(2)], ids=["1", "3", "numpy-int"])
def test_set_and_get(restore_threads, n):
    T.set_num_threads(n)
    assert T.get_num_threads() == n and type(T.get_num_threads()) is int


@pytest.mark.parametrize(
    "n, error, match",
    [
        (0, ValueError, r"n must be >= 1, got 0"),
        (-2, ValueError, r"n must be >= 1, got -2"),
        (1.5, TypeError, r"n must be an int >= 1 or None, got 1.5 \(float\)"),
        (True, TypeError, r"n must be an int >= 1 or None, got True"),
        ("4", TypeError, r"n must be an int >= 1 or None, got '4' \(str\)"),
    ],
    ids=["zero", "negative", "float", "bool", "str"],
)
def test_bad_thread_counts_are_refused_and_change_nothing(restore_threads, n, error, match):
    T.set_num_threads(3)
    with pytest.raises(error, match=rf"set_num_threads: {match}"):
        T.set_num_threads(n)
    assert T.get_num_threads() == 3


@pytest.mark.parametrize("count", [1, 2, 4])
def test_run_chunks_covers_every_chunk_once_and_returns_in_chunk_order(restore_threads, count):
    T.set_num_threads(count)
    seen = []
    lock = threading.Lock()

    def fn(start, stop, worker):
        with lock:
            seen.append((start, stop, worker))
        return start

    results = T.run_chunks(fn, 23, 5)
    assert results == [0, 5, 10, 15, 20]
    assert sorted((a, b) for a, b, _ in seen) == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    assert {w for _, _, w in seen} <= set(range(min(count, 5)))


def test_run_chunks_uses_several_threads_at_once(restore_threads):
    T.set_num_threads(3)
    barrier = threading.Barrier(3, timeout=10)  # passes only if three chunks run at the same time
    names = T.run_chunks(lambda start, stop, worker: (barrier.wait(), threading.current_thread().name)[1], 3, 1)
    assert len(set(names)) == 3


def test_one_thread_runs_everything_in_the_caller(restore_threads):
    T.set_num_threads(1)
    names = T.run_chunks(lambda start, stop, worker: threading.current_thread().name, 10, 2)
    assert set(names) == {threading.current_thread().name}


def test_a_nested_run_runs_inline_without_deadlock(restore_threads):
    T.set_num_threads(2)

    def outer(start, stop, worker):
        return sum(T.run_chunks(lambda a, b, w: b - a, 6, 2))

    assert T.run_chunks(outer, 4, 1) == [6, 6, 6, 6]


def test_an_error_in_a_chunk_reaches_the_caller(restore_threads):
    T.set_num_threads(2)

    def fn(start, stop, worker):
        if start == 6:
            raise KeyError("chunk 6")
        return start

    with pytest.raises(KeyError, match="chunk 6"):
        T.run_chunks(fn, 10, 2)
    assert T.run_chunks(lambda a, b, w: a, 4, 2) == [0, 2]  # the pool still works afterwards


def test_run_chunks_refuses_a_chunk_below_one():
    with pytest.raises(ValueError, match=r"run_chunks: chunk must be >= 1, got 0"):
        T.run_chunks(lambda a, b, w: None, 4, 0)


def test_blas_runs_one_thread_inside_the_block_and_is_restored():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]

    before = blas_threads()
    with T.single_threaded_blas():
        with T.single_threaded_blas():  # re-entrant
            assert set(blas_threads()) <= {1}
        assert set(blas_threads()) <= {1}
    assert blas_threads() == before


def test_blas_is_held_at_one_thread_from_any_thread_until_the_last_block_ends():
    # OpenBLAS ignores its usual setter outside the main thread: a layer run from a user's thread
    # would then round as BLAS on every core does (seen in 0.3.31)
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]

    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        if not blas_threads() or set(blas_threads()) != {2}:
            pytest.skip("numpy's BLAS cannot run on 2 threads here")
        seen, inside, release = {}, threading.Event(), threading.Event()

        def other():
            with T.single_threaded_blas():
                seen["inside the other thread's block"] = set(blas_threads())
                inside.set()
                release.wait()

        thread = threading.Thread(target=other)
        thread.start()
        inside.wait()
        with T.single_threaded_blas():
            pass  # the main thread's block ends while the other's is still open
        seen["after the main thread's block"] = set(blas_threads())
        release.set()
        thread.join()
        assert seen == {"inside the other thread's block": {1}, "after the main thread's block": {1}}
        assert set(blas_threads()) == {2}


def test_scratch_reuses_a_threads_memory_and_keeps_threads_apart():
    s = T.Scratch()
    a = s.get("x", (4, 5), np.float32)
    assert a.shape == (4, 5) and a.dtype == np.float32 and a.flags.c_contiguous
    assert np.shares_memory(a, s.get("x", (2, 10), np.float32))  # same size: same memory
    assert np.shares_memory(a, s.get("x", (3,), np.float32))  # smaller: a view of it
    other = []
    thread = threading.Thread(target=lambda: other.append(s.get("x", (4, 5), np.float32)))
    thread.start()
    thread.join()
    assert not np.shares_memory(a, other[0])  # another thread
    assert not np.shares_memory(a, s.get("y", (4, 5), np.float32))  # another name
    assert not np.shares_memory(a, copy.deepcopy(s).get("x", (4, 5), np.float32))  # a copy's own
    bigger = s.get("x", (100,), np.float32)  # grows
    assert bigger.size == 100 and not np.shares_memory(a, bigger)
    assert s.get("x", (10,), np.float64).dtype == np.float64
    s.clear()
    assert not np.shares_memory(bigger, s.get("x", (100,), np.float32))


def test_the_callers_errstate_holds_in_every_worker(restore_threads):
    T.set_num_threads(2)
    both_running = threading.Barrier(2, timeout=10)  # two chunks: each worker must take one

    def setting(start, stop, worker):
        both_running.wait()
        return np.geterr()["invalid"], worker

    with np.errstate(invalid="raise"):
        results = T.run_chunks(setting, 2, 1)
    assert sorted(results) == [("raise", 0), ("raise", 1)]
    x = np.zeros(2, np.float32)
    with np.errstate(invalid="raise"), pytest.raises(FloatingPointError):
        T.run_chunks(lambda start, stop, worker: both_running.wait() and x[start:stop] / x[start:stop], 2, 1)
