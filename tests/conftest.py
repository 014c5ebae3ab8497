"""Shared test setup: a seeded random generator, PyTorch where installed, and reproducible Hypothesis runs."""

import numpy as np
import pytest
from hypothesis import settings

# Derandomized, so every run (locally and in CI) tries the same examples and a failure seen once
# is seen again. No deadline: timings on a shared CI machine vary too much to fail a test on.
# Tests that set their own max_examples keep it; the rest of their settings come from here.
settings.register_profile("minicnn", derandomize=True, deadline=None)
settings.load_profile("minicnn")


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded numpy Generator per test."""
    return np.random.default_rng(12345)


@pytest.fixture
def torch():
    """PyTorch, the oracle; a test that asks for it skips where it is not installed."""
    return pytest.importorskip("torch")


@pytest.fixture
def threads():
    """``set_num_threads``, with the thread count a test changes restored afterwards."""
    from minicnn import get_num_threads, set_num_threads

    before = get_num_threads()
    yield set_num_threads
    set_num_threads(before)


@pytest.fixture
def chunk_calls(monkeypatch):
    """Every (total, chunk) the kernels hand to run_chunks, in order (directly or through over_samples)."""
    from minicnn.kernels import chunked, conv, conv_depthwise, pooling, threads

    calls = []
    real = threads.run_chunks

    def spy(fn, total, chunk, **kwargs):
        calls.append((total, chunk))
        return real(fn, total, chunk, **kwargs)

    for module in (threads, chunked, conv, conv_depthwise, pooling):  # the modules that call run_chunks by name
        monkeypatch.setattr(module, "run_chunks", spy)
    return calls
