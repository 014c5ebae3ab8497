"""Checkpoint files: atomic writes that keep a user's file, its permissions and links; safe reads; the
architecture they record, from which load_model builds the model."""

import copy
import errno
import json
import os
import pickle
import stat
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from test_layer_contract import CASES as LAYER_CASES
from test_layer_contract import PUBLIC

import minicnn
from minicnn import (
    AvgPool2D,
    BatchNorm2D,
    Conv2DVolume,
    Dense,
    Dropout,
    GlobalAvgPool2D,
    Layer,
    LeakyReLU,
    MaxPool2D,
    Parameter,
    ReLU,
    Residual,
    Sequential,
    Tanh,
    _atomic,
    load_model,
)
from minicnn import _architecture as architecture
from minicnn._atomic import write_atomically
from minicnn.checkpoint import (
    read_checkpoint,
    read_npz,
    write_checkpoint,
    write_npz_atomically,
)


def arrays(rng, scale=1.0):
    return {
        "0.weight": (scale * rng.standard_normal((4, 3, 3, 3))).astype(np.float32),
        "0.bias": np.zeros(4, np.float32),
    }


def hidden(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process umask inside a test; the previous one comes back afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


# -- where the file goes ------------------------------------------------------------------------
def test_a_tilde_path_is_the_home_folder_for_save_and_load(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("HOME", str(tmp_path))
    data = arrays(rng)
    returned = write_npz_atomically("~/m.npz", data)
    assert returned == tmp_path / "m.npz"
    assert os.listdir(tmp_path) == ["m.npz"]
    loaded = read_npz("~/m.npz")
    np.testing.assert_array_equal(loaded["0.weight"], data["0.weight"])


def test_saving_to_a_symlink_updates_its_target_and_keeps_the_link(tmp_path, rng):
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "epoch3.npz"
    write_npz_atomically(target, arrays(rng, 1.0))
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    new = arrays(rng, 2.0)
    write_npz_atomically(link, new)
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(read_npz(target)["0.weight"], new["0.weight"])
    assert hidden(tmp_path) == [] and hidden(tmp_path / "runs") == []


def test_a_dangling_symlink_creates_its_target(tmp_path, rng):
    link = tmp_path / "latest.npz"
    link.symlink_to("fresh.npz")  # relative, as `ln -s` makes them
    write_npz_atomically(link, arrays(rng))
    assert link.is_symlink() and (tmp_path / "fresh.npz").is_file()


def test_a_dangling_symlink_into_a_missing_folder_names_both_paths(tmp_path, rng):
    link = tmp_path / "latest.npz"
    link.symlink_to(tmp_path / "gone" / "m.npz")
    with pytest.raises(FileNotFoundError) as info:
        write_npz_atomically(link, arrays(rng))
    message = str(info.value)
    assert message.startswith(f"save: cannot write '{link}' (= '{tmp_path / 'gone' / 'm.npz'}')")
    assert f"folder '{tmp_path / 'gone'}' does not exist; create it first" in message
    assert link.is_symlink() and os.listdir(tmp_path) == ["latest.npz"]


# -- permissions ------------------------------------------------------------------------------
def test_a_private_file_stays_private_when_saved_again(tmp_path, rng):
    path = tmp_path / "m.npz"
    write_npz_atomically(path, arrays(rng))
    os.chmod(path, 0o600)
    write_npz_atomically(path, arrays(rng, 2.0))
    assert mode(path) == 0o600


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permission bits")
def test_the_content_is_never_readable_by_others_while_it_is_written(tmp_path, rng, umask):
    # Replacing a private file under umask 022: the temporary file would be 0644 by default.
    path = tmp_path / "m.npz"
    write_npz_atomically(path, arrays(rng))
    os.chmod(path, 0o600)
    seen = []

    def write(f):
        seen.append(stat.S_IMODE(os.fstat(f.fileno()).st_mode))
        f.write(b"content")

    write_atomically(path, write)
    assert seen == [0o600] and mode(path) == 0o600 and path.read_bytes() == b"content"
    new = tmp_path / "new.bin"
    write_atomically(new, write)
    assert seen[-1] == 0o600 and mode(new) == 0o644  # the umask's mode, once the content is whole


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root may give files away")
def test_a_replaced_file_keeps_its_owner_and_group(tmp_path, rng):
    path = tmp_path / "m.npz"
    write_npz_atomically(path, arrays(rng))
    os.chown(path, 65534, 65534)
    os.chmod(path, 0o640)
    write_npz_atomically(path, arrays(rng, 2.0))
    info = os.stat(path)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o640)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077], ids=["umask-022", "umask-027", "umask-077"])
def test_a_new_file_gets_the_umask_permissions(tmp_path, rng, umask, mask):
    umask(mask)
    write_npz_atomically(tmp_path / "m.npz", arrays(rng))
    assert mode(tmp_path / "m.npz") == 0o666 & ~mask


def test_a_read_only_file_is_not_replaced(tmp_path, rng):
    path = tmp_path / "m.npz"
    write_npz_atomically(path, arrays(rng))
    good = path.read_bytes()
    os.chmod(path, 0o444)
    if os.access(path, os.W_OK):
        pytest.skip("this user (root?) may write read-only files")
    with pytest.raises(PermissionError, match=r"save: '.*m\.npz' is read-only \(mode 444\); make it writable"):
        write_npz_atomically(path, arrays(rng, 2.0))
    assert path.read_bytes() == good and hidden(tmp_path) == []


# -- temporary files --------------------------------------------------------------------------
KILLED_SAVE = """
import os, sys
import numpy as np
from minicnn import checkpoint

def killed(file, **arrays):
    file.write(b"half an archive")
    file.flush()
    os._exit(9)  # as a kill -9 would: no cleanup runs

np.savez = killed
checkpoint.write_npz_atomically(sys.argv[1], {"w": np.zeros(3)})
"""


def killed_save(path) -> int:
    """Run a save that dies halfway in another process; its (now dead) pid."""
    writer = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, str(path)])
    assert writer.wait(timeout=60) == 9
    return writer.pid


def test_a_killed_saves_temp_file_is_removed_by_the_next_save(tmp_path, rng):
    path = tmp_path / "m.npz"
    write_npz_atomically(path, arrays(rng))
    good = path.read_bytes()
    dead = killed_save(path)
    (left,) = hidden(tmp_path)
    assert left.startswith(f".m.npz.{dead}.") and left.endswith(".tmp")
    assert path.read_bytes() == good  # the killed save never touched the file
    write_npz_atomically(path, arrays(rng, 2.0))
    assert os.listdir(tmp_path) == ["m.npz"]


def test_a_save_keeps_live_writers_and_other_targets_temp_files(tmp_path, rng):
    path = tmp_path / "m.npz"
    live = _atomic._temp_path(str(path), os.getpid())  # a write in progress in this process
    with open(live, "wb") as f:
        f.write(b"in progress")
    killed_save(tmp_path / "other.npz")
    (other,) = set(hidden(tmp_path)) - {os.path.basename(live)}
    write_npz_atomically(path, arrays(rng))
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(live), other, "m.npz"])


def test_a_failure_mid_write_keeps_the_previous_file_and_names_no_temp_file(tmp_path, rng, monkeypatch):
    path = tmp_path / "m.npz"
    write_npz_atomically(path, arrays(rng))
    good = path.read_bytes()
    seen = []

    def disk_full(file, **arrays):
        seen.append(file.name)
        file.write(b"half an archive")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), file.name)

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError) as info:
        write_npz_atomically(path, arrays(rng, 2.0))
    message = str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert message.startswith(f"save: could not write '{path}': the disk holding '{tmp_path}' is full; free some space")
    assert "the previous file is unchanged" in message
    assert os.path.basename(seen[0]) not in message and ".tmp" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["m.npz"]


def test_an_interrupted_save_removes_its_temp_file(tmp_path, rng, monkeypatch):
    path = tmp_path / "m.npz"
    write_npz_atomically(path, arrays(rng))
    good = path.read_bytes()

    def interrupted(file, **arrays):
        file.write(b"half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_npz_atomically(path, arrays(rng, 2.0))
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["m.npz"]


# -- save errors ----------------------------------------------------------------------------
def test_a_read_only_folder_error_names_the_users_path_and_no_temp_file(tmp_path, rng):
    folder = tmp_path / "locked"
    folder.mkdir()
    os.chmod(folder, 0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("this user (root?) may write into read-only folders")
        with pytest.raises(PermissionError) as info:
            write_npz_atomically(folder / "m.npz", arrays(rng))
        message = str(info.value)
        assert message.startswith(
            f"save: could not write '{folder / 'm.npz'}': no permission to create files "
            f"in folder '{folder}'; save into a folder you can write to"
        )
        assert ".tmp" not in message and ".m.npz" not in message
        assert os.listdir(folder) == []
    finally:
        os.chmod(folder, 0o755)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.EACCES, "no permission to create files in folder '{folder}'; save into a folder you can write to"),
        (errno.EROFS, "folder '{folder}' is on a read-only file system; save somewhere else"),
        (errno.EDQUOT, "your disk quota for '{folder}' is used up; free some space"),
        (errno.EIO, os.strerror(errno.EIO)),
    ],
    ids=["no-permission", "read-only-file-system", "quota", "other"],
)
def test_an_os_refusal_to_create_the_file_is_worded_for_the_user(tmp_path, rng, monkeypatch, code, reason):
    # The refusal a read-only folder gets from the OS, simulated so that it is tested under root too.
    def refuse(file, mode="r", *args, **kwargs):
        raise OSError(code, os.strerror(code), file)

    monkeypatch.setattr(_atomic, "open", refuse, raising=False)
    with pytest.raises(OSError) as info:
        write_npz_atomically(tmp_path / "m.npz", arrays(rng))
    message = str(info.value)
    assert message.startswith(f"save: could not write '{tmp_path / 'm.npz'}': {reason.format(folder=tmp_path)}")
    assert message.endswith("(nothing was written)") and ".tmp" not in message
    assert info.value.errno == code and os.listdir(tmp_path) == []


def test_a_file_the_user_may_not_write_is_not_replaced(tmp_path, rng, monkeypatch):
    path = tmp_path / "m.npz"
    write_npz_atomically(path, arrays(rng))
    good = path.read_bytes()
    os.chmod(path, 0o444)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if os.fspath(p) == str(path) else real_access(p, m))
    with pytest.raises(PermissionError, match=r"is read-only \(mode 444\); make it writable"):
        write_npz_atomically(path, arrays(rng, 2.0))
    assert path.read_bytes() == good and hidden(tmp_path) == []


@pytest.mark.parametrize(
    ("make", "error", "expected"),
    [
        (
            lambda tmp: "nowhere/m.npz",
            FileNotFoundError,
            "save: cannot write 'nowhere/m.npz': folder 'nowhere' does not exist; create it first",
        ),
        (
            lambda tmp: (tmp / "runs").mkdir() or "runs",
            IsADirectoryError,
            "save: 'runs' is a folder; give a file name inside it, such as 'runs/model.npz'",
        ),
        (lambda tmp: "runs/", IsADirectoryError, "save: 'runs/' is a folder"),
        (
            lambda tmp: (tmp / "notes").write_text("x") and "notes/m.npz",
            NotADirectoryError,
            "save: cannot write 'notes/m.npz': 'notes' is a file, not a folder",
        ),
    ],
    ids=["missing-folder", "path-is-a-folder", "trailing-slash", "parent-is-a-file"],
)
def test_a_save_to_an_impossible_path_says_why_and_writes_nothing(tmp_path, rng, monkeypatch, make, error, expected):
    monkeypatch.chdir(tmp_path)
    given = make(tmp_path)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(error) as info:
        write_npz_atomically(given, arrays(rng))
    assert str(info.value).startswith(expected)
    assert sorted(os.listdir(tmp_path)) == before


# -- reading what is not a checkpoint -------------------------------------------------------------
def write_npy(path):
    with open(path, "wb") as f:  # a file object: numpy appends no ".npy"
        np.save(f, np.zeros(3))


def write_pickle(path):
    with open(path, "wb") as f:
        pickle.dump({"0.weight": [1.0, 2.0]}, f)


def write_zip(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")


@pytest.mark.parametrize(
    ("write", "what"),
    [
        (lambda p: p.write_text("not a checkpoint at all\n"), "plain text, starting 'not a checkpoint"),
        (lambda p: p.write_bytes(b""), "an empty file (0 bytes)"),
        (lambda p: p.write_bytes(b"\x00\x01\x02"), "unrecognised binary data (first bytes 00 01 02)"),
        (write_npy, "a .npy file: a single ndarray, not an .npz archive of named arrays"),
        (lambda p: p.write_bytes(bytes(range(256))[::-1] * 4), "unrecognised binary data (first bytes ff fe"),
        (lambda p: p.mkdir(), "a folder; give the file inside it"),
        (write_pickle, "a Python pickle, which load never reads"),
        (lambda p: p.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:ab\n"), "git lfs pull"),
    ],
    ids=["text", "empty", "nul-bytes", "npy", "random-bytes", "folder", "python-pickle", "git-lfs-pointer"],
)
def test_a_file_that_is_not_an_npz_says_what_it_is(tmp_path, monkeypatch, write, what):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "m.npz")
    with pytest.raises(ValueError) as info:
        read_npz("m.npz")
    message = str(info.value)
    assert message.startswith("load: 'm.npz' is not a readable minicnn checkpoint: it is not an .npz archive but ")
    assert what in message
    if "pickle" not in what:
        assert "pickle" not in message


def test_a_zip_that_is_not_an_npz_names_the_stray_member(tmp_path):
    write_zip(tmp_path / "model.pt")
    with pytest.raises(ValueError, match=r"is a zip archive but not an \.npz \(member 'archive/data\.pkl'"):
        read_npz(tmp_path / "model.pt")


@pytest.mark.parametrize("damage", ["truncate", "flip-bytes", "cut-the-directory", "first-bytes-only"])
def test_a_damaged_archive_is_truncated_or_corrupt(tmp_path, rng, damage):
    path = tmp_path / "m.npz"
    write_npz_atomically(path, arrays(rng))
    raw = path.read_bytes()
    middle = len(raw) // 2
    if damage == "truncate":
        raw = raw[:middle]
    elif damage == "flip-bytes":
        raw = raw[:middle] + bytes(b ^ 0xFF for b in raw[middle : middle + 64]) + raw[middle + 64 :]
    elif damage == "cut-the-directory":
        raw = raw[:-10]
    else:
        raw = raw[:3]
    path.write_bytes(raw)
    with pytest.raises(
        ValueError,
        match=rf"^load: '{path}' is not a readable minicnn checkpoint: the \.npz "
        r"archive is truncated or corrupt",
    ) as info:
        read_npz(path)
    assert "pickle" not in str(info.value)


def test_an_archive_of_objects_is_refused_as_pickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, w=np.zeros(2), payload=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="array 'payload' holds Python objects .* load refuses pickled objects"):
        read_npz(path)


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"^load: no checkpoint at '{tmp_path / 'nope.npz'}'"):
        read_npz(tmp_path / "nope.npz")


def test_read_npz_reads_compressed_archives_and_keeps_dtypes(tmp_path, rng):
    data = {"a": rng.standard_normal((2, 3)), "b": np.arange(4, dtype=np.int16), "c": np.array("text")}
    np.savez_compressed(tmp_path / "z.npz", **data)
    loaded = read_npz(tmp_path / "z.npz")
    assert loaded.keys() == data.keys()
    for key, value in data.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)


# -- the checkpoint format ------------------------------------------------------------------------
@pytest.mark.parametrize("with_optimizer", [False, True], ids=["model-only", "with-optimizer"])
def test_write_and_read_checkpoint_round_trip(tmp_path, rng, with_optimizer):
    state = arrays(rng)
    optim = {"state.0.momentum_buffer": rng.standard_normal(3), "step": np.array(12)} if with_optimizer else None
    write_checkpoint(tmp_path / "c.npz", state, optim)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as raw:  # the documented layout
        expected_keys = {"0.weight", "0.bias", "meta.format_version"}
        if with_optimizer:
            expected_keys |= {"optim.state.0.momentum_buffer", "optim.step"}
        assert set(raw.files) == expected_keys
        assert raw["meta.format_version"].shape == () and int(raw["meta.format_version"]) == 1
    got_state, got_optim, _ = read_checkpoint(tmp_path / "c.npz")
    assert got_state.keys() == state.keys()
    for key, value in state.items():
        assert got_state[key].dtype == value.dtype
        np.testing.assert_array_equal(got_state[key], value)
    assert got_optim.keys() == (optim or {}).keys()
    for key, value in (optim or {}).items():
        np.testing.assert_array_equal(got_optim[key], value)


def test_a_plain_state_dict_npz_is_format_1(tmp_path, rng):
    state = arrays(rng)
    np.savez(tmp_path / "plain.npz", **state)
    got_state, got_optim, _ = read_checkpoint(tmp_path / "plain.npz")
    np.testing.assert_array_equal(got_state["0.weight"], state["0.weight"])
    assert got_optim == {}


@pytest.mark.parametrize(
    ("version", "found"),
    [
        (np.array(2), "format 2,"),
        (np.array(0), "format 0,"),
        (np.array(1.0), "format 1.0 (a float64 array of shape ()"),
        (np.array([1]), "format [1] (a int64 array of shape (1,)"),
        (np.array("1"), "format '1' (a <U1 array of shape ()"),
        (np.array(True), "format True (a bool array"),
    ],
    ids=["future", "zero", "float", "vector", "string", "bool"],
)
def test_another_or_malformed_format_version_is_refused(tmp_path, rng, version, found):
    np.savez(tmp_path / "c.npz", **arrays(rng), **{"meta.format_version": version})
    with pytest.raises(ValueError) as info:
        read_checkpoint(tmp_path / "c.npz")
    message = str(info.value)
    assert message.startswith(f"load: '{tmp_path / 'c.npz'}' has checkpoint {found}")
    assert "this minicnn reads format 1" in message


@pytest.mark.parametrize(
    ("state", "optim", "error", "expected"),
    [
        ({"meta.note": np.zeros(1)}, None, ValueError, "save: state key 'meta.note' starts with a reserved prefix"),
        ({"optim.lr": np.zeros(1)}, None, ValueError, "save: state key 'optim.lr' starts with a reserved prefix"),
        ({"w": np.array([None])}, None, ValueError, "save: state['w'] has dtype object"),
        ({"w": np.zeros(1)}, {"buf": np.array([{}])}, ValueError, "save: optimizer_state['buf'] has dtype object"),
        ({0: np.zeros(1)}, None, TypeError, "save: state keys must be str, got 0"),
        ([np.zeros(1)], None, TypeError, "save: state must be a dict of str to ndarray, got list"),
    ],
    ids=["meta-key", "optim-key", "object-state", "object-optimizer", "int-key", "not-a-dict"],
)
def test_write_checkpoint_refuses_bad_state_before_writing(tmp_path, state, optim, error, expected):
    path = tmp_path / "c.npz"
    path.write_bytes(b"previous")
    with pytest.raises(error) as info:
        write_checkpoint(path, state, optim)
    assert str(info.value).startswith(expected)
    assert path.read_bytes() == b"previous" and os.listdir(tmp_path) == ["c.npz"]


# -- the architecture: model.save records it, load_model builds the model from it -----------------
class ChannelScale(Layer):
    """The README's own layer, word for word: nothing in it is about saving."""

    def __init__(self, channels):
        super().__init__()
        self.gain = Parameter(np.ones(channels, dtype=np.float32))

    def forward(self, x):
        self.x = x
        return x * self.gain.data[:, None, None]

    def backward(self, dout):
        self.gain.grad += (dout * self.x).sum(axis=(0, 2, 3))
        return dout * self.gain.data[:, None, None]


class Keep(Layer):
    """A user's layer that takes any arguments and computes the identity."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.args, self.kwargs = args, kwargs

    def forward(self, x):
        return x

    def backward(self, dout):
        return dout


def residual_demo(seed=0):
    """The residual demo's network (examples/demo_model.py), narrower."""
    rng = np.random.default_rng(seed)

    def conv(c_in, c_out):
        return Conv2DVolume(c_in, c_out, 3, padding="same", bias=False, rng=rng)

    return Sequential(
        conv(3, 4),
        BatchNorm2D(4),
        ReLU(),
        MaxPool2D(2),
        conv(4, 6),
        BatchNorm2D(6),
        ReLU(),
        Residual(conv(6, 6), BatchNorm2D(6), ReLU(), conv(6, 6), BatchNorm2D(6)),
        ReLU(),
        GlobalAvgPool2D(),
        Dropout(0.2, rng=rng),
        Dense(6, 3, rng=rng),
    )


def assert_same_model(loaded, model, x):
    """The same classes, arguments, weights, buffers and outputs, in eval and in training mode."""
    assert type(loaded) is type(model) and repr(loaded) == repr(model)
    assert architecture.record(loaded) == architecture.record(model)  # tuples still tuples, and so on
    for name, value in model.state_dict().items():
        assert loaded.state_dict()[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded.state_dict()[name], value)
    for name, value in model._resume_state().items():
        np.testing.assert_array_equal(loaded._resume_state()[name], value)
    assert all(layer.training for _, layer in [("", loaded), *loaded.named_layers()])  # as a new model
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded(x), model(x))  # training mode: a Dropout draws the same mask


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_layer_is_built_again_by_load_model(tmp_path, name):
    make, shape, _, _ = LAYER_CASES[name]
    layer = make(np.random.default_rng(0))
    model = layer if isinstance(layer, Sequential) else Sequential(layer)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    model(x)  # a training step moves BatchNorm's running statistics and a Dropout's generator
    model.eval()  # the file does not keep the mode: load_model gives a model in training mode
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    model.train()
    assert_same_model(loaded, model, x)


def test_every_argument_of_the_built_in_layers_comes_back_as_given(tmp_path):
    rng = np.random.default_rng(0)
    model = Sequential(
        Conv2DVolume(
            2,
            3,
            (3, 5),
            stride=(2, 1),
            padding="same",
            dilation=(1, 2),
            bias=False,
            rng=rng,
            init="he_normal",
            dtype=np.float64,
            algorithm="im2col",
        ),
        BatchNorm2D(3, eps=1e-3, momentum=0.25),
        LeakyReLU(negative_slope=0.2),
        MaxPool2D((2, 3), padding=(1, 0)),
        AvgPool2D(kernel_size=2, stride=[1, 1]),
        Residual(Conv2DVolume(3, 3, 3, padding="same", algorithm="winograd", rng=rng), Tanh()),
        GlobalAvgPool2D(),
        Dropout(p=0.25, rng=rng),
        Dense(3, 2, False, rng, "he_normal", np.float64),
    )
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    args, kwargs = loaded[0].constructor_arguments()
    assert isinstance(kwargs.pop("rng"), np.random.Generator)  # a fresh one: its state is not in the file
    assert (args, kwargs) == (
        (2, 3, (3, 5)),
        {
            "stride": (2, 1),
            "padding": "same",
            "dilation": (1, 2),
            "bias": False,
            "init": "he_normal",
            "dtype": np.float64,
            "algorithm": "im2col",
        },
    )
    assert kwargs["dtype"] is np.float64
    assert loaded[0].weight.data.dtype == np.float64 and loaded[0].bias is None
    assert loaded[4].constructor_arguments() == ((), {"kernel_size": 2, "stride": [1, 1]})  # a list stays one
    assert loaded[5][0].algorithm == "winograd" and loaded[8].weight.data.dtype == np.float64
    x = np.random.default_rng(1).standard_normal((2, 2, 9, 11))
    assert_same_model(loaded, model, x)


def test_the_architecture_is_json_text_read_without_pickle(tmp_path):
    residual_demo().save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as raw:
        text = raw["meta.architecture"]
        assert text.shape == () and text.dtype.kind == "U"
    document = json.loads(str(text))
    assert document["version"] == 1
    conv = document["model"]["args"][0]["$layer"]
    assert conv == {
        "class": "Conv2DVolume",
        "module": "minicnn.layers.conv",
        "args": [3, 4, 3],
        "kwargs": {"padding": "same", "bias": False, "rng": {"$rng": None}},
    }  # no generator state
    inner = document["model"]["args"][7]["$layer"]
    assert inner["class"] == "Residual" and [a["$layer"]["class"] for a in inner["args"]] == [
        "Conv2DVolume",
        "BatchNorm2D",
        "ReLU",
        "Conv2DVolume",
        "BatchNorm2D",
    ]


def test_load_model_is_public():
    assert "load_model" in minicnn.__all__ and minicnn.load_model is load_model


def test_a_users_layer_loads_with_custom_layers_and_is_named_without(tmp_path):
    rng = np.random.default_rng(0)
    model = Sequential(Conv2DVolume(3, 4, 3, rng=rng), ChannelScale(4), ReLU())
    model[1].gain.data[...] = [0.5, 2.0, -1.0, 3.0]
    model.save(tmp_path / "m.npz")
    with pytest.raises(ValueError) as info:
        load_model(tmp_path / "m.npz")
    assert str(info.value) == (
        f"load_model: '{tmp_path / 'm.npz'}': layer 1 (ChannelScale) is of class 'ChannelScale' (from module "
        f"'{__name__}'), which is not a minicnn layer; pass its class: load_model(path, "
        "custom_layers={'ChannelScale': ChannelScale})"
    )
    loaded = load_model(tmp_path / "m.npz", custom_layers={"ChannelScale": ChannelScale})
    assert type(loaded[1]) is ChannelScale
    np.testing.assert_array_equal(loaded[1].gain.data, [0.5, 2.0, -1.0, 3.0])
    assert_same_model(loaded, model, rng.standard_normal((2, 3, 6, 5)))


def test_a_users_layer_that_shares_a_minicnn_name_needs_custom_layers(tmp_path):
    class Dense(Keep):
        pass

    Sequential(Dense(4)).save(tmp_path / "m.npz")
    with pytest.raises(
        ValueError,
        match=r"layer 0 \(Dense\) is of class 'Dense' \(from module '.*'\), which is "
        r"not a minicnn layer; pass its class",
    ):
        load_model(tmp_path / "m.npz")
    assert type(load_model(tmp_path / "m.npz", custom_layers={"Dense": Dense})[0]) is Dense


@pytest.mark.parametrize(
    ("custom", "error", "expected"),
    [
        ([ChannelScale], TypeError, "custom_layers must be a dict of class name to Layer class, got list"),
        (
            {"ChannelScale": ChannelScale(2)},
            TypeError,
            (
                "custom_layers['ChannelScale'] is a ChannelScale instance, "
                "expected a Layer subclass; pass the class itself"
            ),
        ),
        ({"ChannelScale": int}, TypeError, "custom_layers['ChannelScale'] is a type, expected a Layer subclass"),
    ],
    ids=["list", "instance", "not-a-layer"],
)
def test_custom_layers_of_the_wrong_kind_are_refused(tmp_path, custom, error, expected):
    Sequential(ChannelScale(2)).save(tmp_path / "m.npz")
    with pytest.raises(error) as info:
        load_model(tmp_path / "m.npz", custom_layers=custom)
    assert str(info.value).startswith(f"load_model: {expected}")


def test_a_users_layer_keeps_arguments_of_every_json_kind(tmp_path):
    args = (
        None,
        True,
        3,
        -2.5,
        float("inf"),
        "same",
        [1, [2, (3, 4)]],
        (5,),
        {"a": (1, 2), "b": [None]},
        np.float32(0.5),
        np.int64(7),
        np.dtype("float16"),
        np.float32,
        float,
        np.arange(6, dtype=np.int16).reshape(2, 3),
        np.array(1.5, np.float32),
    )
    kwargs = {"inner": Dense(2, 3, rng=np.random.default_rng(0)), "rng": np.random.default_rng(1), "same": (5,)}
    model = Sequential(Keep(*args, **kwargs))
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz", custom_layers={"Keep": Keep})
    got_args, got_kwargs = loaded[0].args, loaded[0].kwargs
    assert got_args[:12] == args[:12]
    assert [type(a) for a in got_args[:11]] == [type(None), bool, int, float, float, str, list, tuple, dict, float, int]
    assert isinstance(got_args[11], np.dtype)
    assert got_args[6][1][1] == (3, 4) and got_args[8]["a"] == (1, 2)
    assert got_args[12] is np.float32 and got_args[13] is float
    for got, given in zip(got_args[14:], args[14:]):
        assert got.dtype == given.dtype and got.shape == given.shape
        np.testing.assert_array_equal(got, given)
    assert isinstance(got_kwargs["inner"], Dense) and got_kwargs["inner"].weight.shape == (3, 2)
    np.testing.assert_array_equal(got_kwargs["inner"].weight.data, kwargs["inner"].weight.data)
    assert isinstance(got_kwargs["rng"], np.random.Generator) and got_kwargs["same"] == (5,)


def add_one(x):
    return x + 1


@pytest.mark.parametrize(
    ("argument", "what"),
    [
        (add_one, "argument fn is a function"),
        (Parameter(np.ones(2)), "argument fn is a Parameter"),
        ({1: "one"}, "argument fn is a dict with keys that are not all str"),
        (np.zeros(2, complex), "argument fn is an array of dtype complex128"),
    ],
    ids=["function", "parameter", "int-keys", "complex-array"],
)
def test_arguments_json_cannot_hold_save_the_weights_and_say_how_to_load_them(tmp_path, argument, what):
    model = Sequential(Dense(2, 2, rng=np.random.default_rng(0)), Keep(fn=argument))
    with pytest.warns(
        UserWarning,
        match=f"save: the architecture is not recorded, only the weights: layer 1 "
        rf"\(Keep\): {what}, which JSON cannot hold",
    ):
        model.save(tmp_path / "m.npz")
    with pytest.raises(ValueError) as info:
        load_model(tmp_path / "m.npz", custom_layers={"Keep": Keep})
    message = str(info.value)
    assert message.startswith(
        f"load_model: '{tmp_path / 'm.npz'}': its architecture could not be recorded when "
        f"it was saved: layer 1 (Keep): {what}, which JSON cannot hold"
    )
    assert message.endswith("Build the model in Python as it was built, then call model.load(path)")
    fresh = Sequential(Dense(2, 2, rng=np.random.default_rng(5)), Keep(fn=argument))
    fresh.load(tmp_path / "m.npz")  # which works as always
    np.testing.assert_array_equal(fresh[0].weight.data, model[0].weight.data)


def test_a_layer_given_to_two_constructors_is_not_recorded(tmp_path):
    class Like(Keep):
        """Reads another layer's sizes, and keeps nothing of it."""

        def __init__(self, template):
            super().__init__()
            self.width = template.out_features

    template = Dense(2, 2)
    with pytest.warns(
        UserWarning,
        match=r"layer 1\.0 \(Dense\) is given to two constructors, and JSON cannot "
        "record one layer at two places",
    ):
        Sequential(template, Like(template)).save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="could not be recorded"):
        load_model(tmp_path / "m.npz", custom_layers={"Like": Like})


def test_a_layer_that_overrides_constructor_arguments_is_built_from_them(tmp_path):
    class Scaled(Keep):
        """Takes a function, but is rebuilt from its name."""

        def __init__(self, fn):
            super().__init__()
            self.fn = getattr(np, fn) if isinstance(fn, str) else fn

        def constructor_arguments(self):
            return (self.fn.__name__,), {}

    Sequential(Scaled(np.tanh)).save(tmp_path / "m.npz")
    assert load_model(tmp_path / "m.npz", custom_layers={"Scaled": Scaled})[0].fn is np.tanh


def test_a_deep_copy_records_its_own_layers(tmp_path):
    model = residual_demo()
    twin = copy.deepcopy(model)
    twin[0].weight.data[...] = 1.0
    twin.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded[0].weight.data, twin[0].weight.data)
    assert architecture.record(model) == architecture.record(twin)


def test_a_model_changed_after_it_was_built_is_refused_by_load_model(tmp_path):
    model = Sequential(Dense(4, 3))
    model.layers.append(Dense(3, 2))
    model.save(tmp_path / "m.npz")
    with pytest.raises(
        ValueError,
        match=r"the architecture recorded in the file does not fit the weights saved "
        r"with it \(was a layer replaced or added after it was built\?\); build the "
        r"model in Python, then call model.load\(path\):\n  unexpected parameter "
        r"'1.bias'\n  unexpected parameter '1.weight'$",
    ):
        load_model(tmp_path / "m.npz")


@pytest.mark.parametrize("old", ["np.savez", "format-1-without-architecture"])
def test_a_file_saved_before_the_architecture_loads_with_model_load_only(tmp_path, old):
    model = residual_demo()
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    model(x)
    path = tmp_path / "old.npz"
    if old == "np.savez":
        np.savez(path, **model.state_dict())
    else:  # what save wrote before: the version, the state and the generator states
        write_checkpoint(path, model.state_dict(), resume_state=model._resume_state())
    fresh = residual_demo(seed=1)
    fresh.load(path)
    np.testing.assert_array_equal(fresh.predict(x), model.predict(x))
    with pytest.raises(ValueError) as info:
        load_model(path)
    assert str(info.value) == (
        f"load_model: '{path}' holds weights only, without the architecture (saved by an "
        "older minicnn, or by np.savez); build the model in Python as it was built, then "
        "call model.load(path)"
    )


def test_a_file_that_does_not_fit_says_in_one_line_what_it_holds_and_how_to_load_it(tmp_path):
    residual_demo().save(tmp_path / "resnet.npz")
    model = Sequential(Dense(3, 2))
    before = model.state_dict()
    with pytest.raises(ValueError) as info:
        model.load(tmp_path / "resnet.npz")
    first, *listed = str(info.value).split("\n")
    assert first == (
        f"load: {tmp_path / 'resnet.npz'} does not fit this model; nothing was changed. It holds "
        "Sequential(Conv2DVolume(3, 4, 3, padding='same', bias=False), BatchNorm2D(4), ReLU(), "
        "MaxPool2D(2), ... 8 more): load it with minicnn.load_model(path)."
    )
    problems = model._state_problems(read_checkpoint(tmp_path / "resnet.npz")[0])
    assert listed == [f"  {p}" for p in problems[:5]] + [f"  and {len(problems) + 1 - 5} more"]  # + a resume entry
    np.testing.assert_array_equal(model.state_dict()["0.weight"], before["0.weight"])


def test_a_file_without_architecture_that_does_not_fit_lists_its_mismatches(tmp_path):
    np.savez(tmp_path / "old.npz", **residual_demo().state_dict())
    with pytest.raises(ValueError) as info:
        Sequential(Dense(3, 2)).load(tmp_path / "old.npz")
    first, second, *_ = str(info.value).split("\n")
    assert first == f"load: {tmp_path / 'old.npz'} does not fit this model; nothing was changed."
    assert second == "  '0.weight': shape (4, 3, 3, 3) in the state, (2, 3) in the model"


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (np.array("{not json"), "its architecture is damaged (not JSON"),
        (np.array('{"version": 1, "model": {"class": "Dense"}}'), "its architecture is damaged (a layer is not"),
        (
            np.array(
                '{"version": 1, "model": {"class": "Dense", "module": "minicnn", "args": [{"$set": 1}], "kwargs": {}}}'
            ),
            'its architecture is damaged (unknown argument {"$set": 1})',
        ),
        (np.array('{"version": 2, "model": null}'), "its architecture has version 2, this minicnn reads version 1"),
        (
            np.frombuffer(b"{}", np.uint8),
            ("has a 'meta.architecture' that is a uint8 array of shape (2,), where 0-d text belongs"),
        ),
    ],
    ids=["not-json", "not-a-layer", "unknown-marker", "future", "bytes"],
)
def test_a_damaged_architecture_is_named_and_model_load_still_reads_the_weights(tmp_path, stored, expected):
    model = Sequential(Dense(3, 2))
    path = tmp_path / "m.npz"
    np.savez(path, **model.state_dict(), **{"meta.format_version": np.array(1), "meta.architecture": stored})
    with pytest.raises(ValueError) as info:
        load_model(path)
    assert str(info.value).startswith(f"load_model: '{path}'")
    assert expected in str(info.value)
    if stored.dtype.kind == "U":
        Sequential(Dense(3, 2)).load(path)


def test_a_constructor_that_refuses_its_recorded_arguments_is_named(tmp_path):
    class Picky(Keep):
        def __init__(self, size):
            super().__init__()
            if size > Picky.largest:
                raise ValueError(f"Picky: size {size} is too large")

    Picky.largest = 5
    Sequential(Picky(4)).save(tmp_path / "m.npz")
    Picky.largest = 3
    with pytest.raises(
        ValueError,
        match=r"layer 0 \(Picky\) could not be built again from Picky\(4\) \(ValueError: "
        r"Picky: size 4 is too large\); has the class changed",
    ):
        load_model(tmp_path / "m.npz", custom_layers={"Picky": Picky})


def test_load_model_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"load_model: no checkpoint at '.*nope\.npz'"):
        load_model(tmp_path / "nope.npz")
