"""Why the third dimension matters: a Conv3D network tells which way a shape moves, a 2-D CNN cannot.

    pip install -e ".[plot]"
    python examples/train_motion.py

The clips come from ``minicnn.datasets.make_motion``: a disc or square moving left, right,
up or down over 8 grey 16x16 frames, on frames that wrap around, so that every frame taken
alone looks the same for all four directions. Two networks of the same shape train on the
same clips: one with Conv3D filters that slide along time as well as space, on whole clips,
and one with 2-D filters, on one frame of each clip. The script prints both summaries, a
line of results per epoch and both test accuracies (the 3-D network near 100%, the 2-D one
at chance, 25%), saves the 3-D model, and (with matplotlib) draws a clip of each direction
and the learned 3-D filters into --out.
Quick smoke run: ``python examples/train_motion.py --limit 800 --epochs 3``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, however it is run

from _cli import int_at_least, nonnegative_int, output_folder, parser, positive_int, run

from minicnn import (
    Adam,
    Conv2DVolume,
    Conv3D,
    Dense,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    MaxPool2D,
    MaxPool3D,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
)
from minicnn.datasets import MOTION_CLASSES, make_motion

FRAMES, SIZE = 8, 16
TRAIN_CLIPS, TEST_CLIPS = 2000, 1000
TRAIN_SEED, TEST_SEED = 1, 2  # the data's seeds: --seed changes only the weights and the batch order
CHANCE = 1 / len(MOTION_CLASSES)


def build_motion_3d(n_classes: int, rng: np.random.Generator | None = None) -> Sequential:
    """Conv3D-ReLU-MaxPool3D-Conv3D-ReLU-GlobalAvgPool3D-Dense, for (1, T, H, W) clips.

    The first filters span 3 frames, so they can respond to an edge that moves; the global
    average makes the answer the same wherever (and whenever) the motion happens.
    """
    return Sequential(
        Conv3D(1, 8, 3, rng=rng),
        ReLU(),
        MaxPool3D(2),
        Conv3D(8, 16, 3, rng=rng),
        ReLU(),
        GlobalAvgPool3D(),
        Dense(16, n_classes, rng=rng),
    )


def build_frame_2d(n_classes: int, rng: np.random.Generator | None = None) -> Sequential:
    """The same network with 2-D layers (Conv2DVolume, MaxPool2D, GlobalAvgPool2D), for one (1, H, W) frame."""
    return Sequential(
        Conv2DVolume(1, 8, 3, rng=rng),
        ReLU(),
        MaxPool2D(2),
        Conv2DVolume(8, 16, 3, rng=rng),
        ReLU(),
        GlobalAvgPool2D(),
        Dense(16, n_classes, rng=rng),
    )


def train(model: Sequential, X: np.ndarray, y: np.ndarray, args) -> dict:
    """Adam on all but the last tenth of (X, y), which validates each epoch; returns the history."""
    n_val = max(len(X) // 10, 1)
    optimizer = Adam(model.parameters(), lr=args.lr)
    return model.fit(
        X[:-n_val],
        y[:-n_val],
        loss=SoftmaxCrossEntropy(),
        optimizer=optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(X[-n_val:], y[-n_val:]),
        seed=args.seed,
    )


def clear_examples(clean: np.ndarray, y: np.ndarray) -> list[int]:
    """For each class, the clip whose shape travels furthest among those that stand out well
    and never touch the border (so the picture shows no wrapping around), as far as there are any.

    ``clean`` are the clips made again with ``noise=0`` (the same clips without their noise):
    there the background is exactly flat, so a shape on the border is easy to see.
    """
    frames = clean[:, 0]  # (N, T, H, W)
    low = frames.min(axis=(1, 2, 3), keepdims=True)
    shape = frames - low  # > 0 exactly where the shape is
    on_border = (shape[:, :, [0, -1], :].max(axis=(1, 2, 3)) > 0) | (shape[:, :, :, [0, -1]].max(axis=(1, 2, 3)) > 0)
    contrast = shape.max(axis=(1, 2, 3))
    mass = shape.sum(axis=(2, 3))  # (N, T)
    rows, cols = np.indices(frames.shape[2:])
    centre = np.stack([(shape * rows).sum(axis=(2, 3)), (shape * cols).sum(axis=(2, 3))], -1) / mass[..., None]
    travel = np.linalg.norm(centre[:, -1] - centre[:, 0], axis=1)
    # first inside the frame, then clearly visible, then the furthest travelled (at most `frames` pixels)
    score = travel + 100.0 * ~on_border + 50.0 * (contrast >= 0.7)
    return [int(np.flatnonzero(y == k)[np.argmax(score[y == k])]) for k in range(len(MOTION_CLASSES))]


def draw(clips: np.ndarray, conv: Conv3D, accuracies: list[float], frame: int, path: Path) -> None:
    """One picture: a clip of each class as a strip of frames, and the first layer's 3-D filters.

    Each filter is drawn as its ``kd`` slices in time side by side, all filters on one colour
    scale symmetric about 0, so that a colour means the same weight everywhere.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    weights = conv.weight.data[:, 0]  # (F, KD, KH, KW): the clips have one channel
    n_filters, kd, kh, kw = weights.shape
    limit = float(np.abs(weights).max()) or 1.0
    fig = Figure(figsize=(8.0, 7.0), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=(1.5, 1))

    axes = top.subplots(len(clips), clips.shape[2], squeeze=False)
    for k, (row, clip) in enumerate(zip(axes, clips[:, 0])):
        for t, ax in enumerate(row):
            ax.imshow(clip[t], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if t == frame:  # the frame the 2-D network sees
                for spine in ax.spines.values():
                    spine.set_color("tab:orange")
                    spine.set_linewidth(2.5)
            if k == 0:
                ax.set_title(f"t = {t}", fontsize=8)
        row[0].set_ylabel(MOTION_CLASSES[k], fontsize=9)
    acc_3d, acc_2d = accuracies
    top.suptitle(
        f"a clear test clip of each direction, frame by frame (the frames wrap around)\n"
        f"test accuracy: Conv3D network on whole clips {acc_3d:.3f}; "
        f"2-D CNN on frame t = {frame} alone (orange) {acc_2d:.3f}, chance {CHANCE:.2f}",
        fontsize=9,
    )

    cmap = colormaps["RdBu_r"].with_extremes(bad=(0, 0, 0, 0))  # NaN: the gap between two slices
    per_row = 4
    axes = bottom.subplots(-(-n_filters // per_row), per_row, squeeze=False)
    gap = np.full((kh, 1), np.nan)
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i < n_filters:
            slices = [part for s in range(kd) for part in (gap, weights[i, s])][1:]  # gaps between the slices
            image = ax.imshow(np.hstack(slices), cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
            ax.set_title(f"filter {i}", fontsize=8)
    bar = bottom.colorbar(image, ax=axes.ravel().tolist(), shrink=0.9, pad=0.02)
    bar.set_label("weight", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    bottom.suptitle(
        f"the {n_filters} learned first-layer Conv3D filters, each {kd}x{kh}x{kw} (time x height x "
        f"width), its {kd} time slices t, t+1, ... left to right\none colour scale for all filters: "
        f"-{limit:.2f} (blue) to +{limit:.2f} (red), white is 0",
        fontsize=9,
    )
    fig.savefig(path, dpi=85)


def main(argv=None) -> int:
    cli = parser("Train a Conv3D network and a 2-D CNN to tell which way a shape moves in short clips.")
    cli.add_argument("--epochs", type=positive_int, default=5, help="passes over the training clips, for each network")
    cli.add_argument("--batch-size", type=positive_int, default=32, help="clips per training step")
    cli.add_argument("--lr", type=float, default=0.01, help="Adam's learning rate")
    cli.add_argument(
        "--frame",
        type=nonnegative_int,
        default=0,
        help=f"the one frame (0 to {FRAMES - 1}) of each clip the 2-D CNN sees",
    )
    cli.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the weights and batch order")
    cli.add_argument("--out", type=output_folder, default="runs/motion", help="folder for the model and picture")
    cli.add_argument(
        "--limit",
        type=int_at_least(10),
        default=None,
        help=f"use only the first N training clips (a smoke run); all {TRAIN_CLIPS} by default",
    )
    args = cli.parse_args(argv)
    if args.frame >= FRAMES:
        cli.error(f"argument --frame: a clip has {FRAMES} frames, 0 to {FRAMES - 1}; got {args.frame}")

    start = time.perf_counter()
    X, y = make_motion(TRAIN_CLIPS if args.limit is None else args.limit, seed=TRAIN_SEED, frames=FRAMES, size=SIZE)
    X_test, y_test = make_motion(TEST_CLIPS, seed=TEST_SEED, frames=FRAMES, size=SIZE)
    print(
        f"data: {len(X)} training clips (the last tenth validates), {len(X_test)} test clips of shape "
        f"{X.shape[1:]} (C, T, H, W), {len(MOTION_CLASSES)} directions: {', '.join(MOTION_CLASSES)} "
        f"({time.perf_counter() - start:.1f} s)"
    )

    rng = np.random.default_rng(args.seed)
    title_2d = f"2-D CNN on frame {args.frame} alone"
    runs = (
        ("Conv3D network on whole clips", build_motion_3d, X, X_test),
        (title_2d, build_frame_2d, X[:, :, args.frame], X_test[:, :, args.frame]),
    )
    models, accuracies = [], []
    for title, build, inputs, test_inputs in runs:
        began = time.perf_counter()
        model = build(len(MOTION_CLASSES), rng=rng)
        print(f"\n{title}:")
        model.summary(inputs.shape[1:])
        train(model, inputs, y, args)
        accuracies.append(model.evaluate(test_inputs, y_test)["accuracy"])
        models.append(model)
        print(f"{title}: test accuracy {accuracies[-1]:.4f} ({time.perf_counter() - began:.1f} s)")

    args.out.mkdir(parents=True, exist_ok=True)
    models[0].save(args.out / "model.npz")
    print(f"\nsaved the Conv3D model to {args.out / 'model.npz'}")
    try:
        clean, _ = make_motion(TEST_CLIPS, seed=TEST_SEED, frames=FRAMES, size=SIZE, noise=0)
        draw(X_test[clear_examples(clean, y_test)], models[0][0], accuracies, args.frame, args.out / "motion.png")
        print(f"saved the picture of the clips and the 3-D filters: {args.out / 'motion.png'}")
    except ImportError as exc:
        if exc.name != "matplotlib":
            raise
        print('matplotlib is not installed, so no picture: pip install -e ".[plot]" to get it')
    print(f"total time: {time.perf_counter() - start:.1f} s (data, both trainings and the picture)")
    print(f"3-D test accuracy: {accuracies[0]:.4f} (Conv3D network on whole clips)")
    print(f"2-D test accuracy: {accuracies[1]:.4f} ({title_2d}; chance is {CHANCE:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
