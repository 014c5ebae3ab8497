"""What an augmentation does to a few images: each image, then several random versions of it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._validation import as_float, check_image_shape, check_int
from ._figure import canvas, check_dpi, check_path, finish, require_matplotlib

PANEL_INCHES = 0.95


def augmented(
    images,
    augment,
    *,
    variants: int = 6,
    seed: int = 0,
    titles: Sequence[str] | None = None,
    ax=None,
    path=None,
    dpi: float = 100,
):
    """Draw each image and ``variants`` versions of it that ``augment`` made, one row per image.

    The versions are made as ``fit`` makes them: ``augment(batch, rng)`` on a float batch,
    here the images repeated ``variants`` times, with ``rng = default_rng(seed)``. Values are
    shown on a 0..1 scale; an image outside it (after a :class:`~minicnn.augment.Normalize`)
    is stretched to its own range.

    Parameters
    ----------
    images : array_like, shape (N, C, H, W)
        C = 1 (grey) or 3 (RGB); uint8 intensities or floats in [0, 1]. A few: N rows.
    augment : callable (x, rng) -> x
        A :mod:`minicnn.augment` transform, as given to ``fit(..., augment=...)``.
    variants : int
        Augmented versions per image.
    seed : int
        Seeds the generator, so the same call draws the same picture.
    titles : sequence of str, optional
        A label for each row (the class names, say).
    ax, path, dpi
        Draw into that Axes' place instead of a new figure; save to ``path``; its resolution.

    Returns
    -------
    matplotlib.figure.Figure
        N rows of ``1 + variants`` panels: the image, then its versions.

    Examples
    --------
    >>> from minicnn.augment import RandomShift
    >>> x = np.zeros((2, 1, 8, 8), np.float32); x[:, :, 3:5, 3:5] = 1
    >>> fig = augmented(x, RandomShift(2), variants=3)
    >>> len(fig.axes)
    8
    """
    owner = "augmented"
    require_matplotlib(owner)
    path, dpi = check_path(owner, path), check_dpi(owner, dpi)
    variants = check_int(variants, owner, "variants")
    seed = check_int(seed, owner, "seed", minimum=0)
    x = as_float(images, owner, "images")
    check_image_shape(x.shape, owner)
    n, c = x.shape[:2]
    if c not in (1, 3):
        raise ValueError(f"{owner}: images have {c} channels; expected 1 (grey) or 3 (RGB)")
    if not callable(augment):
        raise TypeError(f"{owner}: augment is {augment!r}; expected a transform such as RandomFlip()")
    if titles is not None and len(titles) != n:
        raise ValueError(f"{owner}: {len(titles)} titles for {n} images; give one per image")

    versions = augment(np.repeat(x, variants, axis=0), np.random.default_rng(seed))
    if not (isinstance(versions, np.ndarray) and versions.shape[:2] == (n * variants, c) and versions.ndim == 4):
        raise ValueError(
            f"{owner}: augment returned {getattr(versions, 'shape', type(versions).__name__)} for a "
            f"batch of shape {(n * variants, *x.shape[1:])}; expected a batch of images"
        )
    versions = versions.reshape(n, variants, *versions.shape[1:])

    fig, root = canvas(owner, ax, (PANEL_INCHES * (1 + variants) + 0.6, PANEL_INCHES * n + 0.4))
    axes = root.subplots(n, 1 + variants, squeeze=False)
    for i in range(n):
        for j, image in enumerate([x[i], *versions[i]]):
            a = axes[i, j]
            a.imshow(_displayable(image), cmap="gray" if c == 1 else None, vmin=0, vmax=1, interpolation="nearest")
            a.set_xticks([])
            a.set_yticks([])
            if i == 0:
                a.set_title("image" if j == 0 else f"version {j}", fontsize=8)
        if titles is not None:
            axes[i, 0].set_ylabel(str(titles[i]), fontsize=8)
    root.suptitle(f"{augment!r}"[:110], fontsize=8)
    return finish(fig, path, dpi)


def _displayable(image: np.ndarray) -> np.ndarray:
    """(C, H, W) as what imshow takes, (H, W) or (H, W, 3), in [0, 1]."""
    image = np.asarray(image, np.float64)
    low, high = image.min(), image.max()
    if low < 0 or high > 1:
        image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
