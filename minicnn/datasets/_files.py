"""What the loaders of the official dataset files share: where the files live, the argument
checks, and reading bytes straight into the array that is returned."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._validation import check_bool
from .cache import _user_cache_dir

SPLITS = ("train", "test")
_PIECE = 1 << 18  # bytes per read: 256 KiB


def data_folder(root, default_name: str, owner: str) -> Path:
    """``root`` as a Path (``~`` expanded); None means ``<user cache>/<default_name>``, beside
    the shapes cache (``~/.cache/minicnn``)."""
    if root is None:
        return _user_cache_dir() / default_name
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(
            f"{owner}: root must be a folder (str or path-like) or None for the default "
            f"{_user_cache_dir() / default_name}, got {root!r} ({type(root).__name__})"
        )
    return Path(root).expanduser()


def check_choice(value, choices: tuple[str, ...], owner: str, arg: str) -> str:
    """``value`` when it is one of ``choices``; otherwise a ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        listed = " or ".join(repr(c) for c in choices)
        raise ValueError(f"{owner}: {arg} must be {listed}, got {value!r}")
    return value


def check_download(download, mirror, owner: str) -> tuple[bool, str | None]:
    """``download`` as a bool and ``mirror`` as None or a base URL ending in ``/``."""
    download = check_bool(download, owner, "download")
    if mirror is not None:
        if not isinstance(mirror, str) or "://" not in mirror:
            raise ValueError(
                f"{owner}: mirror must be None (the official addresses) or a base URL such as "
                f"'https://example.org/data/', got {mirror!r}"
            )
        mirror = mirror if mirror.endswith("/") else mirror + "/"
    return download, mirror


def read_into(f, out: np.ndarray) -> int:
    """Fill the contiguous ``out`` from the binary file ``f``; the number of bytes read (less
    than ``out.nbytes`` only when the file ended first).

    The bytes land in ``out`` itself. A plain file reads straight into it; a gzip file object
    decompresses each piece into a temporary bytes object first (its ``readinto`` is a ``read``),
    so the pieces are kept small: the extra memory is one piece, never a copy of the whole.
    """
    view = memoryview(out).cast("B")
    filled = 0
    while filled < len(view):
        n = f.readinto(view[filled : filled + _PIECE])
        if not n:
            break
        filled += n
    return filled
