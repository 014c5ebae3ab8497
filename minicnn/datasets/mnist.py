"""MNIST and Fashion-MNIST, read from their official IDX files.

The IDX format (LeCun, Cortes and Burges, the MNIST page; Fashion-MNIST reuses it unchanged):
a header of big-endian numbers, then the values in row-major (C) order::

    bytes 0-1   0x00 0x00
    byte  2     the value type: 0x08 unsigned byte (all that MNIST uses)
    byte  3     the number of dimensions: 3 for images, 1 for labels
    then        one big-endian uint32 per dimension: (N, 28, 28) or (N,)
    then        N * 28 * 28 pixel bytes (0 white background ... 255 ink), or N label bytes (0..9)

So the images file starts with the magic number 0x00000803 and the labels file with
0x00000801. Each split is two files, ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``
(60,000 images), ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (10,000), as
published gzipped (``.gz``) or unpacked: both are read. The pixel bytes are read straight into
the array that is returned (decompressed into it, for a ``.gz``), so loading makes no copy.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._download import download as fetch
from ._download import md5_of
from ._files import SPLITS, check_choice, check_download, data_folder, read_into

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801

DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
"""MNIST's class names: label ``k`` is the digit ``k``."""

FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Fashion-MNIST's class names, as its authors list them (label ``k`` is ``FASHION_CLASSES[k]``)."""


class _Kind(NamedTuple):
    title: str  # for the messages
    folder: str  # the default root's name, under the user's cache folder
    mirrors: tuple[str, ...]  # official addresses, tried in order
    md5: dict[str, str]  # published MD5 of each .gz file
    classes: tuple[str, ...]


# The addresses and checksums torchvision uses. yann.lecun.com, MNIST's first home, often refuses
# downloads now, so the copy on the PyTorch project's S3 bucket comes first.
KINDS: dict[str, _Kind] = {
    "digits": _Kind(
        "MNIST",
        "mnist",
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        DIGIT_CLASSES,
    ),
    "fashion": _Kind(
        "Fashion-MNIST",
        "fashion-mnist",
        (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        FASHION_CLASSES,
    ),
}

# split -> (images file, labels file), without the .gz
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_mnist(
    root: str | os.PathLike | None = None,
    split: str = "train",
    kind: str = "digits",
    download: bool = False,
    *,
    mirror: str | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Read a split of MNIST (``kind="digits"``) or Fashion-MNIST (``kind="fashion"``) from the
    official IDX files.

    Parameters
    ----------
    root : str or path-like, optional
        The folder holding the files under their official names (``train-images-idx3-ubyte.gz``
        and so on; gzipped or unpacked). None means ``~/.cache/minicnn/mnist`` (digits) or
        ``~/.cache/minicnn/fashion-mnist``, beside the shapes cache.
    split : {"train", "test"}
        60,000 training or 10,000 test images.
    kind : {"digits", "fashion"}
    download : bool
        Fetch the split's files that are missing from the official addresses (tried in turn),
        check each against its published MD5 and write it atomically, with a progress bar on a
        terminal. A ``.gz`` already in ``root`` is checked against the published MD5 too, and
        refused (never replaced) when it differs. Without it, a missing file is an error that
        says to pass ``download=True``.
    mirror : str, optional
        A base URL to download from instead of the official addresses (a local copy, say); the
        files must be the official ones: their checksums are checked just the same.

    Returns
    -------
    X : ndarray of uint8, shape (N, 1, 28, 28)
        Intensities 0..255 (``fit``, ``evaluate`` and ``predict`` read them as float32 in [0, 1]).
        The file's own bytes, in a writable C-contiguous array.
    y : ndarray of int64, shape (N,)
        Labels 0..9.
    class_names : tuple of str
        ``class_names[k]`` names label ``k``: the digits ``"0"``..``"9"``, or Fashion-MNIST's
        ``"T-shirt/top"``, ``"Trouser"``, ...

    Shape
    -----
    ``split -> X (N, 1, H, W), y (N,)``: N = 60,000 (train) or 10,000 (test), H = W = 28 in the
    official files (any size an IDX file declares is read).

    Raises
    ------
    FileNotFoundError
        A file of the split is missing (and ``download`` is False).
    ValueError
        A file is not what its name says, naming it: not an IDX file, an images file where the
        labels belong (or the reverse), truncated or with bytes past its end, damaged
        compression, labels outside 0..9, or images and labels of different counts. With
        ``download=True``: a ``.gz`` whose MD5 is not the published one, or a download that
        arrived damaged from every address.
    ConnectionError
        ``download=True`` but no address could be reached.

    Examples
    --------
    >>> X, y, classes = load_mnist("data/mnist", "test", download=True)  # doctest: +SKIP
    >>> X.shape, X.dtype, y[:3], classes[y[0]]  # doctest: +SKIP
    ((10000, 1, 28, 28), dtype('uint8'), array([7, 2, 1]), '7')
    """
    owner = "load_mnist"
    split = check_choice(split, SPLITS, owner, "split")
    kind = KINDS[check_choice(kind, tuple(KINDS), owner, "kind")]
    download, mirror = check_download(download, mirror, owner)
    folder = data_folder(root, kind.folder, owner)
    paths = [_find(folder, name, kind, download, mirror, owner) for name in FILES[split]]
    images = read_idx(paths[0], IMAGES_MAGIC, owner)
    labels = read_idx(paths[1], LABELS_MAGIC, owner)
    if len(images) != len(labels):
        raise ValueError(
            f"{owner}: {paths[0]} holds {len(images):,} images but {paths[1]} holds {len(labels):,} "
            "labels; the two files are of different splits or datasets: get both again"
        )
    _check_labels(labels, len(kind.classes), paths[1], owner)
    return images[:, None], labels.astype(np.int64), kind.classes


def _find(folder: Path, name: str, kind: _Kind, download: bool, mirror: str | None, owner: str) -> Path:
    """The file ``name`` in ``folder``, unpacked or ``.gz``; downloaded when asked and missing."""
    packed = name + ".gz"
    for path in (folder / name, folder / packed):
        if path.is_file():
            if download and path.suffix == ".gz":
                _check_official(path, kind, owner)
            return path
    if not download:
        raise FileNotFoundError(
            f"{owner}: {kind.title} file {packed} (or {name}, unpacked) is not in {folder}; "
            f"pass download=True to fetch it from {kind.mirrors[0]}, or root= the folder "
            "that holds the official files"
        )
    return fetch((mirror,) if mirror else kind.mirrors, packed, kind.md5[packed], folder, owner)


def _check_official(path: Path, kind: _Kind, owner: str) -> None:
    found, published = md5_of(path), kind.md5[path.name]
    if found != published:
        raise ValueError(
            f"{owner}: {path} is not the official {kind.title} file: its MD5 is {found}, the published "
            f"one is {published}. It was left as it is; move it away to download the official file, "
            "or load it with download=False"
        )


def read_idx(path: Path, magic: int, owner: str = "read_idx") -> np.ndarray:
    """The array an IDX file of unsigned bytes holds, read into it with no copy; the file may be gzipped.

    Parameters
    ----------
    path : Path
        An IDX file; a name ending in ``.gz`` is decompressed as it is read.
    magic : int
        The magic number expected: 0x00000803 for images (N, H, W), 0x00000801 for labels (N,).
    owner : str
        Who reads, for the messages.

    Returns
    -------
    ndarray of uint8
        Of the shape its header declares.

    Raises
    ------
    ValueError
        Naming ``path``, when it is not such a file (wrong magic number, too short or too long
        for its header, a dimension of 0) or its compression is damaged. A header that declares
        more values than the file can hold is refused before any memory is taken for them.
    """
    gz = path.suffix == ".gz"
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as f:
            header = f.read(4)
            _check_magic(header, magic, path, owner)
            ndim = header[3]
            dims_bytes = f.read(4 * ndim)
            if len(dims_bytes) < 4 * ndim:
                raise ValueError(f"{owner}: {path} is truncated: it ends inside its header")
            dims = struct.unpack(f">{ndim}I", dims_bytes)
            _check_dims(dims, 4 + 4 * ndim, path, gz, owner)
            out = np.empty(dims, np.uint8)
            got = read_into(f, out)
            if got < out.nbytes:
                raise ValueError(
                    f"{owner}: {path} is truncated: its header declares {' x '.join(map(str, dims))} "
                    f"= {out.nbytes:,} bytes of values, the file holds {got:,}; get it again"
                )
            if f.read(1):
                raise ValueError(
                    f"{owner}: {path} holds more bytes than its header declares "
                    f"({' x '.join(map(str, dims))}); it is not an official IDX file"
                )
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        # BadGzipFile also means a failed CRC or junk after the stream: only a file that does not
        # start as gzip does is one whose name lies about its compression.
        hint = (
            "; it is not gzipped: remove the .gz from its name"
            if isinstance(exc, gzip.BadGzipFile) and not _starts_as_gzip(path)
            else "; delete it and get it again"
        )
        raise ValueError(f"{owner}: {path} is damaged ({type(exc).__name__}: {exc}){hint}") from None
    return out


# The most deflate can compress: about 1032 output bytes per input byte (RFC 1951's longest
# match, 258 bytes, in a code of about 2 bits), so a header declaring more than this many times
# the .gz file's size cannot be true.
_MAX_DEFLATE_RATIO = 1032


def _check_dims(dims: tuple[int, ...], header_bytes: int, path: Path, gz: bool, owner: str) -> None:
    """A ValueError, before any memory is taken, when the dimensions a header declares are 0 or
    cannot fit in the file (a damaged header would otherwise ask for terabytes)."""
    shown = " x ".join(map(str, dims))
    if 0 in dims:
        raise ValueError(
            f"{owner}: {path} declares dimensions {shown}: it holds no values; it is not an official "
            "IDX file, get it again"
        )
    declared = math.prod(dims)
    size = path.stat().st_size
    if gz:
        if declared > _MAX_DEFLATE_RATIO * size:
            raise ValueError(
                f"{owner}: {path} is truncated or its header is damaged: it declares {shown} = "
                f"{declared:,} bytes of values, more than its {size:,} compressed bytes can hold; "
                "get it again"
            )
    elif size - header_bytes < declared:  # bytes past the end are found once the values are read
        raise ValueError(
            f"{owner}: {path} is truncated: its header declares {shown} = {declared:,} bytes of values, "
            f"the file holds {size - header_bytes:,}; get it again"
        )


def _starts_as_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _check_magic(header: bytes, magic: int, path: Path, owner: str) -> None:
    """A ValueError naming what ``path`` is instead, unless its first four bytes are ``magic``."""
    if len(header) == 4 and int.from_bytes(header, "big") == magic:
        return
    what = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}
    expected = f"an IDX {what[magic]} file, which starts with the magic number 0x{magic:08x}"
    if len(header) < 4:
        raise ValueError(f"{owner}: {path} is truncated ({len(header)} bytes); expected {expected}")
    found = int.from_bytes(header, "big")
    if found in what:
        raise ValueError(
            f"{owner}: {path} is an IDX {what[found]} file (magic number 0x{found:08x}), not "
            f"{what[magic]}; are the images and labels files swapped or misnamed?"
        )
    if header[:2] == b"\x1f\x8b":
        raise ValueError(f"{owner}: {path} is gzipped but its name does not end in .gz; add .gz to its name")
    raise ValueError(f"{owner}: {path} is not {expected}: it starts with 0x{found:08x}")


def _check_labels(labels: np.ndarray, n_classes: int, path: Path, owner: str) -> None:
    bad = np.flatnonzero(labels >= n_classes)
    if len(bad):
        raise ValueError(
            f"{owner}: {path} holds {len(bad):,} labels outside 0..{n_classes - 1} (label "
            f"{labels[bad[0]]} at index {bad[0]}); it is not an official labels file"
        )
