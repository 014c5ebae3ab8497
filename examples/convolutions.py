"""The ideas of convolution, step by step, with minicnn.functional.

    python examples/convolutions.py
    python examples/convolutions.py --pictures examples/images   # also draw them (the plot extra)

1-D and 2-D sliding windows, convolution over a volume (an RGB image), several filters
stacked into an output volume, hand-made edge filters on a shapes image, a filter that
looks at one colour channel only, a filter that also slides along depth, and im2col.
With --pictures, the worked examples are drawn step by step with minicnn.plot, along with
edge filters that each look at one colour channel of a shapes image and the two-map
output volume they make, and an animated GIF of a window sliding over an edge.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _cli import nonnegative_int, output_folder, parser, run

from minicnn import Conv2DVolume
from minicnn.datasets import CLASSES, make_shapes
from minicnn.functional import conv1d, conv2d, conv3d, im2col

VERTICAL_EDGE = np.array([[1.0, 0.0, -1.0]] * 3)  # left minus right: responds to vertical edges
HORIZONTAL_EDGE = VERTICAL_EDGE.T  # top minus bottom: responds to horizontal edges

# The worked examples, small enough to check by hand: 5 inputs and a 3-tap filter, a 3x3 image
# and a 2x2 filter, a 3x3x3 volume and a 2x2x3 filter, and a 4-deep volume with a filter only
# 2 deep (so it slides along depth too).
SIGNAL, TAPS = np.array([1, 3, 2, 5, 4], np.float32), np.array([1, 0, -1], np.float32)
IMAGE, KERNEL = np.arange(1, 10, dtype=np.float32).reshape(3, 3), np.array([[1, 2], [3, 4]], np.float32)
VOLUME = np.array(
    [[[1, 2, 0], [0, 1, 3], [2, 0, 1]], [[0, 1, 1], [2, 0, 1], [1, 1, 0]], [[3, 0, 1], [1, 2, 0], [0, 1, 2]]],
    np.float32,
)
VOLUME_FILTER = np.array([[[1, 0], [0, 1]], [[0, -1], [1, 0]], [[1, 1], [0, 0]]], np.float32)
DEEP = np.array([[[1, 2], [0, 1]], [[2, 0], [1, 3]], [[0, 1], [2, 2]], [[3, 1], [0, 1]]], np.float32)
SHALLOW_FILTER = np.array([[[1, 0], [0, 1]], [[0, 1], [1, 0]]], np.float32)


def section(title: str) -> None:
    print(f"\n== {title} ==")


def edge_response(image: np.ndarray, kernel2d: np.ndarray) -> np.ndarray:
    """|response| of a 2-D edge kernel applied to every colour channel at once (a 3 x k x k filter)."""
    volume_filter = np.stack([kernel2d] * image.shape[0])
    return np.abs(conv3d(image, volume_filter)[0])


def where(response: np.ndarray) -> str:
    """Which rows/columns of a response map light up, as a short text."""
    cols = response.mean(axis=0)
    rows = response.mean(axis=1)
    return (
        f"strongest column {int(cols.argmax())}, strongest row {int(rows.argmax())}; "
        f"column profile peak/mean {cols.max() / cols.mean():.1f}, row profile {rows.max() / rows.mean():.1f}"
    )


def main(argv=None) -> int:
    cli = parser("Convolution, step by step.")
    cli.add_argument("--seed", type=nonnegative_int, default=0, help="which shapes images and random filters to use")
    cli.add_argument(
        "--pictures",
        type=output_folder,
        metavar="OUT",
        help="also draw the ideas into this folder (needs matplotlib: the plot extra)",
    )
    args = cli.parse_args(argv)

    section("1-D: a window of k slides over n inputs, giving n - k + 1 outputs")
    x, w = SIGNAL, TAPS
    print(f"x = {x}, w = {w}")
    for i in range(len(x) - len(w) + 1):
        print(f"  out[{i}] = {x[i : i + 3]} . {w} = {x[i : i + 3] @ w:+.0f}")
    print(f"conv1d(x, w) = {conv1d(x, w)}  (5 - 3 + 1 = 3 outputs; no kernel flip)")

    section("2-D: an n x n image and a k x k filter give (n-k+1) x (n-k+1)")
    image, f = IMAGE, KERNEL
    print(f"image =\n{image}\nfilter =\n{f}")
    print(f"conv2d(image, filter) =\n{conv2d(image, f)}\n(top-left: 1*1 + 2*2 + 4*3 + 5*4 = 37)")

    X, y = make_shapes(2 * len(CLASSES), seed=args.seed)
    rgb = X[0]
    section("Convolution over volume: an RGB image is a 3 x H x W volume")
    print(
        f"a 3x3x3 volume and a 2x2x3 filter (one 2x2 slice per channel) give one 2x2 map:\n"
        f"{conv3d(VOLUME, VOLUME_FILTER)[0]}"
    )
    rng = np.random.default_rng(args.seed)
    filt = rng.standard_normal((3, 3, 3)).astype(np.float32)
    one_map = conv3d(rgb, filt)
    print(f"image {rgb.shape} * filter {filt.shape} (spans all 3 channels) -> {one_map.shape}: one 2-D map")

    section("Several filters: F filters give F maps, stacked into the output volume")
    filters = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    stacked = np.concatenate([conv3d(rgb, f) for f in filters])
    print(f"4 filters -> output volume {stacked.shape}")
    layer = Conv2DVolume(3, 4, 3, bias=False)
    layer.weight.data[...] = filters
    same = np.allclose(layer(rgb[None])[0], stacked, atol=1e-5)
    print(f"Conv2DVolume(3, 4, 3) with the same filters gives the same volume: {same}")

    section("Hand-made edge filters on shapes images")
    print(f"vertical-edge filter:\n{VERTICAL_EDGE}\nhorizontal-edge filter: its transpose")
    for name in ("vertical_edge", "horizontal_edge"):
        img = X[list(y).index(CLASSES.index(name))]
        v, h = edge_response(img, VERTICAL_EDGE), edge_response(img, HORIZONTAL_EDGE)
        print(f"a '{name}' image: mean |response| vertical filter {v.mean():.3f}, horizontal filter {h.mean():.3f}")
        print(f"  vertical filter: {where(v)}")
        print(f"  horizontal filter: {where(h)}")

    section("A filter that looks at one colour channel only")
    red_only = np.zeros((3, 3, 3), np.float32)
    red_only[0] = VERTICAL_EDGE  # weights for G and B are zero: it is blind to them
    img = X[list(y).index(CLASSES.index("vertical_edge"))]
    without_red = img.copy()
    without_red[0] = 0.5
    print(
        f"red-only vertical-edge filter: mean |response| {np.abs(conv3d(img, red_only)).mean():.3f}; "
        f"with the red channel made flat: {np.abs(conv3d(without_red, red_only)).mean():.3f}"
    )

    section("A true 3-D convolution: a filter shallower than the volume slides along depth too")
    print(
        f"a (4, 2, 2) volume and a (2, 2, 2) filter: conv3d = {conv3d(DEEP, SHALLOW_FILTER).ravel()} "
        "(one sum per depth position 0, 1, 2)"
    )
    deep = rng.standard_normal((5, 8, 8)).astype(np.float32)
    print(
        f"volume {deep.shape} * filter (2, 3, 3) -> {conv3d(deep, np.ones((2, 3, 3), np.float32)).shape} "
        "(5 - 2 + 1 = 4 slices)"
    )

    section("im2col: every window becomes a column, the convolution one matrix product")
    tiny = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    cols = im2col(tiny, 2)[0]
    print(f"image\n{tiny[0, 0]}\nim2col with a 2x2 window -> {cols.shape} (one column per output):\n{cols}")
    print(
        f"[1, 2, 3, 4] @ cols = {f.reshape(-1) @ cols}  = conv2d(image, filter).ravel() = "
        f"{conv2d(tiny[0, 0], f).ravel()}"
    )

    if args.pictures is not None:
        written = draw_pictures(args.pictures, args.seed)  # without matplotlib: run() says how to get it
        section(f"Pictures in {args.pictures}")
        for path, what in written:
            print(f"  {path.name}: {what}")
    return 0


def edge_image(seed: int) -> tuple[np.ndarray, str]:
    """A filled square whose vertical edges show in red and horizontal ones in blue.

    Of the filled squares in a batch of shapes images, the one on which a red-only
    vertical-edge filter and a blue-only horizontal one both respond most strongly
    (the weaker of the two peak responses is largest).
    """
    X, y = make_shapes(20 * len(CLASSES), seed=seed)
    squares = X[y == CLASSES.index("square")]
    # Foreground: pixels far from the colour of the border. A filled square covers much more
    # area per pixel of outline than a square drawn as a thin outline does.
    border = np.concatenate([squares[:, :, 0], squares[:, :, -1], squares[:, :, :, 0], squares[:, :, :, -1]], axis=2)
    fg = np.linalg.norm(squares - np.median(border, axis=2)[:, :, None, None], axis=1) > 0.25
    inner = fg[:, 1:-1, 1:-1] & fg[:, :-2, 1:-1] & fg[:, 2:, 1:-1] & fg[:, 1:-1, :-2] & fg[:, 1:-1, 2:]
    filled = fg.sum(axis=(1, 2)) > 2 * (fg.sum(axis=(1, 2)) - inner.sum(axis=(1, 2)))  # area > 2 x outline
    peaks = np.array(
        [
            min(np.abs(conv2d(img[0], VERTICAL_EDGE)).max(), np.abs(conv2d(img[2], HORIZONTAL_EDGE)).max())
            for img in squares
        ]
    )
    best = int(np.argmax(np.where(filled, peaks, -1.0)))
    return squares[best], f"square {best} of make_shapes({len(X)}, seed={seed})"


def draw_pictures(out: Path, seed: int) -> list[tuple[Path, str]]:
    """Draw every idea with minicnn.plot into ``out``; return (file, what it shows) pairs."""
    from minicnn import plot

    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(name: str, what: str) -> Path:
        written.append((out / name, what))
        return out / name

    plot.convolution_steps(SIGNAL, TAPS, path=save("conv1d_steps.png", "a 3-tap filter sliding along 5 inputs"))
    plot.convolution_steps(IMAGE, KERNEL, path=save("conv2d_steps.png", "a 2x2 filter sliding over a 3x3 image"))
    plot.convolution_steps(
        VOLUME, VOLUME_FILTER, path=save("conv_volume_steps.png", "a 2x2x3 filter over a 3x3x3 volume: one map")
    )
    plot.convolution_steps(
        DEEP, SHALLOW_FILTER, path=save("conv_depth_steps.png", "a filter 2 deep sliding along a volume 4 deep")
    )

    image, which = edge_image(seed)
    bank = np.zeros((2, 3, 3, 3), np.float32)
    bank[0, 0] = VERTICAL_EDGE  # looks at the red channel only
    bank[1, 2] = HORIZONTAL_EDGE  # looks at the blue channel only
    plot.output_volume(
        image,
        bank,
        path=save("edge_channels.png", f"vertical edges in red, horizontal edges in blue, stacked ({which})"),
    )

    step_edge = np.zeros((5, 5), np.float32)
    step_edge[:, :2] = 1  # bright on the left: an edge the vertical-edge filter answers with +3
    plot.animate_convolution(
        step_edge,
        VERTICAL_EDGE,
        save("conv2d_sliding.gif", "a vertical-edge filter sliding over an edge, one frame per output"),
    )
    return written


if __name__ == "__main__":
    raise SystemExit(run(main))
