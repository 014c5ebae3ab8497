"""The demo network, in one place so training, prediction and the benchmark agree on it."""

from __future__ import annotations

import numpy as np

from minicnn import Conv2DVolume, Dense, Flatten, MaxPool2D, ReLU, Sequential


def build_demo_model(n_classes: int = 6, rng: np.random.Generator | None = None,
                     widths: tuple[int, int] = (16, 32)) -> Sequential:
    """conv3x3-relu-pool, conv3x3-relu-pool, dense: a small CNN for 3x32x32 images.

    Shape
    -----
    (N, 3, 32, 32) -> (N, n_classes) logits

    The first conv's filters see all three colour channels at once (convolution over
    volume); "same" padding keeps 32x32, each pool halves it, so Dense sees
    ``widths[1] * 8 * 8`` features.
    """
    c1, c2 = widths
    return Sequential(
        Conv2DVolume(3, c1, 3, padding="same", rng=rng), ReLU(), MaxPool2D(2),
        Conv2DVolume(c1, c2, 3, padding="same", rng=rng), ReLU(), MaxPool2D(2),
        Flatten(),
        Dense(c2 * 8 * 8, n_classes, rng=rng),
    )
