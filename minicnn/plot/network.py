"""What a conv network learned (its first filters) and what it sees (the maps inside it)."""

from __future__ import annotations

import numpy as np

from .._validation import as_float
from ..layers.base import inference
from ._figure import (
    canvas,
    check_dpi,
    check_path,
    finish,
    grid_shape,
    mosaic,
    require_matplotlib,
)

TILE_INCHES = 0.8  # a filter tile
MAP_INCHES = 0.7   # a feature map


def _weight4(layer) -> np.ndarray | None:
    """The layer's conv weight (F, C, KH, KW), or None when it has none."""
    weight = getattr(getattr(layer, "weight", None), "data", None)
    return weight if isinstance(weight, np.ndarray) and weight.ndim == 4 else None


def _conv_weight(owner: str, conv_layer) -> np.ndarray:
    weight = _weight4(conv_layer)
    if weight is not None:
        return weight
    hint = ""
    if hasattr(conv_layer, "layers"):
        first = next((i for i, layer in enumerate(conv_layer.layers) if _weight4(layer) is not None), None)
        if first is not None:
            hint = f"; this looks like a model: pass one of its conv layers, e.g. model[{first}]"
    raise TypeError(f"{owner}: conv_layer is a {type(conv_layer).__name__} without a 4-D .weight "
                    f"(F, C, KH, KW); expected a conv layer such as Conv2DVolume{hint}")


def _hide_frame(ax) -> None:
    """No ticks or spines, but a y label still shows (where :func:`feature_maps` names a row)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def filters(conv_layer, *, max_cols: int = 8, ax=None, path=None, dpi: float = 100):
    """Draw a conv layer's filters, one panel per filter.

    A filter spanning 3 input channels (a first layer on RGB images) is one colour tile:
    its R, G and B slices become the tile's colours, so it shows which colour edges it
    looks for. Grey means a weight of 0, full colour the filter's largest weight.
    Otherwise each channel slice of a filter is a grey tile (mid-grey 0, white the
    largest positive weight, black the most negative), a filter's slices side by side.

    Parameters
    ----------
    conv_layer : Conv2DVolume, or any layer with a ``.weight`` Parameter of shape (F, C, KH, KW)
    max_cols : int
        Panels per row for one-tile filters (1 or 3 input channels). Filters of other
        depths are strips of C tiles, 16 filters to a column.
    ax, path, dpi
        Draw into that Axes' place instead of a new figure; save to ``path``; its resolution.

    Returns
    -------
    matplotlib.figure.Figure
        F panels, one per filter, titled or labelled with its index.

    Shape
    -----
    weight (F, C, KH, KW) -> F panels: a KH x KW colour tile when C == 3, else C grey tiles

    Examples
    --------
    >>> from minicnn import Conv2DVolume
    >>> fig = filters(Conv2DVolume(3, 8, 3, rng=np.random.default_rng(0)))
    >>> len(fig.axes)
    8
    """
    owner = "filters"
    require_matplotlib(owner)
    path, dpi = check_path(owner, path), check_dpi(owner, dpi)
    w = np.asarray(_conv_weight(owner, conv_layer), dtype=np.float64)
    if isinstance(max_cols, bool) or not isinstance(max_cols, int) or max_cols < 1:
        raise ValueError(f"{owner}: max_cols={max_cols!r}; expected a positive int (e.g. 8)")
    f, c, kh, kw = w.shape
    # One symmetric scale per filter: 0 stays neutral, the filter's strongest weight saturates.
    limits = np.max(np.abs(w), axis=(1, 2, 3), keepdims=True)
    scaled = w / np.where(limits > 0, limits, 1.0)  # in [-1, 1]
    grey = _grey_cmap()
    if c in (1, 3):
        rows, cols = grid_shape(f, max_cols)
        fig, root = canvas(owner, ax, (max(cols * TILE_INCHES, 3.0) + 0.4, rows * (TILE_INCHES + 0.2) + 0.6))
        axes = root.subplots(rows, cols, squeeze=False).ravel()
        tiles = 0.5 + 0.5 * scaled.transpose(0, 2, 3, 1) if c == 3 else scaled[:, 0]
        for i, a in enumerate(axes):  # one panel per filter
            if i >= f:
                a.remove()  # the unused end of the last row
                continue
            a.imshow(tiles[i], cmap=None if c == 3 else grey, vmin=-1, vmax=1, interpolation="nearest")
            a.set_title(str(i), fontsize=7, pad=2)
            a.set_axis_off()
        what = "each filter's R, G, B slices as one colour tile" if c == 3 else "grey 0, white +, black -"
    else:
        cols = -(-f // 16)
        rows = -(-f // cols)
        strip = c * TILE_INCHES * 0.45
        # at least as wide as the three-line title
        fig, root = canvas(owner, ax, (max(cols * (strip + 0.8) + 0.3, 3.6), rows * TILE_INCHES * 0.5 + 0.9))
        axes = root.subplots(rows, cols, squeeze=False).T.ravel()  # filters go down the columns
        for i, a in enumerate(axes):  # one panel per filter: its C slices side by side
            if i >= f:
                a.remove()
                continue
            a.imshow(mosaic(scaled[i], c), cmap=grey, vmin=-1, vmax=1, interpolation="nearest")
            _hide_frame(a)
            a.set_ylabel(str(i), rotation=0, ha="right", va="center", fontsize=7)
        what = f"one row of {c} slices per filter, input channel 0 first\ngrey 0, white +, black -"
    root.suptitle(f"{f} filters of {c}x{kh}x{kw}\n{what}", fontsize=9)
    return finish(fig, path, dpi)


def _grey_cmap():
    """Grey with NaN (a gap between tiles) drawn as nothing."""
    from matplotlib import colormaps

    return colormaps["gray"].with_extremes(bad=(0, 0, 0, 0))


def _layers_of(owner: str, model) -> list:
    try:
        layers = [model[i] for i in range(len(model))]
    except TypeError:
        layers = None
    if layers is None or not callable(getattr(model, "eval", None)):
        raise TypeError(f"{owner}: model is a {type(model).__name__}; expected a Sequential "
                        "(a Layer with len() and indexing over its layers)")
    return layers


def _dims(shape) -> str:
    return "x".join(map(str, shape))


def _stretch(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) image for display: as it is when in [0, 1], else stretched to fit."""
    lo, hi = float(image.min()), float(image.max())
    if lo >= 0 and hi <= 1:
        return image
    return (image - lo) / (hi - lo) if hi > lo else np.full_like(image, 0.5)


def _unit_per_map(maps: np.ndarray) -> np.ndarray:
    """Each (H, W) map of (C, H, W) stretched to [0, 1] on its own (a constant map: 0)."""
    maps = maps.astype(np.float64)
    lo = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - lo
    return (maps - lo) / np.where(span > 0, span, 1.0)


def _viridis():
    from matplotlib import colormaps

    return colormaps["viridis"].with_extremes(bad=(0, 0, 0, 0))


def feature_maps(model, image, *, max_maps: int | None = 8, ax=None, path=None, dpi: float = 100):
    """Draw an image and the maps it becomes after every layer whose output is (N, C, H, W).

    The image goes through the model's layers one by one in evaluation mode, as
    :meth:`Sequential.predict` does; each layer's ``training`` flag is restored afterwards,
    so the model is left as it was. One row per layer with image-shaped output (conv,
    activation, pooling), labelled with the layer's index, name and output shape; each map
    has its own colour scale (yellow its largest value, dark purple its smallest, so a
    constant map is all purple).

    Parameters
    ----------
    model : Sequential
    image : array_like, shape (C, H, W)
        One image (no batch axis), as the model's first layer expects it.
    max_maps : int or None
        Show at most this many maps per layer (the first ones); None shows them all,
        16 to a row.
    ax, path, dpi
        Draw into that Axes' place instead of a new figure; save to ``path``; its resolution.

    Returns
    -------
    matplotlib.figure.Figure
        ``1 + L`` panels, one per row: the input (an RGB image, or its channels side by
        side), then each of the L layers with 4-D output, its first ``max_maps`` maps side
        by side.

    Shape
    -----
    image (C, H, W) -> rows of maps (C_l, H_l, W_l), one row per layer with 4-D output

    Examples
    --------
    >>> from minicnn import Conv2DVolume, Flatten, MaxPool2D, ReLU, Sequential
    >>> model = Sequential(Conv2DVolume(3, 4, 3, rng=np.random.default_rng(0)), ReLU(), MaxPool2D(2), Flatten())
    >>> fig = feature_maps(model, np.zeros((3, 8, 8), np.float32))
    >>> len(fig.axes)  # the RGB image, then the maps after the conv, the ReLU and the pool
    4
    >>> model.training  # left as it was
    True
    """
    owner = "feature_maps"
    require_matplotlib(owner)
    path, dpi = check_path(owner, path), check_dpi(owner, dpi)
    layers = _layers_of(owner, model)
    image = as_float(image, owner, "image")
    if image.ndim != 3:
        hint = {4: " (for a batch of one, pass image[0])", 2: " (for a one-channel image, pass image[None])"}
        raise ValueError(f"{owner}: image has shape {image.shape}; expected one image (C, H, W)"
                         f"{hint.get(image.ndim, '')}")
    if max_maps is not None and (isinstance(max_maps, bool) or not isinstance(max_maps, int) or max_maps < 1):
        raise ValueError(f"{owner}: max_maps={max_maps!r}; expected a positive int (e.g. 8) or None for all maps")

    rows = []  # (label, maps (C, H, W)) per shown layer
    with inference():  # eval mode for every layer, changing none: a pending backward stays intact
        x = image[None]
        for i, layer in enumerate(layers):
            x = layer.forward(x)
            if np.ndim(x) == 4:
                rows.append((f"{i} {type(layer).__name__}\n{_dims(x.shape[1:])}", x[0]))

    per_row = 16 if max_maps is None else min(max_maps, 16)
    if image.shape[0] == 3:
        panels = [(f"input\n{_dims(image.shape)}", _stretch(image.transpose(1, 2, 0))[None])]
    else:
        panels = [(f"input\n{_dims(image.shape)}", _unit_per_map(image[:max_maps]))]
    panels += [(label, _unit_per_map(maps[:max_maps])) for label, maps in rows]
    tile_rows = [-(-len(tiles) // per_row) for _, tiles in panels]
    fig, root = canvas(owner, ax, (per_row * MAP_INCHES + 1.4, sum(tile_rows) * MAP_INCHES + 0.2 * len(panels) + 0.4))
    axes = root.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": tile_rows})[:, 0]
    cmap = _viridis()
    for a, (label, tiles) in zip(axes, panels):  # one panel per layer: all its maps as one image
        a.imshow(mosaic(tiles, per_row), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        a.set_anchor("W")  # maps line up on the left, whatever their count
        _hide_frame(a)
        a.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    more = "" if max_maps is None else f" (at most {max_maps} maps per layer)"
    root.suptitle(f"an image and its feature maps after each layer{more}", fontsize=9)
    return finish(fig, path, dpi)
