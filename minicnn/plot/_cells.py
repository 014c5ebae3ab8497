"""Arrays drawn as grids of numbered cells, the way convolution is drawn on a blackboard.

A panel shows S slices of an (S, H, W) array side by side, half a cell apart. Cell
(s, i, j) is centred at x = s * (W + 0.5) + j, y = i (row 0 at the top), one unit wide, so
anything can be placed on a cell by its index.
"""

from __future__ import annotations

import numpy as np

CELL_INCHES = 0.38  # a cell fits a three-digit number at the font sizes below
GAP = 0.5  # cells between two slices


def slice_x(s, width: int) -> np.ndarray:
    """x of the left cell centre of slice ``s`` (int or array) in a panel of slices ``width`` wide."""
    return np.asarray(s) * (width + GAP)


def panel_width(slices: int, width: int) -> float:
    """Width in cells of a panel of ``slices`` slices, each ``width`` cells wide."""
    return slices * width + (slices - 1) * GAP


def format_numbers(values: np.ndarray, integral: bool) -> np.ndarray:
    """Strings for ``values``: whole numbers without a decimal point, else two decimals."""
    values = np.asarray(values, dtype=np.float64) + 0.0  # + 0.0 turns -0.0 into 0.0
    if integral:
        return np.char.mod("%d", np.round(values).astype(np.int64))
    return np.char.mod("%.2f", values)


def font_size(texts: np.ndarray, base: float = 9.0) -> float:
    """A font size at which the longest of ``texts`` fits inside one cell."""
    longest = max(int(np.char.str_len(texts).max()), 1) if np.size(texts) else 1
    points_per_cell = CELL_INCHES * 72 * 0.9
    return float(min(base, points_per_cell / (0.62 * longest)))  # a digit is about 0.62 em wide


def draw_cells(
    ax,
    values: np.ndarray,
    palette,
    codes=0,
    *,
    texts: np.ndarray | None = None,
    shown=None,
    fontsize: float = 9.0,
    bold=None,
    height: int | None = None,
    width: float = 0.0,
    margins: tuple[float, float] = (0.0, 0.0),
    label_slices=None,
) -> list:
    """Draw ``values`` (S, H, W) as S grids of cells in ``ax``; return the number Text artists.

    Cell (s, i, j) is filled with ``palette[codes[s, i, j]]`` (``codes`` broadcasts, so 0
    fills every cell with the first colour). ``texts`` are the strings to write (the values
    as whole numbers by default), ``shown`` (S, H, W) bool says which cells get theirs (all
    by default), ``bold`` which in bold. ``height`` is the panel's height in cells (the
    tallest panel of its row); ``width`` is the least width in cells (narrower slices are
    centred in it) and ``margins`` the free cells left and right of that. Cells are the
    same size in every panel of a row whose width ratios are these panels' x spans.
    ``label_slices`` names each slice under it.
    """
    from matplotlib.colors import to_rgba_array

    s_count, h, w = values.shape
    texts = format_numbers(values, True) if texts is None else texts
    shown = np.ones(values.shape, bool) if shown is None else np.broadcast_to(shown, values.shape)
    bold = np.zeros(values.shape, bool) if bold is None else np.broadcast_to(bold, values.shape)
    rgba = to_rgba_array(list(palette))[np.broadcast_to(codes, values.shape)]  # (S, H, W, 4)
    # All slices as one RGBA image, two pixels per cell so that a transparent one-pixel
    # column makes the half-cell gap: one imshow per panel.
    total = panel_width(s_count, w)
    rgba = rgba.repeat(2, axis=1).repeat(2, axis=2)
    rgba = np.pad(rgba, ((0, 0), (0, 0), (0, 1), (0, 0)))  # the padding has alpha 0
    rgba = rgba.transpose(1, 0, 2, 3).reshape(2 * h, s_count * (2 * w + 1), 4)[:, :-1]
    ax.imshow(rgba, extent=(-0.5, total - 0.5, h - 0.5, -0.5), interpolation="nearest")
    # Grid lines: every slice's lines in one vectorised call per direction.
    left = slice_x(np.arange(s_count), w) - 0.5
    ax.vlines((left[:, None] + np.arange(w + 1)).ravel(), -0.5, h - 0.5, color="0.35", linewidth=0.8)
    ys = np.arange(h + 1) - 0.5
    ax.hlines(np.repeat(ys, s_count), np.tile(left, h + 1), np.tile(left + w, h + 1), color="0.35", linewidth=0.8)
    artists = []
    # One Text artist per number: matplotlib has no vectorised text.
    for s, i, j in zip(*np.nonzero(shown)):
        artists.append(
            ax.text(
                slice_x(s, w) + j,
                i,
                texts[s, i, j],
                ha="center",
                va="center",
                fontsize=fontsize,
                fontweight="bold" if bold[s, i, j] else "normal",
            )
        )
    if label_slices is not None:
        for s, name in enumerate(label_slices):
            ax.annotate(
                name,
                (slice_x(s, w) + (w - 1) / 2, h - 0.5),
                xytext=(0, -1.5),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=7,
                color="0.3",
                annotation_clip=False,
            )
    rows = h if height is None else height
    extra = max(width - total, 0.0) / 2
    # Row 0 at the top; a shorter panel keeps to the top. The 0.05 keeps the outer grid
    # lines whole instead of half clipped by the axes' edge.
    ax.set_xlim(-0.55 - extra - margins[0], total - 0.45 + extra + margins[1])
    ax.set_ylim(rows - 0.45, -0.55)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return artists
