"""Your own images: a folder per class, read into one float32 batch.

The layout is the one torchvision's ``ImageFolder`` and Keras' ``image_dataset_from_directory``
read, so a dataset prepared for either works here unchanged::

    root/
        cat/  001.png  002.jpg  holiday/003.webp ...
        dog/  a.png  b.BMP  c.tif ...

Choices, where the formats leave room for several:

- **Which files.** Every subfolder of ``root`` is a class; its images are found at any depth
  below it. A file is an image when its extension is one Pillow can decode
  (:func:`image_extensions`: PNG, JPEG, WebP, BMP, TIFF, GIF and the rest of Pillow's
  formats), in any case (``.PNG`` too). Other files (``notes.txt``, ``labels.csv``) are
  skipped silently, as torchvision skips unknown extensions; names starting with ``.``
  (``.DS_Store``, ``.ipynb_checkpoints/``) are skipped, files and folders alike. A file is
  decoded by its content, not its extension (a PNG named ``.jpg`` reads as the PNG it is),
  and a file of several frames (an animated GIF, a multi-page TIFF) gives its first.
- **Files that cannot be read.** Every image file is tried, and those that fail (corrupt,
  truncated, empty, not an image at all) are reported together: ``on_error="raise"`` (the
  default) raises one ValueError naming each of them and why; ``on_error="skip"`` leaves them
  out and warns once with their count and the first few names. Skipping is never silent: a
  missing image changes the dataset, so the user is told.
- **Order.** Classes sorted by folder name (label ``k`` is ``class_names[k]``). The images are
  shuffled by default, as Keras does, so that ``fit(X, y, validation_split=0.2)`` validates on
  every class and not on the last one: the sorted list of files (by class, then by path inside
  the class folder) is permuted by ``numpy.random.default_rng(seed).permutation``, with a fixed
  default seed, so the same folder always gives the same arrays. ``shuffle=False`` keeps the
  sorted order.
- **Pixel values.** Each bit depth is scaled by its own maximum: 1-bit, 8-bit and palette
  images by 255, 16-bit grayscale images (PNG, TIFF) by 65535; a 32-bit integer image is read
  as 16-bit when its values fit in 0..65535 and is otherwise unreadable, like a floating-point
  image, since neither has a fixed maximum. Transparency (an alpha channel, or a ``tRNS``
  colour key or palette alpha) is composited over white, for 8-bit images in integers rounded
  to the nearest level. The EXIF orientation is applied first, so a phone photo comes out the
  way it is shown. CMYK and other colour spaces become RGB with Pillow's conversion.
- **Colour.** ``grayscale=True`` gives one channel, the ITU-R 601-2 luma that Pillow's
  ``"L"`` conversion computes; otherwise three channels, gray images repeated into R, G, B.
- **Resizing.** With ``image_size``, every image is stretched to exactly that size (the aspect
  ratio is not kept, as in torchvision's ``Resize((h, w))`` and Keras' default) with Pillow's
  bilinear filter, which widens its support when shrinking and so anti-aliases, like
  torchvision's default. An image already of that size is not resampled: its values stay exact.
- **Paths.** ``~`` is expanded to the user's home folder. A folder that does not exist is a
  FileNotFoundError and a file where a folder is expected a NotADirectoryError, from every
  function here; the message suggests a close name beside the missing one, or names the
  nearest folder that exists.

Pillow is imported only when a function here is called, so ``import minicnn.datasets`` works
without it.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .._validation import check_int, check_pair, warn_user
from ._pixels import Unreadable, decode

# Formats Pillow identifies but never decodes pixels of (an MPEG video's header): not images.
_HEADER_ONLY_FORMATS = ("MPEG",)
_ON_ERROR = ("raise", "skip")
_NAMES_IN_WARNING = 5


def image_extensions() -> tuple[str, ...]:
    """The file extensions that count as images: those of every format Pillow can decode.

    Taken from Pillow's own registry (``PIL.Image.registered_extensions()``), keeping the
    formats Pillow can open, without its stubs that need an outside decoder (HDF5, GRIB, BUFR,
    WMF) or read only a header (MPEG). Matching is case-insensitive: ``.PNG`` counts too.

    Returns
    -------
    tuple of str
        Lower-case extensions with their dot, sorted: ``('.apng', '.avif', ..., '.bmp', ...,
        '.jpeg', '.jpg', ..., '.png', ..., '.tif', '.tiff', ..., '.webp', ...)``; which ones
        depends on the installed Pillow and the codecs it was built with.

    Raises
    ------
    ImportError
        When Pillow is not installed (the message says how to install it).
    """
    return _extensions(_import_pillow("image_extensions")[0])


@functools.cache
def _extensions(Image) -> tuple[str, ...]:
    from PIL import ImageFile

    Image.init()  # loads every plugin, so the registry is complete

    def decodes(fmt: str) -> bool:
        factory = Image.OPEN.get(fmt, (None,))[0]
        if factory is None or fmt in _HEADER_ONLY_FORMATS:
            return False
        return not (isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile))

    return tuple(sorted({ext.lower() for ext, fmt in Image.registered_extensions().items() if decodes(fmt)}))


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files below ``folder``, at any depth, in sorted order.

    A file counts when its extension is one of :func:`image_extensions` (any case); files and
    folders whose names start with ``.`` are skipped. Paths are sorted by their parts
    relative to ``folder``. The files are not opened: a corrupt image is listed.

    Parameters
    ----------
    folder : str or path-like
        An existing folder.

    Returns
    -------
    list of Path, length N
        ``folder / relative path`` for every image found; empty when there is none.

    Shape
    -----
    ``folder -> N paths``

    Raises
    ------
    FileNotFoundError
        When ``folder`` does not exist (the message suggests a close name or the nearest
        existing folder).
    NotADirectoryError
        When ``folder`` is a file.
    ImportError
        When Pillow, whose formats decide what an image is, is not installed.
    TypeError
        When ``folder`` is not a str or path-like.
    """
    owner = "list_images"
    folder = _check_path(folder, owner, "folder")
    _check_folder(folder, owner, "folder", "pass the folder that holds the images")
    return _walk(folder, _extensions(_import_pillow(owner)[0]), owner)[0]


def load_image_folder(
    root: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] | None = None,
    grayscale: bool = False,
    shuffle: bool = True,
    seed: int | None = 0,
    on_error: str = "raise",
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Load ``root/<class>/<image>`` files as a labelled, shuffled batch.

    Every non-hidden subfolder of ``root`` is a class, named after the folder; its images are
    found at any depth below it. See the module docstring for which files count, the order,
    how each bit depth and transparency are read, and how images are resized. Needs Pillow,
    the optional ``images`` extra: ``pip install -e ".[images]"``.

    Parameters
    ----------
    root : str or path-like
        The folder holding one subfolder per class.
    image_size : int or (H, W) pair of int, optional
        Resize every image to this size (an int means square). None keeps the files' own
        size, which must then be the same for all of them.
    grayscale : bool
        One luma channel instead of three (R, G, B).
    shuffle : bool
        Shuffle the images (default), as Keras' ``image_dataset_from_directory`` does; False
        keeps them sorted by class, then by path.
    seed : int or None
        The shuffle's seed. The default 0 gives the same order for the same files every time;
        None gives a fresh random order on each call. Ignored when ``shuffle`` is False.
    on_error : {"raise", "skip"}
        What to do with image files that cannot be decoded: ``"raise"`` (default) raises one
        ValueError listing all of them; ``"skip"`` leaves them out and warns (a
        ``UserWarning``) with how many were skipped and the first few names.

    Returns
    -------
    X : ndarray of float32, shape (N, C, H, W)
        The images, C-contiguous NCHW, values in [0, 1]; C is 1 with ``grayscale``, else 3.
    y : ndarray of int64, shape (N,)
        Labels: ``y[i]`` indexes ``class_names`` and is the class of ``X[i]``.
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
        When ``root`` does not exist or is a file.
    ValueError
        Naming the files or folders: every image file that cannot be decoded (unless
        skipped), images of different sizes without ``image_size`` (naming two of them and
        their sizes), every class folder with no images (or none left after skipping), or a
        ``root`` with no class folders at all.
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
    _check_bool(shuffle, owner, "shuffle")
    if seed is not None:
        seed = check_int(seed, owner, "seed", minimum=0)
    _check_on_error(on_error, owner)
    _check_folder(root, owner, "root", "expected a folder holding one subfolder of images per class")
    pil = _import_pillow(owner)
    extensions = _extensions(pil[0])

    class_dirs = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name)
    if not class_dirs:
        loose = len(_walk(root, extensions, owner)[0])
        hint = f" (it holds {loose} image file{'s' * (loose != 1)} directly)" if loose else ""
        raise ValueError(
            f"{owner}: no class folders in {root}{hint}; expected root/<class>/<image>: "
            "put each class's images in a subfolder named after the class"
        )
    files: list[Path] = []
    counts = []
    empty = []
    for d in class_dirs:
        found, others = _walk(d, extensions, owner)
        if not found:
            empty.append(f"{d} holds no images ({_describe_others(others)})")
        files += found
        counts.append(len(found))
    if empty:
        raise ValueError(
            _listing(
                f"{owner}: class folders without images ({len(empty)} of {len(class_dirs)})",
                empty,
                "add images to each (list_images(folder) shows which files count) or remove the folder",
            )
        )
    y = np.repeat(np.arange(len(class_dirs), dtype=np.int64), counts)
    order = np.random.default_rng(seed).permutation(len(files)) if shuffle else np.arange(len(files))
    fix = 'fix or delete them, or pass on_error="skip" to leave them out'
    X, read = _read_all(
        [files[i] for i in order], size, grayscale, owner, pil, rank=order, skip=on_error == "skip", fix=fix
    )
    y = y[order][read]
    if on_error == "skip":
        left = np.bincount(y, minlength=len(class_dirs))
        emptied = [
            f"{d}: none of its {_count(counts[k], 'image file')} can be read"
            for k, d in enumerate(class_dirs)
            if left[k] == 0
        ]
        if emptied:
            raise ValueError(
                _listing(
                    f"{owner}: class folders left without images after skipping the files "
                    f"that cannot be read ({len(emptied)} of {len(class_dirs)})",
                    emptied,
                    "fix or replace their images, or remove the folder",
                )
            )
    return X, y, tuple(d.name for d in class_dirs)


def load_images(
    paths: Iterable[str | os.PathLike], *, image_size: int | tuple[int, int] | None = None, grayscale: bool = False
) -> np.ndarray:
    """Read image files into one float32 batch, exactly as :func:`load_image_folder` reads them.

    For images to classify: give the ``image_size`` and ``grayscale`` the model was trained
    with. Each file is decoded by its content, in any format Pillow reads, whatever its
    extension. ``X[i]`` always comes from ``paths[i]``, so there is no skipping: every file
    that cannot be read is named in one error, to be fixed or left out of ``paths``.

    Parameters
    ----------
    paths : iterable of str or path-like, length N
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
        Naming every path that does not exist (with a close name or the nearest folder).
    IsADirectoryError
        Naming every path that is a folder (use :func:`list_images` for its images).
    ValueError
        For no paths, files that cannot be decoded (all of them in one message), or differing
        sizes without ``image_size``.
    ImportError
        When Pillow is not installed (the message says how to install it).
    """
    owner = "load_images"
    if isinstance(paths, (str, os.PathLike)):
        raise TypeError(
            f"load_images: paths must be a list of files, got a single path {paths!r}; use load_images([path])"
        )
    paths = [_check_path(p, owner, "paths") for p in paths]
    size = _check_size(image_size, owner)
    _check_bool(grayscale, owner, "grayscale")
    if not paths:
        raise ValueError("load_images: paths is empty; expected at least one image file")
    missing = [f"{p}: {_nearest(p)}" for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(
            _listing(f"{owner}: image files not found ({len(missing)} of {len(paths)})", missing, "check the paths")
        )
    folders = [f"{p}" for p in paths if p.is_dir()]
    if folders:
        raise IsADirectoryError(
            _listing(
                f"{owner}: folders where image files were expected ({len(folders)} of {len(paths)})",
                folders,
                "pass the images in them instead: load_images(list_images(folder))",
            )
        )
    X, _ = _read_all(
        paths,
        size,
        grayscale,
        owner,
        _import_pillow(owner),
        rank=np.arange(len(paths)),
        skip=False,
        fix="fix or delete them, or leave them out of paths",
    )
    return X


# -- checks -------------------------------------------------------------------------------------


def _check_path(value, owner: str, arg: str) -> Path:
    """``value`` as a Path, ``~`` expanded (as torchvision's datasets and minicnn's other loaders do)."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{owner}: {arg} must be a str or path-like, got {value!r} ({type(value).__name__})")
    return Path(value).expanduser()


def _check_size(image_size, owner: str) -> tuple[int, int] | None:
    return None if image_size is None else check_pair(image_size, owner, "image_size")


def _check_bool(value, owner: str, arg: str) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {arg} must be True or False, got {value!r} ({type(value).__name__})")


def _check_on_error(value, owner: str) -> None:
    if not isinstance(value, str) or value not in _ON_ERROR:
        raise ValueError(f'{owner}: on_error must be "raise" or "skip", got {value!r}')


def _check_folder(path: Path, owner: str, arg: str, expected: str) -> None:
    """FileNotFoundError or NotADirectoryError unless ``path`` is an existing folder."""
    if path.is_dir():
        return
    if path.exists():
        raise NotADirectoryError(f"{owner}: {arg} {path} is a file, not a folder; {expected}")
    raise FileNotFoundError(f"{owner}: {arg} {path} does not exist; {_nearest(path)}")


def _nearest(path: Path) -> str:
    """The fix for a path that does not exist: a close name where it goes wrong, else the
    nearest folder that does exist."""
    missing, base = path, path.parent
    while not base.exists() and base != base.parent:
        missing, base = base, base.parent
    if not base.is_dir():
        return f"{base} is a file, not a folder; check the path"
    try:
        names = [p.name for p in base.iterdir() if not p.name.startswith(".")]
    except OSError:  # an unreadable folder: no names to suggest
        names = []
    close = difflib.get_close_matches(missing.name, names, n=1)
    if close:
        return f"did you mean {base / close[0] / path.relative_to(missing)}?"
    where = base if str(base) != "." else f"the current folder, {Path.cwd()}"
    return f"the nearest existing folder is {where}; check the path"


def _import_pillow(owner: str):
    """The ``PIL.Image`` and ``PIL.ImageOps`` modules, imported only when a function here is called."""
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ImportError(
            f"{owner} needs Pillow, which reads the images, and it is not installed: "
            'pip install -e ".[images]" (or pip install Pillow)'
        ) from None
    return Image, ImageOps


# -- finding files and reporting ----------------------------------------------------------------


def _walk(folder: Path, extensions: tuple[str, ...], owner: str) -> tuple[list[Path], list[Path]]:
    """(image files, other files) below ``folder``, hidden names skipped, each sorted by parts.

    Linked folders are followed, as torchvision's ``ImageFolder`` follows them (a class folder
    that is a link already counts, so a linked subfolder must too); a link back to a folder
    already on the way down is not, or the walk would never end. A folder that cannot be
    listed is an error: skipping it would leave its images out without a word.
    """
    images, others = [], []
    extensions = frozenset(extensions)

    def unlistable(exc: OSError) -> None:
        raise type(exc)(
            exc.errno,
            f"{owner}: cannot list the folder {exc.filename} below {folder} ({exc.strerror}); "
            "make it readable (chmod u+rx) or move it out",
        ) from None

    # dirpath -> the real paths of the folders walked through to reach it, itself included
    way_down = {os.fspath(folder): (os.path.realpath(folder),)}
    for dirpath, dirnames, filenames in os.walk(folder, onerror=unlistable, followlinks=True):
        above = way_down.pop(dirpath)
        kept = []
        for d in dirnames:
            real = os.path.realpath(os.path.join(dirpath, d))
            if not d.startswith(".") and real not in above:
                kept.append(d)
                way_down[os.path.join(dirpath, d)] = (*above, real)
        dirnames[:] = kept
        for name in filenames:
            if not name.startswith("."):
                is_image = os.path.splitext(name)[1].lower() in extensions
                (images if is_image else others).append(Path(dirpath, name))

    def by_parts(p: Path) -> tuple[str, ...]:
        return p.relative_to(folder).parts

    return sorted(images, key=by_parts), sorted(others, key=by_parts)


def _describe_others(others: list[Path]) -> str:
    if not others:
        return "no visible files at all"
    shown = ", ".join(p.name for p in others[:3])
    return f"only {_count(len(others), 'other file')}: {shown}{', ...' if len(others) > 3 else ''}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def _listing(headline: str, items: list[str], fix: str) -> str:
    """One error message for many problems: the headline, one indented line each, the fix."""
    return headline + ":\n" + "".join(f"  {item}\n" for item in items) + fix


# -- decoding -----------------------------------------------------------------------------------


def _read_all(
    paths: list[Path],
    size: tuple[int, int] | None,
    grayscale: bool,
    owner: str,
    pil,
    *,
    rank: np.ndarray,
    skip: bool,
    fix: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode every file into one (M, C, H, W) float32 batch in [0, 1].

    Every file is tried before anything is reported, so one error names them all. Returns the
    batch and a bool mask over ``paths`` of the files it holds (all of them unless ``skip``).
    ``rank[i]`` is where ``paths[i]`` comes in the order messages list files in.
    """
    n = len(paths)
    X = None
    shapes = np.zeros((n, 2), np.int64)  # (H, W) of each file read; (0, 0) for a file that failed
    scales = np.empty(n, np.float32)
    failed = []
    kept = 0
    for i, path in enumerate(paths):  # decoding is per file; everything after is one array op
        try:
            pixels, scales[kept] = decode(path, size, grayscale, pil)
        except Unreadable as exc:
            failed.append((rank[i], f"{path}: {exc}"))
            continue
        shapes[i] = pixels.shape[:2]
        if X is None:
            X = np.empty((n, pixels.shape[2]) + pixels.shape[:2], np.float32)
        if pixels.shape[:2] == X.shape[2:]:  # a mismatch is reported below, once all are tried
            X[kept] = pixels.transpose(2, 0, 1)  # integer levels are exact in float32
            kept += 1
    read = shapes[:, 0] > 0
    problems = []
    if failed and not skip:
        problems.append(
            _listing(
                f"image files that cannot be read ({len(failed)} of {n})", [line for _, line in sorted(failed)], fix
            )
        )
    if X is not None and kept < read.sum():
        problems.append(_size_mismatch(paths, shapes, rank, read))
    if failed and skip:
        lines = [line for _, line in sorted(failed)]
        more = f"; and {len(lines) - _NAMES_IN_WARNING} more" if len(lines) > _NAMES_IN_WARNING else ""
        warn_user(
            f"{owner}: skipped {len(failed)} of {n} image files, which cannot be read: "
            + "; ".join(lines[:_NAMES_IN_WARNING])
            + more
            + '. on_error="raise" lists them all'
        )
    if problems:
        raise ValueError(f"{owner}: " + "\n".join(problems))
    if X is None:
        raise ValueError(
            f"{owner}: no image could be read, of the {n} tried (see the warning for why); fix or replace them"
        )
    if kept < n:  # the rows past ``kept`` were kept for skipped files; a slice, not a copy
        X = X[:kept]
    # The one place where levels become [0, 1]: each image divided by its own depth's maximum.
    X /= scales[:kept, None, None, None]
    return X, read


def _size_mismatch(paths: list[Path], shapes: np.ndarray, rank: np.ndarray, read: np.ndarray) -> str:
    """Two files of different sizes, the first ones in listing order, and how many differ."""
    by_rank = [i for i in np.argsort(rank) if read[i]]
    first = by_rank[0]
    odd = [i for i in by_rank if tuple(shapes[i]) != tuple(shapes[first])]
    (h0, w0), (h, w) = shapes[first], shapes[odd[0]]
    others = f" ({len(odd)} of {len(by_rank)} are not {h0}x{w0})" if len(odd) > 1 else ""
    return (
        f"images differ in size: {paths[first]} is {h0}x{w0} (HxW) but {paths[odd[0]]} is {h}x{w}{others}; "
        "pass image_size=(H, W) to resize every image to one size"
    )
