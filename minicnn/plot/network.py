"""What a conv network learned (its first filters) and what it sees (the maps inside it)."""

from __future__ import annotations

import numpy as np

from .._validation import as_float
from ..layers.base import inference
from ..layers.conv_transpose import ConvTranspose2D
from ._figure import (
    canvas,
    check_dpi,
    check_path,
    colour_bar,
    finish,
    mosaic,
    require_matplotlib,
    signed_scale,
    symmetric_limit,
    tile_gap,
)

MAP_INCHES = 0.5  # a feature map at full size


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
    raise TypeError(
        f"{owner}: conv_layer is a {type(conv_layer).__name__} without a 4-D .weight "
        f"(F, C, KH, KW); expected a conv layer such as Conv2DVolume{hint}"
    )


def _hide_frame(ax) -> None:
    """No ticks or spines, but a y label still shows (where :func:`feature_maps` names a row)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _channel_names(c: int, side: str = "in") -> list[str]:
    return ["R", "G", "B"] if c == 3 else [f"{side} {i}" for i in range(c)]


def _tile_ticks(count: int, size: int, gap: int, every: int = 1) -> np.ndarray:
    """Centres of every ``every``-th of ``count`` tiles ``size`` pixels across, ``gap`` apart, in a :func:`mosaic`."""
    return np.arange(0, count, every) * (size + gap) + (size - 1) / 2


def filters(conv_layer, *, max_cols: int | None = None, ax=None, path=None, dpi: float = 100):
    """Draw a conv layer's filters, one column per filter, every weight on one shared scale.

    Each column is one filter: its slice for each input channel as a grey tile, one row per
    channel (mid-grey 0; white and black plus and minus the largest magnitude of any weight
    of the layer; the colour bar gives the numbers). A filter spanning 3 input channels
    (a first layer on RGB images) also gets a colour tile on top: its R, G and B slices as
    the red, green and blue of one image, so it shows which colour edges the filter looks
    for; grey there means 0 in all three channels. One scale for all filters means a weak
    filter looks faint next to a strong one, as it is.

    Parameters
    ----------
    conv_layer : Conv2DVolume, or any layer with a ``.weight`` Parameter of shape (F, C, KH, KW)
    max_cols : int or None
        Filters per band of columns; more filters wrap into further bands below. None: 8
        for filters of 1 to 3 channels, 32 for deeper ones (whose columns are tall).
    ax, path, dpi
        Draw into that Axes' place instead of a new figure; save to ``path``; its resolution.

    Returns
    -------
    matplotlib.figure.Figure
        Per band of up to ``max_cols`` filters: one Axes of grey slices (C rows, the filter
        indices as its x tick labels) and, for C == 3, one of colour tiles above it; then the
        colour bar, labelled ``"weight"``, from ``-limit`` to ``+limit``.

    Shape
    -----
    weight (F, C, KH, KW) -> F columns of C grey KH x KW tiles (plus a colour tile when C == 3)

    Examples
    --------
    >>> from minicnn import Conv2DVolume
    >>> fig = filters(Conv2DVolume(3, 8, 3, rng=np.random.default_rng(0)))
    >>> [a.get_ylabel() for a in fig.axes]  # colour tiles, the R, G, B slices, the colour bar
    ['RGB', '', 'weight']
    """
    owner = "filters"
    require_matplotlib(owner)
    path, dpi = check_path(owner, path), check_dpi(owner, dpi)
    w = np.asarray(_conv_weight(owner, conv_layer), dtype=np.float64)
    if max_cols is not None and (isinstance(max_cols, bool) or not isinstance(max_cols, int) or max_cols < 1):
        raise ValueError(f"{owner}: max_cols={max_cols!r}; expected a positive int (e.g. 8) or None")
    f, c, kh, kw = w.shape
    max_cols = max_cols or (8 if c <= 3 else 32)
    limit = symmetric_limit(w)  # one scale for the whole layer: 0 mid-grey, the strongest weight saturates
    rgb = c == 3
    per_band = min(f, max_cols)
    bands = -(-f // per_band)
    gap = tile_gap(kh)
    inch = (0.42 if c <= 3 else float(np.clip(4.0 / c, 0.12, 0.42))) / max(kh, kw)  # per weight
    wide = (per_band * (kw + gap) - gap) * inch
    ratios = ([kh, c * (kh + gap) - gap] if rgb else [c * (kh + gap) - gap]) * bands  # in weights
    fig, root = canvas(owner, ax, (max(wide + 2.0, 4.4), sum(ratios) * inch + bands * (0.55 if rgb else 0.3) + 0.9))
    axes = root.subplots(len(ratios), 1, squeeze=False, gridspec_kw={"height_ratios": ratios})[:, 0]
    grey = _grey_cmap()
    # A transposed convolution's weight is (C_in, C_out, KH, KW): a column is what one input channel
    # stamps onto each output channel, and its rows are output channels, not input ones.
    transposed = isinstance(conv_layer, ConvTranspose2D)
    names = _channel_names(c, "out" if transposed else "in")
    label_every = max(1, c // 8)  # a deep layer's channels, every so many
    slices_image, slice_axes = None, []
    for band in range(bands):  # one band of up to max_cols filters, left to right
        first = band * per_band
        ws = w[first : first + per_band]
        n = len(ws)
        ticks = _tile_ticks(n, kw, gap)
        if rgb:
            top = axes[2 * band]
            colour = np.clip(0.5 + 0.5 * ws / limit, 0.0, 1.0).transpose(0, 2, 3, 1)  # (n, KH, KW, 3)
            colour = np.concatenate([colour, np.ones(colour.shape[:3] + (1,))], axis=3)  # opaque RGBA
            top.imshow(mosaic(colour, per_band), interpolation="nearest")
            top.set_anchor("W")
            _hide_frame(top)
            top.set_ylabel("RGB", rotation=0, ha="right", va="center", fontsize=7)
            top.set_xticks(ticks, [str(first + i) for i in range(n)], fontsize=6)
            top.tick_params(length=0, pad=1, labeltop=True, labelbottom=False)
        slices = axes[2 * band + 1] if rgb else axes[band]
        slice_axes.append(slices)
        tiles = ws.transpose(1, 0, 2, 3).reshape(c * n, kh, kw)  # channel-major: row c holds every slice c
        slices_image = slices.imshow(
            mosaic(tiles, per_band), cmap=grey, vmin=-limit, vmax=limit, interpolation="nearest"
        )
        slices.set_anchor("W")
        _hide_frame(slices)
        slices.set_yticks(_tile_ticks(c, kh, gap, label_every), names[::label_every], fontsize=6)
        if not rgb:
            slices.set_xticks(ticks, [str(first + i) for i in range(n)], fontsize=6)
            slices.tick_params(labeltop=True, labelbottom=False)
        slices.tick_params(length=0, pad=1)
    tall = (sum(ratios) - (kh * bands if rgb else 0)) * inch  # inches of grey tiles
    colour_bar(root, slices_image, slice_axes, "weight", shrink=min(1.0, 2.2 / tall), aspect=20, pad=0.02)
    kind = "colour tile on top: the R, G, B slices as its red, green, blue (grey: 0 in all three)\n" if rgb else ""
    what = (  # two lines for a transposed one: on one, its longer title outgrew a narrow figure
        f"{f} input channels' kernels onto {c} outputs, {kh}x{kw} (ConvTranspose2D),\n"
        if transposed
        else f"{f} filters of {c}x{kh}x{kw}, "
    )
    root.suptitle(f"{what}one column each, all on one scale", fontsize=9)
    root.supxlabel(
        f"{kind}grey tiles: each {'output' if transposed else 'input channel'}'s slice "
        f"(mid-grey 0, white +, black -; largest |weight| {limit:.2g})",
        fontsize=7,
    )
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
        raise TypeError(
            f"{owner}: model is a {type(model).__name__}; expected a Sequential "
            "(a Layer with len() and indexing over its layers)"
        )
    return layers


def _dims(shape) -> str:
    return "x".join(map(str, shape))


def _stretch(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) image for display: as it is when in [0, 1], else stretched to fit."""
    lo, hi = float(image.min()), float(image.max())
    if lo >= 0 and hi <= 1:
        return image
    return (image - lo) / (hi - lo) if hi > lo else np.full_like(image, 0.5)


def _constant_maps(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which (H, W) maps of (C, H, W) are one value throughout: (all zero, constant but not zero)."""
    hi, lo = maps.max(axis=(1, 2)), maps.min(axis=(1, 2))
    constant = hi == lo
    return constant & (hi == 0), constant & (hi != 0)


def _tile_grid(count: int, per_row: int) -> tuple[int, float]:
    """(tiles per row, size) of a row of ``count`` maps: up to ``per_row`` at full size, more at
    half size, twice as many to a row, so that every layer's row is as wide as the widest."""
    return (count, 1.0) if count <= per_row else (2 * per_row, 0.5)


def _mosaic_height(tiles: np.ndarray, per_row: int, pitch: float) -> float:
    """Inches of height of the :func:`mosaic` of ``tiles`` (T, H, W, ...) when a tile and its gap
    are ``pitch`` inches wide."""
    t, h, w = tiles.shape[:3]
    gap = tile_gap(h)
    return (-(-t // per_row) * (h + gap) - gap) * pitch / (w + gap)


def _mark_constant(a, marked: np.ndarray, per_row: int, h: int, w: int):
    """Hatch the tiles ``marked`` (bool per tile) of a :func:`mosaic` drawn in ``a``; None if none."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    gap = tile_gap(h)
    which = np.flatnonzero(marked)
    if not which.size:
        return None
    corners = zip((which % per_row) * (w + gap) - 0.5, (which // per_row) * (h + gap) - 0.5)
    hatch = PatchCollection(
        [Rectangle(xy, w, h) for xy in corners],
        facecolor="none",
        edgecolor="0.35",
        hatch="////",
        linewidth=0.6,
        gid="constant maps",
    )
    a.add_collection(hatch)
    return hatch


def feature_maps(model, image, *, max_maps: int | None = 64, per_row: int = 16, ax=None, path=None, dpi: float = 100):
    """Draw an image and the maps it becomes after every layer whose output is (N, C, H, W).

    The image goes through the model's layers one by one in evaluation mode, as
    :meth:`Sequential.predict` does; each layer's ``training`` flag is restored afterwards,
    so the model is left as it was. One row per layer with image-shaped output (conv,
    activation, pooling), labelled with the layer's index, name and output shape. All maps
    of a row share one colour scale, given by the colour bar on its right: white 0, red
    positive, blue negative (a row with no negative value uses the red half only), so a
    weak map looks weak beside a strong one. A map that is one value throughout, for this
    image, is hatched, and the row's label counts them: after a ReLU such a map is all 0,
    the filter found nothing in this image.

    Parameters
    ----------
    model : Sequential
    image : array_like, shape (C, H, W)
        One image (no batch axis), as the model's first layer expects it.
    max_maps : int or None
        Show at most this many maps per layer (the first ones; the row's label says
        "k of C shown"); None shows them all.
    per_row : int
        Maps to a row at full size. A layer with more maps gets rows of twice as many at
        half the size, so every row is as wide.
    ax, path, dpi
        Draw into that Axes' place instead of a new figure; save to ``path``; its resolution.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per row: the input (an RGB image, or its channels side by side on a grey
        scale), then each of the L layers with 4-D output, its maps as one image with the
        raw values; then the colour bars, one per row of maps.

    Shape
    -----
    image (C, H, W) -> rows of maps (C_l, H_l, W_l), one row per layer with 4-D output

    Examples
    --------
    >>> from minicnn import Conv2DVolume, Flatten, MaxPool2D, ReLU, Sequential
    >>> model = Sequential(Conv2DVolume(3, 4, 3, rng=np.random.default_rng(0)), ReLU(), MaxPool2D(2), Flatten())
    >>> fig = feature_maps(model, np.zeros((3, 8, 8), np.float32))
    >>> [a.get_ylabel().split("\\n")[0] for a in fig.axes[:4]]  # the RGB image, then the rows of maps
    ['input', '0 Conv2DVolume', '1 ReLU', '2 MaxPool2D']
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
        raise ValueError(
            f"{owner}: image has shape {image.shape}; expected one image (C, H, W){hint.get(image.ndim, '')}"
        )
    if max_maps is not None and (isinstance(max_maps, bool) or not isinstance(max_maps, int) or max_maps < 1):
        raise ValueError(f"{owner}: max_maps={max_maps!r}; expected a positive int (e.g. 16) or None for all maps")
    if isinstance(per_row, bool) or not isinstance(per_row, int) or per_row < 1:
        raise ValueError(f"{owner}: per_row={per_row!r}; expected a positive int (e.g. 16)")

    trace = getattr(model, "trace", None)
    if callable(trace):  # a mismatch named here, with the fix, rather than by the layer deep inside
        try:
            trace((1, *image.shape))
        except ValueError as exc:
            raise ValueError(
                f"{owner}: image of shape {image.shape} does not fit the model: {exc}; pass one input (C, H, W) "
                "as the model's first layer takes it (what model.predict takes, without the batch axis)"
            ) from None

    rows = []  # (label, maps (C, H, W)) per shown layer
    with inference(model, *layers):  # eval mode, changing no layer: a pending backward stays intact
        x = image[None]
        for i, layer in enumerate(layers):
            x = layer.forward(x)
            if np.ndim(x) == 4:
                rows.append((f"{i} {type(layer).__name__}", np.asarray(x[0], np.float64)))

    rgb = image.shape[0] == 3
    panels = []  # (label, maps shown (C', H, W), which are one value, tiles per row, size) per row
    for k, (name, maps) in enumerate([("input", image.astype(np.float64)), *rows]):
        label, shown = f"{name}\n{_dims(maps.shape)}", maps[:max_maps]
        if k == 0 and rgb:
            panels.append((label, _stretch(image.transpose(1, 2, 0))[None], None, 1, 2.0))  # twice the size
            continue
        if len(shown) < len(maps):
            label += f"\n{len(shown)} of {len(maps)} shown"
        marked = None
        if k > 0:
            zero, flat = _constant_maps(shown)
            label += f"\n{int(zero.sum())} of {len(shown)} all 0" if zero.any() else ""
            label += f"\n{int(flat.sum())} constant" if flat.any() else ""
            marked = zero | flat
        one_image = k == 0 and len(shown) == 1  # a grey input: one tile, twice the size, as an RGB one
        panels.append((label, shown, marked, *((1, 2.0) if one_image else _tile_grid(len(shown), per_row))))
    # A row is as tall as its maps, and at least as tall as its label.
    heights = [
        max(_mosaic_height(shown, cols, size * MAP_INCHES), 0.11 * (label.count("\n") + 1))
        for label, shown, _, cols, size in panels
    ]
    # Labels and colour bars take about 1.7 inches; a little more height than the maps need keeps
    # every row as wide as the widest (limited by the width, not the height).
    fig, root = canvas(owner, ax, (per_row * MAP_INCHES + 1.7, 1.08 * sum(heights) + 0.13 * len(panels) + 0.9))
    axes = root.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for k, (a, (label, shown, marked, cols, _)) in enumerate(zip(axes, panels)):  # one row per layer
        a.set_anchor("W")  # maps line up on the left, whatever their count
        _hide_frame(a)
        a.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
        if k == 0 and rgb:
            a.imshow(shown[0], interpolation="nearest")
        elif k == 0:  # a grey (or many-channel) input: its channels on one grey scale
            lo, hi = float(shown.min()), float(shown.max())
            im = a.imshow(
                mosaic(shown, cols), cmap=_grey_cmap(), vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest"
            )
            colour_bar(root, im, a, "pixel", fontsize=6, pad=0.01, aspect=8)
        else:
            cmap, vmin, vmax = signed_scale(shown)
            im = a.imshow(mosaic(shown, cols), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            colour_bar(root, im, a, "", fontsize=6, pad=0.01, aspect=8)
            _mark_constant(a, marked, cols, *shown.shape[1:])
    truncated = any(len(maps) > len(maps[:max_maps]) for _, maps in rows) or len(image) > len(image[:max_maps])
    more = f" (at most {max_maps} maps per layer)" if truncated else ""
    root.suptitle(f"an image and its feature maps after each layer{more}", fontsize=9)
    root.supxlabel(
        "each row of maps on its own scale (its colour bar): white 0, red +, blue -\n"
        "hatched: a map that is one value for this image (all 0 after a ReLU: its filter found "
        "nothing here)",
        fontsize=7,
    )
    return finish(fig, path, dpi)
