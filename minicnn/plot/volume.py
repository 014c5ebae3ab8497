"""Convolution over volume: each filter spans every channel, and F filters give F stacked maps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._validation import as_float
from ..functional import im2col
from ._figure import (
    SIGNED_CMAP,
    canvas,
    check_dpi,
    check_path,
    colour_bar,
    finish,
    require_matplotlib,
    symmetric_limit,
)

_SIGN_PALETTE = ("#c6dbef", "white", "#fcbba1")  # negative, zero, positive weights
_CHANNEL_CMAPS = ("Reds", "Greens", "Blues")
TILE_INCHES = 1.15


def _stack(a, maps: np.ndarray) -> None:
    """Draw (F, H, W) maps as a pile seen slightly from the side: map 0 in front."""
    from matplotlib.patches import Rectangle

    f, h, w = maps.shape
    step = 0.22 * min(h, w)
    limit = symmetric_limit(maps)
    for i in reversed(range(f)):  # back to front, one map at a time
        x0, y0 = i * step, -i * step
        a.imshow(
            maps[i],
            cmap=SIGNED_CMAP,
            vmin=-limit,
            vmax=limit,
            extent=(x0, x0 + w, y0 + h, y0),
            interpolation="nearest",
            zorder=f - i,
        )
        a.add_patch(Rectangle((x0, y0), w, h, fill=False, edgecolor="0.2", linewidth=1, zorder=f - i))
    a.set_xlim(-1, (f - 1) * step + w + 1)
    a.set_ylim(h + 1, -(f - 1) * step - 1)
    a.set_aspect("equal")
    a.set_axis_off()


def _weight_legend(a) -> None:
    """The key to the filter cells' colours, in an Axes of its own (no frame)."""
    from matplotlib.patches import Patch

    names = ("weight < 0", "weight 0", "weight > 0")
    handles = [Patch(facecolor=colour, edgecolor="0.35", label=name) for colour, name in zip(_SIGN_PALETTE, names)]
    a.legend(handles=handles[::-1], loc="center", fontsize=7, title="filter cells", title_fontsize=7, frameon=False)
    a.set_axis_off()


def output_volume(x, w, *, channel_names: Sequence[str] | None = None, ax=None, path=None, dpi: float = 100):
    """Draw F filters sliding over a C-channel image and their F maps stacked into a volume.

    Top row: the image and each of its channels. Then one row per filter: its slice
    for each channel, written out under that channel (red positive, blue negative, white
    zero: a filter with zeros in a channel's slice is blind to that channel), and the 2-D
    map it gives (red positive, blue negative). On the right, the maps stacked into the
    output volume (F, OH, OW), which is what a conv layer passes on. The maps are
    ``w.reshape(F, -1) @ im2col(x)``, the matrix product the layer computes.

    Parameters
    ----------
    x : array_like, shape (C, H, W)
        One image.
    w : array_like, shape (F, C, KH, KW)
        F filters, each spanning all C channels.
    channel_names : sequence of C str, optional
        ``("R", "G", "B")`` for 3 channels by default, else ``"channel 0"``, ...
    ax, path, dpi
        Draw into that Axes' place instead of a new figure; save to ``path``; its resolution.

    Returns
    -------
    matplotlib.figure.Figure
        ``1 + C`` panels for the image, ``C + 1`` per filter, 1 for the stack, then the
        colour bar of the maps (under the stack, labelled with what red and blue mean) and
        the key to the filter cells' colours (a legend in an Axes of its own).

    Shape
    -----
    x (C, H, W), w (F, C, KH, KW) -> output volume (F, H - KH + 1, W - KW + 1)

    Examples
    --------
    >>> x = np.zeros((3, 8, 8), np.float32)
    >>> x[0, :, 4:] = 1  # a vertical edge in the red channel
    >>> w = np.zeros((2, 3, 3, 3), np.float32)
    >>> w[0, 0] = [[1, 0, -1]] * 3  # filter 0: vertical edges, red channel only
    >>> w[1, 2] = w[0, 0].T         # filter 1: horizontal edges, blue channel only
    >>> len(output_volume(x, w).axes)  # 1 + 3, then 4 per filter, the stack, its colour bar, the key
    15
    """
    owner = "output_volume"
    require_matplotlib(owner)
    from ._cells import draw_cells, font_size, format_numbers

    path, dpi = check_path(owner, path), check_dpi(owner, dpi)
    x = as_float(x, owner, "x")
    w = as_float(w, owner, "w")
    if x.ndim != 3:
        raise ValueError(f"{owner}: x has shape {x.shape}; expected one image (C, H, W)")
    if w.ndim == 3 and w.shape[0] == x.shape[0]:
        raise ValueError(
            f"{owner}: w has shape {w.shape}; expected a bank of filters (F, C, KH, KW): for one filter pass w[None]"
        )
    if w.ndim != 4 or w.shape[1] != x.shape[0] or w.shape[2] > x.shape[1] or w.shape[3] > x.shape[2]:
        raise ValueError(
            f"{owner}: w has shape {w.shape} for x of shape {x.shape}; expected (F, {x.shape[0]}, KH, KW) "
            f"with KH <= {x.shape[1]} and KW <= {x.shape[2]}"
        )
    c, f = x.shape[0], w.shape[0]
    names = (
        list(channel_names)
        if channel_names is not None
        else (["R", "G", "B"] if c == 3 else [f"channel {i}" for i in range(c)])
    )
    if len(names) != c:
        raise ValueError(f"{owner}: channel_names has {len(names)} names; expected {c}, one per channel of x")
    kh, kw = w.shape[2:]
    oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    cols = im2col(x[None], (kh, kw))[0]  # (C*KH*KW, OH*OW)
    maps = (w.reshape(f, -1).astype(cols.dtype) @ cols).reshape(f, oh, ow)

    fig, root = canvas(owner, ax, ((c + 3) * TILE_INCHES + 0.6, (f + 1) * (TILE_INCHES + 0.3) + 0.5))
    grid = root.add_gridspec(f + 1, c + 3, width_ratios=[1] * (c + 2) + [1.6])
    a = root.add_subplot(grid[0, 0])
    shown = x.transpose(1, 2, 0) if c == 3 else x[0]
    a.imshow(np.clip(shown, 0, 1) if c == 3 else shown, cmap=None if c == 3 else "gray", interpolation="nearest")
    a.set_title(f"image {c}x{x.shape[1]}x{x.shape[2]}", fontsize=8)
    a.set_axis_off()
    lo, hi = float(x.min()), float(x.max())
    for i in range(c):  # one panel per channel: that is the picture
        a = root.add_subplot(grid[0, i + 1])
        cmap = _CHANNEL_CMAPS[i] if c == 3 else "gray"
        a.imshow(x[i], cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
        a.set_title(f"channel {names[i]}", fontsize=8)
        a.set_axis_off()
    integral = np.array_equal(w, np.round(w))
    texts = format_numbers(w, integral)
    size = font_size(texts)
    codes = (np.sign(w) + 1).astype(np.int64)  # index into _SIGN_PALETTE
    limit = symmetric_limit(maps)
    for j in range(f):  # one row per filter
        for i in range(c):
            a = root.add_subplot(grid[j + 1, i + 1])
            draw_cells(a, w[j, i][None], _SIGN_PALETTE, codes[j, i][None], texts=texts[j, i][None], fontsize=size)
            a.set_title(f"filter {j}, {names[i]} slice", fontsize=7)
        a = root.add_subplot(grid[j + 1, c + 1])
        a.imshow(maps[j], cmap=SIGNED_CMAP, vmin=-limit, vmax=limit, interpolation="nearest")
        a.set_title(f"map {j}: {oh}x{ow}", fontsize=8)
        a.set_axis_off()
    a = root.add_subplot(grid[1:, c + 2])
    _stack(a, maps)
    a.set_title(f"output volume\n{f}x{oh}x{ow}", fontsize=8)
    colour_bar(
        root,
        a.images[-1],
        a,
        "map value: red +, blue -, white 0",
        orientation="horizontal",
        shrink=0.8,
        aspect=12,
        pad=0.02,
    )
    _weight_legend(root.add_subplot(grid[0, c + 1 :]))
    root.suptitle(
        f"{f} filters of {c}x{kh}x{kw} over a {c}-channel image: one map per filter, stacked into the output volume",
        fontsize=9,
    )
    return finish(fig, path, dpi)
