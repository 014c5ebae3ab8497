"""Checkpoint files: one .npz, written atomically, read without pickle."""

from __future__ import annotations

import os
import secrets
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
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"save: folder {folder} does not exist; create it first")
    # Exclusive create of a fresh random name: never clobbers anything, and the OS applies
    # the umask, so the file gets the permissions any new file would.
    tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        with open(tmp, "xb") as f:
            np.savez(f, **arrays)  # a file object: numpy adds no ".npz" to the name
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(folder)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable, where the platform allows syncing a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a folder
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a .npy holds one bare array
            raise ValueError(  # noqa: TRY004 - the file content is wrong, not an argument type
                f"it holds a single {type(loaded).__name__}, not an .npz archive of named arrays")
        with loaded as archive:
            # Reading every member now makes a damaged file fail here, with a clear
            # message, rather than halfway through copying into the model.
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"load: {path} is not a readable minicnn checkpoint (truncated or corrupt?): {exc}") from None
