"""Small files in the official formats of MNIST and CIFAR-10, written byte for byte from the
format specifications (not with the loaders' code), and a loopback HTTP server to download them from."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import struct
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

MNIST_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR_TRAIN = [f"data_batch_{i}.bin" for i in range(1, 6)]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


# -- MNIST: the IDX format -----------------------------------------------------------------------
def idx_bytes(values: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: 0, 0, type 0x08, the number of dimensions, each dimension as
    a big-endian uint32, then the values in row-major order."""
    values = np.asarray(values, np.uint8)
    header = bytes([0, 0, 0x08, values.ndim]) + b"".join(struct.pack(">I", d) for d in values.shape)
    return header + values.tobytes(order="C")


def mnist_split(n: int, seed: int, size: tuple[int, int] = (28, 28)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *size), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def mnist_file_bytes(n: int = 20, seed: int = 0, gz: bool = True) -> tuple[dict[str, bytes], dict]:
    """The four files of a small MNIST in the official format (gzipped, as published), by file name,
    and the arrays they hold: {"train": (images, labels), "test": (...)}."""
    files, arrays = {}, {}
    for i, (split, (images_name, labels_name)) in enumerate(MNIST_NAMES.items()):
        images, labels = mnist_split(n if split == "train" else max(n // 2, 1), seed + i)
        arrays[split] = (images, labels)
        for name, data in ((images_name, idx_bytes(images)), (labels_name, idx_bytes(labels))):
            files[name + ".gz" if gz else name] = gzip.compress(data, mtime=0) if gz else data
    return files, arrays


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


# -- CIFAR-10: the binary version -------------------------------------------------------------------
def cifar_batch_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Records of 1 label byte, then 1024 red, 1024 green and 1024 blue bytes, each row by row."""
    records = []
    for image, label in zip(images, labels):
        red, green, blue = (bytes(image[c].ravel().tolist()) for c in range(3))
        records.append(bytes([int(label)]) + red + green + blue)
    return b"".join(records)


def cifar_file_bytes(per_batch: int = 6, seed: int = 0) -> tuple[dict[str, bytes], dict]:
    """The six batch files and batches.meta.txt of a small CIFAR-10, by file name, and the arrays
    each batch holds."""
    rng = np.random.default_rng(seed)
    files, arrays = {}, {}
    for name in [*CIFAR_TRAIN, "test_batch.bin"]:
        images = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch, dtype=np.uint8)
        arrays[name] = (images, labels)
        files[name] = cifar_batch_bytes(images, labels)
    files["batches.meta.txt"] = ("\n".join(CIFAR_CLASSES) + "\n\n").encode()  # the official file ends in blank lines
    return files, arrays


def cifar_archive_bytes(files: dict[str, bytes], folder: str = "cifar-10-batches-bin") -> bytes:
    """A .tar.gz holding ``folder/<name>`` for each file, as cifar-10-binary.tar.gz does."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# -- a loopback server ----------------------------------------------------------------------------
class Served:
    """What the server holds (path -> bytes), the paths asked for, and paths cut short on purpose."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.requests: list[str] = []
        self.cut: set[str] = set()  # sent with their full Content-Length, then only half the bytes
        self.base = ""


@contextlib.contextmanager
def serve(files: dict[str, bytes]) -> Iterator[Served]:
    """An HTTP server on 127.0.0.1 (a free port) serving ``files`` from a thread, for as long as the
    ``with`` lasts; ``served.base`` is its URL, ending in ``/``."""
    served = Served(files)

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 10  # a stuck client cannot hold the thread

        def do_GET(self) -> None:  # http.server's name for the GET handler
            name = self.path.lstrip("/")
            served.requests.append(name)
            data = served.files.get(name)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if name in served.cut else data)

        def log_message(self, *args) -> None:  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.base = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting is refused, as without a network."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def leftovers(folder: Path) -> list[str]:
    """Every file in ``folder`` (hidden temporary files too)."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
