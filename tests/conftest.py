"""Shared fixtures: a seeded random generator, so every test is reproducible."""

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded numpy Generator per test."""
    return np.random.default_rng(12345)
