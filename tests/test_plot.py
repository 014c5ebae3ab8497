"""minicnn.plot: every picture has the panels, numbers and pixels it promises, and costs nothing
to users who never draw (importing minicnn never imports matplotlib)."""

import importlib.util
import itertools
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import reference as ref

from minicnn import Conv2DVolume, ConvTranspose2D, Dense, Flatten, Layer, MaxPool2D, ReLU, Sequential, plot

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_matplotlib = pytest.mark.skipif(not HAS_MATPLOTLIB, reason="pictures need the plot extra (matplotlib)")
DPI = 40  # small files: the tests check content, not looks

# The worked examples of issue 11, exactly these sizes: 5 inputs and 3 taps, a 3x3 image and a
# 2x2 filter, a 3x3x3 volume and a 2x2x3 filter (and a filter shallower than its volume).
X1, W1 = [1.0, 3.0, 2.0, 5.0, 4.0], [1.0, 0.0, -1.0]
X2, W2 = np.arange(1.0, 10.0).reshape(3, 3), [[1.0, 2.0], [3.0, 4.0]]
X3 = np.array(
    [[[1, 0, 2], [0, 1, 1], [2, 1, 0]], [[0, 1, 1], [1, 2, 0], [1, 0, 1]], [[2, 1, 0], [1, 0, 1], [0, 2, 1]]],
    np.float32,
)
W3 = np.array([[[1, 0], [0, -1]], [[0, 1], [1, 0]], [[-1, 0], [0, 1]]], np.float32)
XD, WD = np.arange(16.0).reshape(4, 2, 2) % 5, np.array([[[1, 0], [0, 1]], [[0, -1], [-1, 0]]])
WORKED = [(X1, W1), (X2, W2), (X3, W3), (XD, WD)]
WORKED_IDS = ["1d-5-by-3", "2d-3x3-by-2x2", "volume-3x3x3-by-2x2x3", "depth-4x2x2-by-2x2x2"]


def naive_steps(x, w):
    """Every output of a valid cross-correlation, by loops: {(d, i, j): (window * w, sum)}."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    x, w = x.reshape((1,) * (3 - x.ndim) + x.shape), w.reshape((1,) * (3 - w.ndim) + w.shape)
    (m, n, n2), (r, k, k2) = x.shape, w.shape
    steps = {}
    for d in range(m - r + 1):
        for i in range(n - k + 1):
            for j in range(n2 - k2 + 1):
                products = x[d : d + r, i : i + k, j : j + k2] * w
                steps[d, i, j] = products, products.sum()
    return steps


def number_cells(ax, width):
    """{(d, i, j): text} for the numbers written in a cell panel whose slices are ``width`` wide
    (cell (d, i, j) is centred at x = d * (width + 0.5) + j, y = i, as convolution_steps documents)."""
    cells = {}
    for t in ax.texts:
        try:
            float(t.get_text())
        except ValueError:
            continue  # an operator or a slice name
        x, y = t.get_position()
        d = int((x + 0.5) // (width + 0.5))
        j = x - d * (width + 0.5)
        assert j == round(j), f"{t.get_text()!r} at x={x} is not centred on a cell"
        cells[d, round(y), round(j)] = t.get_text()
    return cells


def png_pixels(path):
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("L"), dtype=np.float64), im.size


def check_png(fig, path, dpi=DPI):
    """The file is a PNG of the figure's size at ``dpi``, with something drawn on it."""
    pixels, size = png_pixels(path)
    width, height = fig.get_size_inches() * dpi
    assert abs(size[0] - width) <= 1 and abs(size[1] - height) <= 1, (size, width, height)  # whole pixels
    assert pixels.var() > 50, f"{path} looks blank (pixel variance {pixels.var():.1f})"


def small_model(rng, in_channels=3):
    return Sequential(
        Conv2DVolume(in_channels, 4, 3, rng=rng), ReLU(), MaxPool2D(2), Flatten(), Dense(4 * 3 * 3, 2, rng=rng)
    )


# -- no matplotlib needed to import; a clear error without it ---------------------------------


def test_importing_minicnn_and_minicnn_plot_never_imports_matplotlib():
    code = textwrap.dedent("""
        import sys
        import minicnn
        assert "matplotlib" not in sys.modules, "import minicnn imported matplotlib"
        import minicnn.plot
        from minicnn import plot
        assert "matplotlib" not in sys.modules, "import minicnn.plot imported matplotlib"
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@needs_matplotlib
def test_drawing_leaves_the_users_backend_alone_and_never_starts_pyplot():
    code = textwrap.dedent("""
        import sys
        import matplotlib
        matplotlib.use("svg")
        from minicnn import plot
        plot.convolution_steps([1, 2, 3], [1, 1])
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        assert "matplotlib.pyplot" not in sys.modules
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


CALLS = {
    "filters": lambda: plot.filters(Conv2DVolume(3, 2, 3)),
    "feature_maps": lambda: plot.feature_maps(Sequential(ReLU()), np.zeros((3, 4, 4))),
    "history": lambda: plot.history({"loss": [1.0]}),
    "confusion": lambda: plot.confusion([0], [0], ["a"]),
    "convolution_steps": lambda: plot.convolution_steps([1, 2], [1]),
    "animate_convolution": lambda: plot.animate_convolution([1, 2], [1], "x.gif"),
    "output_volume": lambda: plot.output_volume(np.zeros((1, 3, 3)), np.zeros((1, 1, 2, 2))),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_without_matplotlib_every_function_says_how_to_install_it(name, monkeypatch):
    # None in sys.modules makes any import of that module fail, as if it were not installed.
    for module in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[plot\]"') as info:
        CALLS[name]()
    assert name in str(info.value)


@needs_matplotlib
def test_animate_without_pillow_says_so(monkeypatch, tmp_path):
    # matplotlib itself loaded, only Pillow missing
    import matplotlib.animation
    import matplotlib.figure  # noqa: F401

    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match="Pillow.*pip install pillow"):
        plot.animate_convolution([1, 2, 3], [1, 1], tmp_path / "a.gif")
    assert not (tmp_path / "a.gif").exists()


PICTURES = {
    "filters": lambda path: plot.filters(Conv2DVolume(3, 4, 3, rng=np.random.default_rng(0)), path=path, dpi=DPI),
    "feature_maps": lambda path: plot.feature_maps(
        small_model(np.random.default_rng(0)), np.random.default_rng(1).random((3, 8, 8)), path=path, dpi=DPI
    ),
    "history": lambda path: plot.history(HISTORY, path=path, dpi=DPI),
    "confusion": lambda path: plot.confusion([0, 1, 1, 2], [0, 1, 2, 2], ["a", "b", "c"], path=path, dpi=DPI),
    "convolution_steps": lambda path: plot.convolution_steps(X2, W2, path=path, dpi=DPI),
    "output_volume": lambda path: plot.output_volume(
        np.random.default_rng(0).random((3, 6, 6)), np.ones((2, 3, 3, 3)), path=path, dpi=DPI
    ),
}


@needs_matplotlib
@pytest.mark.parametrize("name", list(PICTURES))
def test_every_picture_saves_a_png_of_its_size_that_is_not_blank(name, tmp_path):
    path = tmp_path / f"{name}.png"
    fig = PICTURES[name](path)
    check_png(fig, path)


@needs_matplotlib
def test_the_blank_check_can_fail(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.savefig(tmp_path / "blank.png", dpi=DPI)
    with pytest.raises(AssertionError, match="looks blank"):
        check_png(fig, tmp_path / "blank.png")


# -- convolution_steps and animate_convolution -----------------------------------------------


@needs_matplotlib
@pytest.mark.parametrize(("x", "w"), WORKED, ids=WORKED_IDS)
def test_convolution_steps_writes_each_sum_in_its_output_cell(x, w):
    steps = naive_steps(x, w)
    fig = plot.convolution_steps(x, w)
    assert len(fig.axes) == 4 * len(steps)  # input, filter, products, output for each output
    ow = max(j for _, _, j in steps) + 1
    for p, (products, total) in enumerate(steps.values()):
        _, _, ax_prod, ax_out = fig.axes[4 * p : 4 * p + 4]
        written = number_cells(ax_out, ow)
        # Row p shows the outputs so far: every earlier sum in its own cell, and this one.
        assert written == {c: f"{s:.0f}" for c, (_, s) in list(steps.items())[: p + 1]}
        assert f"sum = {total:.0f}" in ax_prod.get_title()
        assert sorted(float(v) for v in number_cells(ax_prod, products.shape[2]).values()) == sorted(products.ravel())


@needs_matplotlib
def test_convolution_steps_outlines_the_window_on_every_slice_it_covers():
    from matplotlib.patches import Rectangle

    fig = plot.convolution_steps(XD, WD, dpi=DPI)  # 4 slices, a filter 2 deep: 3 steps
    for p in range(3):
        outlines = [a for a in fig.axes[4 * p].patches if isinstance(a, Rectangle)]
        # window slices d = p and p + 1, each at x = d * (2 + 0.5) - 0.5 (2 cells wide, half a cell apart)
        assert sorted(o.get_x() for o in outlines) == [2.5 * p - 0.5, 2.5 * (p + 1) - 0.5]


@needs_matplotlib
def test_convolution_steps_writes_fractions_with_two_decimals(rng):
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((2, 2))
    fig = plot.convolution_steps(x, w, dpi=DPI)
    steps = naive_steps(x, w)
    written = number_cells(fig.axes[-1], 3)
    assert written.keys() == steps.keys()
    for cell, (_, total) in steps.items():
        assert abs(float(written[cell]) - total) <= 0.005 + 1e-6
        assert written[cell] == f"{total + 0.0:.2f}"


@needs_matplotlib
def test_convolution_steps_draws_into_a_users_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert plot.convolution_steps(X1, W1, ax=right) is fig
    assert left in fig.axes and right not in fig.axes
    assert len(fig.subfigs) == 1 and len(fig.subfigs[0].axes) == 12


@needs_matplotlib
def test_animate_convolution_writes_one_frame_per_output(tmp_path):
    from PIL import Image

    fig = plot.animate_convolution(X2, W2, tmp_path / "slide.gif", dpi=DPI)
    assert len(fig.axes) == 4
    assert number_cells(fig.axes[3], 2) == {(0, 0, 0): "37", (0, 0, 1): "47", (0, 1, 0): "67", (0, 1, 1): "77"}
    with Image.open(tmp_path / "slide.gif") as im:
        assert im.format == "GIF"
        assert im.n_frames == 4
        assert np.allclose(im.size, fig.get_size_inches() * DPI, atol=1)  # whole pixels
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("L"), dtype=np.float64))
    assert all(f.var() > 50 for f in frames)
    assert all(np.any(a != b) for a, b in itertools.pairwise(frames))  # the window moves


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: plot.convolution_steps([1, 2, 3], [[1, 1]]), ValueError, r"x has shape \(3,\) and w \(1, 2\)"),
        (lambda: plot.convolution_steps([1, 2], [1, 1, 1]), ValueError, r"does not fit in x of shape \(2,\)"),
        (
            lambda: plot.convolution_steps(np.ones((12, 12)), np.ones((2, 2))),
            ValueError,
            "121 outputs.*animate_convolution",
        ),
        (lambda: plot.convolution_steps([1, np.nan], [1]), ValueError, "finite"),
        (lambda: plot.convolution_steps([1, 2], [1], path=3), TypeError, "path is a int"),
        (lambda: plot.animate_convolution([1, 2], [1], "slide.png"), ValueError, r"must end in \.gif"),
        (lambda: plot.animate_convolution([1, 2], [1], "a.gif", fps=0), ValueError, "fps=0"),
    ],
    ids=["ndim-mismatch", "filter-too-big", "too-many-rows", "nan", "bad-path", "not-gif", "fps-zero"],
)
@needs_matplotlib
def test_convolution_pictures_reject_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# -- filters, feature_maps ---------------------------------------------------------------------


def colour_bars(fig):
    """The colour bars of ``fig``: the Colorbar of every image that has one."""
    return [im.colorbar for a in fig.axes for im in a.images if im.colorbar is not None]


def map_rows(fig):
    """The rows of feature_maps, top to bottom: the Axes labelled with a layer (not the colour bars)."""
    bars = {bar.ax for bar in colour_bars(fig)}
    return [a for a in fig.axes if a.get_ylabel() and a not in bars]


def tiles_of(image, count, h, w, per_row):
    """The ``count`` (h, w) tiles of a minicnn.plot mosaic (1-pixel gaps), row by row: the oracle
    that cuts the picture back into what was drawn."""
    image = np.asarray(image)
    return np.stack(
        [
            image[
                (t // per_row) * (h + 1) : (t // per_row) * (h + 1) + h,
                (t % per_row) * (w + 1) : (t % per_row) * (w + 1) + w,
            ]
            for t in range(count)
        ]
    )


@needs_matplotlib
@pytest.mark.parametrize(("in_channels", "count"), [(3, 5), (1, 4), (2, 3)], ids=["rgb", "grey", "two-channel"])
def test_filters_draws_a_column_per_filter_with_a_row_per_channel_slice(in_channels, count, rng):
    conv = Conv2DVolume(in_channels, count, (3, 2), rng=rng)
    fig = plot.filters(conv)
    slices = fig.axes[1] if in_channels == 3 else fig.axes[0]
    assert [t.get_text() for t in slices.get_yticklabels()] == (
        ["R", "G", "B"] if in_channels == 3 else [f"in {c}" for c in range(in_channels)]
    )
    numbered = fig.axes[0]  # the filter indices head the top row
    assert [t.get_text() for t in numbered.get_xticklabels()] == [str(i) for i in range(count)]
    image = slices.images[0].get_array()
    drawn = tiles_of(image, in_channels * count, 3, 2, count)  # row c: every filter's slice c
    np.testing.assert_array_equal(drawn, conv.weight.data.transpose(1, 0, 2, 3).reshape(-1, 3, 2))


@needs_matplotlib
def test_a_picture_for_a_missing_folder_is_refused_by_name_before_drawing(tmp_path):
    # matplotlib's late "[Errno 2] No such file or directory" named no function and gave no fix
    with pytest.raises(FileNotFoundError, match=r"animate_convolution: cannot write .*does not exist; create it"):
        plot.animate_convolution(X2, W2, tmp_path / "missing" / "slide.gif")
    with pytest.raises(FileNotFoundError, match=r"history: cannot write .*os.makedirs"):
        plot.history({"loss": [1.0]}, path=tmp_path / "missing" / "history.png")
    assert not (tmp_path / "missing").exists()


@needs_matplotlib
def test_filters_of_a_transposed_conv_name_its_rows_output_channels(rng):
    # its weight is (C_in, C_out, KH, KW): the rows were labelled "in 0".. and the title said "3 filters of 5x3x3"
    fig = plot.filters(ConvTranspose2D(3, 5, 3, rng=rng))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [f"out {c}" for c in range(5)]
    assert fig.texts[0].get_text().startswith("3 input channels' kernels onto 5 outputs, 3x3")
    assert "each output's slice" in fig.texts[1].get_text()


@needs_matplotlib
def test_filters_share_one_symmetric_scale_given_by_a_colour_bar(rng):
    conv = Conv2DVolume(3, 4, 3, rng=rng)
    conv.weight.data[2] *= 0.1  # a weak filter must look weak, not stretched to full contrast
    fig = plot.filters(conv)
    limit = np.abs(conv.weight.data).max()
    (bar,) = colour_bars(fig)
    assert bar.ax.get_ylabel() == "weight"
    assert (bar.vmin, bar.vmax) == pytest.approx((-limit, limit))
    assert [t.get_text() for t in bar.ax.get_yticklabels()] == [f"{-limit:.2g}", "0", f"{limit:.2g}"]
    caption = fig.get_supxlabel()
    assert "grey 0" in caption and "R, G, B slices as its red, green, blue" in caption
    assert "one scale" in fig.get_suptitle()
    colour = np.asarray(fig.axes[0].images[0].get_array())
    weak = tiles_of(colour[..., :3], 4, 3, 3, 4)[2]
    np.testing.assert_allclose(weak, 0.5 + 0.5 * conv.weight.data[2].transpose(1, 2, 0) / limit, atol=1e-6)
    assert np.abs(weak - 0.5).max() < 0.06  # near grey: a tenth of the strongest weight


@needs_matplotlib
def test_filters_wrap_into_bands_of_max_cols(rng):
    conv = Conv2DVolume(1, 10, 3, rng=rng)
    fig = plot.filters(conv, max_cols=4)
    bands = fig.axes[:3]
    assert [[t.get_text() for t in a.get_xticklabels()] for a in bands] == [
        ["0", "1", "2", "3"],
        ["4", "5", "6", "7"],
        ["8", "9"],
    ]
    np.testing.assert_array_equal(tiles_of(bands[2].images[0].get_array(), 2, 3, 3, 2), conv.weight.data[8:, 0])
    limit = np.abs(conv.weight.data).max()
    assert all(a.images[0].norm.vmax == pytest.approx(limit) for a in bands)  # every band on the one scale
    assert len(colour_bars(fig)) == 1


@needs_matplotlib
def test_filters_rgb_tiles_show_the_weights_as_colour_with_zero_grey():
    conv = Conv2DVolume(3, 2, 2, rng=np.random.default_rng(0))
    conv.weight.data[...] = 0
    conv.weight.data[0, 0, 0, 0] = 2.0  # filter 0: one strong red weight
    conv.weight.data[0, 2, 1, 1] = -1.0  # and a weaker negative blue one
    conv.weight.data[1, 1, 0, 0] = 0.5  # filter 1: a weak green one, on the same scale
    fig = plot.filters(conv)
    tile0, tile1 = tiles_of(np.asarray(fig.axes[0].images[0].get_array())[..., :3], 2, 2, 2, 2)
    np.testing.assert_allclose(tile0[0, 0], [1.0, 0.5, 0.5])  # full red
    np.testing.assert_allclose(tile0[1, 1], [0.5, 0.5, 0.25])  # half as strong, negative blue
    np.testing.assert_allclose(tile0[0, 1], [0.5, 0.5, 0.5])  # zero: grey
    np.testing.assert_allclose(tile1[0, 0], [0.5, 0.625, 0.5])  # a quarter of the strongest weight


@needs_matplotlib
def test_filters_refuses_a_model_and_names_the_layer_to_pass(rng):
    with pytest.raises(TypeError, match=r"pass one of its conv layers, e.g. model\[0\]"):
        plot.filters(small_model(rng))
    with pytest.raises(TypeError, match="without a 4-D .weight"):
        plot.filters(Dense(2, 3))


@needs_matplotlib
@pytest.mark.parametrize(
    ("in_channels", "max_maps", "tiles"),
    [(3, 8, 4), (3, 2, 2), (1, None, 4)],
    ids=["rgb", "max-maps-2", "grey-all-maps"],
)
def test_feature_maps_shows_the_input_then_each_image_shaped_layer(in_channels, max_maps, tiles, rng):
    model = small_model(rng, in_channels)
    image = rng.random((in_channels, 8, 8), dtype=np.float32)
    fig = plot.feature_maps(model, image, max_maps=max_maps)
    rows = map_rows(fig)
    # the input, then conv, ReLU, pool (Flatten and Dense are not images)
    assert [a.get_ylabel().split("\n")[0] for a in rows] == ["input", "0 Conv2DVolume", "1 ReLU", "2 MaxPool2D"]
    conv_panel = np.asarray(rows[1].images[0].get_array())
    assert conv_panel.shape == (6, tiles * 6 + tiles - 1)  # `tiles` 6x6 maps, 1-pixel gaps
    # The maps are the model's own outputs, as they are: one colour scale for the row.
    np.testing.assert_allclose(tiles_of(conv_panel, tiles, 6, 6, tiles), model[0](image[None])[0, :tiles], atol=1e-6)
    if max_maps == 2:
        assert rows[1].get_ylabel().endswith("\n2 of 4 shown")  # a subset is stated
    else:
        assert "shown" not in rows[1].get_ylabel()


@needs_matplotlib
def test_feature_maps_give_each_row_one_colour_scale_with_its_colour_bar(rng):
    model = small_model(rng)
    image = rng.random((3, 8, 8), dtype=np.float32)
    fig = plot.feature_maps(model, image)
    rows = map_rows(fig)[1:]  # conv, ReLU, pool
    conv_out = model[0](image[None])[0]
    relu_out = np.maximum(conv_out, 0)
    for a, maps in zip(rows, (conv_out, relu_out, model[2](relu_out[None])[0])):
        (im,) = a.images
        bar = im.colorbar
        assert bar is not None, a.get_ylabel()
        limit = np.abs(maps).max()
        # signed maps: -limit..+limit with 0 white; maps >= 0 (after the ReLU): 0..limit
        expected = (-limit, limit) if maps.min() < 0 else (0.0, limit)
        assert (im.norm.vmin, im.norm.vmax) == pytest.approx(expected, rel=1e-6)
        assert (bar.vmin, bar.vmax) == pytest.approx(expected, rel=1e-6)
        np.testing.assert_allclose(im.cmap(im.norm(0.0)), (0.97, 0.97, 0.97, 1.0), atol=0.03)  # 0 is white
    assert "its colour bar" in fig.get_supxlabel() and "white 0, red +, blue -" in fig.get_supxlabel()


@needs_matplotlib
def test_feature_maps_hatch_and_count_the_maps_that_are_one_value(rng):
    conv = Conv2DVolume(3, 5, 3, rng=rng)
    conv.weight.data[...] = np.abs(conv.weight.data)  # positive maps of a positive image, but
    conv.weight.data[1] *= -1  # map 1 negative everywhere:
    conv.bias.data[1] = -0.1  # ReLU makes map 1 all 0
    conv.weight.data[3] = 0  # map 3: its bias everywhere
    conv.bias.data[3] = 0.25
    model = Sequential(conv, ReLU())
    fig = plot.feature_maps(model, rng.random((3, 8, 8), dtype=np.float32) + 0.1)
    conv_row, relu_row = map_rows(fig)[1:]
    assert conv_row.get_ylabel() == "0 Conv2DVolume\n5x6x6\n1 constant"
    assert relu_row.get_ylabel() == "1 ReLU\n5x6x6\n1 of 5 all 0\n1 constant"
    for a, marked in ((conv_row, [3]), (relu_row, [1, 3])):
        (hatch,) = [c for c in a.collections if c.get_gid() == "constant maps"]
        assert hatch.get_hatch() == "////"
        corners = sorted(path.get_extents().x0 for path in hatch.get_paths())
        assert corners == pytest.approx([t * 7 - 0.5 for t in marked])  # tile t starts at x = 7 t


@needs_matplotlib
def test_feature_maps_show_every_map_by_default_in_rows_of_equal_width(rng):
    model = Sequential(Conv2DVolume(3, 6, 3, rng=rng), Conv2DVolume(6, 40, 3, rng=rng))
    image = rng.random((3, 9, 9), dtype=np.float32)
    fig = plot.feature_maps(model, image, per_row=4)
    few, many = map_rows(fig)[1:]
    # 6 maps: more than 4, so a row of up to 8 at half size; 40 maps: 5 rows of 8
    assert np.asarray(few.images[0].get_array()).shape == (7, 6 * 8 - 1)
    assert np.asarray(many.images[0].get_array()).shape == (5 * 6 - 1, 8 * 6 - 1)
    assert "shown" not in many.get_ylabel()
    fig = plot.feature_maps(model, image, max_maps=16)
    many = map_rows(fig)[-1]
    assert many.get_ylabel() == "1 Conv2DVolume\n40x5x5\n16 of 40 shown"
    assert "(at most 16 maps per layer)" in fig.get_suptitle()
    with pytest.raises(ValueError, match="per_row=0; expected a positive int"):
        plot.feature_maps(model, image, per_row=0)


@needs_matplotlib
def test_feature_maps_leaves_the_model_as_it_was(rng):
    model = Sequential(Conv2DVolume(3, 2, 3, rng=rng), ReLU(), Sequential(MaxPool2D(2), ReLU()))
    model[2][1].eval()  # a mix of modes, each of which must come back
    before = [(layer, layer.training) for layer in (model, model[0], model[1], model[2], model[2][0], model[2][1])]
    weights = model.state_dict()
    seen = []

    class Spy(ReLU):
        def forward(self, x):
            seen.append(self.training)
            return super().forward(x)

    model.layers.append(Spy())
    plot.feature_maps(model, rng.random((3, 6, 6), dtype=np.float32))
    assert seen == [False]  # drawn in eval mode
    assert [layer.training for layer, _ in before] == [flag for _, flag in before]
    assert model.layers[-1].training is True
    assert all(np.array_equal(v, model.state_dict()[k]) for k, v in weights.items())


@needs_matplotlib
def test_feature_maps_restores_the_modes_when_a_layer_fails(rng):
    model = Sequential(Conv2DVolume(3, 2, 3, rng=rng), Dense(5, 2, rng=rng))
    with pytest.raises(ValueError):
        plot.feature_maps(model, rng.random((3, 6, 6), dtype=np.float32))
    assert model.training and model[0].training and model[1].training


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((1, 3, 8, 8)), r"for a batch of one, pass image\[0\]"),
        (np.zeros((8, 8)), r"pass image\[None\]"),
    ],
    ids=["batch", "2d"],
)
@needs_matplotlib
def test_feature_maps_wants_one_image(image, match, rng):
    with pytest.raises(ValueError, match=match):
        plot.feature_maps(small_model(rng), image)


@needs_matplotlib
def test_feature_maps_names_itself_when_the_image_does_not_fit(rng):
    with pytest.raises(
        ValueError, match=r"feature_maps: image of shape \(1, 8, 8\) does not fit the model: .*1 channel, expected 3"
    ):
        plot.feature_maps(small_model(rng), np.zeros((1, 8, 8)))


@needs_matplotlib
def test_feature_maps_keeps_a_users_layers_pending_backward(rng):
    class Keep(Layer):  # a user's Layer that keeps its input on self in every forward
        def forward(self, x):
            self.x = x
            return 2.0 * x

        def backward(self, dout):
            return 2.0 * dout

    model = Sequential(Conv2DVolume(3, 2, 3, rng=rng), Keep())
    model.forward(rng.random((4, 3, 6, 6), dtype=np.float32))
    kept = model[1].x
    plot.feature_maps(model, rng.random((3, 6, 6), dtype=np.float32))
    assert model[1].x is kept  # not the picture's batch of one: the backward still gets its own input


@needs_matplotlib
def test_feature_maps_wants_a_sequential():
    with pytest.raises(TypeError, match="expected a Sequential"):
        plot.feature_maps(ReLU(), np.zeros((3, 4, 4)))


# -- history, confusion --------------------------------------------------------------------

HISTORY = {
    "loss": [1.5, 0.8, 0.5],
    "val_loss": [1.2, 0.9, 0.6],
    "accuracy": [0.4, 0.7, 0.9],
    "val_accuracy": [0.5, 0.7, 0.8],
    "lr": [0.1, 0.01, 0.001],
}


@needs_matplotlib
@pytest.mark.parametrize(
    ("keys", "titles"),
    [
        (["loss"], ["loss"]),
        (["loss", "val_loss", "accuracy", "val_accuracy"], ["loss", "accuracy"]),
        (list(HISTORY), ["loss", "accuracy", "learning rate"]),
    ],
    ids=["loss-only", "fit", "with-lr"],
)
def test_history_draws_a_panel_per_quantity_with_the_recorded_values(keys, titles):
    fig = plot.history({k: HISTORY[k] for k in keys})
    assert [a.get_title() for a in fig.axes] == titles
    for a, key in zip(fig.axes, ["loss", "accuracy", "lr"]):
        curves = {line.get_label(): list(line.get_ydata()) for line in a.lines}
        assert curves["train"] == HISTORY[key]
        assert list(a.lines[0].get_xdata()) == [1, 2, 3]  # epochs count from 1
        if "val_" + key in keys:
            assert curves["validation"] == HISTORY["val_" + key]


@needs_matplotlib
@pytest.mark.parametrize("epochs", [1, 2, 3, 8, 40], ids=lambda n: f"{n}-epochs")
def test_history_ticks_whole_epochs_also_after_one(epochs):
    history = {"loss": list(np.linspace(1, 0.5, epochs)), "val_accuracy": [0.5] * epochs, "lr": [0.1] * epochs}
    fig = plot.history(history)
    fig.draw_without_rendering()
    for a in fig.axes:
        lo, hi = a.get_xlim()
        shown = [t.get_text() for t, x in zip(a.get_xticklabels(), a.get_xticks()) if lo <= x <= hi]
        assert shown and all(text.isdigit() for text in shown), shown  # no 0.96 ... 1.04
        assert lo < 1 and hi > epochs  # room around the first and last point
        if epochs <= 3:
            assert shown == [str(e) for e in range(1, epochs + 1)]  # every epoch, nothing between


@pytest.mark.parametrize(
    ("history", "error", "match"),
    [
        ({"accuracy": [0.5]}, ValueError, "expected at least 'loss'"),
        ({"loss": []}, ValueError, "empty"),
        ({"loss": [1.0, 0.5], "val_loss": [1.0]}, ValueError, r"val_loss.*2 numbers, one per epoch"),
        ([1.0, 0.5], TypeError, "expected the dict that fit returns"),
    ],
    ids=["no-loss", "empty", "short-val", "a-list"],
)
@needs_matplotlib
def test_history_rejects_what_fit_never_returns(history, error, match):
    with pytest.raises(error, match=match):
        plot.history(history)


@needs_matplotlib
def test_confusion_counts_every_pair_and_gives_the_accuracy(rng):
    names = ["a", "b", "c"]
    y_true, y_pred = rng.integers(0, 3, 40), rng.integers(0, 3, 40)
    fig = plot.confusion(y_true, y_pred, names)
    (ax,) = fig.axes
    counts = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text()) for t in ax.texts}
    expected = {}
    for t, p in zip(y_true, y_pred):  # the loop oracle
        expected[t, p] = expected.get((t, p), 0) + 1
    assert counts == {(i, j): expected.get((i, j), 0) for i in range(3) for j in range(3)}
    assert ax.get_title() == f"accuracy {np.mean(y_true == y_pred):.2%} on 40 samples"
    assert [t.get_text() for t in ax.get_xticklabels()] == names


@needs_matplotlib
def test_confusion_counts_per_pixel_labels_pixel_by_pixel(rng):
    names = ["sky", "road", "car"]
    y_true, y_pred = rng.integers(0, 3, (4, 5, 6)), rng.integers(0, 3, (4, 5, 6))  # (N, H, W) label maps
    (ax,) = plot.confusion(y_true, y_pred, names).axes
    counts = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text()) for t in ax.texts}
    expected = {}
    for where in np.ndindex(y_true.shape):  # the loop oracle, pixel by pixel
        pair = (int(y_true[where]), int(y_pred[where]))
        expected[pair] = expected.get(pair, 0) + 1
    assert counts == {(i, j): expected.get((i, j), 0) for i in range(3) for j in range(3)}
    assert sum(counts.values()) == 120
    assert ax.get_title() == f"accuracy {np.mean(y_true == y_pred):.2%} on 120 pixels"
    with pytest.raises(
        ValueError,
        match=r"y_true has shape \(4, 5, 6\) and y_pred \(4, 3, 5, 6\).*"
        r"y_pred\.argmax\(axis=1\)",
    ):
        plot.confusion(y_true, np.eye(3, dtype=int)[y_pred].transpose(0, 3, 1, 2), names)
    with pytest.raises(ValueError, match=r"y_true has shape \(4, 5, 6\) and y_pred \(4, 30\)"):
        plot.confusion(y_true, y_pred.reshape(4, 30), names)


@needs_matplotlib
def test_confusion_draws_into_a_given_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    assert plot.confusion([0, 1], [1, 1], ["x", "y"], ax=ax) is fig
    assert fig.axes == [ax] and len(ax.texts) == 4


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([0, 3], [0, 1], ["a", "b"]), r"y_true holds classes 0..3; expected 0..1"),
        (([0, 1], [0], ["a", "b"]), "y_true has 2 labels and y_pred 1"),
        (([[0.1, 0.9]], [1], ["a", "b"]), r"argmax\(axis=1\)"),
        (([0], [0], "ab"), "expected a non-empty list of names"),
    ],
    ids=["out-of-range", "lengths", "scores", "names-string"],
)
@needs_matplotlib
def test_confusion_rejects_bad_labels(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        plot.confusion(*args)


# -- output_volume ---------------------------------------------------------------------------


@needs_matplotlib
def test_output_volume_draws_each_filters_map_and_their_stack(rng):
    x = rng.random((3, 7, 6), dtype=np.float32)
    w = np.zeros((2, 3, 3, 3), np.float32)
    w[0, 0] = [[1, 0, -1]] * 3  # vertical edges in channel 0 only
    w[1, 2] = w[0, 0].T  # horizontal edges in channel 2 only
    fig = plot.output_volume(x, w)
    assert len(fig.axes) == 1 + 3 + 2 * (3 + 1) + 1 + 2  # ... the stack, its colour bar, the key to the cells
    maps = [np.asarray(a.images[0].get_array()) for a in fig.axes if a.get_title().startswith("map ")]
    expected = ref.conv2d_forward(x[None].astype(np.float64), w.astype(np.float64), np.zeros(2))[0]
    np.testing.assert_allclose(np.stack(maps), expected, atol=1e-5)
    (stack,) = [a for a in fig.axes if a.get_title().startswith("output volume")]
    assert stack.get_title() == "output volume\n2x5x4" and len(stack.images) == 2
    # the filters' weights are written in their cells: filter 0's R slice reads 1 0 -1 on every row
    slice_r = next(a for a in fig.axes if a.get_title() == "filter 0, R slice")
    assert [t.get_text() for t in slice_r.texts] == ["1", "0", "-1"] * 3


@needs_matplotlib
def test_output_volume_says_what_its_colours_mean(rng):
    x = rng.random((3, 6, 6), dtype=np.float32)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    fig = plot.output_volume(x, w)
    (bar,) = colour_bars(fig)  # one scale for every map, and the stack, as they are drawn
    assert bar.ax.get_xlabel() == "map value: red +, blue -, white 0"
    maps = [a.images[0] for a in fig.axes if a.get_title().startswith("map ")]
    assert all((im.norm.vmin, im.norm.vmax) == (bar.vmin, bar.vmax) for im in maps)
    assert bar.vmax == pytest.approx(-bar.vmin) and bar.cmap.name == "RdBu_r"  # 0 in the white middle
    (legend,) = [a.get_legend() for a in fig.axes if a.get_legend() is not None]
    assert legend.get_title().get_text() == "filter cells"
    assert [t.get_text() for t in legend.get_texts()] == ["weight > 0", "weight 0", "weight < 0"]
    # the key's colours are the cells' colours: a positive weight's cell, a negative one's
    slice_r = next(a for a in fig.axes if a.get_title() == "filter 0, R slice")
    cells = np.asarray(slice_r.images[0].get_array())[::2, ::2, :3]  # two pixels per cell
    key = {t.get_text(): h.get_facecolor()[:3] for t, h in zip(legend.get_texts(), legend.legend_handles)}
    for (i, j), weight in np.ndenumerate(w[0, 0]):
        np.testing.assert_allclose(cells[i, j], key["weight > 0" if weight > 0 else "weight < 0"], atol=1e-6)


@pytest.mark.parametrize(
    ("x", "w", "match"),
    [
        (np.zeros((3, 5, 5)), np.zeros((3, 3, 3)), r"for one filter pass w\[None\]"),
        (np.zeros((3, 5, 5)), np.zeros((2, 1, 3, 3)), r"expected \(F, 3, KH, KW\)"),
        (np.zeros((5, 5)), np.zeros((1, 1, 3, 3)), r"expected one image \(C, H, W\)"),
    ],
    ids=["one-filter", "wrong-depth", "no-channels"],
)
@needs_matplotlib
def test_output_volume_rejects_mismatched_shapes(x, w, match):
    with pytest.raises(ValueError, match=match):
        plot.output_volume(x, w)


@needs_matplotlib
def test_a_picture_that_fails_midway_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    path = tmp_path / "history.png"
    plot.history(HISTORY, path=path, dpi=DPI)
    before = path.read_bytes()

    def interrupted(self, f, **kwargs):
        f.write(b"\x89PNG half")  # a start of a picture, then the Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", interrupted)
    with pytest.raises(KeyboardInterrupt):
        plot.history({"loss": [1.0, 0.5]}, path=path, dpi=DPI)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.png"]  # no temporary file left


@needs_matplotlib
def test_a_picture_without_a_suffix_is_a_png_at_exactly_that_name(tmp_path):
    path = tmp_path / "curves"
    plot.history(HISTORY, path=path, dpi=DPI)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves"]
