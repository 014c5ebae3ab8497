"""Fetching a dataset's official file: checked against its published checksum, written atomically.

Each file is streamed from the first address that answers into a temporary file beside its
target (through :func:`minicnn._atomic.write_atomically`) while its MD5 is computed, and renamed
into place only when the whole file has arrived and its checksum is the published one. An
interrupted, cut or wrong download therefore leaves nothing behind: the target either does not
exist or is the complete, verified file. MD5 is what the datasets' authors publish; it guards
against damaged and wrong files here, not against an attacker.
"""

from __future__ import annotations

import hashlib
import http.client
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from .._atomic import write_atomically

_CHUNK = 1 << 20  # bytes per read: a few hundred progress updates for the largest file
_TIMEOUT = 30.0  # seconds without an answer before an address counts as unreachable


class _Unreachable(Exception):
    """The address did not deliver the file (no network, refused, HTTP error, cut short)."""


class _WrongFile(Exception):
    """The address delivered a file whose checksum is not the published one."""


def md5_of(path: Path) -> str:
    """The hex MD5 of the file at ``path``, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(bases: Sequence[str], name: str, md5: str, folder: Path, owner: str) -> Path:
    """Fetch ``name`` from the first of ``bases`` (URLs ending in ``/``) that delivers it intact.

    Parameters
    ----------
    bases : sequence of str
        Addresses to try in order; the file's URL is ``base + name``.
    name : str
        The file's official name, also its name in ``folder``.
    md5 : str
        Its published MD5 checksum (hex).
    folder : Path
        Where it goes; created when missing.
    owner : str
        The function that asked, for the messages.

    Returns
    -------
    Path
        ``folder / name``, complete and verified.

    Raises
    ------
    ConnectionError
        When no address could be reached (no network, say): every address and its reason.
    ValueError
        When an address delivered a file with another checksum, and no other delivered the
        right one.
    """
    created = [f for f in (folder, *folder.parents) if not f.exists()]  # deepest first
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    failures, wrong = [], False
    for base in bases:
        url = base + name
        try:
            _fetch(url, target, md5, owner)
            return target
        except _Unreachable as exc:
            failures.append(f"{url} ({exc})")
        except _WrongFile as exc:
            failures.append(f"{url} ({exc})")
            wrong = True
    tried = "; ".join(failures)
    _remove_empty(created)  # "nothing was written" holds for the folders too
    if wrong:
        raise ValueError(
            f"{owner}: no intact copy of {name} could be downloaded: {tried}. Nothing was written to "
            f"{folder}; try again later, or fetch the file by hand and check its MD5 ({md5})"
        )
    raise ConnectionError(
        f"{owner}: could not download {name}: {tried}. Nothing was written. Check the network "
        f"connection, or download the file by hand into {folder}"
    )


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed download created, deepest first, each only if still empty."""
    for f in folders:
        try:
            f.rmdir()
        except OSError:  # not empty (something else wrote there meanwhile), or already gone
            return


def _fetch(url: str, target: Path, md5: str, owner: str) -> None:
    """Stream ``url`` into ``target`` atomically; raise _Unreachable or _WrongFile, leaving nothing."""
    try:
        response = urllib.request.urlopen(url, timeout=_TIMEOUT)
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise _Unreachable(_reason(exc)) from None
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        print(f"{owner}: downloading {url}", file=sys.stderr, flush=True)

        def write(f) -> None:
            digest, received = hashlib.md5(usedforsecurity=False), 0
            # disable=None: the bar is drawn only on a terminal, so a log file gets no bar updates
            with tqdm(
                total=total,
                desc=target.name,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                disable=None,
                leave=True,
            ) as bar:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _Unreachable(f"the download broke off: {_reason(exc)}") from None
                    if not chunk:
                        break
                    digest.update(chunk)
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            # http.client ends a response cut short without an error: the length tells
            if total is not None and received != total:
                raise _Unreachable(f"the download broke off after {received:,} of {total:,} bytes")
            if digest.hexdigest() != md5:
                raise _WrongFile(f"its MD5 is {digest.hexdigest()}, the published one is {md5}")

        write_atomically(target, write, verb=owner, example_suffix=target.suffix)


def _reason(exc: BaseException) -> str:
    """What went wrong, in a few words: the server's status, or the network's reason."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__
