"""Synthetic motion clips: a shape moving left, right, up or down, for the Conv3D demo.

Every clip is a grey ``(1, T, H, W)`` volume: a bright disc or square on a dark background,
moving in a straight line at a constant speed over ``T`` frames. The direction is the class.
Shape, size, speed, both brightnesses and the start position are drawn at random for every
clip, from the same distributions for every class, and Gaussian noise is added to every pixel
of every frame.

A single frame says nothing about the class. Were the shape to stay inside the image, a clip
moving left would have to start on the right, and its first frame would tell the class.
Instead the image wraps around, as a torus: what leaves on one side comes back on the other.
The start position is uniform on that torus, so the position in *every* frame (the first, the
middle, any) is uniform too, whatever the direction, and the other random quantities do not
depend on the class at all: the distribution of any one frame is the same for all four
classes. Only the change from frame to frame tells the class, which is what a 3-D
convolution sees and a 2-D convolution over one frame cannot.

Drawing is vectorised: each frame is rendered for all clips at once from a signed distance
``d`` (negative inside the shape) on the pixel grid, with the offsets to the shape's centre
taken the short way round the torus. Coverage ramps linearly over one pixel across the
boundary (``clip(0.5 - d, 0, 1)``), which anti-aliases it, so sub-pixel motion shows.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int, check_number

MOTION_CLASSES: tuple[str, ...] = ("left", "right", "up", "down")

# Unit steps (dx, dy) of each class, in pixels; rows grow downwards, so "up" is -y.
_DIRECTIONS = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)], dtype=np.float32)
_SPEED = (0.6, 1.4)  # pixels per frame, for 16-pixel frames (scaled with size)
_RADIUS = (1.6, 3.0)  # disc radius or half the side of the square, for 16-pixel frames
_BACKGROUND = (0.0, 0.35)  # grey levels of the background ...
_FOREGROUND = (0.6, 1.0)  # ... and of the shape: always brighter, by at least 0.25


def make_motion(
    n: int, *, seed: int, frames: int = 8, size: int = 16, noise: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n`` clips of a shape moving left, right, up or down, deterministically from ``seed``.

    Classes are balanced (counts differ by at most one) and shuffled; the label of a clip is
    the index of its direction in :data:`MOTION_CLASSES`. The frames wrap around (a shape
    leaving one side comes back on the other), so every single frame has the same
    distribution for all classes: only the motion tells them apart.

    Parameters
    ----------
    n : int
        Number of clips, >= 1.
    seed : int
        Seed for ``np.random.default_rng``; the same seed gives the same bytes.
    frames : int
        Frames per clip, T >= 2.
    size : int
        Height and width of a frame in pixels, >= 8. The shape's size and speed scale with it:
        at 16 pixels the shape is 3 to 6 pixels across and moves 0.6 to 1.4 pixels per frame.
    noise : float
        Standard deviation of the Gaussian noise added to every pixel (>= 0), before the
        values are clipped to [0, 1]. The noise is drawn last, so ``noise=0`` with the same
        seed gives the same clips without their noise.

    Returns
    -------
    X : ndarray of float32, shape (n, 1, frames, size, size)
        Grey clips, (N, C, T, H, W) as :class:`~minicnn.Conv3D` takes them, values in [0, 1].
    y : ndarray of int64, shape (n,)
        Labels in ``range(len(MOTION_CLASSES))``.

    Shape
    -----
    ``() -> X (N, 1, T, H, W), y (N,)`` with ``T = frames`` and ``H = W = size``.

    Examples
    --------
    >>> X, y = make_motion(8, seed=0)
    >>> X.shape, X.dtype, y.shape, y.dtype
    ((8, 1, 8, 16, 16), dtype('float32'), (8,), dtype('int64'))
    >>> np.bincount(y).tolist()  # two clips of each direction
    [2, 2, 2, 2]
    >>> bool(X.min() >= 0 and X.max() <= 1)
    True
    """
    owner = "make_motion"
    n = check_int(n, owner, "n")
    frames = check_int(frames, owner, "frames", minimum=2)
    size = check_int(size, owner, "size", minimum=8)
    noise = check_number(noise, owner, "noise", at_least=0)
    rng = np.random.default_rng(check_int(seed, owner, "seed", minimum=0))  # a seed: the data is its bytes

    y = rng.permutation(np.arange(n, dtype=np.int64) % len(MOTION_CLASSES))
    scale = size / 16
    velocity = _DIRECTIONS[y] * rng.uniform(*_SPEED, n).astype(np.float32)[:, None] * scale  # (n, 2)
    start = rng.uniform(0, size, (n, 2)).astype(np.float32)  # uniform on the torus
    radius = rng.uniform(*_RADIUS, n).astype(np.float32) * scale
    square = rng.random(n) < 0.5
    background = rng.uniform(*_BACKGROUND, n).astype(np.float32)
    foreground = rng.uniform(*_FOREGROUND, n).astype(np.float32)

    pixels = np.arange(size, dtype=np.float32) + 0.5  # pixel centres
    X = np.empty((n, 1, frames, size, size), np.float32)
    for t in range(frames):  # a loop over frames; every clip at once
        centre = start + t * velocity  # (n, 2): x, y
        dx = _around(pixels[None, None, :] - centre[:, 0, None, None], size)  # (n, 1, W)
        dy = _around(pixels[None, :, None] - centre[:, 1, None, None], size)  # (n, H, 1)
        d = np.where(square[:, None, None], np.maximum(np.abs(dx), np.abs(dy)), np.sqrt(dx * dx + dy * dy))
        coverage = np.clip(0.5 - (d - radius[:, None, None]), 0, 1)
        X[:, 0, t] = background[:, None, None] + coverage * (foreground - background)[:, None, None]
    if noise > 0:
        X += np.float32(noise) * rng.standard_normal(X.shape, dtype=np.float32)
    return np.clip(X, 0, 1, out=X), y


def _around(offset: np.ndarray, size: int) -> np.ndarray:
    """Offsets on a torus of circumference ``size``, taken the short way: in [-size/2, size/2)."""
    return (offset + size / 2) % size - size / 2
