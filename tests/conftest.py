"""Shared test setup: a seeded random generator, and reproducible Hypothesis runs."""

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
