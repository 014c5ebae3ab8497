"""CIFAR-10, read from its official *binary* version (``cifar-10-binary.tar.gz``).

The format, as Krizhevsky's CIFAR page describes it: the training set is five files
``data_batch_1.bin`` ... ``data_batch_5.bin`` and the test set one, ``test_batch.bin``, each
10,000 records of 3,073 bytes::

    byte 0          the label, 0..9
    bytes 1-1024    the red channel, 32 x 32, row by row
    bytes 1025-2048 green
    bytes 2049-3072 blue

so a record's pixels are already one image in CHW order. ``batches.meta.txt`` names the
classes, one per line. The archive unpacks into a folder ``cifar-10-batches-bin``. The pickled
Python version (``cifar-10-python.tar.gz``) is never read: unpickling a file can run any code
in it.

The files are read straight into one array of records; the images are a view of its pixel
bytes and no image is copied.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import zlib
from pathlib import Path

import numpy as np

from .._atomic import write_atomically
from ._download import download as fetch
from ._download import md5_of
from ._files import SPLITS, check_choice, check_download, data_folder, read_into

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
"""CIFAR-10's class names, as ``batches.meta.txt`` lists them (label ``k`` is ``CIFAR10_CLASSES[k]``)."""

MIRRORS: tuple[str, ...] = ("https://www.cs.toronto.edu/~kriz/",)
ARCHIVE = "cifar-10-binary.tar.gz"
ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # as published on the CIFAR page
FOLDER = "cifar-10-batches-bin"  # the folder the archive unpacks into
FILES = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)}
META = "batches.meta.txt"
RECORD = 1 + 3 * 32 * 32  # one label byte, then 3,072 pixel bytes
_OFFICIAL_RECORDS = 10_000  # per file


def load_cifar10(
    root: str | os.PathLike | None = None, split: str = "train", download: bool = False, *, mirror: str | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Read a split of CIFAR-10 from the official binary files.

    Parameters
    ----------
    root : str or path-like, optional
        The folder holding ``cifar-10-batches-bin`` (where ``cifar-10-binary.tar.gz`` was
        unpacked), or that folder itself. None means ``~/.cache/minicnn/cifar10``, beside the
        shapes cache.
    split : {"train", "test"}
        The 50,000 training images (``data_batch_1.bin`` to ``data_batch_5.bin``, in order) or
        the 10,000 test images (``test_batch.bin``).
    download : bool
        When files are missing: fetch ``cifar-10-binary.tar.gz`` (162 MB) from the official
        address into ``root``, check it against its published MD5 (written atomically, with a
        progress bar on a terminal), unpack the batch files and ``batches.meta.txt`` from it (each
        atomically) and delete the archive. An archive already in ``root`` is used when its MD5
        is the published one, and then kept.
    mirror : str, optional
        A base URL to download the archive from instead of the official address; it must be
        the official archive: its checksum is checked just the same.

    Returns
    -------
    X : ndarray of uint8, shape (N, 3, 32, 32)
        RGB intensities 0..255 (``fit``, ``evaluate`` and ``predict`` read them as float32 in
        [0, 1]). A view of the records read from the files (each image's label byte sits
        before it), so it is not C-contiguous; ``np.ascontiguousarray(X)`` makes a packed copy.
    y : ndarray of int64, shape (N,)
        Labels 0..9.
    class_names : tuple of str
        From ``batches.meta.txt`` when it is there, else :data:`CIFAR10_CLASSES`.

    Shape
    -----
    ``split -> X (N, 3, 32, 32), y (N,)``: N = 50,000 (train) or 10,000 (test).

    Raises
    ------
    FileNotFoundError
        A batch file is missing (and ``download`` is False); the message says which, and
        recognises the pickled Python version, which is not read.
    ValueError
        A file that is not an official batch, naming it: a size that is no whole number of
        3,073-byte records, fewer records than the other batches (truncated), labels outside
        0..9; a ``batches.meta.txt`` that does not list 10 names; with ``download=True``, an
        archive whose MD5 is not the published one or that lacks a file.
    ConnectionError
        ``download=True`` but the address could not be reached.

    Examples
    --------
    >>> X, y, classes = load_cifar10("data", "test", download=True)  # doctest: +SKIP
    >>> X.shape, X.dtype, classes[y[0]]  # doctest: +SKIP
    ((10000, 3, 32, 32), dtype('uint8'), 'cat')
    """
    owner = "load_cifar10"
    split = check_choice(split, SPLITS, owner, "split")
    download, mirror = check_download(download, mirror, owner)
    root = data_folder(root, "cifar10", owner)
    folder = _batches_folder(root, split)
    paths = [folder / name for name in FILES[split]]
    missing = [p for p in paths if not p.is_file()]
    if missing and download:
        _download_and_unpack(root, folder, mirror, owner)
    elif missing:
        raise FileNotFoundError(_missing_message(root, folder, missing, owner))

    counts = [_record_count(p, owner) for p in paths]
    _check_same_counts(paths, counts, folder, owner)
    records = np.empty((sum(counts), RECORD), np.uint8)
    start = 0
    for path, count in zip(paths, counts):
        with open(path, "rb") as f:
            got = read_into(f, records[start : start + count])
        if got < count * RECORD:  # it shrank since its size was read
            raise ValueError(f"{owner}: {path} ended after {got:,} bytes while it was read; get it again")
        _check_labels(records[start : start + count, 0], path, owner)
        start += count
    X = records[:, 1:].reshape(-1, 3, 32, 32)  # a view: splitting the pixel bytes of each record
    return X, records[:, 0].astype(np.int64), _class_names(folder / META, owner)


def _batches_folder(root: Path, split: str) -> Path:
    """Where the split's batches are: ``root`` itself or ``root/cifar-10-batches-bin``.

    The folder holding all of the split's files wins, so that a stray batch copied beside the
    unpacked folder does not hide it; failing that, the one holding any batch file (its
    missing ones are then named), else the folder the archive unpacks into.
    """
    inner = root / FOLDER
    for folder in (root, inner):
        if all((folder / name).is_file() for name in FILES[split]):
            return folder
    for folder in (root, inner):
        if any((folder / name).is_file() for names in FILES.values() for name in names):
            return folder
    return inner


def _record_count(path: Path, owner: str) -> int:
    size = path.stat().st_size
    if size == 0 or size % RECORD:
        with open(path, "rb") as f:
            first = f.read(1)
        raise ValueError(
            f"{owner}: {path} is {size:,} bytes, not a whole number of {RECORD:,}-byte records "
            f"(1 label byte + 3,072 pixel bytes): it is truncated or not a CIFAR-10 binary batch "
            f"(official batches are {_OFFICIAL_RECORDS * RECORD:,} bytes){_pickle_hint(first)}"
        )
    return size // RECORD


def _pickle_hint(first: bytes) -> str:
    """A hint when a file starts as a pickle does (protocol 2 and later begin with 0x80)."""
    if first[:1] != b"\x80":
        return ""
    return f"; it looks like a pickled batch of the Python version, which is never read: use the binary one, {ARCHIVE}"


def _check_same_counts(paths: list[Path], counts: list[int], folder: Path, owner: str) -> None:
    """Every batch holds as many records as the first training batch: a file cut short at a
    record boundary is found too."""
    reference = folder / FILES["train"][0]
    expected = (
        counts[0] if paths[0] == reference else (_record_count(reference, owner) if reference.is_file() else counts[0])
    )
    for path, count in zip(paths, counts):
        if count != expected:
            raise ValueError(
                f"{owner}: {path} holds {count:,} records where {reference.name} holds {expected:,}: "
                f"it is truncated or from another dataset (official batches hold "
                f"{_OFFICIAL_RECORDS:,} each); get it again"
            )


def _check_labels(labels: np.ndarray, path: Path, owner: str) -> None:
    bad = np.flatnonzero(labels >= len(CIFAR10_CLASSES))
    if len(bad):
        raise ValueError(
            f"{owner}: {path} holds {len(bad):,} labels outside 0..9 (label {labels[bad[0]]} in record "
            f"{bad[0]}); it is not a CIFAR-10 binary batch (CIFAR-100's has two label bytes)"
            + _pickle_hint(bytes(labels[:1]))
        )


def _class_names(path: Path, owner: str) -> tuple[str, ...]:
    if not path.is_file():
        return CIFAR10_CLASSES
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        # Replacing the bad bytes would pass on garbled class names without a word.
        raise ValueError(
            f"{owner}: {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); it is not CIFAR-10's, "
            "which lists the class names one per line in plain ASCII: get it again or delete it"
        ) from None
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != len(CIFAR10_CLASSES):
        raise ValueError(
            f"{owner}: {path} lists {len(names)} class names, expected {len(CIFAR10_CLASSES)} (one per "
            f"line: {', '.join(CIFAR10_CLASSES[:3])}, ...); it is not CIFAR-10's"
        )
    return names


def _missing_message(root: Path, folder: Path, missing: list[Path], owner: str) -> str:
    names = ", ".join(p.name for p in missing)
    pickled = next(
        (
            p
            for p in (root / "cifar-10-batches-py", folder.parent / "cifar-10-batches-py", root / "data_batch_1")
            if p.exists()
        ),
        None,
    )
    hint = (
        (
            f" {pickled} is the pickled Python version, which is never read (unpickling can run code): "
            f"get the binary version, {ARCHIVE}."
        )
        if pickled
        else ""
    )
    return (
        f"{owner}: CIFAR-10 binary file{'s' if len(missing) > 1 else ''} {names} not in {folder}.{hint} Pass "
        f"download=True to fetch {ARCHIVE} from {MIRRORS[0]}, or root= the folder where it was unpacked"
    )


def _download_and_unpack(root: Path, folder: Path, mirror: str | None, owner: str) -> None:
    """Make ``folder`` hold every file of the archive: from an intact archive in ``root``, or a downloaded one."""
    archive = root / ARCHIVE
    fetched = not archive.is_file()
    if fetched:
        fetch((mirror,) if mirror else MIRRORS, ARCHIVE, ARCHIVE_MD5, root, owner)
    else:
        found = md5_of(archive)
        if found != ARCHIVE_MD5:
            raise ValueError(
                f"{owner}: {archive} is not the official archive: its MD5 is {found}, the published one "
                f"is {ARCHIVE_MD5}. It was left as it is; move it away to download the official one"
            )
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for name in (*FILES["train"], *FILES["test"], META):
                _unpack(tar, name, folder / name, archive, owner)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:  # writing errors pass as they are
        raise ValueError(
            f"{owner}: could not unpack {archive} ({type(exc).__name__}: {exc}); delete it and download it again"
        ) from None
    if fetched:
        archive.unlink()  # ours, and unpacked: 162 MB less in the cache


def _unpack(tar: tarfile.TarFile, name: str, target: Path, archive: Path, owner: str) -> None:
    """Copy the archive's member ``cifar-10-batches-bin/<name>`` to ``target``, atomically.

    Only the members named here are read, by their exact name: nothing else in an archive
    (an absolute path, a link, ``..``) can reach the disk.
    """
    if target.is_file():
        return
    try:
        member = tar.getmember(f"{FOLDER}/{name}")
    except KeyError:
        raise ValueError(f"{owner}: {archive} has no {FOLDER}/{name}; it is not the official archive") from None
    source = tar.extractfile(member) if member.isfile() else None
    if source is None:
        raise ValueError(f"{owner}: {FOLDER}/{name} in {archive} is not a regular file; it is not the official archive")
    with source:
        write_atomically(
            target, lambda f: shutil.copyfileobj(source, f, 1 << 20), verb=owner, example_suffix=target.suffix
        )
