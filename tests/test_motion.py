"""The motion clips: shapes, determinism, balance, motion in the labelled direction, and that no
single frame tells the direction."""

import numpy as np
import pytest

from minicnn.datasets import MOTION_CLASSES, make_motion

K = len(MOTION_CLASSES)
STEPS = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])  # (dx, dy) per class; rows grow downwards


def centres(clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The shape's centre (x, y), each (N, T), in every frame of noise-free clips.

    The frames wrap around, so the centre is a circular mean: each pixel column (row) is an
    angle on the circle, weighted by how much of the shape it holds. For a shape symmetric
    about its centre this lands on the centre, up to the sampling of its anti-aliased edge.
    """
    frames = clips[:, 0].astype(np.float64)
    shape = frames - frames.min(axis=(1, 2, 3), keepdims=True)  # the background is flat without noise
    size = frames.shape[-1]
    circle = np.exp(2j * np.pi * (np.arange(size) + 0.5) / size)
    x = np.angle((shape.sum(axis=2) * circle).sum(-1)) * size / (2 * np.pi)
    y = np.angle((shape.sum(axis=3) * circle).sum(-1)) * size / (2 * np.pi)
    return x % size, y % size


def steps(position: np.ndarray, size: int) -> np.ndarray:
    """Frame-to-frame moves along one axis, the short way round: (N, T-1)."""
    return (np.diff(position, axis=1) + size / 2) % size - size / 2


def flow_direction(clips: np.ndarray) -> np.ndarray:
    """The direction each clip moves in, from frame differences alone: one global optical flow
    (Lucas-Kanade over the whole clip), ``v = -sum(dI/dt dI/dx) / sum((dI/dx)^2)`` per axis."""
    frames = clips[:, 0].astype(np.float64)
    dt = frames[:, 1:] - frames[:, :-1]
    mid = (frames[:, 1:] + frames[:, :-1]) / 2
    dx = (np.roll(mid, -1, axis=-1) - np.roll(mid, 1, axis=-1)) / 2  # wrapping, as the frames do
    dy = (np.roll(mid, -1, axis=-2) - np.roll(mid, 1, axis=-2)) / 2
    vx = -(dt * dx).sum(axis=(1, 2, 3)) / (dx * dx).sum(axis=(1, 2, 3))
    vy = -(dt * dy).sum(axis=(1, 2, 3)) / (dy * dy).sum(axis=(1, 2, 3))
    return np.where(np.abs(vx) > np.abs(vy), np.where(vx < 0, 0, 1), np.where(vy < 0, 2, 3))


def nearest_mean_accuracy(frames, y, test_frames, y_test) -> float:
    """Classify single frames by the nearest class-mean frame (pixels as features)."""
    features, test_features = frames.reshape(len(frames), -1), test_frames.reshape(len(test_frames), -1)
    means = np.stack([features[y == k].mean(axis=0) for k in range(K)])
    predicted = np.argmin(((test_features[:, None] - means[None]) ** 2).sum(-1), axis=1)
    return float(np.mean(predicted == y_test))


# -- shapes, determinism, balance ----------------------------------------------------------------


def test_classes_are_the_four_directions():
    assert MOTION_CLASSES == ("left", "right", "up", "down")


@pytest.mark.parametrize(
    "n, frames, size",
    [(1, 8, 16), (7, 8, 16), (12, 2, 8), (12, 5, 12), (8, 8, 32)],
    ids=["one-clip", "odd-n", "two-frames-8px", "five-frames-12px", "large-32px"],
)
def test_shapes_dtypes_and_range(n, frames, size):
    X, y = make_motion(n, seed=0, frames=frames, size=size)
    assert X.shape == (n, 1, frames, size, size) and X.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    assert X.min() >= 0 and X.max() <= 1
    assert y.min() >= 0 and y.max() < K
    assert X.flags.c_contiguous


def test_same_seed_same_bytes_and_other_seeds_differ():
    X1, y1 = make_motion(40, seed=42)
    X2, y2 = make_motion(40, seed=42)
    assert X1.tobytes() == X2.tobytes() and y1.tobytes() == y2.tobytes()
    X3, _ = make_motion(40, seed=43)
    assert not np.array_equal(X1, X3)


def test_no_global_random_state_is_used_or_touched():
    saved = np.random.get_state()
    try:
        np.random.seed(0)
        X1, _ = make_motion(12, seed=5)
        np.random.seed(1)
        before = np.random.get_state()[1].copy()
        X2, _ = make_motion(12, seed=5)
        np.testing.assert_array_equal(np.random.get_state()[1], before)
    finally:
        np.random.set_state(saved)
    np.testing.assert_array_equal(X1, X2)


@pytest.mark.parametrize("n", [4, 7, 401], ids=["n=4", "n=7", "n=401"])
def test_classes_are_balanced(n):
    _, y = make_motion(n, seed=3)
    counts = np.bincount(y, minlength=K)
    assert len(counts) == K and counts.sum() == n
    assert counts.max() - counts.min() <= 1


def test_labels_are_shuffled():
    _, y = make_motion(80, seed=0)
    assert not np.array_equal(y, np.arange(80) % K)


def test_noise_zero_gives_the_same_clips_without_their_noise():
    X, _ = make_motion(50, seed=9, noise=0.05)
    clean, _ = make_motion(50, seed=9, noise=0)
    inside = (clean > 0.2) & (clean < 0.8)  # away from the clipping at 0 and 1
    difference = (X - clean)[inside]
    assert abs(difference.mean()) < 0.005
    assert difference.std() == pytest.approx(0.05, rel=0.05)
    # without noise the background of every frame is one flat grey level
    frames = clean[:, 0]
    assert np.all(np.median(frames, axis=(2, 3)) == frames.min(axis=(2, 3)))


# -- the motion --------------------------------------------------------------------------------


def test_every_clip_shows_a_shape_brighter_than_its_background():
    clean, _ = make_motion(400, seed=4, noise=0)
    frames = clean[:, 0]
    contrast = frames.max(axis=(2, 3)) - frames.min(axis=(2, 3))  # (N, T)
    assert contrast.min() >= 0.25 - 1e-6
    covered = (frames > frames.min(axis=(2, 3), keepdims=True)).sum(axis=(2, 3))
    assert covered.min() >= 9 and covered.max() <= 49  # 3 to 6 pixels across, plus the anti-aliased rim


@pytest.mark.parametrize("size", [16, 32], ids=["16px", "32px"])
def test_the_shape_moves_straight_at_constant_speed_in_the_labelled_direction(size):
    clean, y = make_motion(600, seed=3, noise=0, size=size)
    x, yy = centres(clean)
    sx, sy = steps(x, size), steps(yy, size)
    dx, dy = STEPS[y, 0:1], STEPS[y, 1:2]
    along, across = sx * dx + sy * dy, sx * dy + sy * dx
    scale = size / 16
    # 0.6 to 1.4 pixels a frame at 16 pixels; the centre estimate is good to about 0.15 pixels
    assert along.min() > 0.6 * scale - 0.2 and along.max() < 1.4 * scale + 0.2
    assert np.abs(across).max() < 0.1
    assert np.abs(along - along.mean(axis=1, keepdims=True)).max() < 0.2


def test_frame_differences_tell_the_direction():
    """A simple statistic of frame differences recovers the label of every clip, noise and all."""
    X, y = make_motion(2000, seed=5)
    assert np.mean(flow_direction(X) == y) > 0.99


# -- one frame says nothing about the direction ------------------------------------------------


def test_the_shapes_position_in_every_frame_is_uniform_for_every_class():
    """Where the shape is, in any one frame, has one distribution for all directions: uniform
    over the (wrapping) frame. Were a left-moving shape to start on the right, the first frame's
    left quarter would hold no left-moving clip."""
    clean, y = make_motion(8000, seed=6, noise=0)
    x, yy = centres(clean)
    for position in (x, yy):
        quarter = (position // 4).astype(int)  # which quarter of the 16-pixel frame, (N, T)
        for k in range(K):
            shares = np.stack([np.mean(quarter[y == k] == q, axis=0) for q in range(4)])  # (4, T)
            assert np.abs(shares - 0.25).max() < 0.05, (MOTION_CLASSES[k], shares.round(3))


@pytest.fixture(scope="module")
def clip_splits():
    """2000 training and 2000 test clips, made once for the eight single-frame tests."""
    return make_motion(2000, seed=7) + make_motion(2000, seed=8)


@pytest.mark.parametrize("frame", range(8), ids=[f"frame{t}" for t in range(8)])
def test_a_classifier_on_one_frame_is_at_chance(frame, clip_splits):
    X, y, X_test, y_test = clip_splits
    # measured 0.233-0.260 over the eight frames (2000 test clips: one standard error is 0.01)
    assert abs(nearest_mean_accuracy(X[:, 0, frame], y, X_test[:, 0, frame], y_test) - 1 / K) < 0.04


def test_the_one_frame_classifier_would_see_a_start_that_depends_on_the_direction():
    """Control for the test above: keep only the clips that start on the side they move away
    from (left-moving ones in the right half, and so on), as a generator whose shapes stay in
    the frame must; then the first frame alone tells the direction, as far as it can: a start
    in the top right quarter fits a move left or down, so even a perfect classifier is right
    half the time (measured: 0.48; chance 0.25)."""

    def starting_on_the_far_side(seed):
        X, y = make_motion(4000, seed=seed)
        clean, _ = make_motion(4000, seed=seed, noise=0)
        x, yy = centres(clean)
        far = np.select(
            [y == 0, y == 1, y == 2, y == 3], [x[:, 0] >= 8, x[:, 0] < 8, yy[:, 0] >= 8, yy[:, 0] < 8], default=False
        )
        return X[far, 0, 0], y[far]

    frames, y = starting_on_the_far_side(7)
    test_frames, y_test = starting_on_the_far_side(8)
    assert nearest_mean_accuracy(frames, y, test_frames, y_test) > 0.4


# -- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n": 0}, ValueError, "make_motion: n must be >= 1, got 0"),
        ({"n": 2.5}, TypeError, "make_motion: n must be an int, got 2.5"),
        ({"frames": 1}, ValueError, "make_motion: frames must be >= 2, got 1"),
        ({"frames": True}, TypeError, "make_motion: frames must be an int"),
        ({"size": 4}, ValueError, "make_motion: size must be >= 8, got 4"),
        ({"noise": -0.1}, ValueError, "make_motion: noise must be a finite number >= 0"),
        ({"noise": float("nan")}, ValueError, "make_motion: noise must be a finite number >= 0"),
        ({"noise": "0.1"}, TypeError, "make_motion: noise must be a real number"),
    ],
    ids=["n=0", "n=2.5", "frames=1", "frames=True", "size=4", "noise<0", "noise=nan", "noise=str"],
)
def test_bad_arguments_are_refused_with_a_clear_message(kwargs, error, message):
    args = {"n": 8, **kwargs}
    with pytest.raises(error) as exc:
        make_motion(args.pop("n"), seed=0, **args)
    assert message in str(exc.value)
