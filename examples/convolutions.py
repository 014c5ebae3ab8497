"""The ideas of convolution, step by step, with minicnn.functional.

    python examples/convolutions.py

1-D and 2-D sliding windows, convolution over a volume (an RGB image), several filters
stacked into an output volume, hand-made edge filters on a shapes image, a filter that
looks at one colour channel only, a filter that also slides along depth, and im2col.
"""

from __future__ import annotations

import argparse

import numpy as np

from minicnn import Conv2DVolume
from minicnn.datasets import CLASSES, make_shapes
from minicnn.functional import conv1d, conv2d, conv3d, im2col

VERTICAL_EDGE = np.array([[1.0, 0.0, -1.0]] * 3)  # left minus right: responds to vertical edges
HORIZONTAL_EDGE = VERTICAL_EDGE.T                  # top minus bottom: responds to horizontal edges


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
    return (f"strongest column {int(cols.argmax())}, strongest row {int(rows.argmax())}; "
            f"column profile peak/mean {cols.max() / cols.mean():.1f}, row profile {rows.max() / rows.mean():.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Convolution, step by step.")
    parser.add_argument("--seed", type=int, default=0, help="which shapes images to use")
    args = parser.parse_args(argv)

    section("1-D: a window of k slides over n inputs, giving n - k + 1 outputs")
    x, w = np.array([1, 3, 2, 5, 4], np.float32), np.array([1, 0, -1], np.float32)
    print(f"x = {x}, w = {w}")
    for i in range(len(x) - len(w) + 1):
        print(f"  out[{i}] = {x[i:i + 3]} . {w} = {x[i:i + 3] @ w:+.0f}")
    print(f"conv1d(x, w) = {conv1d(x, w)}  (5 - 3 + 1 = 3 outputs; no kernel flip)")

    section("2-D: an n x n image and a k x k filter give (n-k+1) x (n-k+1)")
    image = np.arange(1, 10, dtype=np.float32).reshape(3, 3)
    f = np.array([[1, 2], [3, 4]], np.float32)
    print(f"image =\n{image}\nfilter =\n{f}")
    print(f"conv2d(image, filter) =\n{conv2d(image, f)}\n(top-left: 1*1 + 2*2 + 4*3 + 5*4 = 37)")

    X, y = make_shapes(2 * len(CLASSES), seed=args.seed)
    rgb = X[0]
    section("Convolution over volume: an RGB image is a 3 x H x W volume")
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
        print(f"a '{name}' image: mean |response| vertical filter {v.mean():.3f}, "
              f"horizontal filter {h.mean():.3f}")
        print(f"  vertical filter: {where(v)}")
        print(f"  horizontal filter: {where(h)}")

    section("A filter that looks at one colour channel only")
    red_only = np.zeros((3, 3, 3), np.float32)
    red_only[0] = VERTICAL_EDGE  # weights for G and B are zero: it is blind to them
    img = X[list(y).index(CLASSES.index("vertical_edge"))]
    without_red = img.copy()
    without_red[0] = 0.5
    print(f"red-only vertical-edge filter: mean |response| {np.abs(conv3d(img, red_only)).mean():.3f}; "
          f"with the red channel made flat: {np.abs(conv3d(without_red, red_only)).mean():.3f}")

    section("A true 3-D convolution: a filter shallower than the volume slides along depth too")
    deep = rng.standard_normal((5, 8, 8)).astype(np.float32)
    print(f"volume {deep.shape} * filter (2, 3, 3) -> {conv3d(deep, np.ones((2, 3, 3), np.float32)).shape} "
          "(5 - 2 + 1 = 4 slices)")

    section("im2col: every window becomes a column, the convolution one matrix product")
    tiny = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    cols = im2col(tiny, 2)[0]
    print(f"image\n{tiny[0, 0]}\nim2col with a 2x2 window -> {cols.shape} (one column per output):\n{cols}")
    print(f"[1, 2, 3, 4] @ cols = {f.reshape(-1) @ cols}  = conv2d(image, filter).ravel() = "
          f"{conv2d(tiny[0, 0], f).ravel()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
