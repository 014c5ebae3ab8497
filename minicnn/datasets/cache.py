"""The fixed train and test splits of the shapes dataset, cached on disk and verified on loading."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .._validation import warn_user
from ..checkpoint import read_npz, write_npz_atomically
from .shapes import VERSION, _dequantise, _quantise, make_shapes

# split -> (seed, number of images). Distinct seeds, so train and test share no image.
_SPLITS: dict[str, tuple[int, int]] = {"train": (20240601, 10_000), "test": (20240602, 2_000)}

_DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def _default_dirs() -> list[Path]:
    """The source checkout's ``data/`` (recognised by its README) first, then the user's cache.

    An installed (non-editable) package has no ``data/`` beside it, and must not create
    one in site-packages.
    """
    dirs = [_user_cache_dir()]
    if (_DEFAULT_DATA_DIR / "README.md").is_file():
        dirs.insert(0, _DEFAULT_DATA_DIR)
    return dirs


def _user_cache_dir() -> Path:
    return Path.home() / ".cache" / "minicnn"


def _checksum(q: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(q).tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    return h.hexdigest()


class _BadCache(Exception):
    """A cache file that must not be used; the message says why."""


def _read_cache(path: Path, *, seed: int, n: int, image_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` from a cache file, after checking it; raises ``_BadCache`` saying what is wrong."""
    try:
        f = read_npz(path, "load_shapes")
    except (OSError, ValueError) as exc:
        raise _BadCache(f"unreadable ({exc})") from None
    try:
        q, y = f["images"], f["labels"]
        meta = {key: int(f[key]) for key in ("version", "seed", "n", "image_size")}
        stored = str(f["sha256"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _BadCache(f"not a shapes cache ({type(exc).__name__}: {exc})") from None
    expected = {"version": VERSION, "seed": seed, "n": n, "image_size": image_size}
    if meta != expected:
        raise _BadCache(f"made with {meta}, expected {expected}")
    if q.dtype != np.uint8 or q.shape != (n, 3, image_size, image_size) or y.dtype != np.int64 or y.shape != (n,):
        raise _BadCache(f"arrays of {q.dtype} {q.shape} and {y.dtype} {y.shape} do not match the metadata")
    if _checksum(q, y) != stored:
        raise _BadCache("checksum mismatch")
    return _dequantise(q), y


def _write_cache(path: Path, X: np.ndarray, y: np.ndarray, *, seed: int) -> None:
    """Save ``X, y`` and their checksum to ``path`` atomically.

    The file is written under a temporary name in the same directory, flushed to disk, then
    renamed over ``path``: readers see either the old file or the complete new one, never a
    partial write.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    q = _quantise(X)
    write_npz_atomically(
        path,
        {
            "images": q,
            "labels": y,
            "sha256": np.array(_checksum(q, y)),
            "version": np.int64(VERSION),
            "seed": np.int64(seed),
            "n": np.int64(len(y)),
            "image_size": np.int64(X.shape[-1]),
        },
    )


def load_shapes(split: str, *, data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load a fixed split of :func:`make_shapes` images, generating and caching it once.

    The split lives in ``<data_dir>/shapes-<split>-v<VERSION>.npz`` with its labels, the seed,
    the generator version and a SHA-256 checksum. On loading, all of these are verified; a
    truncated, corrupted or mismatching file is reported with a warning and regenerated,
    never used. The file is written atomically, so an interrupted run leaves no partial cache.

    Parameters
    ----------
    split : {"train", "test"}
        ``"train"``: 10,000 images; ``"test"``: 2,000 images, from a different seed.
    data_dir : str or path-like, optional
        Where the cache lives (``~`` is expanded). None means the ``data/`` folder of the
        source checkout (next to the package, with its README), or ``~/.cache/minicnn`` for an
        installed package or when ``data/`` is not writable.

    Returns
    -------
    X : ndarray of float32, shape (N, 3, 32, 32)
        RGB images in [0, 1].
    y : ndarray of int64, shape (N,)
        Labels, indices into :data:`CLASSES`.

    Shape
    -----
    ``split -> X (N, 3, 32, 32), y (N,)``; N = 10,000 (train) or 2,000 (test).

    Raises
    ------
    ValueError
        For an unknown split.
    TypeError
        When ``data_dir`` is not a str, a path or None.

    Examples
    --------
    >>> X, y = load_shapes("test")  # doctest: +SKIP
    >>> X.shape, y.shape  # doctest: +SKIP
    ((2000, 3, 32, 32), (2000,))
    """
    if not isinstance(split, str) or split not in _SPLITS:
        valid = ", ".join(repr(k) for k in _SPLITS)
        raise ValueError(f"load_shapes: unknown split {split!r}; expected one of {valid}")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(
            f"load_shapes: data_dir must be a folder (str or path-like) or None for the default, "
            f"got {data_dir!r} ({type(data_dir).__name__})"
        )
    seed, n = _SPLITS[split]
    name = f"shapes-{split}-v{VERSION}.npz"
    # expanduser: "~/data" is the user's folder, not a folder named "~" in the current one
    dirs = [Path(data_dir).expanduser()] if data_dir is not None else _default_dirs()

    for d in dirs:
        path = d / name
        if path.is_file():
            try:
                return _read_cache(path, seed=seed, n=n)
            except _BadCache as exc:
                warn_user(f"load_shapes: ignoring the cache {path}: {exc}; regenerating it")

    X, y = make_shapes(n, seed=seed)
    errors = []
    for d in dirs:
        try:
            _write_cache(d / name, X, y, seed=seed)
            break
        except OSError as exc:
            errors.append(f"{d}: {exc}")
    else:
        warn_user(
            f"load_shapes: could not cache the {split!r} split ({'; '.join(errors)}); "
            "it will be generated again next time"
        )
    return X, y
