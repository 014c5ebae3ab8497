"""Checkpoint files: one .npz, written atomically, read without pickle."""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
META_PREFIX = "meta."
OPTIM_PREFIX = "optim."


def write_npz_atomically(path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` to exactly ``path`` as an .npz, atomically.

    The data goes to a temporary file in the same folder, is flushed to disk, and only
    then renamed over ``path``: a crash mid-write leaves the previous file intact and
    never a half-written one.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"save: {path} is a folder; give a file name such as {path / 'model.npz'}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"save: folder {folder} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the mode open() would have given it.
        os.chmod(tmp, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # a file object: numpy adds no ".npz" to the name
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _current_umask() -> int:
    mask = os.umask(0o022)  # the only way to read the umask is to set it
    os.umask(mask)
    return mask


def read_npz(path) -> dict[str, np.ndarray]:
    """Read every array of an .npz into memory, with ``allow_pickle=False``.

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    ValueError
        When the file is truncated, corrupt or not an .npz at all.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load: no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            # Reading every member now makes a damaged file fail here, with a clear
            # message, rather than halfway through copying into the model.
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"load: {path} is not a readable minicnn checkpoint (truncated or corrupt?): {exc}") from None
