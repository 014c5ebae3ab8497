"""Checkpoint files: atomic writes that keep a user's file, its permissions and links; safe reads."""

import errno
import os
import pickle
import stat
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from minicnn import _atomic
from minicnn.checkpoint import (
    read_checkpoint,
    read_npz,
    write_checkpoint,
    write_npz_atomically,
)


def arrays(rng, scale=1.0):
    return {"0.weight": (scale * rng.standard_normal((4, 3, 3, 3))).astype(np.float32),
            "0.bias": np.zeros(4, np.float32)}


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
    assert message.startswith(f"save: could not write '{path}': the disk holding '{tmp_path}' is full; "
                              "free some space")
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
        assert message.startswith(f"save: could not write '{folder / 'm.npz'}': no permission to create files "
                                  f"in folder '{folder}'; save into a folder you can write to")
        assert ".tmp" not in message and ".m.npz" not in message
        assert os.listdir(folder) == []
    finally:
        os.chmod(folder, 0o755)


@pytest.mark.parametrize(("code", "reason"), [
    (errno.EACCES, "no permission to create files in folder '{folder}'; save into a folder you can write to"),
    (errno.EROFS, "folder '{folder}' is on a read-only file system; save somewhere else"),
    (errno.EDQUOT, "your disk quota for '{folder}' is used up; free some space"),
    (errno.EIO, os.strerror(errno.EIO)),
], ids=["no-permission", "read-only-file-system", "quota", "other"])
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


@pytest.mark.parametrize(("make", "error", "expected"), [
    (lambda tmp: "nowhere/m.npz", FileNotFoundError,
     "save: cannot write 'nowhere/m.npz': folder 'nowhere' does not exist; create it first"),
    (lambda tmp: (tmp / "runs").mkdir() or "runs", IsADirectoryError,
     "save: 'runs' is a folder; give a file name inside it, such as 'runs/model.npz'"),
    (lambda tmp: "runs/", IsADirectoryError, "save: 'runs/' is a folder"),
    (lambda tmp: (tmp / "notes").write_text("x") and "notes/m.npz", NotADirectoryError,
     "save: cannot write 'notes/m.npz': 'notes' is a file, not a folder"),
], ids=["missing-folder", "path-is-a-folder", "trailing-slash", "parent-is-a-file"])
def test_a_save_to_an_impossible_path_says_why_and_writes_nothing(tmp_path, rng, monkeypatch, make, error,
                                                                   expected):
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


@pytest.mark.parametrize(("write", "what"), [
    (lambda p: p.write_text("not a checkpoint at all\n"), "plain text, starting 'not a checkpoint"),
    (lambda p: p.write_bytes(b""), "an empty file (0 bytes)"),
    (lambda p: p.write_bytes(b"\x00\x01\x02"), "unrecognised binary data (first bytes 00 01 02)"),
    (write_npy, "a .npy file: a single ndarray, not an .npz archive of named arrays"),
    (lambda p: p.write_bytes(bytes(range(256))[::-1] * 4), "unrecognised binary data (first bytes ff fe"),
    (lambda p: p.mkdir(), "a folder; give the file inside it"),
    (write_pickle, "a Python pickle, which load never reads"),
    (lambda p: p.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:ab\n"), "git lfs pull"),
], ids=["text", "empty", "nul-bytes", "npy", "random-bytes", "folder", "python-pickle", "git-lfs-pointer"])
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
        raw = raw[:middle] + bytes(b ^ 0xFF for b in raw[middle:middle + 64]) + raw[middle + 64:]
    elif damage == "cut-the-directory":
        raw = raw[:-10]
    else:
        raw = raw[:3]
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=rf"^load: '{path}' is not a readable minicnn checkpoint: the \.npz "
                                         r"archive is truncated or corrupt") as info:
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


@pytest.mark.parametrize(("version", "found"), [
    (np.array(2), "format 2,"),
    (np.array(0), "format 0,"),
    (np.array(1.0), "format 1.0 (a float64 array of shape ()"),
    (np.array([1]), "format [1] (a int64 array of shape (1,)"),
    (np.array("1"), "format '1' (a <U1 array of shape ()"),
    (np.array(True), "format True (a bool array"),
], ids=["future", "zero", "float", "vector", "string", "bool"])
def test_another_or_malformed_format_version_is_refused(tmp_path, rng, version, found):
    np.savez(tmp_path / "c.npz", **arrays(rng), **{"meta.format_version": version})
    with pytest.raises(ValueError) as info:
        read_checkpoint(tmp_path / "c.npz")
    message = str(info.value)
    assert message.startswith(f"load: '{tmp_path / 'c.npz'}' has checkpoint {found}")
    assert "this minicnn reads format 1" in message


@pytest.mark.parametrize(("state", "optim", "error", "expected"), [
    ({"meta.note": np.zeros(1)}, None, ValueError, "save: state key 'meta.note' starts with a reserved prefix"),
    ({"optim.lr": np.zeros(1)}, None, ValueError, "save: state key 'optim.lr' starts with a reserved prefix"),
    ({"w": np.array([None])}, None, ValueError, "save: state['w'] has dtype object"),
    ({"w": np.zeros(1)}, {"buf": np.array([{}])}, ValueError, "save: optimizer_state['buf'] has dtype object"),
    ({0: np.zeros(1)}, None, TypeError, "save: state keys must be str, got 0"),
    ([np.zeros(1)], None, TypeError, "save: state must be a dict of str to ndarray, got list"),
], ids=["meta-key", "optim-key", "object-state", "object-optimizer", "int-key", "not-a-dict"])
def test_write_checkpoint_refuses_bad_state_before_writing(tmp_path, state, optim, error, expected):
    path = tmp_path / "c.npz"
    path.write_bytes(b"previous")
    with pytest.raises(error) as info:
        write_checkpoint(path, state, optim)
    assert str(info.value).startswith(expected)
    assert path.read_bytes() == b"previous" and os.listdir(tmp_path) == ["c.npz"]
