"""Your own images: load_image_folder / load_images on every bit depth, transparency, EXIF
orientation, every format Pillow reads, the shuffled order, the file rules and each error; and
the train_folder.py and predict.py examples run on a folder of PNG and JPEG files written from
the shapes data."""

import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn.datasets import (
    CLASSES,
    image_extensions,
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
    X, y, class_names = load_image_folder(root, shuffle=False)
    assert class_names == tuple(sorted(CLASSES))
    # Reference order: classes by name, then files by name (= index here).
    order = [i for name in class_names for i in range(len(y_made)) if CLASSES[y_made[i]] == name]
    assert X.dtype == np.float32 and X.shape == (18, 3, 32, 32) and X.flags.c_contiguous
    assert X.tobytes() == X_made[order].tobytes()  # make_shapes' values are exact k/255 floats
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [class_names.index(CLASSES[y_made[i]]) for i in order])


def test_grayscale_is_pillows_luma(shapes_folder, pil):
    root, _, _ = shapes_folder
    X, _, _ = load_image_folder(root, grayscale=True, shuffle=False)
    expected = [np.asarray(pil.open(f).convert("L")) for f in list_images(root)]
    assert X.shape == (18, 1, 32, 32)
    np.testing.assert_array_equal(X[:, 0], np.float32(expected) / np.float32(255))


def test_load_images_reads_files_as_the_folder_loader_does(shapes_folder):
    root, _, _ = shapes_folder
    X, _, _ = load_image_folder(root, image_size=(20, 12), shuffle=False)
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


CASES = [
    _rgb8,
    _gray8,
    _one_bit,
    _palette,
    _palette_transparency,
    _rgba,
    _gray_alpha,
    _rgb_colour_key,
    _gray16,
    _gray16_key,
]


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


@pytest.mark.parametrize(
    "orientation, turn", [(1, 0), (3, 2), (6, -1), (8, 1)], ids=["upright", "upside-down", "turn-right", "turn-left"]
)
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
    X, y, names = load_image_folder(root, shuffle=False)
    assert names == ("a", "b")
    assert y.tolist() == [0, 1, 1, 1, 1, 1]
    np.testing.assert_allclose(X[:, 0, 0, 0] * 255, [10, 30, 40, 50, 60, 70], atol=2)  # JPEGs: near
    assert [p.relative_to(root).as_posix() for p in list_images(root / "b")] == [
        "b/A.PNG",
        "b/a.jpeg",
        "b/b.png",
        "b/sub/c.png",
        "b/sub-x.png",
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges on Windows")
def test_linked_folders_inside_a_class_are_followed_and_a_loop_is_not(tmp_path, pil):
    # torchvision's ImageFolder walks with followlinks=True, and a linked class folder counts
    # here too: a linked subfolder of a class must not lose its images without a word.
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"

    def flat(value, path):
        return save(pil, np.full((4, 4, 3), value, np.uint8), path)

    flat(10, root / "a" / "x.png")
    flat(20, root / "b" / "y.png")
    flat(30, elsewhere / "z.png")
    os.symlink(elsewhere, root / "a" / "more")  # a linked subfolder
    os.symlink(root / "a", root / "a" / "loop")  # a link back up: a loop
    os.symlink(elsewhere, root / "c")  # a linked class folder
    X, y, names = load_image_folder(root, shuffle=False)
    assert names == ("a", "b", "c")
    assert y.tolist() == [0, 0, 1, 2]
    np.testing.assert_array_equal(levels(X[:, 0, 0, 0]), [30, 10, 20, 30])
    assert [p.relative_to(root).as_posix() for p in list_images(root / "a")] == ["a/more/z.png", "a/x.png"]


def test_a_folder_that_cannot_be_listed_is_an_error_not_skipped(tmp_path, pil, monkeypatch):
    # os.walk drops folders it cannot list unless told; their images would vanish silently.
    root = tmp_path / "root"
    save(pil, np.zeros((4, 4, 3), np.uint8), root / "a" / "x.png")
    save(pil, np.zeros((4, 4, 3), np.uint8), root / "a" / "locked" / "y.png")
    locked, scandir = os.fspath(root / "a" / "locked"), os.scandir

    def refuse(path="."):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)  # chmod 000 would not stop root
    for call in (lambda: load_image_folder(root), lambda: list_images(root / "a")):
        with pytest.raises(PermissionError, match=rf"cannot list the folder {re.escape(locked)} .*chmod u\+rx"):
            call()


# -- every format Pillow reads ----------------------------------------------------------------------


def _has_webp():
    from PIL import features

    return features.check("webp")


def test_image_extensions_are_pillows_formats_that_decode(pil):
    extensions = image_extensions()
    assert extensions == tuple(sorted(extensions)) and all(e.startswith(".") and e == e.lower() for e in extensions)
    wanted = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif"} | ({".webp"} if _has_webp() else set())
    assert wanted <= set(extensions)
    pil.init()
    assert set(extensions) <= {e.lower() for e in pil.registered_extensions()}
    # .pdf Pillow only writes; .h5 needs a decoder from outside Pillow; .mpg gives only a header
    assert not {".pdf", ".h5", ".mpg", ".txt", ".csv", ".npy"} & set(extensions)


def test_every_format_pillow_reads_is_found_in_any_case_and_decoded(tmp_path, pil):
    root = tmp_path / "root"
    files = {  # name: (save options, exact); each image is flat at its own gray level
        "png/a.png": ({}, True),
        "jpeg/b.JPG": ({"quality": 95}, False),
        "jpeg/c.jpe": ({"quality": 95}, False),
        "bmp/d.bmp": ({}, True),
        "bmp/e.BMP": ({}, True),
        "tiff/f.tif": ({}, True),
        "tiff/g.TIFF": ({"compression": "tiff_lzw"}, True),
        "gif/h.gif": ({}, True),
    }
    if _has_webp():
        files |= {"webp/i.webp": ({"lossless": True}, True), "webp/j.WEBP": ({"quality": 90}, False)}
    level = {name: 20 + 15 * k for k, name in enumerate(files)}
    for name, (options, _) in files.items():
        save(pil, np.full((4, 6, 3), level[name], np.uint8), root / name, **options)
    (root / "png" / "notes.txt").write_text("not an image")
    (root / "png" / "scan.pdf").write_bytes(b"%PDF-1.4")  # a format Pillow writes but cannot read
    found = [p.relative_to(root).as_posix() for p in list_images(root)]
    assert found == sorted(files, key=lambda n: n.split("/"))
    X, y, names = load_image_folder(root, shuffle=False)
    assert names == tuple(sorted({n.split("/")[0] for n in files}))
    assert X.shape == (len(files), 3, 4, 6)
    np.testing.assert_array_equal(y, [names.index(n.split("/")[0]) for n in found])
    for x, name in zip(X, found):
        if files[name][1]:
            np.testing.assert_array_equal(x * 255, np.float32(level[name]), err_msg=name)
        else:
            np.testing.assert_allclose(x * 255, level[name], atol=2, err_msg=name)


def test_a_file_is_decoded_by_its_content_and_gives_its_first_frame(tmp_path, pil, rng):
    a = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    png_named_jpg = tmp_path / "photo.jpg"
    pil.fromarray(a).save(png_named_jpg, format="PNG")
    gif_named_png = tmp_path / "moving.png"
    pil.new("L", (7, 5), 60).save(gif_named_png, format="GIF", save_all=True, append_images=[pil.new("L", (7, 5), 200)])
    pages = save(
        pil, pil.new("L", (7, 5), 40), tmp_path / "pages.tiff", save_all=True, append_images=[pil.new("L", (7, 5), 210)]
    )
    X = load_images([png_named_jpg, gif_named_png, pages])
    np.testing.assert_array_equal(X[0], np.float32(a.transpose(2, 0, 1)) / np.float32(255))
    np.testing.assert_array_equal(X[1:] * 255, np.float32([[[[60]]], [[[40]]]]) * np.ones((2, 3, 5, 7)))


def test_tiffs_of_16_and_32_bits(tmp_path, pil):
    levels16 = np.array([[0, 1, 255], [256, 32768, 65535]], np.uint16)
    sixteen = save(pil, levels16, tmp_path / "sixteen.tif")
    small = save(pil, levels16.astype(np.int32), tmp_path / "small32.tif")  # 32-bit, values that fit 16
    X = load_images([sixteen, small], grayscale=True)
    np.testing.assert_array_equal(X[:, 0], np.float32([levels16, levels16]) / np.float32(65535))
    big = save(pil, np.array([[0, 70000]], np.int32), tmp_path / "big32.tif")
    floats = save(pil, np.array([[0.25, 0.5]], np.float32), tmp_path / "float.tif")
    with pytest.raises(ValueError) as info:
        load_images([big, floats])
    assert f"{big}: 32-bit integer pixels beyond 0..65535 have no fixed maximum" in str(info.value)
    assert f"{floats}: floating-point pixels have no fixed maximum" in str(info.value)


# -- shuffling ------------------------------------------------------------------------------------

NUMBERED_CLASSES = ("ant", "bee", "cat")
NUMBERED_LEVELS = np.array([20 * k + j + 1 for k in range(3) for j in range(10)])  # in sorted order


@pytest.fixture
def numbered_folder(tmp_path, pil):
    """Three classes of 10 flat PNGs; image j of class k has the level 20 k + j + 1, so each
    image tells its class and its place: (level - 1) // 20 is the class."""
    root = tmp_path / "root"
    for k, name in enumerate(NUMBERED_CLASSES):
        for j in range(10):
            save(pil, np.full((2, 3, 3), 20 * k + j + 1, np.uint8), root / name / f"{j:02d}.png")
    return root


def numbers(X):
    """The level each image of ``numbered_folder`` was written with."""
    return np.rint(X[:, 0, 0, 0] * 255).astype(np.int64)


def test_images_are_shuffled_by_a_fixed_default_seed_and_keep_their_labels(numbered_folder):
    X_sorted, y_sorted, names = load_image_folder(numbered_folder, shuffle=False)
    assert names == NUMBERED_CLASSES and y_sorted.tolist() == [0] * 10 + [1] * 10 + [2] * 10
    X, y, names = load_image_folder(numbered_folder)
    assert names == NUMBERED_CLASSES and X.dtype == np.float32 and y.dtype == np.int64 and X.flags.c_contiguous
    order = np.random.default_rng(0).permutation(30)  # the documented rule, seed 0 by default
    assert X.tobytes() == X_sorted[order].tobytes()
    np.testing.assert_array_equal(y, y_sorted[order])
    np.testing.assert_array_equal(y, (numbers(X) - 1) // 20)  # every label still its image's class
    assert set(y[-6:].tolist()) == {0, 1, 2}  # so fit(validation_split=0.2) validates on every class
    X_again, y_again, _ = load_image_folder(numbered_folder)
    assert X_again.tobytes() == X.tobytes() and y_again.tobytes() == y.tobytes()


@pytest.mark.parametrize("seed", [1, 2**40], ids=["one", "large"])
def test_another_seed_gives_its_own_order(numbered_folder, seed):
    X, y, _ = load_image_folder(numbered_folder, seed=seed)
    order = np.random.default_rng(seed).permutation(30)
    np.testing.assert_array_equal(numbers(X), NUMBERED_LEVELS[order])
    np.testing.assert_array_equal(y, (numbers(X) - 1) // 20)
    assert not np.array_equal(numbers(X), numbers(load_image_folder(numbered_folder)[0]))


def test_seed_none_gives_a_fresh_order_and_shuffle_false_keeps_the_sorted_one(numbered_folder):
    runs = [load_image_folder(numbered_folder, seed=None) for _ in range(3)]
    for X, y, _ in runs:
        np.testing.assert_array_equal(y, (numbers(X) - 1) // 20)
        assert sorted(numbers(X).tolist()) == NUMBERED_LEVELS.tolist()
    assert len({tuple(numbers(X)) for X, _, _ in runs}) > 1  # equal orders: chance 1 in 30! twice
    X, y, _ = load_image_folder(numbered_folder, shuffle=False, seed=5)  # the seed is unused
    assert numbers(X).tolist() == NUMBERED_LEVELS.tolist()


# -- resizing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image_size, shape", [(6, (6, 6)), ((6, 10), (6, 10)), ([3, 5], (3, 5))], ids=["int", "pair-HW", "list"]
)
def test_image_size_resizes_bilinear_to_H_by_W(tmp_path, pil, rng, image_size, shape):
    a = rng.integers(0, 256, (11, 13, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)  # other sizes are fine with image_size
    save(pil, a, tmp_path / "root" / "p" / "a.png")
    save(pil, b, tmp_path / "root" / "q" / "b.png")
    X, _, _ = load_image_folder(tmp_path / "root", image_size=image_size, shuffle=False)
    assert X.shape == (2, 3) + shape
    for x, src in zip(X, (a, b)):
        want = pil.fromarray(src).resize(shape[::-1], pil.Resampling.BILINEAR)
        np.testing.assert_array_equal(x, np.float32(np.asarray(want).transpose(2, 0, 1)) / np.float32(255))


def test_an_image_of_the_target_size_is_not_resampled(tmp_path, pil, rng):
    a = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    path = save(pil, a, tmp_path / "a.png")
    np.testing.assert_array_equal(
        load_images([path], image_size=(6, 10))[0], np.float32(a.transpose(2, 0, 1)) / np.float32(255)
    )


# -- files that cannot be read --------------------------------------------------------------------


def _good_image(pil, path, size=(5, 7)):
    return save(pil, np.zeros(size + (3,), np.uint8), path)


def _cut_in_half(pil, image_format):
    """A real image file of ``image_format`` with its second half missing."""
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (50, 100), dtype=np.uint8)
    pil.fromarray(noise).save(buffer, image_format)
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


NOT_AN_IMAGE = "not an image in any format Pillow reads"


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", NOT_AN_IMAGE),
        (b"this is text, not a PNG", NOT_AN_IMAGE),
        ("truncated", "OSError: image file is truncated"),
    ],
    ids=["empty", "text", "truncated-png"],
)
def test_an_image_that_cannot_be_decoded_is_an_error_naming_it_and_why(tmp_path, pil, content, reason):
    _good_image(pil, tmp_path / "root" / "a" / "ok.png")
    bad = tmp_path / "root" / "a" / "bad.png"
    bad.write_bytes(_cut_in_half(pil, "PNG") if content == "truncated" else content)
    with pytest.raises(
        ValueError, match=re.escape(f"load_image_folder: image files that cannot be read (1 of 2):\n  {bad}: {reason}")
    ):
        load_image_folder(tmp_path / "root")


@pytest.fixture
def folder_with_bad_files(numbered_folder, pil):
    """``numbered_folder`` plus, in each class, one image file that does not decode; and a text file."""
    bad = [
        numbered_folder / "ant" / "zz-empty.png",
        numbered_folder / "bee" / "broken.jpg",
        numbered_folder / "cat" / "sub" / "text.tif",
    ]
    bad[0].write_bytes(b"")
    bad[1].write_bytes(_cut_in_half(pil, "JPEG"))
    bad[2].parent.mkdir()
    bad[2].write_text("not an image")
    (numbered_folder / "bee" / "notes.txt").write_text("not an image file: skipped silently")
    return numbered_folder, bad


def test_every_file_that_cannot_be_read_is_named_in_one_error(folder_with_bad_files):
    root, bad = folder_with_bad_files
    with pytest.raises(ValueError) as info:
        load_image_folder(root)
    message = str(info.value)
    assert message.startswith("load_image_folder: image files that cannot be read (3 of 33):\n")
    positions = [message.index(f"\n  {path}: ") for path in bad]
    assert positions == sorted(positions)  # in sorted order, whatever the shuffle
    assert f"  {bad[0]}: {NOT_AN_IMAGE}" in message and f"  {bad[2]}: {NOT_AN_IMAGE}" in message
    assert "notes.txt" not in message
    assert message.endswith('\nfix or delete them, or pass on_error="skip" to leave them out')


def test_on_error_skip_leaves_them_out_with_one_warning(folder_with_bad_files):
    root, bad = folder_with_bad_files
    with pytest.warns(UserWarning) as record:
        X, y, names = load_image_folder(root, on_error="skip")
    assert len(record) == 1 and record[0].filename == __file__  # it points at the caller's line
    message = str(record[0].message)
    assert message.startswith("load_image_folder: skipped 3 of 33 image files, which cannot be read: ")
    assert all(f"{path}: " in message for path in bad) and message.endswith('. on_error="raise" lists them all')
    assert names == NUMBERED_CLASSES and X.shape == (30, 3, 2, 3) and X.flags.c_contiguous
    assert sorted(numbers(X).tolist()) == NUMBERED_LEVELS.tolist()  # every readable image, once
    np.testing.assert_array_equal(y, (numbers(X) - 1) // 20)  # labels still those of their images
    with pytest.warns(UserWarning, match="skipped 3 of 33"):
        X_again, y_again, _ = load_image_folder(root, on_error="skip")
    assert X_again.tobytes() == X.tobytes() and y_again.tobytes() == y.tobytes()


def test_the_skip_warning_names_the_first_five_and_counts_the_rest(tmp_path, pil):
    root = tmp_path / "root"
    _good_image(pil, root / "a" / "good.png")
    _good_image(pil, root / "b" / "good.png")
    bad = [root / "b" / f"{i}.png" for i in range(7)]
    for path in bad:
        path.write_bytes(b"")
    with pytest.warns(UserWarning, match=r"skipped 7 of 9 image files.*; and 2 more\. on_error") as record:
        X, y, _ = load_image_folder(root, on_error="skip")
    message = str(record[0].message)
    assert [f"{path}: " in message for path in bad] == [True] * 5 + [False] * 2
    assert X.shape == (2, 3, 5, 7) and sorted(y.tolist()) == [0, 1]


def test_a_class_left_without_a_readable_image_is_an_error_naming_it(tmp_path, pil):
    root = tmp_path / "root"
    _good_image(pil, root / "a" / "good.png")
    (root / "b").mkdir()
    (root / "b" / "x.png").write_bytes(b"")
    (root / "b" / "y.jpg").write_bytes(b"not a JPEG")
    with (
        pytest.warns(UserWarning, match="skipped 2 of 3"),
        pytest.raises(
            ValueError,
            match=re.escape(
                "load_image_folder: class folders left without images after skipping the files that cannot be read "
                f"(1 of 2):\n  {root / 'b'}: none of its 2 image files can be read\nfix or replace"
            ),
        ),
    ):
        load_image_folder(root, on_error="skip")
    (root / "a" / "good.png").write_bytes(b"")
    with (
        pytest.warns(UserWarning, match="skipped 3 of 3"),
        pytest.raises(ValueError, match=re.escape("load_image_folder: no image could be read, of the 3 tried")),
    ):
        load_image_folder(root, on_error="skip")


def test_load_images_names_every_file_that_cannot_be_read_and_never_skips(tmp_path, pil):
    good = _good_image(pil, tmp_path / "good.png")
    empty, text = tmp_path / "x.png", tmp_path / "y.jpg"
    empty.write_bytes(b"")
    text.write_text("not a JPEG")
    with pytest.raises(ValueError) as info:
        load_images([text, good, empty])  # listed in the order given
    assert str(info.value) == (
        f"load_images: image files that cannot be read (2 of 3):\n  {text}: {NOT_AN_IMAGE} "
        f"(empty, cut short, or another kind of file)\n  {empty}: {NOT_AN_IMAGE} "
        "(empty, cut short, or another kind of file)\n"
        "fix or delete them, or leave them out of paths"
    )


def test_mixed_sizes_name_two_files_their_sizes_and_how_many_differ(tmp_path, pil):
    first = _good_image(pil, tmp_path / "root" / "a" / "1.png", size=(5, 7))
    _good_image(pil, tmp_path / "root" / "a" / "2.png", size=(5, 7))
    other = _good_image(pil, tmp_path / "root" / "b" / "3.png", size=(6, 7))
    _good_image(pil, tmp_path / "root" / "b" / "4.png", size=(6, 8))
    for seed in (0, 1, 2):  # the first files in sorted order are named, whatever order they are read in
        with pytest.raises(
            ValueError,
            match=re.escape(f"{first} is 5x7 (HxW) but {other} is 6x7 (2 of 4 are not 5x7); pass image_size=(H, W)"),
        ):
            load_image_folder(tmp_path / "root", seed=seed)


def test_unreadable_files_and_mixed_sizes_are_reported_together(tmp_path, pil):
    first = _good_image(pil, tmp_path / "root" / "a" / "1.png", size=(5, 7))
    other = _good_image(pil, tmp_path / "root" / "b" / "2.png", size=(6, 7))
    bad = tmp_path / "root" / "b" / "bad.png"
    bad.write_bytes(b"")
    with pytest.raises(ValueError) as info:
        load_image_folder(tmp_path / "root")
    assert f"(1 of 3):\n  {bad}: {NOT_AN_IMAGE}" in str(info.value)
    assert f"\nimages differ in size: {first} is 5x7 (HxW) but {other} is 6x7; pass image_size" in str(info.value)


# -- folders: missing, misnamed, empty ------------------------------------------------------------


def test_every_class_folder_without_images_is_named_in_one_error(tmp_path, pil):
    root = tmp_path / "root"
    _good_image(pil, root / "a" / "1.png")
    (root / "b").mkdir()
    (root / "b" / "notes.txt").write_text("no images here")
    (root / "b" / "scan.pdf").write_bytes(b"%PDF-1.4")
    (root / "c").mkdir()
    (root / "d" / "deeper").mkdir(parents=True)
    (root / "d" / "deeper" / ".hidden.png").write_bytes(b"")
    with pytest.raises(ValueError) as info:
        load_image_folder(root)
    assert str(info.value) == (
        "load_image_folder: class folders without images (3 of 4):\n"
        f"  {root / 'b'} holds no images (only 2 other files: notes.txt, scan.pdf)\n"
        f"  {root / 'c'} holds no images (no visible files at all)\n"
        f"  {root / 'd'} holds no images (no visible files at all)\n"
        "add images to each (list_images(folder) shows which files count) or remove the folder"
    )


def test_no_class_folders_is_an_error_with_the_layout(tmp_path, pil):
    root = tmp_path / "root"
    _good_image(pil, root / "loose.png")
    (root / ".hidden").mkdir()
    with pytest.raises(
        ValueError,
        match=re.escape(f"no class folders in {root} (it holds 1 image file directly)") + r".*root/<class>/<image>",
    ):
        load_image_folder(root)


@pytest.mark.parametrize(
    "function, arg", [(list_images, "folder"), (load_image_folder, "root")], ids=["list_images", "load_image_folder"]
)
def test_a_missing_folder_suggests_a_close_name_or_the_nearest_existing_folder(tmp_path, pil, function, arg):
    photos = tmp_path / "photos"
    _good_image(pil, photos / "test" / "cat" / "1.png")
    (photos / "train").mkdir()
    start = f"{function.__name__}: {arg}"
    with pytest.raises(
        FileNotFoundError, match=re.escape(f"{start} {photos / 'tset'} does not exist; did you mean {photos / 'test'}?")
    ):
        function(photos / "tset")
    with pytest.raises(FileNotFoundError, match=re.escape(f"did you mean {photos / 'test' / 'cat'}?")):
        function(photos / "tset" / "cat")
    with pytest.raises(
        FileNotFoundError,
        match=re.escape(
            f"{start} {photos / 'zzz' / 'x'} does not exist; the nearest existing folder is {photos}; check the path"
        ),
    ):
        function(photos / "zzz" / "x")


def test_a_missing_relative_folder_names_the_current_folder(tmp_path, pil, monkeypatch):
    _good_image(pil, tmp_path / "photos" / "cat" / "1.png")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        FileNotFoundError, match=re.escape("list_images: folder photoz does not exist; did you mean photos?")
    ):
        list_images("photoz")
    with pytest.raises(
        FileNotFoundError,
        match=re.escape(
            f"list_images: folder qqq does not exist; the nearest existing folder is the current folder, "
            f"{Path.cwd()}; check the path"
        ),
    ):
        list_images("qqq")


def test_a_path_under_home_is_expanded_by_every_function(tmp_path, pil, monkeypatch):
    # As torchvision's datasets and load_mnist / load_cifar10 / load_shapes do: "~/pets" is
    # the user's folder, not a folder named "~" in the current one.
    monkeypatch.setenv("HOME", str(tmp_path))
    image = save(pil, np.full((2, 3, 3), 51, np.uint8), tmp_path / "pets" / "cat" / "a.png")
    X, _, names = load_image_folder("~/pets")
    assert names == ("cat",) and X.shape == (1, 3, 2, 3)
    assert list_images("~/pets") == [image]
    np.testing.assert_array_equal(load_images(["~/pets/cat/a.png"]), X)


def test_a_file_where_a_folder_is_expected(tmp_path, pil):
    image = _good_image(pil, tmp_path / "a.png")
    with pytest.raises(
        NotADirectoryError,
        match=re.escape(f"list_images: folder {image} is a file, not a folder; pass the folder that holds the images"),
    ):
        list_images(image)
    with pytest.raises(
        NotADirectoryError,
        match=re.escape(
            f"load_image_folder: root {image} is a file, not a folder; expected a folder holding one subfolder"
        ),
    ):
        load_image_folder(image)
    with pytest.raises(FileNotFoundError, match=re.escape(f"does not exist; {image} is a file, not a folder")):
        list_images(image / "sub")


def test_load_images_names_every_missing_file_and_every_folder(tmp_path, pil):
    good = _good_image(pil, tmp_path / "cat" / "001.png")
    (tmp_path / "dog").mkdir()
    typo, wrong_folder = tmp_path / "cat" / "01.png", tmp_path / "dgo" / "x.png"
    with pytest.raises(FileNotFoundError) as info:
        load_images([typo, good, wrong_folder])
    assert str(info.value) == (
        f"load_images: image files not found (2 of 3):\n  {typo}: did you mean {good}?\n"
        f"  {wrong_folder}: did you mean {tmp_path / 'dog' / 'x.png'}?\ncheck the paths"
    )
    with pytest.raises(
        IsADirectoryError,
        match=re.escape(
            f"load_images: folders where image files were expected (1 of 2):\n  {tmp_path / 'cat'}\n"
            "pass the images in them instead: load_images(list_images(folder))"
        ),
    ):
        load_images([good, tmp_path / "cat"])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"root": 42}, TypeError, "root must be a str or path-like"),
        ({"image_size": 0}, ValueError, "image_size must be >= 1, got 0"),
        ({"image_size": (2, 3, 4)}, ValueError, r"image_size must be an int or an \(h, w\) pair"),
        ({"image_size": 2.5}, TypeError, "image_size must be an int"),
        ({"grayscale": "yes"}, TypeError, "grayscale must be True or False"),
        ({"shuffle": 1}, TypeError, "shuffle must be True or False"),
        ({"seed": -1}, ValueError, "seed must be >= 0, got -1"),
        ({"seed": 1.5}, TypeError, "seed must be an int"),
        ({"on_error": "ignore"}, ValueError, 'on_error must be "raise" or "skip", got \'ignore\''),
    ],
    ids=[
        "root-int",
        "size-zero",
        "size-triple",
        "size-float",
        "grayscale-str",
        "shuffle-int",
        "seed-negative",
        "seed-float",
        "on-error-ignore",
    ],
)
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


# -- Pillow, the optional extra -------------------------------------------------------------------


def test_importing_the_datasets_does_not_import_pillow():
    code = "import sys, minicnn.datasets; print(sorted(m for m in sys.modules if m.split('.')[0] == 'PIL'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_without_pillow_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "x.png").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "PIL", None)  # what "import PIL" meets when it is not installed
    with pytest.raises(
        ImportError,
        match=re.escape(
            "load_image_folder needs Pillow, which reads the images, and it "
            'is not installed: pip install -e ".[images]"'
        ),
    ):
        load_image_folder(tmp_path)
    for call in (lambda: load_images([tmp_path / "x.png"]), lambda: list_images(tmp_path), image_extensions):
        with pytest.raises(
            ImportError,
            match=re.escape('Pillow, which reads the images, and it is not installed: pip install -e ".[images]"'),
        ):
            call()


# -- the examples: train_folder.py and predict.py ---------------------------------------------------


def run(script, *args, cwd, expect_ok=True):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
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
    stdout = run(
        "train_folder.py",
        user_folder,
        "--epochs",
        "1",
        "--limit",
        "30",
        "--image-size",
        "24",
        "--out",
        out,
        cwd=user_folder.parent,
    ).stdout
    return out, stdout


def test_train_folder_reports_trains_and_saves_model_with_its_classes(trained_folder):
    out, stdout = trained_folder
    assert "data: 30 images of shape (3, 24, 24) in 3 classes: circle (" in stdout
    assert "24 for training, 6 for validation" in stdout  # 20% of each class of 10 (3 classes)
    assert "Total parameters:" in stdout and "epoch 1/1:" in stdout and "val_accuracy" in stdout
    lines = stdout.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("validation confusion matrix"))
    rows = [[int(v) for v in line.split()[1:]] for line in lines[start + 2 : start + 5]]
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
    stdout = run(
        "predict.py",
        "--model",
        out / "model.npz",
        one,
        user_folder / "vertical_edge",
        "--top",
        "3",
        cwd=user_folder.parent,
    ).stdout
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
    stdout = run(
        "train_folder.py",
        user_folder,
        "--epochs",
        "1",
        "--limit",
        "12",
        "--grayscale",
        "--image-size",
        "16x20",
        "--val-split",
        "0",
        "--out",
        out,
        cwd=tmp_path,
    ).stdout
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
