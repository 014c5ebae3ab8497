"""Data augmentation: random changes to each training batch that keep what the image shows.

Small datasets overfit: a network that sees the same 300 images every epoch learns them by
heart. Showing each image slightly moved, cropped or mirrored every time it comes round makes
the data look larger, and teaches that an object is the same object a few pixels away.

Every transform takes a float batch ``x`` (N, C, H, W) and a numpy ``Generator`` and returns
a new batch; the random choices are drawn for all N images at once and applied in one indexing
or ``where`` operation, with no Python loop over the images. The randomness comes only from the
``rng`` passed in: ``fit(..., augment=..., seed=s)`` passes a generator made from ``s`` and the
epoch, so the same seed gives the same run bit for bit (and a resumed run the same epochs),
and it is a stream of its own, so the order of the batches is the one without augmentation.

>>> import numpy as np
>>> from minicnn.augment import Compose, RandomCrop, RandomFlip
>>> augment = Compose(RandomCrop(32, padding=4), RandomFlip("horizontal"))
>>> x = np.random.default_rng(0).random((8, 3, 32, 32), dtype=np.float32)
>>> augment(x, np.random.default_rng(1)).shape
(8, 3, 32, 32)

``fit`` applies its ``augment`` to training batches only, never to validation data, ``evaluate``
or ``predict`` (as torchvision's train-time transforms and Keras' random layers, which are
inactive at inference). So :class:`Normalize`, which is not random, must reach the other
data too: ``X_test = Normalize(mean, std)(X_test)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._validation import as_float, check_image_shape, check_number, check_pair, check_real, check_rng

__all__ = ["Compose", "Normalize", "RandomCrop", "RandomFlip", "RandomShift", "Transform"]


class Transform:
    """The base of the augmentations: ``transform(x, rng=None) -> batch``.

    ``__call__`` checks the batch (4-D; a uint8 batch becomes float32 in [0, 1], as everywhere
    in minicnn) and the generator, then calls :meth:`apply`, which a subclass writes. Any
    callable ``f(x, rng)`` returning a batch of the same shape also works as ``fit``'s
    ``augment``; subclassing adds these checks.

    Shape
    -----
    (N, C, H, W) -> (N, C, H', W') (H' = H and W' = W except for a :class:`RandomCrop` to
    another size)
    """

    def __call__(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        owner = type(self).__name__
        x = as_float(x, owner)
        check_image_shape(x.shape, owner)
        return self.apply(x, check_rng(rng, owner))

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The transform of a checked float batch ``x`` (N, C, H, W); a new array."""
        raise NotImplementedError(f"{type(self).__name__} must implement apply(x, rng)")


def _windows(
    x: np.ndarray, out_h: int, out_w: int, pad: tuple[int, int], fill: float, rng: np.random.Generator
) -> np.ndarray:
    """For each image, the ``out_h x out_w`` window at its own random place in ``x`` padded by
    ``pad`` (rows, columns) of ``fill``: one gather for the whole batch.

    The places are drawn rows first, then columns, each uniform over every window that fits.
    """
    n, _, h, w = x.shape
    (py, px) = pad
    if py or px:
        x = np.pad(x, ((0, 0), (0, 0), (py, py), (px, px)), constant_values=fill)
    top = rng.integers(0, h + 2 * py - out_h + 1, size=n)
    left = rng.integers(0, w + 2 * px - out_w + 1, size=n)
    # windows[i, c, a, b] is the out_h x out_w window at (a, b) of image i: a view, no copy
    windows = sliding_window_view(x, (out_h, out_w), axis=(2, 3))
    return windows[np.arange(n), :, top, left]  # (N, C, out_h, out_w): only the chosen windows are copied


class RandomCrop(Transform):
    """A random ``size`` window of each image, after padding it by ``padding`` pixels of ``fill``.

    ``RandomCrop(32, padding=4)`` on 32x32 images is the usual CIFAR-10 augmentation: each
    image moves by up to 4 pixels in each direction, the uncovered border filled with ``fill``
    (0, black, as torchvision's default). As torchvision's ``RandomCrop(size, padding)``.

    Parameters
    ----------
    size : int or (h, w)
        The output's height and width. ``fit`` needs batches to keep their shape, so there it
        is the images' own size, with ``padding``.
    padding : int or (rows, columns)
        Pixels added on each side before cropping.
    fill : float
        The value of the added pixels (in the batch's units: [0, 1] for images read from uint8).

    Shape
    -----
    (N, C, H, W) -> (N, C, h, w); needs h <= H + 2 * rows and w <= W + 2 * columns.
    """

    def __init__(self, size: int | tuple[int, int], padding: int | tuple[int, int] = 0, fill: float = 0.0) -> None:
        self.size = check_pair(size, "RandomCrop", "size")
        self.padding = check_pair(padding, "RandomCrop", "padding", minimum=0)
        self.fill = check_real(fill, "RandomCrop", "fill")

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        (h, w), (py, px) = self.size, self.padding
        if h > x.shape[2] + 2 * py or w > x.shape[3] + 2 * px:
            raise ValueError(
                f"{self!r} got input of shape {x.shape}: a {h}x{w} crop does not fit in "
                f"{x.shape[2] + 2 * py}x{x.shape[3] + 2 * px} (the images with their padding); "
                "use a smaller size or more padding"
            )
        return _windows(x, h, w, self.padding, self.fill, rng)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding}, fill={self.fill:g})"


class RandomShift(Transform):
    """Move each image by a random whole number of pixels, up to ``max_shift`` each way, filling
    what is uncovered with ``fill``; the size stays.

    Each image gets its own shift, uniform in ``-max_shift..max_shift`` rows and columns
    (as Keras' ``RandomTranslation`` with constant fill, in pixels rather than fractions).
    The result is a :class:`RandomCrop` of the images' own size with ``padding=max_shift``.

    Parameters
    ----------
    max_shift : int or (rows, columns)
        The largest shift; 2 or 3 pixels suit 28x28 digits.
    fill : float
        The value of the uncovered pixels.

    Shape
    -----
    (N, C, H, W) -> (N, C, H, W)
    """

    def __init__(self, max_shift: int | tuple[int, int], fill: float = 0.0) -> None:
        self.max_shift = check_pair(max_shift, "RandomShift", "max_shift", minimum=0)
        self.fill = check_real(fill, "RandomShift", "fill")

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _windows(x, x.shape[2], x.shape[3], self.max_shift, self.fill, rng)

    def __repr__(self) -> str:
        return f"RandomShift(max_shift={self.max_shift}, fill={self.fill:g})"


_FLIP_AXES = {"horizontal": (3,), "vertical": (2,), "horizontal_and_vertical": (3, 2)}


class RandomFlip(Transform):
    """Mirror each image with probability ``p``: left-right, top-bottom, or each independently.

    Flip only what the classes allow: a horizontal flip suits photographs (CIFAR-10) but would
    turn some digits and letters into others; vertical flips suit few datasets.
    The modes are Keras' ``RandomFlip`` names.

    Parameters
    ----------
    mode : {"horizontal", "vertical", "horizontal_and_vertical"}
        Which mirror; with both, each is decided on its own.
    p : float in [0, 1]
        The probability that an image is mirrored (0.5, as torchvision).

    Shape
    -----
    (N, C, H, W) -> (N, C, H, W)
    """

    def __init__(self, mode: str = "horizontal", p: float = 0.5) -> None:
        if not isinstance(mode, str) or mode not in _FLIP_AXES:
            raise ValueError(f"RandomFlip: mode must be one of {', '.join(map(repr, _FLIP_AXES))}, got {mode!r}")
        self.mode = mode
        self.p = check_number(p, "RandomFlip", "p", at_least=0)
        if self.p > 1:
            raise ValueError(f"RandomFlip: p must be a probability in [0, 1], got p={p}")

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = x
        for axis in _FLIP_AXES[self.mode]:
            flip = rng.random(len(x)) < self.p
            out = np.where(flip[:, None, None, None], np.flip(out, axis=axis), out)
        return out

    def __repr__(self) -> str:
        return f"RandomFlip({self.mode!r}, p={self.p:g})"


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` for each channel ``c``: not random.

    As torchvision's ``Normalize``. Inside ``fit(..., augment=...)`` it reaches the training
    batches only, so give the validation and test data the same: ``Normalize(mean, std)(X)``
    (a uint8 X becomes [0, 1] first, as in ``fit``). With a BatchNorm2D after the first
    convolution, it changes little.

    Parameters
    ----------
    mean, std : float or sequence of float
        One number for every channel, or one per channel; std > 0. In the batch's units:
        for images read from uint8, in [0, 1] (CIFAR-10's per-channel mean is about
        (0.49, 0.48, 0.45)).

    Shape
    -----
    (N, C, H, W) -> (N, C, H, W), in the input's float dtype.

    Raises
    ------
    ValueError
        When called on a batch with another number of channels, or of a dtype in which
        ``mean`` or ``std`` is not a finite number, or ``std`` rounds to 0 (``std=1e-50`` in
        float32).
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        self.mean = self._per_channel(mean, "mean")
        self.std = self._per_channel(std, "std")
        if (self.std <= 0).any():
            raise ValueError(f"Normalize: std must be > 0 for every channel, got std={self.std.tolist()}")
        if len(self.mean) != len(self.std) and min(len(self.mean), len(self.std)) > 1:
            raise ValueError(
                f"Normalize: mean has {len(self.mean)} channels but std has {len(self.std)}; "
                "give one number, or one per channel, for both"
            )

    @staticmethod
    def _per_channel(value, arg: str) -> np.ndarray:
        try:
            values = None if isinstance(value, str) else np.atleast_1d(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):  # ["red"], a ragged list
            values = None
        if values is None or values.ndim != 1 or not len(values) or not np.isfinite(values).all():
            raise ValueError(f"Normalize: {arg} must be a finite number or one per channel, got {value!r}")
        return values

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        channels = max(len(self.mean), len(self.std))
        if channels > 1 and x.shape[1] != channels:
            raise ValueError(
                f"{self!r} got input of shape {x.shape}: {x.shape[1]} channel"
                f"{'s' if x.shape[1] != 1 else ''}, expected {channels}"
            )
        with np.errstate(over="ignore", under="ignore"):  # caught just below, with the fix
            mean, std = self.mean.astype(x.dtype), self.std.astype(x.dtype)
        # A std below the dtype's smallest number becomes 0 and one above its largest inf (1e-50
        # and 1e39 in float32): dividing would fill the batch with inf or 0 without a word.
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError(
                f"{self!r} got a {x.dtype} batch, in which mean={mean.tolist()} and std={std.tolist()}: "
                f"they must be finite and std > 0 in {x.dtype} too (its range is "
                f"{np.finfo(x.dtype).tiny:.3g} to {np.finfo(x.dtype).max:.3g}); rescale the data and "
                "the statistics, or pass a float64 batch"
            )
        return (x - mean[:, None, None]) / std[:, None, None]

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class Compose(Transform):
    """Apply transforms one after another, all drawing from the same generator.

    As torchvision's ``Compose``: ``Compose(RandomCrop(32, 4), RandomFlip())``, or with a list,
    ``Compose([RandomCrop(32, 4), RandomFlip()])``. Each may be a :class:`Transform` or any
    callable ``f(x, rng)`` that returns a batch.

    Shape
    -----
    (N, C, H, W) -> what the last transform returns
    """

    def __init__(self, *transforms) -> None:
        if len(transforms) == 1 and isinstance(transforms[0], (list, tuple)):
            transforms = tuple(transforms[0])
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(
                    f"Compose: transform {i} is {t!r} ({type(t).__name__}); expected a transform such as "
                    "RandomFlip() or a callable f(x, rng)"
                )
        self.transforms = tuple(transforms)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self.transforms:  # the identity, but a new batch as every transform gives
            return x.copy()
        for t in self.transforms:
            x = t(x, rng)
        return x

    def __repr__(self) -> str:
        return f"Compose({', '.join(map(repr, self.transforms))})"
