"""Writing a file so that nothing a user saved is ever lost, half-written or exposed.

The content goes to a temporary file ``.<name>.<pid>.<host>.<random>.tmp`` in the target's
own folder, is flushed to disk and then renamed over the target, so a crash leaves either
the old file or the new one. ``~`` is expanded; a symbolic link is followed (its target is
replaced, the link stays); a replaced file keeps its permission bits (a private 0600 file
stays private) and, where allowed, its owner and group; temporary files left by killed
writers of the same target are removed; every error names the path as the user gave it
and the fix, never the temporary file. Checkpoints, the dataset cache and the ONNX export
all write through :func:`write_atomically`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, NamedTuple


def write_atomically(
    path, write: Callable[[BinaryIO], object], verb: str = "save", example_suffix: str = ".npz"
) -> Path:
    """Write a file at exactly ``path`` by calling ``write(f)`` on a temporary file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; ``~`` is expanded and a symbolic link is followed.
    write : callable
        Writes the content into the binary file object it is given.
    verb : str
        Who writes, at the start of every message (``"save"``, ``"to_onnx"``).
    example_suffix : str
        The file ending used in the example of a message ("give a file name such as ...").

    Returns
    -------
    Path
        ``path`` with ``~`` expanded.

    Raises
    ------
    OSError (FileNotFoundError, PermissionError, IsADirectoryError, ...)
        Worded with ``path`` as given (and as resolved, when that differs) and the fix;
        never with the temporary file's name. A read-only file is refused, as ``open``
        would refuse it, rather than replaced.
    TypeError, ValueError
        When ``path`` is not a str or path, is empty, or names something other than a
        regular file (a device, say).
    """
    where = locate(path, verb, "model" + example_suffix)
    target = where.resolved
    folder = os.path.dirname(target)
    existing = _check_target(where, folder, example_suffix)
    _remove_stale_temp_files(target)
    tmp = _temp_path(target, os.getpid())
    try:
        # "x": a fresh name that clobbers nothing, created 0o666 less the umask, as any new file.
        f = open(tmp, "xb")  # noqa: SIM115 - closed below, before the rename
    except OSError as exc:
        raise _save_error(exc, where, folder, existing) from None
    try:
        with f:
            new_mode = _private_while_writing(f)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if existing is not None:
            _copy_owner_and_mode(existing, tmp)
        else:
            os.chmod(tmp, new_mode)
        os.replace(tmp, target)
    except BaseException as exc:
        _unlink_quietly(tmp)
        if isinstance(exc, OSError):
            raise _save_error(exc, where, folder, existing, str(tmp)) from None
        raise
    _fsync_folder(folder)
    return Path(where.expanded)


# -- paths and messages -----------------------------------------------------------------------
class _Where(NamedTuple):
    verb: str  # who writes, for the messages: "save", "to_onnx"
    given: str  # as the user wrote it: every message names this
    expanded: str  # ~ expanded: what the caller gets back
    resolved: str  # symlinks followed, absolute: the file that is really read or replaced
    shown: str  # given, plus the resolved path when the two differ


def locate(path, verb: str, example: str = "model.npz") -> _Where:
    """``path`` checked and named the ways the messages need: as given, expanded, resolved;
    ``example`` is the file name a message suggests."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"{verb}: path must be a str or os.PathLike, got {type(path).__name__}; "
            f"pass a file name such as '{example}'"
        )
    given = os.fspath(path)
    if not isinstance(given, str):
        raise TypeError(f"{verb}: path must be text, got {type(given).__name__} {given!r}; decode it first")
    if not given:
        raise ValueError(f"{verb}: path is empty; give a file name such as '{example}'")
    expanded = os.path.expanduser(given)
    resolved = os.path.realpath(expanded)
    same = resolved == os.path.abspath(given)
    return _Where(verb, given, expanded, resolved, f"'{given}'" if same else f"'{given}' (= '{resolved}')")


def _check_target(where: _Where, folder: str, example_suffix: str) -> os.stat_result | None:
    """What is at the target now (None: nothing); raises, naming the fix, when it cannot be written."""
    if where.given.endswith(("/", os.sep)) or os.path.isdir(where.resolved):
        raise IsADirectoryError(
            f"{where.verb}: {where.shown} is a folder; give a file name inside it, such as "
            f"'{os.path.join(where.given, 'model' + example_suffix)}'"
        )
    if os.path.islink(where.resolved):  # realpath stops on a loop of links
        raise OSError(
            f"{where.verb}: {where.shown} is a symbolic link that loops back on itself; remove the link "
            "or point it at a file"
        )
    shown_folder = (os.path.dirname(where.given) or ".") if where.shown == f"'{where.given}'" else folder
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise NotADirectoryError(
                f"{where.verb}: cannot write {where.shown}: '{shown_folder}' is a file, not a "
                "folder; choose another path"
            )
        raise FileNotFoundError(
            f"{where.verb}: cannot write {where.shown}: folder '{shown_folder}' does not exist; "
            f"create it first, e.g. os.makedirs('{shown_folder}', exist_ok=True)"
        )
    try:
        existing = os.stat(where.resolved)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(existing.st_mode):
        raise ValueError(f"{where.verb}: {where.shown} exists and is not a regular file; give a file path")
    # The rename could replace a read-only file; refuse, as a plain open() for writing would.
    if not os.access(where.resolved, os.W_OK):
        raise PermissionError(
            f"{where.verb}: {where.shown} is read-only (mode {stat.S_IMODE(existing.st_mode):o}); "
            "make it writable (chmod u+w) or save under another name. Nothing was changed"
        )
    return existing


_REASONS = {
    errno.EACCES: "no permission to create files in folder '{folder}'; save into a folder you can write to",
    errno.EPERM: "no permission to create files in folder '{folder}'; save into a folder you can write to",
    errno.EROFS: "folder '{folder}' is on a read-only file system; save somewhere else",
    errno.ENOSPC: "the disk holding '{folder}' is full; free some space or save somewhere else",
    errno.EDQUOT: "your disk quota for '{folder}' is used up; free some space or save somewhere else",
    errno.ENAMETOOLONG: "the file name is too long for this file system; choose a shorter one",
    errno.ENOENT: "folder '{folder}' disappeared while saving; create it and save again",
}


def _save_error(exc: OSError, where: _Where, folder: str, existing, tmp: str = "") -> OSError:
    """``exc`` reworded for the user: their path, the cause and the fix, not our temporary file."""
    reason = _REASONS.get(exc.errno, "")
    if reason:
        reason = reason.format(folder=folder)
    else:
        reason = exc.strerror or str(exc)
        if tmp:
            reason = reason.replace(tmp, where.resolved)
        reason += "; check the folder and the disk, or save somewhere else"
    after = "the previous file is unchanged" if existing is not None else "nothing was written"
    message = f"{where.verb}: could not write {where.shown}: {reason} ({after})"
    try:
        error = type(exc)(message)
    except TypeError:  # an OSError subclass with its own constructor
        error = OSError(message)
    error.errno = exc.errno
    return error


# -- temporary files ------------------------------------------------------------------------------
def _host_tag() -> str:
    # Machines (and containers) sharing a folder reuse the same pids: the host in the name
    # keeps a save from judging another machine's writer dead.
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _temp_prefix(target: str) -> str:
    name = os.path.basename(target)
    while len(os.fsencode(name)) > 200:  # leave room for the suffix within a 255-byte file name
        name = name[:-1]
    return f".{name}."


def _temp_path(target: str, pid: int) -> str:
    """The temporary file a writer with this pid uses for ``target`` (in the target's folder)."""
    name = f"{_temp_prefix(target)}{pid}.{_host_tag()}.{secrets.token_hex(6)}.tmp"
    return os.path.join(os.path.dirname(target), name)


def _remove_stale_temp_files(target: str) -> None:
    """Remove this target's temporary files whose writer (on this machine) is no longer running."""
    pattern = re.compile(re.escape(_temp_prefix(target)) + r"(\d+)\." + _host_tag() + r"\.[0-9a-f]+\.tmp")
    try:
        entries = list(os.scandir(os.path.dirname(target)))
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and not _pid_is_running(int(match.group(1))):
            _unlink_quietly(entry.path)


def _pid_is_running(pid: int) -> bool:
    if os.name != "posix" or pid <= 0:
        return True  # no safe probe here (os.kill would terminate it on Windows): keep the file
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, under another user
        return True
    return True


def _private_while_writing(f: BinaryIO) -> int:
    """Make the still-empty temporary file owner-only; return the mode a new file gets (umask applied).

    The content must never be readable by others, even for the moment before the rename: a
    private 0600 file being replaced, say, while the umask would make the new one 0644. The
    final mode is given only once the content is complete.
    """
    created = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
    if hasattr(os, "fchmod"):  # POSIX; Windows has no group or other bits to hide
        os.fchmod(f.fileno(), created & 0o700)
    return created


def _copy_owner_and_mode(existing: os.stat_result, tmp: str) -> None:
    """Give the replacement the old file's permission bits, and its owner and group where allowed."""
    if hasattr(os, "chown"):
        mine = os.stat(tmp)
        if (mine.st_uid, mine.st_gid) != (existing.st_uid, existing.st_gid):
            # Keeps a group-shared file readable by its group; only root may also keep the owner.
            for uid, gid in ((existing.st_uid, existing.st_gid), (-1, existing.st_gid)):
                try:
                    os.chown(tmp, uid, gid)
                    break
                except OSError:
                    continue
    os.chmod(tmp, stat.S_IMODE(existing.st_mode))  # after chown, which may clear set-id bits


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_folder(folder: str) -> None:
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
