"""Synthetic edges and shapes: a small, deterministic image dataset for the demo.

Every image is an RGB ``(3, H, W)`` volume holding one object on a coloured background:
a straight edge crossing the image (vertical, horizontal or diagonal) or a shape
(square, circle, triangle). Position, size, stroke thickness, rotation, both colours,
a soft background gradient and pixel noise are drawn at random for every image, from
the same distributions for every class, so neither colour nor brightness tells the class:
only the geometry does. That is exactly what a linear classifier on raw pixels cannot see
and a small CNN can.

Drawing is vectorised: each class is rendered for all of its images at once, from a
signed distance ``d`` (negative inside) evaluated on a pixel grid with per-image
parameters broadcast along the first axis. A filled region covers ``d < 0``; a stroke
of thickness ``t`` covers ``|d| < t/2``. Coverage ramps linearly over one pixel, which
anti-aliases the boundaries.

Edges. An edge is a straight boundary between two colours crossing the whole image near
its centre, drawn either as a *step* (one side foreground, the other background) or as a
*bar* (a thick line, i.e. the stroke of that boundary). Its orientation fixes the class:
vertical (90 +/- 12 degrees), horizontal (0 +/- 12) and diagonal (45 or 135, +/- 12).
Shapes lie wholly inside the image, filled or outlined at random; squares are rotated by
at most 15 degrees (so they never look like a diamond), triangles are equilateral at any
rotation.

Masks. :func:`make_shapes_with_masks` also returns, for segmentation, which pixels show the
object: its class there (``1 + label``, an index into :data:`SEGMENT_CLASSES`), 0 elsewhere.
The object's pixels are those it covers at least half (coverage >= 0.5, i.e. ``d <= 0``), with
one exception: a step edge's painted half-plane is no object one could point at (the painted
side is the drawing's convention, the left or upper one, and both sides' colours come from one
distribution), so its mask is the edge itself, the strip of pixels within 1.5 px of the
boundary line (3 px wide, about as wide as the thinnest bar).
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_int

CLASSES: tuple[str, ...] = (
    "vertical_edge",
    "horizontal_edge",
    "diagonal_edge",
    "square",
    "circle",
    "triangle",
)

# The classes of a mask's pixels: 0 is the background, 1 + k is the object of class CLASSES[k].
SEGMENT_CLASSES: tuple[str, ...] = ("background", *CLASSES)

# Bump whenever make_shapes' output changes for a given seed: caches of another version are
# regenerated instead of being trusted, and the cache file name changes with it.
VERSION = 1

_MIN_CONTRAST = 0.5  # Euclidean RGB distance between foreground and background colours
_EDGE_TILT = math.radians(12)
_SQUARE_TILT = math.radians(15)
_STEP_LINE = 3.0  # width of a step edge's mask, the strip along its boundary line


# -- drawing ---------------------------------------------------------------------------------
# Every drawer takes (rng, m, yy, xx, s): the generator, the number of images, the pixel-centre
# coordinates relative to the image centre, shaped (1, H, 1) and (1, 1, W), and the scale
# s = image_size / 32 that all lengths (given for 32x32 images) are multiplied by.
# It returns two signed distances, shape (m, H, W): d, whose region d < 0 is painted in the
# foreground colour, and the mask's, whose region <= 0 is labelled as the object (d itself, except
# for a step edge, whose mask is the strip along its boundary).


def _col(v: np.ndarray) -> np.ndarray:
    """Per-image parameters (m,) as (m, 1, 1), to broadcast against the pixel grid."""
    return v.astype(np.float32)[:, None, None]


def _stroke_or_fill(rng: np.random.Generator, d: np.ndarray, thickness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep ``d`` (filled) or turn it into a stroke of the boundary, per image at random;
    also which images (m,) were kept filled."""
    filled = rng.random(d.shape[0]) < 0.5
    return np.where(filled[:, None, None], d, np.abs(d) - _col(thickness) / 2), filled


def _edge(rng, m, yy, xx, s, normal_angle):
    """A straight boundary through the central region: a step or a bar, at random."""
    phi = normal_angle + rng.uniform(-_EDGE_TILT, _EDGE_TILT, m)
    # Near the centre, so a step never cuts off a small corner that could pass for a triangle.
    offset = rng.uniform(-5, 5, m) * s
    d = xx * _col(np.cos(phi)) + yy * _col(np.sin(phi)) - _col(offset)
    drawn, step = _stroke_or_fill(rng, d, rng.uniform(2.5, 6, m) * s)
    # A step's mask is its boundary line, as wide as a thin bar; a bar's is the bar.
    line = np.abs(d) - np.float32(_STEP_LINE * s / 2)
    return drawn, np.where(step[:, None, None], line, drawn)


def _vertical_edge(rng, m, yy, xx, s):
    return _edge(rng, m, yy, xx, s, np.zeros(m))


def _horizontal_edge(rng, m, yy, xx, s):
    return _edge(rng, m, yy, xx, s, np.full(m, np.pi / 2))


def _diagonal_edge(rng, m, yy, xx, s):
    return _edge(rng, m, yy, xx, s, np.where(rng.random(m) < 0.5, np.pi / 4, 3 * np.pi / 4))


def _centres(rng, m, extent_x, extent_y, half):
    """Random centres for shapes whose coverage reaches ``extent`` (m,) from their centre.

    The outermost pixel centres lie half a pixel inside the image edge, so keeping the extent
    half a pixel inside leaves the border pixels untouched.
    """
    room_x = np.maximum(half - 0.5 - extent_x, 0)
    room_y = np.maximum(half - 0.5 - extent_y, 0)
    return rng.uniform(-1, 1, m) * room_x, rng.uniform(-1, 1, m) * room_y


def _polygon(rng, m, yy, xx, s, sides, inradius, rotation):
    """A regular polygon, filled or outlined (with mitred corners, the exact outline of the
    signed distance below: the largest distance past any of the side lines)."""
    thickness = rng.uniform(1.5, 3, m) * s
    half = yy.shape[1] / 2
    # Vertex directions sit half a step from the side normals. An outline and the half-pixel
    # anti-aliasing ramp grow the polygon by t/2 + 1/2 at its sides, hence by that over
    # cos(pi/sides) at its vertices (a full pixel of ramp at a triangle's tip).
    vertex = rotation[:, None] + np.pi / sides + 2 * np.pi * np.arange(sides) / sides
    circumradius = (inradius + thickness / 2 + 0.5) / np.cos(np.pi / sides)
    cx, cy = _centres(
        rng, m, circumradius * np.abs(np.cos(vertex)).max(1), circumradius * np.abs(np.sin(vertex)).max(1), half
    )
    x, y = xx - _col(cx), yy - _col(cy)
    d = None
    for k in range(sides):  # a loop over the polygon's sides; every image at once
        a = rotation + 2 * np.pi * k / sides
        dk = x * _col(np.cos(a)) + y * _col(np.sin(a))
        d = dk if d is None else np.maximum(d, dk)
    drawn, _ = _stroke_or_fill(rng, d - _col(inradius), thickness)
    return drawn, drawn


def _square(rng, m, yy, xx, s):
    return _polygon(rng, m, yy, xx, s, 4, rng.uniform(5, 9.5, m) * s, rng.uniform(-_SQUARE_TILT, _SQUARE_TILT, m))


def _triangle(rng, m, yy, xx, s):
    return _polygon(rng, m, yy, xx, s, 3, rng.uniform(3.5, 5, m) * s, rng.uniform(0, 2 * np.pi, m))


def _circle(rng, m, yy, xx, s):
    thickness = rng.uniform(1.5, 3, m) * s
    radius = rng.uniform(5, 10, m) * s
    extent = radius + thickness / 2 + 0.5
    cx, cy = _centres(rng, m, extent, extent, yy.shape[1] / 2)
    d = np.sqrt((xx - _col(cx)) ** 2 + (yy - _col(cy)) ** 2) - _col(radius)
    drawn, _ = _stroke_or_fill(rng, d, thickness)
    return drawn, drawn


_DRAWERS = (_vertical_edge, _horizontal_edge, _diagonal_edge, _square, _circle, _triangle)


def _colour_pairs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background colours (n, 3), uniform in the RGB cube, at least
    ``_MIN_CONTRAST`` apart. Both come from the same distribution, so a colour says nothing
    about which part of the image it paints, let alone the class."""
    fg, bg = rng.random((n, 3)), rng.random((n, 3))
    bad = np.linalg.norm(fg - bg, axis=1) < _MIN_CONTRAST
    while bad.any():  # rejection rounds, each redrawing every failed pair at once
        k = int(bad.sum())
        fg[bad], bg[bad] = rng.random((k, 3)), rng.random((k, 3))
        bad = np.linalg.norm(fg - bg, axis=1) < _MIN_CONTRAST
    return fg.astype(np.float32), bg.astype(np.float32)


def make_shapes(n: int, *, seed: int, image_size: int = 32, noise: float = 0.06) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n`` images of edges and shapes, deterministically from ``seed``.

    Classes are balanced (counts differ by at most one) and shuffled; the label of an
    image is its index in :data:`CLASSES`. Pixel values are multiples of 1/255, as if
    read from an 8-bit image, so a uint8 copy holds them exactly. For each pixel's class
    as well (segmentation), use :func:`make_shapes_with_masks`.

    Parameters
    ----------
    n : int
        Number of images, >= 1.
    seed : int
        Seed for ``np.random.default_rng``; the same seed gives the same bytes.
    image_size : int
        Height and width in pixels, >= 16. Sizes and thicknesses scale with it.
    noise : float
        Standard deviation of the Gaussian pixel noise, added after drawing (>= 0).

    Returns
    -------
    X : ndarray of float32, shape (n, 3, image_size, image_size)
        RGB images, NCHW, values in [0, 1].
    y : ndarray of int64, shape (n,)
        Labels in ``range(len(CLASSES))``.

    Shape
    -----
    ``() -> X (N, 3, H, W), y (N,)`` with ``H = W = image_size``.

    Examples
    --------
    >>> X, y = make_shapes(6, seed=0)
    >>> X.shape, X.dtype, y.shape, y.dtype
    ((6, 3, 32, 32), dtype('float32'), (6,), dtype('int64'))
    >>> sorted(y.tolist()) == list(range(len(CLASSES)))
    True
    >>> bool(X.min() >= 0 and X.max() <= 1)
    True
    """
    X, y, _, _ = _generate("make_shapes", n, seed, image_size, noise)
    return X, y


def make_shapes_with_masks(
    n: int, *, seed: int, image_size: int = 32, noise: float = 0.06
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The images and labels of :func:`make_shapes`, and the class of every pixel, for segmentation.

    ``X`` and ``y`` are exactly those of ``make_shapes`` with the same arguments, byte for byte
    (the masks draw no random numbers). A mask holds 0 for the background and ``1 + y`` on the
    object's pixels, so its values index :data:`SEGMENT_CLASSES`: 7 classes with the background.
    The object's pixels are those it covers at least half (the anti-aliased coverage is >= 0.5):
    a filled shape's inside, an outline's stroke, a bar. A *step* edge (one side of the line
    painted) is the exception: nothing in the picture marks either half as the object (the
    painted side is the drawing's convention and both colours come from one distribution), so
    its mask is the edge itself, the pixels within 1.5 px of the boundary line (a strip 3 px
    wide, scaled with ``image_size``, about as wide as the thinnest bar).

    Parameters
    ----------
    n, seed, image_size, noise
        As for :func:`make_shapes`.

    Returns
    -------
    X : ndarray of float32, shape (n, 3, image_size, image_size)
    y : ndarray of int64, shape (n,)
        As from :func:`make_shapes`.
    masks : ndarray of int64, shape (n, image_size, image_size)
        Per-pixel classes in ``range(len(SEGMENT_CLASSES))``: 0 or ``1 + y[i]`` in image ``i``.

    Shape
    -----
    ``() -> X (N, 3, H, W), y (N,), masks (N, H, W)`` with ``H = W = image_size``.

    Examples
    --------
    >>> X, y, masks = make_shapes_with_masks(6, seed=0)
    >>> masks.shape, masks.dtype
    ((6, 32, 32), dtype('int64'))
    >>> SEGMENT_CLASSES[masks[0].max()] == CLASSES[y[0]]  # each image holds its own object
    True
    >>> bool(np.array_equal(X, make_shapes(6, seed=0)[0]))
    True
    """
    X, y, _, covered = _generate("make_shapes_with_masks", n, seed, image_size, noise)
    return X, y, np.where(covered, y[:, None, None] + 1, 0)


def _generate(owner: str, n, seed, image_size, noise) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images X (n, 3, S, S), labels y (n,), the coverage alpha (n, 1, S, S) in [0, 1] and the
    mask region (n, S, S), a boolean array; the random numbers are drawn in one fixed order
    (the masks take none), which is what keeps a seed's bytes."""
    n = check_int(n, owner, "n")
    size = check_int(image_size, owner, "image_size", minimum=16)
    if not (isinstance(noise, (int, float, np.floating, np.integer)) and 0 <= noise < math.inf):
        raise ValueError(f"{owner}: noise must be a finite number >= 0, got {noise!r}")
    rng = np.random.default_rng(check_int(seed, owner, "seed", minimum=0))  # a seed: the data is its bytes

    y = rng.permutation(np.arange(n, dtype=np.int64) % len(CLASSES))
    coords = (np.arange(size, dtype=np.float32) + 0.5) - size / 2
    yy, xx = coords[None, :, None], coords[None, None, :]
    s = size / 32

    # Coverage in [0, 1]: 1 inside, 0 outside, a one-pixel linear ramp across the boundary.
    alpha = np.empty((n, 1, size, size), np.float32)
    covered = np.empty((n, size, size), bool)
    for label, draw in enumerate(_DRAWERS):
        idx = np.flatnonzero(y == label)
        if idx.size:
            d, region = draw(rng, idx.size, yy, xx, s)
            alpha[idx, 0] = np.clip(0.5 - d, 0, 1)
            # the same arithmetic as alpha, so that where region is d this is exactly alpha >= 0.5
            covered[idx] = 0.5 - region >= 0.5

    fg, bg = _colour_pairs(rng, n)
    # Soft background gradient: a linear ramp in a random direction towards a random colour shift.
    theta = rng.uniform(0, 2 * np.pi, n)
    ramp = (xx * _col(np.cos(theta)) + yy * _col(np.sin(theta))) / size  # within about +/- 0.7
    shift = rng.uniform(-0.2, 0.2, (n, 3)).astype(np.float32)
    X = bg[:, :, None, None] + ramp[:, None] * shift[:, :, None, None]
    X += alpha * (fg[:, :, None, None] - X)
    if noise > 0:
        X += np.float32(noise) * rng.standard_normal(X.shape, dtype=np.float32)
    X = _quantise(np.clip(X, 0, 1, out=X))
    return _dequantise(X), y, alpha, covered


def _quantise(X: np.ndarray) -> np.ndarray:
    return np.rint(X * np.float32(255)).astype(np.uint8)


def _dequantise(q: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) / np.float32(255)
