"""Checkpoint files: one .npz, written atomically, read without pickle.

File format
-----------
A checkpoint is an ordinary numpy ``.npz`` archive (a zip of ``.npy`` files), so
``np.load(path)`` opens it without minicnn. Its keys are:

``<name>``
    One array per entry of ``model.state_dict()``, under the same name (``0.weight``,
    ``3.running_mean``), with its dtype and shape unchanged.
``meta.format_version``
    A 0-d integer array holding :data:`FORMAT_VERSION` (now 1).
``meta.architecture``
    A 0-d string array: the model's architecture as JSON, each layer's class and the
    arguments its constructor got (see :mod:`minicnn._architecture`), from which
    :func:`minicnn.load_model` builds the model. A file without it (saved by an older minicnn,
    or by ``np.savez``) holds weights only: build the model, then ``model.load(path)``.
``optim.<key>``
    When an optimizer's state was saved: one array per entry of its ``state_dict()``.
``resume.<name>``
    The model's non-persistent buffers (a Dropout's random generator state): not part of
    ``state_dict()``, as in PyTorch, but saved so that a resumed run draws the same random
    numbers as the uninterrupted one. A file without them loads; the buffers then keep
    their current values.

Keys starting with ``meta.``, ``optim.`` or ``resume.`` are reserved, so no model state may use them.
A file without ``meta.format_version`` is read as format 1: a plain
``np.savez(path, **model.state_dict())`` loads. Every array is numeric, boolean or
string; object arrays are refused both ways, because reading them means unpickling,
which can run arbitrary code. A change to this layout that an older reader would misread
must raise :data:`FORMAT_VERSION`; a new ``meta.`` entry need not, since readers skip the
``meta.`` entries they do not know (which is how ``meta.architecture`` was added in format 1).

Writes are atomic, keep an existing file's permissions and follow symbolic links: see
:mod:`minicnn._atomic`.
"""

from __future__ import annotations

import codecs
import os
import re
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._atomic import locate, write_atomically

FORMAT_VERSION = 1
META_PREFIX = "meta."
OPTIM_PREFIX = "optim."
RESUME_PREFIX = "resume."
_RESERVED = (META_PREFIX, OPTIM_PREFIX, RESUME_PREFIX)
_VERSION_KEY = META_PREFIX + "format_version"
ARCHITECTURE_KEY = META_PREFIX + "architecture"


class Checkpoint(NamedTuple):
    """Everything a checkpoint file holds, as :func:`read_checkpoint_file` returns it."""

    state: dict[str, np.ndarray]
    """The model's state_dict entries."""
    optimizer: dict[str, np.ndarray]
    """The ``optim.`` entries without the prefix; ``{}`` when none were saved."""
    resume: dict[str, np.ndarray]
    """The ``resume.`` entries without the prefix; ``{}`` when none were saved."""
    architecture: str | None
    """The ``meta.architecture`` JSON text; None in a file that holds weights only."""


# -- the public functions -----------------------------------------------------------------------
def write_checkpoint(
    path,
    state: dict[str, np.ndarray],
    optimizer_state: dict[str, np.ndarray] | None = None,
    resume_state: dict[str, np.ndarray] | None = None,
    architecture: str | None = None,
) -> Path:
    """Write a model's state (and optionally an optimizer's) as one checkpoint file.

    The layout is the module's file format: ``state`` under its own keys,
    ``meta.format_version``, ``architecture`` as ``meta.architecture``, ``optimizer_state``
    under ``optim.`` and ``resume_state`` under ``resume.``. The write is
    atomic and keeps an existing file's permissions (see :func:`write_npz_atomically`).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write, at exactly this name (no ``.npz`` is appended); ``~`` is
        expanded and a symbolic link is followed.
    state : dict of str to ndarray
        Typically ``model.state_dict()``. No key may start with ``meta.`` or ``optim.``.
    optimizer_state : dict of str to ndarray, optional
        Typically ``optimizer.state_dict()``; ``None`` or ``{}`` saves none.
    resume_state : dict of str to ndarray, optional
        The model's non-persistent buffers, by name; ``None`` or ``{}`` saves none.
    architecture : str, optional
        The model's architecture as JSON (:func:`minicnn._architecture.record`); None saves none.

    Returns
    -------
    Path
        ``path`` with ``~`` expanded.

    Shape
    -----
    Every array is stored with its shape and dtype unchanged.

    Raises
    ------
    TypeError, ValueError
        For a reserved or non-string key or an object array, before anything is written.
    OSError
        When the file cannot be written; the message names ``path`` and the fix, and any
        previous file is unchanged.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_checkpoint(f"{folder}/model.npz", {"0.weight": np.ones((2, 3), np.float32)},
    ...                             optimizer_state={"step": np.array(7)})
    ...     with np.load(path) as raw:
    ...         print(sorted(raw.files))
    ...     state, optim, _ = read_checkpoint(path)
    ['0.weight', 'meta.format_version', 'optim.step']
    >>> state["0.weight"].shape, int(optim["step"])
    ((2, 3), 7)
    """
    arrays = _checked_arrays(state, "state")
    for key in arrays:
        if key.startswith(_RESERVED):
            reserved = ", ".join(map(repr, _RESERVED))
            raise ValueError(
                f"save: state key '{key}' starts with a reserved prefix ({reserved} are kept for "
                "the format version, the optimizer's state and what resuming needs); rename that "
                "parameter or buffer"
            )
    arrays[_VERSION_KEY] = np.array(FORMAT_VERSION)
    if architecture is not None:
        if not isinstance(architecture, str):
            raise TypeError(f"save: architecture must be JSON text (str), got {type(architecture).__name__}")
        arrays[ARCHITECTURE_KEY] = np.array(architecture)
    for prefix, section, name in (
        (OPTIM_PREFIX, optimizer_state, "optimizer_state"),
        (RESUME_PREFIX, resume_state, "resume_state"),
    ):
        if section is not None:
            for key, value in _checked_arrays(section, name).items():
                arrays[prefix + key] = value
    return write_npz_atomically(path, arrays)


def read_checkpoint(path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Read a checkpoint written by :func:`write_checkpoint` (or a plain state-dict .npz).

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file; ``~`` is expanded.

    Returns
    -------
    state : dict of str to ndarray
        Every array whose key has no reserved prefix.
    optimizer_state : dict of str to ndarray
        The ``optim.`` arrays with the prefix removed; ``{}`` when none were saved.
    resume_state : dict of str to ndarray
        The ``resume.`` arrays with the prefix removed; ``{}`` when none were saved.

    Shape
    -----
    Arrays come back with the shapes and dtypes they were saved with.

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    ValueError
        When the file is not a readable .npz (see :func:`read_npz`), or its
        ``meta.format_version`` is not the 0-d integer :data:`FORMAT_VERSION`.
    """
    return read_checkpoint_file(path)[:3]


def read_checkpoint_file(path, verb: str = "load") -> Checkpoint:
    """Read everything a checkpoint holds: :func:`read_checkpoint`'s three parts and the architecture.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file; ``~`` is expanded.
    verb : str
        How messages begin (``"load"``, ``"load_model"``).

    Returns
    -------
    Checkpoint
        ``state``, ``optimizer``, ``resume`` and ``architecture`` (None in a weights-only file).

    Shape
    -----
    Arrays come back with the shapes and dtypes they were saved with.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`read_checkpoint`, and when ``meta.architecture`` is not a 0-d string array.
    """
    where = locate(path, verb)
    arrays = read_npz(path, verb)
    version = arrays.pop(_VERSION_KEY, None)
    if version is not None and not (version.shape == () and np.issubdtype(version.dtype, np.integer)):
        raise ValueError(
            f"{verb}: {where.shown} has checkpoint format {version.tolist()!r} (a {version.dtype} "
            f"array of shape {version.shape}, where a 0-d integer belongs), this minicnn reads "
            f"format {FORMAT_VERSION}; minicnn's save did not write this file: fix or remove its "
            f"'{_VERSION_KEY}'"
        )
    if version is not None and int(version) != FORMAT_VERSION:
        raise ValueError(
            f"{verb}: {where.shown} has checkpoint format {int(version)}, this minicnn reads format "
            f"{FORMAT_VERSION}; read it with the minicnn version that wrote it"
        )
    architecture = arrays.get(ARCHITECTURE_KEY)
    if architecture is not None:
        if architecture.shape != () or architecture.dtype.kind != "U":
            raise ValueError(
                f"{verb}: {where.shown} has a '{ARCHITECTURE_KEY}' that is a {architecture.dtype} "
                f"array of shape {architecture.shape}, where 0-d text belongs; minicnn's save did "
                f"not write it: fix or remove that entry"
            )
        architecture = str(architecture[()])
    return Checkpoint(*_split(arrays), architecture)


def _split(arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], ...]:
    """The model state, then the optimizer and resume sections without their prefixes;
    other meta. keys are ignored."""
    state = {k: v for k, v in arrays.items() if not k.startswith(_RESERVED)}
    sections = (
        {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        for prefix in (OPTIM_PREFIX, RESUME_PREFIX)
    )
    return (state, *sections)


def write_npz_atomically(path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` as an .npz at exactly ``path``, atomically (see :mod:`minicnn._atomic`).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; no ``.npz`` is appended. ``~`` is expanded, a symbolic link is
        followed, and a replaced file keeps its permissions.
    arrays : dict of str to ndarray
        Passed to ``np.savez`` as keyword arguments.

    Returns
    -------
    Path
        ``path`` with ``~`` expanded.

    Shape
    -----
    Every array is stored with its shape and dtype unchanged.
    """
    # A file object: numpy appends no ".npz" to the name.
    return write_atomically(path, lambda f: np.savez(f, **arrays), "save", ".npz")


def read_npz(path, verb: str = "load") -> dict[str, np.ndarray]:
    """Read every array of an .npz into memory, never unpickling anything.

    Parameters
    ----------
    path : str or os.PathLike
        The file; ``~`` is expanded.
    verb : str
        How messages begin (``"load"``, ``"load_model"``).

    Returns
    -------
    dict of str to ndarray
        Every member, by the name it was saved under (``np.savez(f, w=...)`` gives ``"w"``).

    Shape
    -----
    Arrays come back with the shapes and dtypes they were saved with.

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    ValueError
        When ``path`` is not an .npz archive (a folder, an empty, text or .npy file, or
        other bytes), when the archive is truncated or corrupt, or when it holds object
        arrays (pickled Python objects). Every message says ``not a readable minicnn
        checkpoint`` and names ``path`` as given.
    """
    where = locate(path, verb)
    bad = f"{verb}: {where.shown} is not a readable minicnn checkpoint"
    if os.path.isdir(where.expanded):
        raise ValueError(
            f"{bad}: it is not an .npz archive but a folder; give the file inside it, such as "
            f"'{os.path.join(where.given, 'model.npz')}'"
        )
    try:
        f = open(where.expanded, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{verb}: no checkpoint at {where.shown}; check the path (model.save(path) writes one)"
        ) from None
    except OSError as exc:
        error = type(exc)(
            f"{verb}: cannot open {where.shown}: {exc.strerror or exc}; check that it is a file you may read"
        )
        error.errno = exc.errno
        raise error from None
    with f:
        what = _what_it_is(f.read(512))
        if what is not None:
            raise ValueError(f"{bad}: it is not an .npz archive but {what}")
        f.seek(0)
        try:
            return _read_members(f, bad)
        except _Refused:
            raise
        except _READ_ERRORS as exc:
            raise ValueError(
                f"{bad}: the .npz archive is truncated or corrupt ({type(exc).__name__}: "
                f"{exc}); save it again or restore a copy"
            ) from None


# -- reading ----------------------------------------------------------------------------------
# A damaged archive can fail anywhere from the zip layer to numpy's header parser.
_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    zipfile.BadZipFile,
    NotImplementedError,
    zlib.error,
    OverflowError,
    SyntaxError,
)
_ZIP_MAGIC = b"PK"  # then a member header, or the end record of an empty archive
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _what_it_is(head: bytes) -> str | None:
    """None for a zip archive, else a short description of what these first bytes are."""
    if head.startswith(_ZIP_MAGIC):  # a damaged one is reported as such by the zip reader
        return None
    if not head:
        return "an empty file (0 bytes); it was never fully written: save it again"
    if head.startswith(b"\x93NUMPY"):
        return (
            "a .npy file: a single ndarray, not an .npz archive of named arrays; save checkpoints "
            "with model.save(path) or np.savez(path, **model.state_dict())"
        )
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle, which load never reads (unpickling can run arbitrary code)"
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        text = None
    if text is not None and not _TEXT_CONTROLS.search(text):
        if text.startswith("version https://git-lfs"):
            return "a Git LFS pointer; fetch the real file with `git lfs pull`"
        return f"plain text, starting {text[:40]!r}"
    return f"unrecognised binary data (first bytes {head[:8].hex(' ')})"


def _read_members(f, bad: str) -> dict[str, np.ndarray]:
    arrays = {}
    with zipfile.ZipFile(f) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                raise _Refused(
                    f"{bad}: it is a zip archive but not an .npz (member '{info.filename}' "
                    "is not a .npy array; a PyTorch file?)"
                )
            key = info.filename[: -len(".npy")]
            with archive.open(info) as member:
                # Look at the header before numpy reads the data: an object array is pickled.
                major, _ = np.lib.format.read_magic(member)
                # Format 3.0 differs from 2.0 only in UTF-8 field names, which cannot add objects.
                read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                _, _, dtype = read_header(member)
                if dtype.hasobject:
                    raise _Refused(
                        f"{bad}: array '{key}' holds Python objects (dtype {dtype}), and load "
                        "refuses pickled objects (unpickling can run arbitrary code); save "
                        "numeric arrays instead"
                    )
                member.seek(0)
                arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays


class _Refused(ValueError):
    """A readable archive that is still refused; its message is final (not reworded as corrupt)."""


def _checked_arrays(arrays, argument: str) -> dict[str, np.ndarray]:
    """``arrays`` as a new dict of ndarrays, after checking it can be saved without pickling."""
    if not isinstance(arrays, dict):
        raise TypeError(
            f"save: {argument} must be a dict of str to ndarray, got {type(arrays).__name__}; "
            "pass model.state_dict() or optimizer.state_dict()"
        )
    out = {}
    for key, value in arrays.items():
        if not isinstance(key, str):
            raise TypeError(f"save: {argument} keys must be str, got {key!r} ({type(key).__name__})")
        value = np.asarray(value)
        if value.dtype.hasobject:
            raise ValueError(
                f"save: {argument}['{key}'] has dtype object, which would be saved pickled "
                "and then refused by load; give a numeric array"
            )
        out[key] = value
    return out
