"""Your own images: PNG and JPEG files in a folder per class, read into one float32 batch.

The layout is the one torchvision's ``ImageFolder`` and Keras' ``image_dataset_from_directory``
read, so a dataset prepared for either works here unchanged::

    root/
        cat/  001.png  002.jpg  holiday/003.jpeg ...
        dog/  a.png  b.PNG ...

Choices, where the formats leave room for several:

- **Which files.** Every subfolder of ``root`` is a class; its images are found at any depth
  below it. A file is an image when its extension is one of :data:`IMAGE_EXTENSIONS`, in any
  case (``.PNG`` too). Other files (``notes.txt``, ``Thumbs.db``) are skipped silently, as
  torchvision skips unknown extensions; names starting with ``.`` (``.DS_Store``,
  ``.ipynb_checkpoints/``) are skipped, files and folders alike. A file with an image
  extension that does not decode as PNG or JPEG is an error naming it, never skipped: a
  silently missing image would change the dataset without anyone noticing.
- **Order.** Classes sorted by folder name (label ``k`` is ``class_names[k]``), images sorted
  by their path inside the class folder; the same folder always gives the same arrays.
- **Pixel values.** Each bit depth is scaled by its own maximum: 1-bit, 8-bit and palette
  images by 255, 16-bit grayscale PNGs by 65535. Transparency (an alpha channel, or a PNG
  ``tRNS`` colour key or palette alpha) is composited over white, for 8-bit images in
  integers rounded to the nearest level. The EXIF orientation is applied first, so a phone
  photo comes out the way it is shown. CMYK JPEGs become RGB with Pillow's conversion.
- **Colour.** ``grayscale=True`` gives one channel, the ITU-R 601-2 luma that Pillow's
  ``"L"`` conversion computes; otherwise three channels, gray images repeated into R, G, B.
- **Resizing.** With ``image_size``, every image is stretched to exactly that size (the aspect
  ratio is not kept, as in torchvision's ``Resize((h, w))`` and Keras' default) with Pillow's
  bilinear filter, which widens its support when shrinking and so anti-aliases, like
  torchvision's default. An image already of that size is not resampled: its values stay exact.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .._validation import check_pair

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpeg", ".jpg", ".png")

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # older Pillow opens them as "I"
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
# What Pillow raises for a file it cannot decode: not an image, truncated, corrupt, too large.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files below ``folder``, at any depth, in sorted order.

    A file counts when its extension is in :data:`IMAGE_EXTENSIONS` (any case); files and
    folders whose names start with ``.`` are skipped. Paths are sorted by their parts
    relative to ``folder``.

    Parameters
    ----------
    folder : str or path-like
        An existing folder.

    Returns
    -------
    list of Path
        ``folder / relative path`` for every image found; empty when there is none.
    """
    folder = Path(folder)
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [Path(dirpath, f) for f in filenames
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def load_image_folder(root: str | os.PathLike, *, image_size: int | tuple[int, int] | None = None,
                      grayscale: bool = False) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Load ``root/<class>/<image>`` PNG and JPEG files as a labelled batch.

    Every non-hidden subfolder of ``root`` is a class, named after the folder; its images are
    found at any depth below it. See the module docstring for which files count, how each bit
    depth and transparency are read, and how images are resized. Needs Pillow, the optional
    ``images`` extra: ``pip install -e ".[images]"``.

    Parameters
    ----------
    root : str or path-like
        The folder holding one subfolder per class.
    image_size : int or (H, W) pair of int, optional
        Resize every image to this size (an int means square). None keeps the files' own
        size, which must then be the same for all of them.
    grayscale : bool
        One luma channel instead of three (R, G, B).

    Returns
    -------
    X : ndarray of float32, shape (N, C, H, W)
        The images, C-contiguous NCHW, values in [0, 1]; C is 1 with ``grayscale``, else 3.
        Images are grouped by class, in the order of ``class_names``.
    y : ndarray of int64, shape (N,)
        Labels: ``y[i]`` indexes ``class_names``.
    class_names : tuple of str
        The class folder names, sorted.

    Shape
    -----
    ``root -> X (N, C, H, W), y (N,)``, with ``(H, W) = image_size`` when given.

    Raises
    ------
    ImportError
        When Pillow is not installed (the message says how to install it).
    FileNotFoundError, NotADirectoryError
        When ``root`` does not exist or is not a folder.
    ValueError
        Naming the file or folder: an image file that cannot be decoded, images of different
        sizes without ``image_size`` (naming two of them and their sizes), a class folder with
        no images, or a ``root`` with no class folders at all.
    TypeError
        For arguments of the wrong type.

    Examples
    --------
    >>> X, y, class_names = load_image_folder("pets", image_size=64)  # doctest: +SKIP
    >>> X.shape, y.shape, class_names  # doctest: +SKIP
    ((250, 3, 64, 64), (250,), ('cat', 'dog'))
    """
    owner = "load_image_folder"
    root = _check_path(root, owner, "root")
    size = _check_size(image_size, owner)
    _check_bool(grayscale, owner, "grayscale")
    pil = _import_pillow(owner)
    if not root.exists():
        raise FileNotFoundError(f"{owner}: root folder {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{owner}: root {root} is a file; expected a folder holding one "
                                 "subfolder of images per class")

    class_dirs = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")),
                        key=lambda d: d.name)
    if not class_dirs:
        loose = len(list_images(root))
        hint = f" (it holds {loose} image file{'s' * (loose != 1)} directly)" if loose else ""
        raise ValueError(f"{owner}: no class folders in {root}{hint}; expected root/<class>/<image>: "
                         "put each class's images in a subfolder named after the class")
    files: list[Path] = []
    counts = []
    for d in class_dirs:
        found = list_images(d)
        if not found:
            raise ValueError(f"{owner}: class folder {d} holds no images (no {', '.join(IMAGE_EXTENSIONS)} "
                             "files); add images or remove the folder")
        files += found
        counts.append(len(found))
    X = _read_all(files, size, grayscale, owner, pil)
    y = np.repeat(np.arange(len(class_dirs), dtype=np.int64), counts)
    return X, y, tuple(d.name for d in class_dirs)


def load_images(paths: Iterable[str | os.PathLike], *, image_size: int | tuple[int, int] | None = None,
                grayscale: bool = False) -> np.ndarray:
    """Read image files into one float32 batch, exactly as :func:`load_image_folder` reads them.

    For images to classify: give the ``image_size`` and ``grayscale`` the model was trained
    with. The files are decoded as PNG or JPEG whatever their extension.

    Parameters
    ----------
    paths : iterable of str or path-like
        One or more image files, in the order wanted.
    image_size : int or (H, W) pair of int, optional
        Resize every image to this size; None keeps the files' size, which must agree.
    grayscale : bool
        One luma channel instead of three.

    Returns
    -------
    X : ndarray of float32, shape (N, C, H, W)
        Values in [0, 1], ``X[i]`` read from ``paths[i]``.

    Shape
    -----
    ``N paths -> X (N, C, H, W)``

    Raises
    ------
    FileNotFoundError
        For a path that is not an existing file.
    ValueError
        For no paths, a file that cannot be decoded, or differing sizes without ``image_size``.
    """
    owner = "load_images"
    if isinstance(paths, (str, os.PathLike)):
        raise TypeError(f"load_images: paths must be a list of files, got a single path {paths!r}; "
                        "use load_images([path])")
    paths = [_check_path(p, owner, "paths") for p in paths]
    size = _check_size(image_size, owner)
    _check_bool(grayscale, owner, "grayscale")
    if not paths:
        raise ValueError("load_images: paths is empty; expected at least one image file")
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"load_images: no image file at {p}")
    return _read_all(paths, size, grayscale, owner, _import_pillow(owner))


# -- checks -------------------------------------------------------------------------------------

def _check_path(value, owner: str, arg: str) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{owner}: {arg} must be a str or path-like, got {value!r} ({type(value).__name__})")
    return Path(value)


def _check_size(image_size, owner: str) -> tuple[int, int] | None:
    return None if image_size is None else check_pair(image_size, owner, "image_size")


def _check_bool(value, owner: str, arg: str) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {arg} must be True or False, got {value!r} ({type(value).__name__})")


def _import_pillow(owner: str):
    """The ``PIL.Image`` and ``PIL.ImageOps`` modules, imported only when images are read."""
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ImportError(f'{owner} reads images with Pillow, which is not installed: pip install -e ".[images]" '
                          "(or pip install Pillow)") from None
    return Image, ImageOps


# -- decoding -----------------------------------------------------------------------------------

def _read_all(paths: list[Path], size: tuple[int, int] | None, grayscale: bool, owner: str,
              pil) -> np.ndarray:
    """Decode every file into one (N, C, H, W) float32 batch in [0, 1]."""
    X = None
    scales = np.empty(len(paths), np.float32)
    for i, path in enumerate(paths):  # decoding is per file; everything after is one array op
        pixels, scales[i] = _decode(path, size, grayscale, owner, pil)
        if X is None:
            first = path
            X = np.empty((len(paths), pixels.shape[2]) + pixels.shape[:2], np.float32)
        elif pixels.shape[:2] != X.shape[2:]:
            (h0, w0), (h, w) = X.shape[2:], pixels.shape[:2]
            raise ValueError(f"{owner}: images differ in size: {first} is {h0}x{w0} (HxW) but {path} is "
                             f"{h}x{w}; pass image_size=(H, W) to resize every image to one size")
        X[i] = pixels.transpose(2, 0, 1)  # integer levels are exact in float32
    # The one place where levels become [0, 1]: each image divided by its own depth's maximum.
    X /= scales[:, None, None, None]
    return X


def _decode(path: Path, size: tuple[int, int] | None, grayscale: bool, owner: str,
            pil) -> tuple[np.ndarray, int]:
    """One file as integer levels (H, W, C) and the level that means 1.0."""
    Image, ImageOps = pil
    try:
        with Image.open(path, formats=("PNG", "JPEG")) as im:
            im = ImageOps.exif_transpose(im)  # a decoded copy, turned upright
            if im.mode in _SIXTEEN_BIT_MODES:
                return _sixteen_bit(im, size, grayscale, Image), 65535
            return _eight_bit(im, size, grayscale, Image), 255
    except _DECODE_ERRORS + (Image.DecompressionBombError,) as exc:
        raise ValueError(f"{owner}: cannot read {path} as a PNG or JPEG image ({type(exc).__name__}: {exc}); "
                         "fix or delete the file") from exc


def _eight_bit(im, size, grayscale: bool, Image) -> np.ndarray:
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint32)
        colour, alpha = rgba[..., :3], rgba[..., 3:]
        # colour * a/255 + white * (1 - a/255), in levels, rounded to nearest (255 is odd: no ties)
        im = Image.fromarray(((colour * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8))
    elif im.mode not in ("L", "RGB"):
        im = im.convert("RGB")  # 1-bit, palette, CMYK, YCbCr
    target = "L" if grayscale else "RGB"
    if im.mode != target:
        im = im.convert(target)
    if size is not None and im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    pixels = np.asarray(im)
    return pixels[:, :, None] if grayscale else pixels


def _sixteen_bit(im, size, grayscale: bool, Image) -> np.ndarray:
    levels = np.asarray(im).astype(np.uint16)
    key = im.info.get("transparency")
    if isinstance(key, int):  # a tRNS gray key: those pixels are transparent, so white
        levels = np.where(levels == key, np.uint16(65535), levels)
    if size is not None and levels.shape != size:
        levels = np.asarray(Image.fromarray(levels).resize((size[1], size[0]), Image.Resampling.BILINEAR))
    levels = levels[:, :, None]
    return levels if grayscale else np.broadcast_to(levels, levels.shape[:2] + (3,))
