"""Your own images: load_image_folder / load_images on every bit depth, transparency, EXIF
orientation, the file rules and each error; and the train_folder.py and predict.py examples
run on a folder of PNG and JPEG files written from the shapes data."""

import importlib.util
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn.datasets import (
    CLASSES,
    list_images,
    load_image_folder,
    load_images,
    make_shapes,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture
def pil():
    """PIL.Image, or the test is skipped: reading images is the optional ``images`` extra."""
    return pytest.importorskip("PIL.Image")


def save(pil, array, path, mode=None, **kwargs):
    """Write ``array`` (H, W[, C]) as an image file, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = array if isinstance(array, pil.Image) else pil.fromarray(array)
    if mode is not None:
        image = image.convert(mode)
    image.save(path, **kwargs)
    return path


def levels(X):
    """float32 images in [0, 1] back to the 8-bit levels they were made from."""
    return np.rint(X * 255).astype(np.uint8)


def composite_over_white(rgba):
    """Naive reference: colour * a + white * (1 - a), per pixel, rounded to 8 bits."""
    out = np.empty(rgba.shape[:2] + (3,), np.uint8)
    for i in range(rgba.shape[0]):
        for j in range(rgba.shape[1]):
            a = rgba[i, j, 3] / 255
            for c in range(3):
                out[i, j, c] = int(np.floor(rgba[i, j, c] * a + 255 * (1 - a) + 0.5))
    return out


# -- the shapes data, written as PNG and read back --------------------------------------------

@pytest.fixture
def shapes_folder(tmp_path, pil):
    X, y = make_shapes(18, seed=3)
    for i, (x, label) in enumerate(zip(X, y)):
        save(pil, levels(x.transpose(1, 2, 0)), tmp_path / "root" / CLASSES[label] / f"{i:03d}.png")
    return tmp_path / "root", X, y


def test_png_round_trip_is_bit_identical_to_the_shapes_it_came_from(shapes_folder):
    root, X_made, y_made = shapes_folder
    X, y, class_names = load_image_folder(root)
    assert class_names == tuple(sorted(CLASSES))
    # Reference order: classes by name, then files by name (= index here).
    order = [i for name in class_names for i in range(len(y_made)) if CLASSES[y_made[i]] == name]
    assert X.dtype == np.float32 and X.shape == (18, 3, 32, 32) and X.flags.c_contiguous
    assert X.tobytes() == X_made[order].tobytes()  # make_shapes' values are exact k/255 floats
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [class_names.index(CLASSES[y_made[i]]) for i in order])


def test_grayscale_is_pillows_luma(shapes_folder, pil):
    root, _, _ = shapes_folder
    X, _, _ = load_image_folder(root, grayscale=True)
    expected = [np.asarray(pil.open(f).convert("L")) for f in list_images(root)]
    assert X.shape == (18, 1, 32, 32)
    np.testing.assert_array_equal(X[:, 0], np.float32(expected) / np.float32(255))


def test_load_images_reads_files_as_the_folder_loader_does(shapes_folder):
    root, _, _ = shapes_folder
    X, _, _ = load_image_folder(root, image_size=(20, 12))
    files = list_images(root)
    picked = [5, 0, 17]
    X2 = load_images([files[i] for i in picked], image_size=(20, 12))
    assert X2.tobytes() == X[picked].tobytes()


# -- bit depths and transparency ----------------------------------------------------------------
# Each case: (what to save, save options, the expected RGB levels and the level meaning 1.0).

def _rgb8(pil, rng):
    a = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    return pil.fromarray(a), {}, a, 255


def _gray8(pil, rng):
    a = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    return pil.fromarray(a), {}, np.repeat(a[:, :, None], 3, axis=2), 255


def _one_bit(pil, rng):
    a = rng.random((5, 7)) < 0.5
    return pil.fromarray(a), {}, np.repeat(a[:, :, None], 3, axis=2) * 255, 255


def _palette_image(pil, rng):
    palette = np.array([[255, 0, 0], [0, 200, 0], [10, 20, 250]], np.uint8)
    index = rng.integers(0, 3, (5, 7), dtype=np.uint8)
    image = pil.new("P", (7, 5))
    image.putpalette(palette.ravel().tolist())
    image.putdata(index.ravel().tolist())
    return image, palette, index


def _palette(pil, rng):
    image, palette, index = _palette_image(pil, rng)
    return image, {}, palette[index], 255


def _palette_transparency(pil, rng):
    image, palette, index = _palette_image(pil, rng)
    expected = np.where((index == 1)[:, :, None], 255, palette[index])
    return image, {"transparency": 1}, expected, 255


def _rgba(pil, rng):
    a = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    a[0, :, 3], a[1, :, 3], a[2, :, 3] = 0, 255, 128  # transparent, opaque, half
    return pil.fromarray(a), {}, composite_over_white(a), 255


def _gray_alpha(pil, rng):
    a = rng.integers(0, 256, (5, 7, 2), dtype=np.uint8)
    a[0, :, 1] = 0
    rgba = np.concatenate([np.repeat(a[:, :, :1], 3, axis=2), a[:, :, 1:]], axis=2)
    image = pil.merge("LA", [pil.fromarray(a[..., 0]), pil.fromarray(a[..., 1])])
    return image, {}, composite_over_white(rgba), 255


def _rgb_colour_key(pil, rng):
    a = rng.integers(0, 250, (5, 7, 3), dtype=np.uint8)
    a[2, 3] = (251, 252, 253)
    expected = a.copy()
    expected[2, 3] = 255
    return pil.fromarray(a), {"transparency": (251, 252, 253)}, expected, 255


def _gray16(pil, rng):
    a = rng.integers(0, 65536, (5, 7), dtype=np.uint16)
    a[0, :6] = [0, 1, 255, 256, 32768, 65535]
    return pil.fromarray(a), {}, np.repeat(a[:, :, None], 3, axis=2), 65535


def _gray16_key(pil, rng):
    a = rng.integers(0, 65000, (5, 7), dtype=np.uint16)
    a[1, 2] = a[4, 6] = 65001  # the transparent gray level
    expected = np.where(a == 65001, 65535, a)
    return pil.fromarray(a), {"transparency": 65001}, np.repeat(expected[:, :, None], 3, axis=2), 65535


CASES = [_rgb8, _gray8, _one_bit, _palette, _palette_transparency, _rgba, _gray_alpha, _rgb_colour_key, _gray16,
         _gray16_key]


@pytest.mark.parametrize("case", CASES, ids=lambda f: f.__name__.strip("_").replace("_", "-"))
def test_every_bit_depth_scales_to_0_1_and_transparency_becomes_white(tmp_path, pil, rng, case):
    image, options, expected, top = case(pil, rng)
    path = save(pil, image, tmp_path / "root" / "only" / "x.png", **options)
    X, y, names = load_image_folder(tmp_path / "root")
    assert names == ("only",) and y.tolist() == [0]
    want = np.float32(expected.transpose(2, 0, 1)) / np.float32(top)
    assert X.shape == (1, 3, 5, 7) and X.dtype == np.float32
    np.testing.assert_array_equal(X[0], want)
    gray = load_images([path], grayscale=True)
    assert gray.shape == (1, 1, 5, 7)
    if top == 65535:
        np.testing.assert_array_equal(gray[0, 0], want[0])
    else:  # Pillow's ITU-R 601-2 luma of the composited colours
        luma = np.asarray(pil.fromarray(expected.astype(np.uint8)).convert("L"))
        np.testing.assert_array_equal(gray[0, 0], np.float32(luma) / np.float32(255))


def test_sixteen_bit_resizes_without_losing_its_depth(tmp_path, pil):
    path = save(pil, np.full((6, 8), 1234, np.uint16), tmp_path / "a.png")
    X = load_images([path], image_size=3)
    np.testing.assert_array_equal(X, np.full((1, 3, 3, 3), np.float32(1234) / np.float32(65535)))


# -- JPEG: EXIF orientation and CMYK --------------------------------------------------------------

@pytest.mark.parametrize("orientation, turn", [(1, 0), (3, 2), (6, -1), (8, 1)],
                         ids=["upright", "upside-down", "turn-right", "turn-left"])
def test_jpeg_exif_orientation_is_applied(tmp_path, pil, orientation, turn):
    """Orientation 6 means "turn 90 degrees clockwise to show" (np.rot90 with k=-1), 8 the other way."""
    source = np.zeros((16, 32, 3), np.uint8)
    source[:, 16:] = 255  # left half black, right half white, 16 x 32
    exif = pil.Exif()
    exif[0x0112] = orientation
    save(pil, source, tmp_path / "root" / "c" / "photo.JPEG", quality=95, exif=exif)
    X, _, _ = load_image_folder(tmp_path / "root")
    upright = np.rot90(source, k=turn)
    assert X.shape == (1, 3) + upright.shape[:2]
    assert np.abs(X[0].transpose(1, 2, 0) - upright / 255).mean() < 0.02  # JPEG is lossy


def test_cmyk_jpeg_becomes_rgb(tmp_path, pil):
    path = save(pil, pil.new("CMYK", (8, 4), (0, 255, 255, 0)), tmp_path / "red.jpg", quality=95)
    X = load_images([path])
    assert X.shape == (1, 3, 4, 8)
    np.testing.assert_allclose(X[0].mean(axis=(1, 2)), [1, 0, 0], atol=0.03)


# -- which files, in which order ------------------------------------------------------------------

def test_hidden_and_non_image_files_are_skipped_and_order_is_sorted(tmp_path, pil):
    root = tmp_path / "root"

    def flat(value, path, size=(4, 4)):
        return save(pil, np.full(size + (3,), value, np.uint8), root / path)

    flat(50, "b/b.png")
    flat(40, "b/a.jpeg", size=(4, 4))
    flat(30, "b/A.PNG")  # upper-case extension; "A" sorts before "a"
    flat(60, "b/sub/c.png")  # found below the class folder; ("sub", ...) sorts after ("b.png",)
    flat(70, "b/sub-x.png")  # and ("sub", ...) before ("sub-x.png",), although "sub-" < "sub/"
    flat(10, "a/z.jpg")
    flat(99, "a/.hidden.png", size=(9, 9))  # would break the equal sizes if it were read
    flat(99, "a/.ipynb_checkpoints/z-checkpoint.png", size=(9, 9))
    flat(99, ".trash/x.png", size=(9, 9))  # a hidden folder is no class
    (root / "b" / "notes.txt").write_text("not an image")
    (root / "b" / "labels.csv").write_text("a,b")
    (root / ".DS_Store").write_bytes(b"\0\1\2")
    (root / "README.md").write_text("files in root are not classes")
    X, y, names = load_image_folder(root)
    assert names == ("a", "b")
    assert y.tolist() == [0, 1, 1, 1, 1, 1]
    np.testing.assert_allclose(X[:, 0, 0, 0] * 255, [10, 30, 40, 50, 60, 70], atol=2)  # JPEGs: near
    assert [p.relative_to(root).as_posix() for p in list_images(root / "b")] == [
        "b/A.PNG", "b/a.jpeg", "b/b.png", "b/sub/c.png", "b/sub-x.png"]


# -- resizing -------------------------------------------------------------------------------------

@pytest.mark.parametrize("image_size, shape", [(6, (6, 6)), ((6, 10), (6, 10)), ([3, 5], (3, 5))],
                         ids=["int", "pair-HW", "list"])
def test_image_size_resizes_bilinear_to_H_by_W(tmp_path, pil, rng, image_size, shape):
    a = rng.integers(0, 256, (11, 13, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)  # other sizes are fine with image_size
    save(pil, a, tmp_path / "root" / "p" / "a.png")
    save(pil, b, tmp_path / "root" / "q" / "b.png")
    X, _, _ = load_image_folder(tmp_path / "root", image_size=image_size)
    assert X.shape == (2, 3) + shape
    for x, src in zip(X, (a, b)):
        want = pil.fromarray(src).resize(shape[::-1], pil.Resampling.BILINEAR)
        np.testing.assert_array_equal(x, np.float32(np.asarray(want).transpose(2, 0, 1)) / np.float32(255))


def test_an_image_of_the_target_size_is_not_resampled(tmp_path, pil, rng):
    a = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    path = save(pil, a, tmp_path / "a.png")
    np.testing.assert_array_equal(load_images([path], image_size=(6, 10))[0],
                                  np.float32(a.transpose(2, 0, 1)) / np.float32(255))


# -- errors ---------------------------------------------------------------------------------------

def _good_image(pil, path, size=(5, 7)):
    return save(pil, np.zeros(size + (3,), np.uint8), path)


@pytest.mark.parametrize("content", [b"", b"this is text, not a PNG", "truncated", "gif"],
                         ids=["empty", "text", "truncated-png", "gif-named-png"])
def test_an_image_that_cannot_be_decoded_is_an_error_naming_it(tmp_path, pil, content):
    _good_image(pil, tmp_path / "root" / "a" / "ok.png")
    bad = tmp_path / "root" / "a" / "bad.png"
    if content == "truncated":
        buffer = io.BytesIO()
        pil.fromarray(np.arange(5000, dtype=np.uint32).reshape(50, 100).astype(np.uint8)).save(buffer, "PNG")
        content = buffer.getvalue()[:len(buffer.getvalue()) // 2]
    elif content == "gif":
        buffer = io.BytesIO()
        pil.new("RGB", (5, 7)).save(buffer, "GIF")
        content = buffer.getvalue()
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=r"load_image_folder: cannot read .*" + re.escape(str(bad))):
        load_image_folder(tmp_path / "root")


def test_mixed_sizes_name_two_files_and_their_sizes(tmp_path, pil):
    first = _good_image(pil, tmp_path / "root" / "a" / "1.png", size=(5, 7))
    _good_image(pil, tmp_path / "root" / "a" / "2.png", size=(5, 7))
    other = _good_image(pil, tmp_path / "root" / "b" / "3.png", size=(6, 7))
    with pytest.raises(ValueError, match=re.escape(f"{first} is 5x7 (HxW) but {other} is 6x7") + ".*image_size"):
        load_image_folder(tmp_path / "root")


def test_an_empty_class_folder_is_named(tmp_path, pil):
    _good_image(pil, tmp_path / "root" / "a" / "1.png")
    (tmp_path / "root" / "b").mkdir()
    (tmp_path / "root" / "b" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "root" / "b")) + " holds no images"):
        load_image_folder(tmp_path / "root")


def test_no_class_folders_is_an_error_with_the_layout(tmp_path, pil):
    root = tmp_path / "root"
    _good_image(pil, root / "loose.png")
    (root / ".hidden").mkdir()
    with pytest.raises(ValueError, match=re.escape(f"no class folders in {root} (it holds 1 image file directly)")
                       + r".*root/<class>/<image>"):
        load_image_folder(root)


def test_a_missing_root_and_a_file_root(tmp_path, pil):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere")
    path = _good_image(pil, tmp_path / "a.png")
    with pytest.raises(NotADirectoryError, match="is a file"):
        load_image_folder(path)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"root": 42}, TypeError, "root must be a str or path-like"),
    ({"image_size": 0}, ValueError, "image_size must be >= 1, got 0"),
    ({"image_size": (2, 3, 4)}, ValueError, r"image_size must be an int or an \(h, w\) pair"),
    ({"image_size": 2.5}, TypeError, "image_size must be an int"),
    ({"grayscale": "yes"}, TypeError, "grayscale must be True or False"),
], ids=["root-int", "size-zero", "size-triple", "size-float", "grayscale-str"])
def test_bad_arguments_are_rejected_before_any_file_is_read(tmp_path, kwargs, error, message):
    args = {"root": tmp_path / "does-not-matter", **kwargs}
    with pytest.raises(error, match="load_image_folder: " + message):
        load_image_folder(args.pop("root"), **args)


def test_load_images_argument_errors(tmp_path):
    with pytest.raises(TypeError, match=r"single path .*load_images\(\[path\]\)"):
        load_images(str(tmp_path / "a.png"))
    with pytest.raises(ValueError, match="paths is empty"):
        load_images([])
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "a.png"))):
        load_images([tmp_path / "a.png"])


def test_without_pillow_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    monkeypatch.setitem(sys.modules, "PIL", None)  # what "import PIL" meets when it is not installed
    with pytest.raises(ImportError, match=re.escape('load_image_folder reads images with Pillow, which is not '
                                                    'installed: pip install -e ".[images]"')):
        load_image_folder(tmp_path)
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(ImportError, match=re.escape('pip install -e ".[images]"')):
        load_images([tmp_path / "x.png"])


# -- the examples: train_folder.py and predict.py ---------------------------------------------------

def run(script, *args, cwd, expect_ok=True):
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)], cwd=cwd,
                            capture_output=True, text=True, timeout=300, check=False)
    if expect_ok:
        assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result


FOLDER_CLASSES = ("circle", "horizontal_edge", "vertical_edge")


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory):
    """A user's folder: three shape classes, 32x32, two thirds PNG, one third JPEG."""
    image = pytest.importorskip("PIL.Image")
    root = tmp_path_factory.mktemp("photos") / "root"
    X, y = make_shapes(72, seed=7)
    for i, (x, label) in enumerate(zip(X, y)):
        if CLASSES[label] in FOLDER_CLASSES:
            path = root / CLASSES[label] / (f"{i:03d}.jpg" if i % 3 == 0 else f"{i:03d}.png")
            save(image, levels(x.transpose(1, 2, 0)), path, **({"quality": 95} if i % 3 == 0 else {}))
    return root


@pytest.fixture(scope="module")
def trained_folder(user_folder):
    out = user_folder.parent / "run"
    stdout = run("train_folder.py", user_folder, "--epochs", "1", "--limit", "30", "--image-size", "24",
                 "--out", out, cwd=user_folder.parent).stdout
    return out, stdout


def test_train_folder_reports_trains_and_saves_model_with_its_classes(trained_folder):
    out, stdout = trained_folder
    assert "data: 30 images of shape (3, 24, 24) in 3 classes: circle (" in stdout
    assert "24 for training, 6 for validation" in stdout  # 20% of each class of 10 (3 classes)
    assert "Total parameters:" in stdout and "epoch 1/1:" in stdout and "val_accuracy" in stdout
    lines = stdout.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("validation confusion matrix"))
    rows = [[int(v) for v in line.split()[1:]] for line in lines[start + 2:start + 5]]
    assert sum(map(sum, rows)) == 6
    assert lines[-1] == f"validation accuracy: {sum(rows[i][i] for i in range(3)) / 6:.4f}"
    info = json.loads((out / "model.json").read_text())
    assert info["class_names"] == list(FOLDER_CLASSES)
    assert info["input_shape"] == [3, 24, 24] and info["grayscale"] is False
    with np.load(out / "model.npz", allow_pickle=False) as f:
        assert f["0.weight"].shape == (info["widths"][0], 3, 3, 3)
    assert not list(out.glob(".*")), "a temporary file was left behind"
    if HAS_MATPLOTLIB:
        for name in ("curves.png", "confusion.png", "filters.png", "feature_maps.png"):
            assert (out / name).read_bytes().startswith(b"\x89PNG"), name


def _in_process_probabilities(out, files, image_size):
    """The reference: rebuild the saved model here and apply a float64 softmax to its logits."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        from train_folder import build_folder_model
    finally:
        sys.path.remove(str(EXAMPLES))
    info = json.loads((out / "model.json").read_text())
    model = build_folder_model(tuple(info["input_shape"]), len(info["class_names"]), tuple(info["widths"]))
    model.load(out / "model.npz")
    logits = model.predict(load_images(files, image_size=image_size, grayscale=info["grayscale"])).astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_predict_names_classes_with_probabilities_for_files_and_folders(trained_folder, user_folder):
    out, _ = trained_folder
    one = min((user_folder / "circle").glob("*.jpg"))
    folder_files = list_images(user_folder / "vertical_edge")
    stdout = run("predict.py", "--model", out / "model.npz", one, user_folder / "vertical_edge", "--top", "3",
                 cwd=user_folder.parent).stdout
    lines = stdout.strip().splitlines()
    files = [one, *folder_files]
    assert len(lines) == len(files)
    probs = _in_process_probabilities(out, files, (24, 24))
    pattern = re.compile(r"(.+): (\w+) +([\d.]+)%  \(then (\w+) ([\d.]+)%, (\w+) ([\d.]+)%\)$")
    for line, path, p in zip(lines, files, probs):
        m = pattern.match(line)
        assert m, line
        assert m[1] == str(path)
        ranked = np.argsort(-p, kind="stable")
        assert [m[2], m[4], m[6]] == [FOLDER_CLASSES[k] for k in ranked]
        np.testing.assert_allclose([float(m[3]), float(m[5]), float(m[7])], 100 * p[ranked], atol=0.051)


def test_predict_on_a_class_layout_counts_the_correct_ones(trained_folder, user_folder):
    out, _ = trained_folder
    stdout = run("predict.py", "--model", out / "model.npz", user_folder, cwd=user_folder.parent).stdout
    lines = stdout.strip().splitlines()
    files = list_images(user_folder)
    assert len(lines) == len(files) + 1
    truth = [FOLDER_CLASSES.index(f.parent.name) for f in files]
    predicted = _in_process_probabilities(out, files, (24, 24)).argmax(axis=1)
    for line, f, t in zip(lines, files, truth):
        assert line.startswith(f"{f}: ") and line.endswith(f"(true: {FOLDER_CLASSES[t]})")
    assert lines[-1] == f"{int(np.sum(predicted == truth))} of {len(files)} correct"


def test_train_folder_grayscale_and_predict_with_it(user_folder, tmp_path):
    out = tmp_path / "gray"
    stdout = run("train_folder.py", user_folder, "--epochs", "1", "--limit", "12", "--grayscale",
                 "--image-size", "16x20", "--val-split", "0", "--out", out, cwd=tmp_path).stdout
    assert "of shape (1, 16, 20)" in stdout and stdout.strip().splitlines()[-1].startswith("training accuracy: ")
    info = json.loads((out / "model.json").read_text())
    assert info["input_shape"] == [1, 16, 20] and info["grayscale"] is True
    assert (out / "filters.png").exists()  # one grey tile per filter for a one-channel model
    image = list_images(user_folder)[0]
    line = run("predict.py", "--model", out / "model.npz", image, cwd=tmp_path).stdout.strip()
    assert re.fullmatch(re.escape(str(image)) + r": (circle|horizontal_edge|vertical_edge) +[\d.]+%", line)


def test_train_folder_explains_mixed_sizes_and_missing_folders(tmp_path, pil):
    _good_image(pil, tmp_path / "root" / "a" / "1.png", size=(5, 7))
    _good_image(pil, tmp_path / "root" / "b" / "2.png", size=(6, 7))
    result = run("train_folder.py", tmp_path / "root", "--image-size", "native", cwd=tmp_path, expect_ok=False)
    assert result.returncode != 0
    assert "1.png is 5x7 (HxW) but" in result.stderr and "2.png is 6x7" in result.stderr
    result = run("train_folder.py", tmp_path / "nowhere", cwd=tmp_path, expect_ok=False)
    assert result.returncode != 0 and "does not exist" in result.stderr
