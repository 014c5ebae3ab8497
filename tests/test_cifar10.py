"""load_cifar10: the official binary batches, every way a file can be wrong, and the archive's
download served from a loopback server (the tests never reach the network)."""

import pickle
import tracemalloc
import urllib.error

import numpy as np
import pytest
from dataset_files import (
    CIFAR_CLASSES,
    CIFAR_TRAIN,
    cifar_archive_bytes,
    cifar_batch_bytes,
    cifar_file_bytes,
    closed_port_url,
    leftovers,
    md5,
    serve,
    write_files,
)

from minicnn.datasets import CIFAR10_CLASSES, load_cifar10
from minicnn.datasets import _download as download_module
from minicnn.datasets import cifar as cifar_module

FOLDER = "cifar-10-batches-bin"


@pytest.fixture(scope="module")
def files():
    return cifar_file_bytes(per_batch=6, seed=2)


@pytest.fixture
def root(tmp_path, files):
    """A folder where the official archive was unpacked."""
    write_files(tmp_path / FOLDER, files[0])
    return tmp_path


def expected(files, split):
    names = CIFAR_TRAIN if split == "train" else ["test_batch.bin"]
    return (np.concatenate([files[1][n][0] for n in names]), np.concatenate([files[1][n][1] for n in names]))


@pytest.mark.parametrize("split", ["train", "test"])
def test_reads_the_binary_batches_byte_for_byte_in_order(root, files, split):
    X, y, classes = load_cifar10(root, split)
    images, labels = expected(files, split)
    assert X.dtype == np.uint8 and X.shape == (len(images), 3, 32, 32)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(X, images)
    np.testing.assert_array_equal(y, labels)
    assert classes == tuple(CIFAR_CLASSES) == CIFAR10_CLASSES


def test_the_batches_folder_itself_can_be_the_root(root, files):
    X, _, _ = load_cifar10(root / FOLDER, "test")
    np.testing.assert_array_equal(X, expected(files, "test")[0])


def test_the_images_are_a_view_of_the_records_read(tmp_path):
    big, _ = cifar_file_bytes(per_batch=150, seed=0)
    write_files(tmp_path / FOLDER, big)
    tracemalloc.start()
    try:
        X, y, _ = load_cifar10(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    records = 5 * 150 * 3073
    assert not X.flags.owndata and X.base is not None
    assert peak < records + y.nbytes + 100_000, f"peak {peak:,} bytes for {records:,} bytes of records"


def test_class_names_come_from_batches_meta_when_it_is_there(root):
    (root / FOLDER / "batches.meta.txt").write_text("\n".join(f"class{k}" for k in range(10)))
    assert load_cifar10(root, "test")[2] == tuple(f"class{k}" for k in range(10))
    (root / FOLDER / "batches.meta.txt").unlink()
    assert load_cifar10(root, "test")[2] == CIFAR10_CLASSES
    (root / FOLDER / "batches.meta.txt").write_text("apple\npear\n")
    with pytest.raises(ValueError, match=r"batches.meta.txt lists 2 class names, expected 10"):
        load_cifar10(root, "test")


def test_class_names_that_are_not_utf8_are_refused_not_garbled(root):
    path = root / FOLDER / "batches.meta.txt"
    path.write_bytes("\n".join(CIFAR_CLASSES).encode("utf-16"))
    with pytest.raises(ValueError, match=rf"{path} is not UTF-8 text .*it is not CIFAR-10's"):
        load_cifar10(root, "test")


def test_a_stray_batch_beside_the_unpacked_folder_does_not_hide_it(root, files):
    # A test_batch.bin copied into root must not make root the batches folder for the
    # training split, whose five files are all in root/cifar-10-batches-bin.
    write_files(root, {"test_batch.bin": files[0]["test_batch.bin"]})
    X, y, _ = load_cifar10(root, "train")
    np.testing.assert_array_equal(X, expected(files, "train")[0])
    np.testing.assert_array_equal(y, expected(files, "train")[1])
    np.testing.assert_array_equal(load_cifar10(root, "test")[0], expected(files, "test")[0])


def test_the_default_root_is_the_user_cache(tmp_path, monkeypatch, files):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"\.cache/minicnn/cifar10/cifar-10-batches-bin"):
        load_cifar10()
    write_files(tmp_path / ".cache" / "minicnn" / "cifar10" / FOLDER, files[0])
    assert len(load_cifar10()[0]) == 30


# -- wrong files -------------------------------------------------------------------------------------
def test_a_missing_batch_says_which_and_how_to_get_it(root):
    (root / FOLDER / "data_batch_4.bin").unlink()
    assert len(load_cifar10(root, "test")[0]) == 6
    with pytest.raises(FileNotFoundError, match=r"CIFAR-10 binary file data_batch_4.bin not in .*download=True"):
        load_cifar10(root)


def test_the_pickled_python_version_is_recognised_and_never_read(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(pickle.dumps({"labels": [0]}))
    with pytest.raises(
        FileNotFoundError,
        match=r"cifar-10-batches-py is the pickled Python version, which is never "
        r"read .*cifar-10-binary.tar.gz",
    ):
        load_cifar10(tmp_path)


def test_a_pickled_batch_under_a_binary_name_is_named(root):
    path = root / FOLDER / "test_batch.bin"
    data = pickle.dumps({"data": b"x" * 3000}, protocol=2)
    path.write_bytes(data)
    with pytest.raises(ValueError, match=rf"{path} is [\d,]+ bytes, not a whole number .*looks like a pickled batch"):
        load_cifar10(root, "test")
    path.write_bytes(data + b"\0" * (6 * 3073 - len(data)))  # padded to the size of the other batches
    with pytest.raises(ValueError, match=rf"{path} holds \d labels outside 0..9 .*looks like a pickled batch"):
        load_cifar10(root, "test")


@pytest.mark.parametrize("cut", [1, 3073 * 2 + 5], ids=["last-byte", "mid-record"])
def test_a_size_that_is_no_whole_number_of_records(root, files, cut):
    path = root / FOLDER / "data_batch_3.bin"
    path.write_bytes(files[0]["data_batch_3.bin"][:-cut])
    with pytest.raises(
        ValueError,
        match=rf"{path} is [\d,]+ bytes, not a whole number of 3,073-byte records .*"
        "truncated or not a CIFAR-10 binary batch",
    ):
        load_cifar10(root)


def test_a_batch_cut_at_a_record_boundary_is_truncated(root, files):
    path = root / FOLDER / "data_batch_5.bin"
    path.write_bytes(files[0]["data_batch_5.bin"][:-3073])
    with pytest.raises(ValueError, match=rf"{path} holds 5 records where data_batch_1.bin holds 6: it is truncated"):
        load_cifar10(root)
    path = root / FOLDER / "test_batch.bin"
    path.write_bytes(files[0]["test_batch.bin"][:-3073])
    with pytest.raises(ValueError, match=rf"{path} holds 5 records where data_batch_1.bin holds 6"):
        load_cifar10(root, "test")


def test_an_empty_file_is_refused(root):
    path = root / FOLDER / "data_batch_1.bin"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"{path} is 0 bytes"):
        load_cifar10(root)


def test_labels_outside_0_to_9_name_the_file_and_record(root, files):
    images, labels = files[1]["data_batch_2.bin"]
    labels = labels.copy()
    labels[4] = 17
    path = root / FOLDER / "data_batch_2.bin"
    path.write_bytes(cifar_batch_bytes(images, labels))
    with pytest.raises(ValueError, match=rf"{path} holds 1 labels outside 0..9 \(label 17 in record 4\)"):
        load_cifar10(root)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"split": "validation"}, ValueError, r"split must be 'train' or 'test', got 'validation'"),
        ({"root": ["data"]}, TypeError, r"root must be a folder"),
        ({"download": 1}, TypeError, r"download must be True or False"),
    ],
    ids=["split", "root", "download"],
)
def test_bad_arguments(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=f"load_cifar10: {message}"):
        load_cifar10(**{"root": tmp_path, **kwargs})


# -- downloads -------------------------------------------------------------------------------------
@pytest.fixture
def archive(files, monkeypatch):
    """The small files' archive, with its checksum in place of the published one (in this test only)."""
    data = cifar_archive_bytes(files[0])
    monkeypatch.setattr(cifar_module, "ARCHIVE_MD5", md5(data))
    return data


def test_download_fetches_checks_unpacks_and_removes_the_archive(tmp_path, files, archive):
    with serve({"cifar-10-binary.tar.gz": archive}) as server:
        X, _, classes = load_cifar10(tmp_path / "data", download=True, mirror=server.base)
        assert server.requests == ["cifar-10-binary.tar.gz"]
        np.testing.assert_array_equal(X, expected(files, "train")[0])
        assert classes == CIFAR10_CLASSES
        assert leftovers(tmp_path / "data") == sorted([*CIFAR_TRAIN, "batches.meta.txt", "test_batch.bin"])
        for name, data in files[0].items():
            assert (tmp_path / "data" / FOLDER / name).read_bytes() == data
        load_cifar10(tmp_path / "data", "test", download=True, mirror=server.base)
        assert len(server.requests) == 1


def test_an_intact_archive_already_there_is_used_and_kept(tmp_path, files, archive):
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(archive)
    with serve({}) as server:
        X, _, _ = load_cifar10(tmp_path, "test", download=True, mirror=server.base)
        assert server.requests == []
    np.testing.assert_array_equal(X, expected(files, "test")[0])
    assert (tmp_path / "cifar-10-binary.tar.gz").read_bytes() == archive


def test_an_archive_that_is_not_the_official_one(tmp_path, files):
    with (
        serve({"cifar-10-binary.tar.gz": cifar_archive_bytes(files[0])}) as server,
        pytest.raises(
            ValueError, match=r"its MD5 is [0-9a-f]{32}, the published one is c32a1d4ab5d03f1284b67883e8d87530"
        ),
    ):
        load_cifar10(tmp_path, download=True, mirror=server.base)
    assert leftovers(tmp_path) == []
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(b"mine")
    with pytest.raises(ValueError, match="is not the official archive: its MD5 is .* It was left as it is"):
        load_cifar10(tmp_path, download=True)
    assert leftovers(tmp_path) == ["cifar-10-binary.tar.gz"]


def test_an_archive_without_a_batch_is_refused(tmp_path, files, monkeypatch):
    partial = {k: v for k, v in files[0].items() if k != "data_batch_2.bin"}
    data = cifar_archive_bytes(partial)
    monkeypatch.setattr(cifar_module, "ARCHIVE_MD5", md5(data))
    with (
        serve({"cifar-10-binary.tar.gz": data}) as server,
        pytest.raises(
            ValueError, match=r"has no cifar-10-batches-bin/data_batch_2.bin; it is not the official archive"
        ),
    ):
        load_cifar10(tmp_path, download=True, mirror=server.base)


def test_an_interrupted_download_leaves_nothing(tmp_path, archive):
    with serve({"cifar-10-binary.tar.gz": archive}) as server:
        server.cut.add("cifar-10-binary.tar.gz")
        with pytest.raises(ConnectionError, match="the download broke off after"):
            load_cifar10(tmp_path, download=True, mirror=server.base)
    assert leftovers(tmp_path) == []


def test_without_a_network_the_error_says_so(tmp_path):
    with pytest.raises(
        ConnectionError,
        match=r"could not download cifar-10-binary.tar.gz: .*refused.*Check the "
        "network connection",
    ):
        load_cifar10(tmp_path, download=True, mirror=closed_port_url())
    assert leftovers(tmp_path) == []


def test_the_official_address_is_the_default(tmp_path, monkeypatch):
    asked = []

    def offline(url, timeout):
        asked.append(url)
        raise urllib.error.URLError("offline in the tests")

    monkeypatch.setattr(download_module.urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError, match="offline in the tests"):
        load_cifar10(tmp_path, download=True)
    assert asked == ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"]
