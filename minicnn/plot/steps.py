"""Convolution worked by hand, as a picture: where the window is, what it multiplies, where the sum goes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._validation import as_float
from ..functional import conv1d, conv2d, conv3d, im2col
from ._figure import canvas, check_dpi, check_path, finish, require_matplotlib

_CONV = {1: conv1d, 2: conv2d, 3: conv3d}
MAX_PANEL_ROWS = 64  # convolution_steps draws one row per output; past this, animate instead
MAX_FRAMES = 400

# Colours, by role (index into _PALETTE).
_PALETTE = ("white", "#fdd0a2", "#c6dbef", "#dadaeb", "#c7e9c0", "#fdae6b")
_PLAIN, _WINDOW, _FILTER, _PRODUCT, _DONE, _NOW = range(6)
_OUTLINE = "#d94801"


@dataclass
class _Walk:
    """Every step of a valid cross-correlation, all in the 3-D form (depth, rows, cols)."""

    ndim: int  # 1, 2 or 3: how the user's x and w were shaped
    x: np.ndarray  # (m, n, n')
    w: np.ndarray  # (r, k, k')
    out: np.ndarray  # (m - r + 1, n - k + 1, n' - k' + 1), from minicnn.functional
    windows: np.ndarray  # (P, r, k, k'): what the filter covers at each of the P positions
    positions: np.ndarray  # (P, 3): (d, i, j) of each output, in reading order
    integral: bool  # every number is a whole number: write them without decimals


def _as_3d(a: np.ndarray) -> np.ndarray:
    return a.reshape((1,) * (3 - a.ndim) + a.shape)


def _walk(owner: str, x, w) -> _Walk:
    x = as_float(x, owner, "x")
    w = as_float(w, owner, "w")
    if x.ndim not in (1, 2, 3) or w.ndim != x.ndim:
        raise ValueError(
            f"{owner}: x has shape {x.shape} and w {w.shape}; expected x (n,) with w (k,), "
            "x (n, n') with w (k, k'), or x (m, n, n') with w (r, k, k')"
        )
    if 0 in x.shape or 0 in w.shape or any(k > n for k, n in zip(w.shape, x.shape)):
        raise ValueError(
            f"{owner}: filter w of shape {w.shape} does not fit in x of shape {x.shape}; "
            "every axis of w must be from 1 to the size of that axis of x"
        )
    if not (np.isfinite(x).all() and np.isfinite(w).all()):
        raise ValueError(f"{owner}: x and w must be finite; got NaN or infinity")
    out = _as_3d(_CONV[x.ndim](x, w))
    x3, w3 = _as_3d(x), _as_3d(w)
    (m, _, _), (r, k, k2), (depth, oh, ow) = x3.shape, w3.shape, out.shape
    # im2col gives every spatial window of every depth slice; a window r slices deep is r
    # consecutive slices of it, which sliding_window_view picks without a copy.
    cols = im2col(x3[None], (k, k2))[0].reshape(m, k, k2, oh * ow)
    windows = sliding_window_view(cols, r, axis=0)  # (depth, k, k', OH*OW, r)
    windows = windows.transpose(0, 3, 4, 1, 2).reshape(depth * oh * ow, r, k, k2)
    positions = np.stack(np.unravel_index(np.arange(depth * oh * ow), out.shape), axis=1)
    integral = all(np.array_equal(a, np.round(a)) for a in (x3, w3, windows * w3, out))
    return _Walk(x.ndim, x3, w3, out, windows, positions, integral)


def _index(walk: _Walk, p: int) -> str:
    return "[" + ", ".join(str(v) for v in walk.positions[p][3 - walk.ndim :]) + "]"


_MARGINS = ((0, 0), (1, 0), (1, 1), (0, 0))  # free cells for the operators: ×, then = and Σ→
_MIN_WIDTH = 3  # cells: enough for a panel's title


def _widths(walk: _Walk) -> tuple[list[float], int]:
    """Each panel's x span in cells (its width ratio) and the height of the row in cells."""
    from ._cells import panel_width

    shapes = (walk.x.shape, walk.w.shape, walk.w.shape, walk.out.shape)
    spans = [max(panel_width(s[0], s[2]), _MIN_WIDTH) + 0.1 + sum(m) for s, m in zip(shapes, _MARGINS)]
    return spans, max(s[1] for s in shapes)


def _slice_names(walk: _Walk, count: int) -> list[str] | None:
    if walk.ndim < 3:
        return None
    word = "channel" if walk.w.shape[0] == walk.x.shape[0] else "depth"
    return [f"{word} {s}" for s in range(count)]


def _draw_step(axes, walk: _Walk, p: int, header: bool) -> None:
    """Draw position ``p`` into four Axes: input with the window, filter, products, output."""
    from matplotlib.patches import Rectangle

    from ._cells import draw_cells, font_size, format_numbers, slice_x

    d, i, j = walk.positions[p]
    r, k, k2 = walk.w.shape
    m, _, n2 = walk.x.shape
    products = walk.windows[p] * walk.w
    total = walk.out[d, i, j]
    texts = [format_numbers(a, walk.integral) for a in (walk.x, walk.w, products, walk.out)]
    size = font_size(np.concatenate([t.ravel() for t in texts]))
    _, height = _widths(walk)
    ax_in, ax_w, ax_prod, ax_out = axes

    covered = np.zeros(walk.x.shape, bool)
    covered[d : d + r, i : i + k, j : j + k2] = True
    draw_cells(
        ax_in,
        walk.x,
        _PALETTE,
        np.where(covered, _WINDOW, _PLAIN),
        texts=texts[0],
        fontsize=size,
        height=height,
        width=_MIN_WIDTH,
        margins=_MARGINS[0],
        label_slices=_slice_names(walk, m),
    )
    for t in range(r):  # one outline per slice the window covers (a loop over the filter's depth)
        ax_in.add_patch(
            Rectangle(
                (slice_x(d + t, n2) + j - 0.5, i - 0.5), k2, k, fill=False, edgecolor=_OUTLINE, linewidth=2.5, zorder=3
            )
        )
    draw_cells(
        ax_w,
        walk.w,
        _PALETTE,
        _FILTER,
        texts=texts[1],
        fontsize=size,
        height=height,
        width=_MIN_WIDTH,
        margins=_MARGINS[1],
        label_slices=_slice_names(walk, r),
    )
    draw_cells(
        ax_prod,
        products,
        _PALETTE,
        _PRODUCT,
        texts=texts[2],
        fontsize=size,
        height=height,
        width=_MIN_WIDTH,
        margins=_MARGINS[2],
    )
    order = np.arange(walk.out.size).reshape(walk.out.shape)
    now = order == p
    depth_out = walk.out.shape[0]
    draw_cells(
        ax_out,
        walk.out,
        _PALETTE,
        np.where(now, _NOW, np.where(order < p, _DONE, _PLAIN)),
        texts=texts[3],
        shown=order <= p,
        bold=now,
        fontsize=size,
        height=height,
        width=_MIN_WIDTH,
        margins=_MARGINS[3],
        label_slices=_slice_names(walk, depth_out) if depth_out > 1 else None,
    )
    ax_out.add_patch(
        Rectangle(
            (slice_x(d, walk.out.shape[2]) + j - 0.5, i - 0.5),
            1,
            1,
            fill=False,
            edgecolor=_OUTLINE,
            linewidth=2.5,
            zorder=3,
        )
    )
    # The operators between the panels, in their margins: window × w = products, summed into out.
    middle = (min(k, height) - 1) / 2
    ax_w.text(ax_w.get_xlim()[0] + 0.5, middle, "×", ha="center", va="center", fontsize=14)
    ax_prod.text(ax_prod.get_xlim()[0] + 0.5, middle, "=", ha="center", va="center", fontsize=14)
    ax_prod.text(ax_prod.get_xlim()[1] - 0.5, middle, "Σ→", ha="center", va="center", fontsize=12)
    sum_text = format_numbers(total, walk.integral)
    # The row's name left of the input, as text (not a y label: no axis means no tick work).
    ax_in.annotate(
        f"step {p + 1}\nout{_index(walk, p)}",
        (ax_in.get_xlim()[0], (walk.x.shape[1] - 1) / 2),
        xytext=(-6, 0),
        textcoords="offset points",
        ha="right",
        va="center",
        fontsize=9,
        annotation_clip=False,
    )
    sums = f"sum = {sum_text}"
    if header:
        for a, title in zip(axes, ("input x", "filter w", f"window × w\n{sums}", "output")):
            a.set_title(title, fontsize=9)
    else:
        ax_prod.set_title(sums, fontsize=9)


def _figsize(walk: _Walk, rows: int) -> tuple[float, float]:
    from ._cells import CELL_INCHES

    widths, height = _widths(walk)
    labels = 0.15 if walk.ndim == 3 else 0.0
    return (sum(widths) * CELL_INCHES + 1.1, rows * (height * CELL_INCHES + 0.4 + labels) + 0.45)


def convolution_steps(x, w, *, ax=None, path=None, dpi: float = 100):
    """Draw a valid cross-correlation step by step: one row of four panels per output.

    Each row shows the input ``x`` with the window for that output outlined, the
    filter ``w``, their element-wise products, and the output so far with the new sum
    in its cell. Works for a 1-D signal, a 2-D image, and a volume; a filter as deep as
    the volume is convolution over volume (one 2-D map), a shallower one also slides
    along depth. Every number comes from :mod:`minicnn.functional` (``im2col`` for the
    windows, ``conv1d``/``conv2d``/``conv3d`` for the sums).

    Parameters
    ----------
    x : array_like, shape (n,), (n, n') or (m, n, n')
    w : array_like, shape (k,), (k, k') or (r, k, k'), the same number of axes as x
    ax : matplotlib Axes, optional
        Draw into this Axes' place in its figure (it is replaced by the panels) instead of
        a new figure.
    path : str or os.PathLike, optional
        Also save the figure there (PNG, or any format matplotlib knows by the suffix).
    dpi : float
        Resolution of the saved file.

    Returns
    -------
    matplotlib.figure.Figure
        ``4 * P`` panels for P outputs, row by row (input, filter, products, output).
        In an output panel every sum is a Text centred on its cell: cell (d, i, j)
        (``(0, 0, j)`` in 1-D, ``(0, i, j)`` in 2-D) is at x = d * (OW + 0.5) + j, y = i.

    Shape
    -----
    x (n,), w (k,) -> n - k + 1 rows; x (n, n'), w (k, k') -> (n-k+1)(n'-k'+1) rows;
    x (m, n, n'), w (r, k, k') -> (m-r+1)(n-k+1)(n'-k'+1) rows. At most 64 rows: for larger
    inputs use :func:`animate_convolution`.

    Examples
    --------
    >>> fig = convolution_steps([1, 3, 2, 5, 4], [1, 0, -1])  # 3 outputs: 3 rows of 4 panels
    >>> len(fig.axes)
    12
    >>> [t.get_text() for t in fig.axes[-1].texts]  # the last row's output: every sum
    ['-1', '-2', '-2']
    """
    owner = "convolution_steps"
    require_matplotlib(owner)
    path, dpi = check_path(owner, path), check_dpi(owner, dpi)
    walk = _walk(owner, x, w)
    rows = len(walk.positions)
    if rows > MAX_PANEL_ROWS:
        raise ValueError(
            f"{owner}: x {walk.x.shape[3 - walk.ndim :]} and w {walk.w.shape[3 - walk.ndim :]} give "
            f"{rows} outputs, one row of panels each; at most {MAX_PANEL_ROWS} fit in a figure: "
            "use a smaller example, or animate_convolution(x, w, path) for a GIF"
        )
    fig, root = canvas(owner, ax, _figsize(walk, rows))
    widths, _ = _widths(walk)
    axes = root.subplots(rows, 4, squeeze=False, gridspec_kw={"width_ratios": widths})
    for p in range(rows):  # one row of panels per output position
        _draw_step(axes[p], walk, p, header=p == 0)
    return finish(fig, path, dpi)


def animate_convolution(x, w, path, *, fps: float = 1.5, dpi: float = 100):
    """Write an animated GIF of the window sliding: one frame per output.

    Each frame is one row of :func:`convolution_steps`: the input with the window, the
    filter, the products, and the output filling in. The last frame is held a little
    longer before the loop restarts. Needs Pillow (which matplotlib installs).

    Parameters
    ----------
    x, w : array_like
        As for :func:`convolution_steps`.
    path : str or os.PathLike
        Where to write the GIF; must end in ``.gif``.
    fps : float
        Frames per second.
    dpi : float
        Resolution of the frames.

    Returns
    -------
    matplotlib.figure.Figure
        The figure showing the last frame (four panels).

    Shape
    -----
    As for :func:`convolution_steps`: one frame per output, at most 400.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     gif = os.path.join(folder, "slide.gif")
    ...     fig = animate_convolution([1, 3, 2, 5, 4], [1, 0, -1], gif)  # 3 frames
    ...     with open(gif, "rb") as f:
    ...         print(f.read(6))
    b'GIF89a'
    """
    owner = "animate_convolution"
    require_matplotlib(owner)
    try:
        import PIL  # noqa: F401 - matplotlib's PillowWriter needs it
    except ImportError as exc:
        raise ImportError(
            f"{owner} writes GIFs with Pillow, which is not installed: pip install pillow "
            '(pip install -e ".[plot]" brings it with matplotlib)',
            name="PIL",
        ) from exc
    from matplotlib.animation import PillowWriter

    if path is None:
        raise TypeError(f"{owner}: path is None; expected where to write the GIF, e.g. 'slide.gif'")
    path, dpi = check_path(owner, path, (".gif",)), check_dpi(owner, dpi)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0.1 <= fps <= 50:
        raise ValueError(f"{owner}: fps={fps!r}; expected a number from 0.1 to 50 frames per second (e.g. 1.5)")
    walk = _walk(owner, x, w)
    frames = len(walk.positions)
    if frames > MAX_FRAMES:
        raise ValueError(
            f"{owner}: x and w give {frames} outputs, one frame each; at most {MAX_FRAMES}: use a smaller example"
        )
    fig, root = canvas(owner, None, _figsize(walk, 1))
    widths, _ = _widths(walk)
    axes = root.subplots(1, 4, gridspec_kw={"width_ratios": widths})
    writer = PillowWriter(fps=fps)
    with writer.saving(fig, path, dpi):
        for p in range(frames):  # one frame per output position
            for a in axes:
                a.clear()
            _draw_step(axes, walk, p, header=True)
            if p == 0:
                fig.draw_without_rendering()  # constrained layout places the panels once...
                fig.set_layout_engine("none")  # ...and keeps them still from frame to frame
            writer.grab_frame()
        for _ in range(2):  # hold the finished output before looping
            writer.grab_frame()
    return fig
