"""What every picture shares: matplotlib imported on demand, figures without pyplot, saving.

Figures are built from :class:`matplotlib.figure.Figure` directly, never through pyplot, so
drawing one neither needs a display nor touches the backend or the figures a user already
has open. Saving a PNG goes through Agg whatever the global backend is.
"""

from __future__ import annotations

import os

import numpy as np

from .._atomic import write_atomically

INSTALL_HINT = 'pip install -e ".[plot]"'


def require_matplotlib(owner: str):
    """Import matplotlib, or raise an ImportError that says how to install it."""
    try:
        import matplotlib
        import matplotlib.figure
    except ImportError as exc:
        # A dependency of matplotlib that is missing (Pillow, say) deserves its own name.
        missing = "" if exc.name is None or exc.name.split(".")[0] == "matplotlib" else f" ({exc})"
        why = f"could not be imported{missing}" if missing else "is not installed"
        raise ImportError(
            f"{owner} draws with matplotlib, which {why}: {INSTALL_HINT} (or pip install matplotlib)", name="matplotlib"
        ) from exc
    return matplotlib


def canvas(owner: str, ax, figsize: tuple[float, float]):
    """The root Figure and the (sub)figure to draw a multi-panel picture into.

    With ``ax=None`` both are a new constrained-layout Figure of ``figsize`` inches. With an
    Axes, that Axes is replaced by a subfigure occupying its slot of the grid, so several
    pictures can share one figure.
    """
    require_matplotlib(owner)
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig
    if not isinstance(ax, Axes):
        raise TypeError(f"{owner}: ax is a {type(ax).__name__}; expected a matplotlib Axes or None")
    spec = ax.get_subplotspec()
    if spec is None:
        raise ValueError(
            f"{owner}: ax has no place in a grid (it was not made by add_subplot or subplots); "
            "make it with fig.add_subplot(...) or pass ax=None for a new figure"
        )
    parent = ax.figure  # a Figure or a SubFigure
    ax.remove()
    return parent.figure, parent.add_subfigure(spec)


def single_axes(owner: str, ax, figsize: tuple[float, float]):
    """The root Figure and one Axes: ``ax`` itself, or the only Axes of a new Figure."""
    require_matplotlib(owner)
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    if not isinstance(ax, Axes):
        raise TypeError(f"{owner}: ax is a {type(ax).__name__}; expected a matplotlib Axes or None")
    return ax.figure.figure, ax


def check_path(owner: str, path, suffixes: tuple[str, ...] | None = None):
    """``path`` as given (None or path-like), or a TypeError/ValueError before anything is drawn."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"{owner}: path is a {type(path).__name__}; expected a str or os.PathLike (e.g. 'picture.png') or None"
        )
    if suffixes and not os.fspath(path).lower().endswith(suffixes):
        raise ValueError(f"{owner}: path {os.fspath(path)!r} must end in {' or '.join(suffixes)}")
    # Said before the drawing, and by name: matplotlib's own error comes late and names no function
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"{owner}: cannot write {os.fspath(path)!r}: folder {folder!r} does not exist; "
            f"create it first, e.g. os.makedirs({folder!r}, exist_ok=True)"
        )
    return path


def check_dpi(owner: str, dpi) -> float:
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not 10 <= dpi <= 1000:
        raise ValueError(f"{owner}: dpi={dpi!r}; expected a number from 10 to 1000 (e.g. 100)")
    return float(dpi)


def finish(fig, path, dpi: float):
    """Save ``fig`` to ``path`` (when given) at ``dpi`` and return it.

    No ``bbox_inches="tight"``: the file is exactly the figure's size in inches times dpi,
    and constrained layout already keeps labels inside it.
    """
    if path is not None:
        # Through a temporary file and a rename, as model.save: a Ctrl-C or a full disk midway
        # leaves the previous picture (or none), never a truncated one. The format comes from
        # the suffix, as matplotlib would take it from the name (png when there is none).
        kind = os.path.splitext(os.fspath(path))[1][1:].lower() or None
        write_atomically(path, lambda f: fig.savefig(f, dpi=dpi, format=kind), "savefig", ".png")
    return fig


def symmetric_limit(a: np.ndarray) -> float:
    """The largest magnitude in ``a``, so a colour scale from -limit to +limit puts 0 in its
    middle (1 for an all-zero array, which then shows as the neutral colour)."""
    limit = float(np.max(np.abs(a))) if a.size else 0.0
    return limit if limit > 0 and np.isfinite(limit) else 1.0


def tile_gap(height: int) -> int:
    """Pixels between two tiles ``height`` pixels tall in a :func:`mosaic`: an eighth, at least 1."""
    return max(1, height // 8)


def mosaic(tiles: np.ndarray, per_row: int) -> np.ndarray:
    """Tiles (T, h, w) or (T, h, w, 4) side by side in rows of ``per_row``, as one image.

    The gaps between tiles are NaN (grey tiles) or transparent (RGBA tiles), so one imshow
    draws them all. A gap is an eighth of a tile's height, at least one pixel (:func:`tile_gap`).
    """
    t, h, w = tiles.shape[:3]
    rows = -(-t // per_row)
    cols = min(per_row, t)
    gap = tile_gap(h)
    blank = np.nan if tiles.ndim == 3 else 0.0  # NaN: drawn as nothing; RGBA: alpha 0
    tiles = tiles.astype(np.float64)
    padded = np.full((rows * cols, h + gap, w + gap) + tiles.shape[3:], blank)
    padded[:t, :h, :w] = tiles
    image = padded.reshape((rows, cols, h + gap, w + gap) + tiles.shape[3:])
    image = image.swapaxes(1, 2).reshape((rows * (h + gap), cols * (w + gap)) + tiles.shape[3:])
    return image[: rows * (h + gap) - gap, : cols * (w + gap) - gap]


SIGNED_CMAP = "RdBu_r"  # red positive, white 0, blue negative: every signed picture uses it


def signed_scale(values: np.ndarray):
    """(cmap, vmin, vmax) that draw ``values`` with 0 white, positive red, negative blue.

    Signed values get a symmetric scale from -limit to +limit. Values that are all >= 0 (after
    a ReLU, say) get the red half only, from 0 to their largest, so the colour bar spends no
    room on a blue that never shows; a value has the same colour either way. NaN (a gap
    between tiles) is drawn as nothing.
    """
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    full = colormaps[SIGNED_CMAP]
    finite = values[np.isfinite(values)]
    limit = symmetric_limit(finite)
    if finite.size and finite.min() >= 0:
        half = ListedColormap(full(np.linspace(0.5, 1.0, 128)), name=f"{SIGNED_CMAP}_positive")
        return half.with_extremes(bad=(0, 0, 0, 0)), 0.0, limit
    return full.with_extremes(bad=(0, 0, 0, 0)), -limit, limit


def colour_bar(root, mappable, ax, label: str, *, fontsize: float = 7, **kwargs):
    """A colour bar for ``mappable`` beside ``ax`` (an Axes or a list of them), ticks at its
    ends and at 0 when 0 is inside, written with 2 significant digits. The Axes keep their
    anchor (matplotlib would move them against the bar)."""
    vmin, vmax = mappable.norm.vmin, mappable.norm.vmax
    ticks = [vmin, 0.0, vmax] if vmin < 0 < vmax else [vmin, vmax]
    bar = root.colorbar(mappable, ax=ax, ticks=ticks, panchor=False, **kwargs)
    bar.set_ticklabels([f"{t:.2g}" for t in ticks])
    bar.ax.tick_params(labelsize=fontsize, length=2, pad=1)
    bar.set_label(label, fontsize=fontsize)
    return bar
