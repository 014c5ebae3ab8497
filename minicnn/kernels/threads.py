"""Every core for the layers: a small pool of Python threads that share out a batch in chunks.

numpy's element-wise work (copies, sums, comparisons) runs on one core, and only its
matrix products (BLAS) use more. But numpy releases Python's global lock inside each
operation on large arrays, so Python threads that each run the same steps on their own
slice of the batch do run at the same time, one per core.

Three rules keep this simple and the results reproducible:

- **Chunks depend on the shape, never on the thread count.** A layer splits its batch into
  chunks of a fixed number of samples that it derives from the input's shape alone; the
  threads take chunks in turn until none is left. Each chunk's arithmetic is the same
  whichever thread runs it, and whatever a layer sums over chunks (a weight gradient) it
  adds up afterwards in chunk order, so the result is bit for bit the same for 1 thread
  or 16.
- **BLAS runs one thread per worker** while a layer computes (:func:`single_threaded_blas`,
  with ``threadpoolctl``): the workers already fill the cores, a BLAS thread pool behind
  them would only fight them for it, and a matrix product split over a varying number of
  BLAS threads is not guaranteed to round the same way.
- **Scratch buffers belong to a thread** (:class:`Scratch`): a worker reuses its own arrays
  from chunk to chunk and from call to call, so the memory a layer needs grows by one
  chunk's buffers per thread, not by the batch.

The calling thread is worker 0 and takes chunks too; the pool holds ``n - 1`` more threads.

Examples
--------
>>> import numpy as np
>>> x = np.arange(10.0)
>>> chunks = run_chunks(lambda start, stop, worker: float(x[start:stop].sum()), len(x), 3)
>>> chunks  # [0, 3), [3, 6), [6, 9), [9, 10): one result per chunk, in chunk order
[3.0, 12.0, 21.0, 9.0]
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

_lock = threading.Lock()
_num_threads: int | None = None  # None: every core this process may run on
_pool: ThreadPoolExecutor | None = None
_pool_size = 0  # threads in _pool
_in_worker = threading.local()  # set in the pool's threads: a nested run_chunks runs inline
_blas = None  # threadpoolctl's handle on the BLAS libraries, found on first use
_blas_depth = 0  # nesting depth of single_threaded_blas, over all threads
_blas_saved: list = []  # (library, its thread count) to restore when that depth returns to 0


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def last_level_cache_bytes() -> int | None:
    """The largest CPU cache the OS reports (Linux's sysfs), in bytes; None where it says nothing.

    Examples
    --------
    >>> size = last_level_cache_bytes()
    >>> size is None or size > 0
    True
    """
    sizes = []
    for entry in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            text = entry.read_text().strip()
        except OSError:
            continue
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        if text[:-1].isdigit() and text[-1] in units:
            sizes.append(int(text[:-1]) * units[text[-1]])
    return max(sizes, default=None)


def get_num_threads() -> int:
    """How many threads the layers run on: the last :func:`set_num_threads`, else every core.

    Examples
    --------
    >>> get_num_threads() >= 1
    True
    """
    return available_cores() if _num_threads is None else _num_threads


def set_num_threads(n: int | None) -> None:
    """Set how many threads the convolution and pooling layers use (None: every core).

    Results do not depend on it: the layers split a batch the same way for any count.

    Parameters
    ----------
    n : int >= 1, or None for the default (every core this process may use)

    Raises
    ------
    TypeError, ValueError
        For anything but None or a positive int; the setting is then left as it was.

    Examples
    --------
    >>> before = get_num_threads()
    >>> set_num_threads(1); get_num_threads()
    1
    >>> set_num_threads(before)
    """
    global _num_threads
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(
                f"set_num_threads: n must be an int >= 1 or None, got {n!r} "
                f"({type(n).__name__}); e.g. set_num_threads(4)"
            )
        if n < 1:
            raise ValueError(
                f"set_num_threads: n must be >= 1, got {n}; use 1 for a single thread, None for every core"
            )
        n = int(n)
    with _lock:
        _num_threads = n


def _get_pool(workers: int) -> ThreadPoolExecutor:
    """The pool of helper threads, rebuilt when the thread count changed."""
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != workers:
            if _pool is not None:
                _pool.shutdown(wait=False)  # its idle threads exit; chunks already running finish
            _pool = ThreadPoolExecutor(
                max_workers=workers,
                thread_name_prefix="minicnn",
                initializer=setattr,
                initargs=(_in_worker, "active", True),
            )
            _pool_size = workers
        return _pool


class _BlasThreads:
    """Get and set one BLAS library's thread count, from any thread.

    OpenBLAS (0.3.31, seen here) ignores ``openblas_set_num_threads`` (what threadpoolctl calls)
    when a thread other than the main one calls it, so a layer run from a user's thread would
    keep BLAS at every core and round differently. Its ``openblas_set_num_threads_local`` sets
    the same process-wide count from any thread: it is used where the library has it.
    """

    def __init__(self, controller) -> None:
        self.get = controller.get_num_threads
        self._set = controller.set_num_threads
        self._set_any = None
        if controller.internal_api == "openblas":
            import ctypes

            try:
                setter = ctypes.CDLL(controller.filepath).openblas_set_num_threads_local
            except (OSError, AttributeError):
                setter = None
            if setter is not None:
                setter.restype, setter.argtypes = ctypes.c_int, [ctypes.c_int]
                self._set_any = setter

    def set(self, n: int) -> None:
        if self._set_any is not None:
            self._set_any(n)
        else:
            self._set(n)


def _blas_libraries() -> tuple:
    """The BLAS libraries numpy has loaded (none without threadpoolctl)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - a runtime dependency, but degrade gracefully
        return ()
    return tuple(_BlasThreads(lib) for lib in ThreadpoolController().select(user_api="blas").lib_controllers)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Hold numpy's BLAS at one thread inside the block (re-entrant, from any thread; restored
    when the last open block ends).

    Needs ``threadpoolctl``; without it the block runs with BLAS as it is. The libraries are
    found once and then set directly (a few microseconds, where a fresh ``threadpool_limits``
    costs tens: small layers enter this block on every call).
    """
    global _blas, _blas_depth
    with _lock:
        if _blas is None:
            _blas = _blas_libraries()
        _blas_depth += 1
        if _blas_depth == 1:
            for lib in _blas:
                threads = lib.get()
                if threads != 1:
                    _blas_saved.append((lib, threads))
                    lib.set(1)
    try:
        yield
    finally:
        with _lock:
            _blas_depth -= 1
            # Restored when the last block ends, whichever thread opened the first: another
            # thread's block may still be running products that must round as on one thread.
            if _blas_depth == 0:
                for lib, threads in _blas_saved:
                    lib.set(threads)
                _blas_saved.clear()


def run_chunks(fn: Callable[[int, int, int], object], total: int, chunk: int, *, blas: bool = True) -> list:
    """Call ``fn(start, stop, worker)`` for every chunk ``[start, stop)`` of ``range(total)``.

    The chunks are ``[0, chunk), [chunk, 2*chunk), ...``, shared out to
    ``min(get_num_threads(), number of chunks)`` workers, numbered from 0 (the calling
    thread). ``fn`` may use buffers of its ``worker`` freely: no two chunks run on one worker
    at the same time. BLAS is held at one thread throughout (``blas=False``: ``fn`` calls no
    matrix product, so BLAS is left alone, which saves the switch). A single chunk runs
    directly on the calling thread: the layers size their chunks so that small work comes in
    one piece, which a hand-off to a thread would cost more than it saves. (BLAS is held at one
    thread there too: OpenBLAS would share a small product out to threads of its own, which
    costs more than the product on a busy machine.)

    Returns
    -------
    list
        ``fn``'s return values in chunk order (not in the order they finished).

    Raises
    ------
    Whatever ``fn`` raised, after every chunk already started has finished.
    """
    if chunk < 1:
        raise ValueError(f"run_chunks: chunk must be >= 1, got {chunk}")
    if 0 < total <= chunk:  # one chunk: no thread to hand it to
        with single_threaded_blas() if blas else nullcontext():
            return [fn(0, total, 0)]
    bounds = [(start, min(start + chunk, total)) for start in range(0, total, chunk)]
    results: list = [None] * len(bounds)
    workers = 1 if getattr(_in_worker, "active", False) else min(get_num_threads(), len(bounds))
    order = itertools.count()  # next() on a count is atomic under the GIL: each chunk goes out once
    failed = []  # a chunk raised: the other workers take no new chunk

    errstate = np.geterr()  # numpy keeps it per thread: the caller's must hold in the workers too

    def work(worker: int) -> None:
        with np.errstate(**errstate):
            take_chunks(worker)

    def take_chunks(worker: int) -> None:
        while not failed:
            index = next(order)
            if index >= len(bounds):
                return
            try:
                results[index] = fn(*bounds[index], worker)
            except BaseException:
                failed.append(index)
                raise

    with single_threaded_blas() if blas else nullcontext():
        if workers == 1:
            work(0)
            return results
        futures = [_get_pool(get_num_threads() - 1).submit(work, worker) for worker in range(1, workers)]
        try:
            work(0)
        finally:
            for future in futures:
                # A helper that has not started yet finds nothing left: cancel it rather than wait.
                if not future.cancel():
                    future.result()
    return results


class Scratch:
    """Reusable arrays, one set per thread: ``scratch.get(name, shape, dtype)``.

    The arrays belong to the thread that asks: the workers of one call never share a
    buffer, nor do several threads that run the same layer at once (each is worker 0 of
    its own call), and a thread's arrays go when the thread ends.
    Each (thread, name) owns one flat array, grown when a request needs more; a request
    gets a C-contiguous view of its start. So one name can serve several phases with
    different shapes, and memory is the largest use, not the sum. The content is whatever
    the last user left: callers overwrite it.

    Examples
    --------
    >>> s = Scratch()
    >>> a = s.get("cols", (2, 3), np.float32)
    >>> b = s.get("cols", (3, 2), np.float32)    # the same memory, another shape
    >>> other = []
    >>> t = threading.Thread(target=lambda: other.append(s.get("cols", (2, 3), np.float32)))
    >>> t.start(); t.join()
    >>> np.shares_memory(a, b), np.shares_memory(a, other[0])   # another thread, its own array
    (True, False)
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def __deepcopy__(self, memo) -> Scratch:
        return Scratch()  # a copy of a layer starts with empty buffers of its own

    def get(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """This thread's array called ``name``, viewed as ``shape`` and ``dtype`` (uninitialised)."""
        arrays = self._local.__dict__.setdefault("arrays", {})
        size = math.prod(shape)
        arr = arrays.get(name)
        if arr is None or arr.dtype != dtype or arr.size < size:
            arr = np.empty(size, dtype=dtype)
            arrays[name] = arr
        return arr[:size].reshape(shape)

    def clear(self) -> None:
        """Drop this thread's arrays (its next requests allocate afresh)."""
        self._local.__dict__.pop("arrays", None)


# Bytes of float32 per chunk for element-wise and per-sample work: large enough that each numpy
# call of a chunk runs long (two Python threads hand numpy's lock back and forth between calls,
# and on a virtual machine each hand-off wakes a sleeping core: with calls of ~6 us two threads
# ran no faster than one, from ~40 us they ran 1.8x), small enough to stay near a core's cache.
# Measured on two cores against 2**19: BatchNorm 0.67-0.82x the time, average pooling 0.81-0.93x,
# ReLU the same.
SAMPLE_CHUNK_BYTES = 2**21


def samples_per_chunk(shape: tuple, chunk_bytes: int = SAMPLE_CHUNK_BYTES) -> int:
    """Samples per chunk for an input of ``shape``, from the shape alone (never the thread count):
    about ``chunk_bytes`` of float32 per chunk, and at least two chunks.

    Examples
    --------
    >>> samples_per_chunk((64, 32, 32, 32))  # 128 KiB per sample
    16
    >>> samples_per_chunk((2, 1_000_000))
    1
    """
    sample = 4 * math.prod(shape[1:])
    return max(1, min(-(-shape[0] // 2), chunk_bytes // max(sample, 1)))


def in_one_piece(shape: tuple, min_size: int) -> bool:
    """Whether :func:`over_samples` runs an array of ``shape`` in one piece on the calling thread:
    fewer than ``min_size`` elements, or fewer than two samples."""
    return len(shape) == 0 or shape[0] < 2 or math.prod(shape) < min_size


def over_samples(
    work: Callable[[object], object], shape: tuple, min_size: int, chunk_bytes: int = SAMPLE_CHUNK_BYTES
) -> None:
    """Call ``work(rows)`` for index expressions ``rows`` that together cover an array of ``shape``.

    Inputs of ``min_size`` elements or more (and two samples or more) give
    ``rows = slice(start, stop)`` over the first axis, one per chunk of
    :func:`samples_per_chunk` (of ``chunk_bytes``), on the worker threads; others give one call with
    ``rows = ...`` (the whole array, a 0-d one too) on the calling thread. ``work`` writes
    its results into arrays made beforehand. For work that is the same arithmetic per
    sample, the result is the same bits either way.
    """
    if in_one_piece(shape, min_size):
        work(...)
        return
    chunk = samples_per_chunk(shape, chunk_bytes)
    run_chunks(lambda start, stop, worker: work(slice(start, stop)), shape[0], chunk, blas=False)
