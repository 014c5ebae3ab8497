"""load_mnist: the official IDX files (gzipped or not), every way a file can be wrong, and downloads
served from a loopback server (the tests never reach the network)."""

import gzip
import tracemalloc
import urllib.error

import numpy as np
import pytest
from dataset_files import (
    MNIST_NAMES,
    closed_port_url,
    idx_bytes,
    leftovers,
    md5,
    mnist_file_bytes,
    mnist_split,
    serve,
    write_files,
)

from minicnn.datasets import DIGIT_CLASSES, FASHION_CLASSES, load_mnist
from minicnn.datasets import _download as download_module
from minicnn.datasets import mnist as mnist_module


@pytest.fixture
def files():
    return mnist_file_bytes(n=20, seed=3)


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "unpacked"])
def test_reads_the_official_format_byte_for_byte(tmp_path, split, gz):
    data, arrays = mnist_file_bytes(n=20, seed=1, gz=gz)
    write_files(tmp_path, data)
    X, y, classes = load_mnist(tmp_path, split)
    images, labels = arrays[split]
    assert X.dtype == np.uint8 and X.shape == (len(images), 1, 28, 28) and X.flags.c_contiguous
    assert y.dtype == np.int64 and y.shape == (len(labels),)
    np.testing.assert_array_equal(X[:, 0], images)
    np.testing.assert_array_equal(y, labels)
    assert classes == DIGIT_CLASSES == tuple("0123456789")


def test_fashion_has_its_class_names_and_its_own_default_folder(tmp_path, monkeypatch, files):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_files(tmp_path / ".cache" / "minicnn" / "fashion-mnist", files[0])
    X, _, classes = load_mnist(split="test", kind="fashion")
    assert classes == FASHION_CLASSES and classes[0] == "T-shirt/top" and classes[9] == "Ankle boot"
    np.testing.assert_array_equal(X[:, 0], files[1]["test"][0])
    with pytest.raises(FileNotFoundError, match=r"\.cache/minicnn/mnist"):
        load_mnist()  # digits live in their own folder


def test_reads_any_image_size_the_header_declares(tmp_path):
    images, labels = mnist_split(5, seed=0, size=(7, 4))
    write_files(tmp_path, {"t10k-images-idx3-ubyte": idx_bytes(images), "t10k-labels-idx1-ubyte": idx_bytes(labels)})
    X, _, _ = load_mnist(tmp_path, "test")
    assert X.shape == (5, 1, 7, 4)
    np.testing.assert_array_equal(X[:, 0], images)


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "unpacked"])
def test_loading_makes_no_copy_of_the_images(tmp_path, gz):
    images, labels = mnist_split(3000, seed=0)
    raw = idx_bytes(images)
    write_files(
        tmp_path,
        {
            "train-images-idx3-ubyte" + (".gz" if gz else ""): gzip.compress(raw) if gz else raw,
            "train-labels-idx1-ubyte": idx_bytes(labels),
        },
    )
    tracemalloc.start()
    try:
        X, _, _ = load_mnist(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert X.nbytes == images.nbytes
    assert peak < 1.25 * images.nbytes, f"peak {peak:,} bytes for {images.nbytes:,} bytes of images"


# -- wrong files -------------------------------------------------------------------------------------
def test_a_missing_file_says_which_and_how_to_get_it(tmp_path, files):
    data = dict(files[0])
    del data["t10k-labels-idx1-ubyte.gz"]
    write_files(tmp_path, data)
    load_mnist(tmp_path, "train")  # the other split is complete
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte\.gz .*not in .*download=True"):
        load_mnist(tmp_path, "test")


def replace(tmp_path, files, name, data):
    write_files(tmp_path, {**files[0], name: data})
    return tmp_path / name


def test_swapped_images_and_labels_files_are_named(tmp_path, files):
    data = files[0]
    path = replace(tmp_path, files, "train-images-idx3-ubyte.gz", data["train-labels-idx1-ubyte.gz"])
    with pytest.raises(
        ValueError,
        match=rf"{path}.* is an IDX labels file \(magic number 0x00000801\), not images; "
        "are the images and labels files swapped",
    ):
        load_mnist(tmp_path)


@pytest.mark.parametrize("cut", [1, 100, 784 * 20 - 1], ids=["last-byte", "mid-image", "header-only"])
def test_a_truncated_file_is_an_error_naming_it(tmp_path, files, cut):
    images, _ = files[1]["train"]
    data = idx_bytes(images)[:-cut]
    path = replace(tmp_path, files, "train-images-idx3-ubyte.gz", gzip.compress(data))
    with pytest.raises(ValueError, match=rf"{path} is truncated: its header declares 20 x 28 x 28 = 15,680 bytes"):
        load_mnist(tmp_path)


def test_a_file_cut_inside_its_header_is_truncated(tmp_path, files):
    path = replace(tmp_path, files, "train-labels-idx1-ubyte", idx_bytes(files[1]["train"][1])[:6])
    with pytest.raises(ValueError, match=rf"{path} is truncated: it ends inside its header"):
        load_mnist(tmp_path)


def test_a_cut_gzip_stream_is_damaged(tmp_path, files):
    data = files[0]["train-images-idx3-ubyte.gz"]
    path = replace(tmp_path, files, "train-images-idx3-ubyte.gz", data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{path} is damaged \(EOFError.*delete it and get it again"):
        load_mnist(tmp_path)


def test_bytes_past_the_declared_end_are_refused(tmp_path, files):
    path = replace(tmp_path, files, "train-labels-idx1-ubyte", idx_bytes(files[1]["train"][1]) + b"\x00")
    with pytest.raises(ValueError, match=rf"{path} holds more bytes than its header declares \(20\)"):
        load_mnist(tmp_path)


def test_a_file_that_is_no_idx_file(tmp_path, files):
    path = replace(tmp_path, files, "train-images-idx3-ubyte", b"<html>not found</html>")
    with pytest.raises(
        ValueError,
        match=rf"{path} is not an IDX images file, which starts with the magic number "
        "0x00000803: it starts with 0x3c68746d",
    ):
        load_mnist(tmp_path)


def test_names_that_lie_about_compression(tmp_path, files):
    gzipped = files[0]["train-images-idx3-ubyte.gz"]
    path = replace(tmp_path, files, "train-images-idx3-ubyte", gzipped)
    with pytest.raises(ValueError, match=rf"{path} is gzipped but its name does not end in \.gz"):
        load_mnist(tmp_path)
    path.unlink()
    path = replace(tmp_path, files, "train-images-idx3-ubyte.gz", idx_bytes(files[1]["train"][0]))
    with pytest.raises(ValueError, match=rf"{path} is damaged .*it is not gzipped: remove the \.gz"):
        load_mnist(tmp_path)


@pytest.mark.parametrize(
    "damage",
    [lambda data: data[:-9] + bytes([data[-9] ^ 1]) + data[-8:], lambda data: data + b"junk"],
    ids=["crc-mismatch", "junk-after-the-stream"],
)
def test_a_damaged_gzip_is_not_called_uncompressed(tmp_path, files, damage):
    # gzip's BadGzipFile also reports a failed CRC and junk after the stream: such a file is
    # gzipped, and removing ".gz" from its name would only make it unreadable another way.
    path = replace(tmp_path, files, "train-images-idx3-ubyte.gz", damage(files[0]["train-images-idx3-ubyte.gz"]))
    with pytest.raises(ValueError, match=rf"{path} is damaged .*delete it and get it again") as info:
        load_mnist(tmp_path)
    assert "not gzipped" not in str(info.value)


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "unpacked"])
def test_a_header_declaring_more_than_the_file_holds_takes_no_memory(tmp_path, files, gz):
    # A damaged count of 4e9 images must be a ValueError naming the file, not a MemoryError
    # from allocating 3 TB before reading the first value.
    images = files[1]["train"][0]
    data = idx_bytes(images)
    data = data[:4] + (4_000_000_000).to_bytes(4, "big") + data[8:]
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    path = replace(tmp_path, files, name, gzip.compress(data) if gz else data)
    if not gz:
        (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=rf"{path} is truncated.* declares 4000000000 x 28 x 28 = "):
            load_mnist(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * images.nbytes


@pytest.mark.parametrize("dims", [(0, 28, 28), (20, 0, 28)], ids=["no-images", "no-rows"])
def test_a_header_declaring_no_values_is_refused(tmp_path, files, dims):
    data = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in dims)
    path = replace(tmp_path, files, "train-images-idx3-ubyte.gz", gzip.compress(data))
    with pytest.raises(ValueError, match=rf"{path} declares dimensions {' x '.join(map(str, dims))}: it holds no"):
        load_mnist(tmp_path)


def test_labels_outside_the_classes(tmp_path, files):
    labels = files[1]["train"][1].copy()
    labels[7] = 10
    path = replace(tmp_path, files, "train-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(labels)))
    with pytest.raises(ValueError, match=rf"{path} holds 1 labels outside 0..9 \(label 10 at index 7\)"):
        load_mnist(tmp_path)


def test_images_and_labels_of_different_counts(tmp_path, files):
    labels = files[1]["train"][1][:-1]
    replace(tmp_path, files, "train-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(labels)))
    with pytest.raises(ValueError, match="holds 20 images but .*train-labels-idx1-ubyte.gz holds 19 labels"):
        load_mnist(tmp_path)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"split": "val"}, ValueError, r"split must be 'train' or 'test', got 'val'"),
        ({"kind": "letters"}, ValueError, r"kind must be 'digits' or 'fashion', got 'letters'"),
        ({"root": 3}, TypeError, r"root must be a folder"),
        ({"download": "yes"}, TypeError, r"download must be True or False"),
        ({"mirror": "example.org"}, ValueError, r"mirror must be None .* or a base URL"),
    ],
    ids=["split", "kind", "root", "download", "mirror"],
)
def test_bad_arguments(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=f"load_mnist: {message}"):
        load_mnist(**{"root": tmp_path, **kwargs})


# -- downloads -------------------------------------------------------------------------------------
@pytest.fixture
def published(monkeypatch, files):
    """The small files' checksums in place of the published ones (only in this test)."""
    for name, data in files[0].items():
        monkeypatch.setitem(mnist_module.KINDS["digits"].md5, name, md5(data))
    return files


def test_download_fetches_checks_and_then_reads_the_local_files(tmp_path, published):
    folder = tmp_path / "new" / "mnist"
    with serve(published[0]) as server:
        X, y, _ = load_mnist(folder, "test", download=True, mirror=server.base)
        assert sorted(server.requests) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
        np.testing.assert_array_equal(X[:, 0], published[1]["test"][0])
        np.testing.assert_array_equal(y, published[1]["test"][1])
        assert leftovers(folder) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
        for name in leftovers(folder):
            assert (folder / name).read_bytes() == published[0][name]
        load_mnist(folder, "test", download=True, mirror=server.base)
        assert len(server.requests) == 2  # nothing fetched again


def test_a_file_that_is_not_the_published_one_is_never_written(tmp_path, files):
    folder = tmp_path / "mnist"
    with (
        serve(files[0]) as server,
        pytest.raises(
            ValueError,
            match=(
                r"no intact copy of t10k-images-idx3-ubyte.gz could be downloaded: .*its MD5 is [0-9a-f]{32}, the "
                r"published one is 9fb629c4189551a2d022fa330f9573f3\). Nothing was written"
            ),
        ),
    ):
        load_mnist(folder, "test", download=True, mirror=server.base)
    assert leftovers(folder) == []


def test_an_interrupted_download_leaves_nothing(tmp_path, published):
    folder = tmp_path / "mnist"
    with serve(published[0]) as server:
        server.cut.add("train-images-idx3-ubyte.gz")
        with pytest.raises(
            ConnectionError,
            match=r"train-images-idx3-ubyte.gz \(the download broke off after "
            r"[\d,]+ of [\d,]+ bytes\)",
        ):
            load_mnist(folder, download=True, mirror=server.base)
    assert leftovers(folder) == []


def test_without_a_network_the_error_says_so(tmp_path):
    url = closed_port_url()
    with pytest.raises(
        ConnectionError,
        match=rf"could not download train-images-idx3-ubyte.gz: {url}"
        r"train-images-idx3-ubyte.gz \(.*refused.*\)\. Nothing was written\. "
        "Check the network connection",
    ):
        load_mnist(tmp_path / "new" / "mnist", download=True, mirror=url)
    assert list(tmp_path.iterdir()) == []  # not even the folders it made for the files


def test_the_official_addresses_are_the_default_and_tried_in_order(tmp_path, monkeypatch):
    asked = []

    def offline(url, timeout):
        asked.append(url)
        raise urllib.error.URLError("offline in the tests")

    monkeypatch.setattr(download_module.urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError, match="offline in the tests"):
        load_mnist(tmp_path, download=True)
    assert asked == [
        "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
        "http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz",
    ]
    asked.clear()
    with pytest.raises(ConnectionError):
        load_mnist(tmp_path, kind="fashion", download=True)
    assert asked[0] == "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz"


def test_the_next_address_is_tried_when_one_fails(tmp_path, published):
    with serve(published[0]) as good:
        path = download_module.download(
            [closed_port_url(), good.base + "missing/", good.base],
            "train-labels-idx1-ubyte.gz",
            md5(published[0]["train-labels-idx1-ubyte.gz"]),
            tmp_path,
            "test",
        )
        assert good.requests == ["missing/train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert path.read_bytes() == published[0]["train-labels-idx1-ubyte.gz"]


def test_the_download_shows_a_progress_bar(tmp_path, published, monkeypatch):
    bars = []

    class Bar:
        def __init__(self, **kwargs):
            self.kwargs, self.done = kwargs, 0
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            self.done += n

    monkeypatch.setattr(download_module, "tqdm", Bar)
    with serve(published[0]) as server:
        load_mnist(tmp_path, "test", download=True, mirror=server.base)
    sizes = [len(published[0][name + ".gz"]) for name in MNIST_NAMES["test"]]
    assert [(b.kwargs["desc"], b.kwargs["total"], b.done, b.kwargs["unit"]) for b in bars] == [
        (name + ".gz", size, size, "B") for name, size in zip(MNIST_NAMES["test"], sizes)
    ]


def test_download_refuses_to_replace_a_file_that_is_not_official(tmp_path, published):
    write_files(tmp_path, {"train-images-idx3-ubyte.gz": b"mine"})
    with (
        serve(published[0]) as server,
        pytest.raises(
            ValueError, match=r"train-images-idx3-ubyte.gz is not the official MNIST file: its MD5 is .* It was left"
        ),
    ):
        load_mnist(tmp_path, download=True, mirror=server.base)
    assert (tmp_path / "train-images-idx3-ubyte.gz").read_bytes() == b"mine"
