"""Uploaded datasets: short keys instead of server paths, messages without paths, the bounded LRU
store, nothing kept of a rejected upload, validated caches, and `python -m hqcnn datasets`."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hqcnn import folder_data as fd
from hqcnn.config import DataConfig
from hqcnn.data import ROOT, dataset_status, get_info, load_arrays, prepare
from hqcnn.errors import DataError
from hqcnn.folder_data import upload_store
from tests.test_folder_data import make_folder, zip_bytes, zip_of

pytestmark = pytest.mark.usefixtures("folder_cache")


def xray_zip(tmp_path: Path, name: str = "xrays", counts: dict[str, int] | None = None, offset: int = 0) -> bytes:
    """A zipped folder `name`/ with class folders of small gray PNGs."""
    folder = make_folder(tmp_path / f"src-{name}-{offset}" / name, counts or {"normal": 5, "pneumonia": 5}, offset)
    return zip_bytes(zip_of(folder, f"{name}/"))


def stored(root: Path | None = None) -> set[str]:
    """The upload keys whose folders are in the store."""
    home = root or fd.folders_root()
    return {f"upload:{p.name}" for p in home.iterdir() if p.is_dir() and len(p.name) == 16} if home.is_dir() else set()


def upload_caches() -> list[Path]:
    return sorted((fd.folders_root() / "cache").glob("upload-*.npz"))


def age(key: str, seconds: float) -> None:
    """Make an upload look last used `seconds` ago."""
    folder = fd.folders_root() / key.removeprefix("upload:")
    then = time.time() - seconds
    os.utime(folder, (then, then))


def no_paths(text: str, *paths: Path) -> None:
    for path in (fd.folders_root(), *paths):
        assert str(path) not in text, text
    assert "/" + "tmp" not in text and str(Path.home()) not in text, text


# --- keys ------------------------------------------------------------------------------------------


def test_upload_keys_and_lookalikes():
    key = "upload:0123456789abcdef"
    assert fd.is_upload_key(key) and fd.is_folder_key(key) and fd.UPLOAD_PREFIX == "upload:"
    for fake in ("upload:../x", "upload:ABCDEF0123456789", "upload:0123", "upload:0123456789abcdef/..", "upload:"):
        assert not fd.is_upload_key(fake) and not fd.is_folder_key(fake)
        with pytest.raises(DataError, match="Unknown dataset"):
            get_info(fake)
    assert not fd.is_upload_key(None) and not fd.is_upload_key(" upload:0123456789abcdef")


def test_an_upload_key_works_wherever_a_dataset_key_does(tmp_path):
    blob = xray_zip(tmp_path)
    key, data = fd.add_upload(blob, "My X-rays.zip")
    assert fd.is_upload_key(key) and data.info.key == key and data.info.title == "xrays"
    assert fd.extract_zip(blob, "again.zip") == key
    assert dataset_status(key) == "folder" and fd.is_cached(key)
    assert fd.title(key) == "xrays" and fd.file_label(key) == "xrays"
    info = get_info(key)
    assert info.key == key and info.label_names == ("normal", "pneumonia")
    assert sum(len(labels) for _, labels in load_arrays(key).values()) == 10
    prepared = prepare(DataConfig(dataset=key, image_size=32))
    assert prepared.info.key == key and prepared.x_train.shape[1:] == (1, 32, 32)
    # Nothing the app shows or saves names a path of the server.
    no_paths(info.description, tmp_path)
    no_paths(data.report.folder, tmp_path)
    assert data.report.folder == "your upload 'xrays'" and "uploaded as a .zip" in info.description
    # A user's folder on the command line is still named by its path (the user gave it).
    folder = make_folder(tmp_path / "own", {"a": 3, "b": 3})
    assert str(folder) in get_info(str(folder)).description


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"set/a/x.txt": b"text", "set/b/y.txt": b"text"}, "None of the 2 files in the class folders of your upload"),
        ({"a/": b"", "b/": b"", "notes.txt": b"x"}, "The class folders in your upload hold no files"),
        ({"notes.txt": b"x"}, "holds no class folders"),
        ("one_class", "Your upload 'one' has only one class with images"),
        ("too_few", "Class 'b' has 2 readable image"),
        ("empty_class", "Class folder 'c' holds no readable images"),
        ("no_train", "Your upload has test/ but no train/ folder"),
    ],
)
def test_a_rejected_upload_names_no_path_and_leaves_nothing(tmp_path, folder_cache, members, message):
    if members == "one_class":
        members = zip_of(make_folder(tmp_path / "one", {"normal": 5}), "one/")
    elif members == "too_few":
        members = zip_of(make_folder(tmp_path / "few", {"a": 5, "b": 2}), "few/")
    elif members == "empty_class":
        members = zip_of(make_folder(tmp_path / "ec", {"a": 3, "b": 3}), "ec/") | {"ec/c/": b""}
    elif members == "no_train":
        members = zip_of(make_folder(tmp_path / "t" / "test", {"a": 3, "b": 3}), "t/test/")
    blob = zip_bytes(members)
    with pytest.raises(DataError, match=message.replace("(", r"\(")) as caught:
        fd.add_upload(blob, "upload.zip")
    no_paths(str(caught.value), tmp_path, folder_cache)
    assert not stored() and not upload_caches()
    assert not [p for p in fd.folders_root().iterdir() if p.name != ".lock"]  # no staging, no caches

    # extract_zip then load (what the page did): the message is as clean (a layout without images
    # is refused by extract_zip itself, which then keeps nothing); discard_upload removes the rest.
    try:
        key = fd.extract_zip(blob, "upload.zip")
    except DataError as err:
        no_paths(str(err), tmp_path, folder_cache)
        assert not stored()
        return
    with pytest.raises(DataError) as caught:
        fd.load(key)
    no_paths(str(caught.value), tmp_path, folder_cache)
    assert fd.discard_upload(key) > 0 and not stored()


def test_a_removed_upload_says_so(tmp_path):
    key, _ = fd.add_upload(xray_zip(tmp_path), "xrays.zip")
    assert fd.discard_upload(key) > 0 and not stored() and not upload_caches()
    for call in (fd.load, get_info, load_arrays):
        with pytest.raises(DataError, match="no longer on the server .* upload the .zip again"):
            call(key)
    assert fd.title(key) == "your uploaded images" and dataset_status(key) == "folder"
    assert fd.discard_upload(key) == 0 and fd.discard_upload(str(tmp_path)) == 0  # a user's folder: untouched
    assert tmp_path.is_dir()


def test_the_cli_takes_upload_keys_and_folder_paths(tmp_path):
    from hqcnn.__main__ import build_parser, run_config_from_args

    key, _ = fd.add_upload(xray_zip(tmp_path), "xrays.zip")
    config = run_config_from_args(build_parser().parse_args(["train", "--dataset", key]))
    assert config.data.dataset == key
    folder = make_folder(tmp_path / "own", {"a": 3, "b": 3})
    config = run_config_from_args(build_parser().parse_args(["train", "--dataset", str(folder)]))
    assert config.data.dataset == str(folder.resolve())


# --- the bounded store --------------------------------------------------------------------------------


def test_least_recently_used_uploads_are_removed_beyond_the_limit(tmp_path, monkeypatch):
    archive_a = xray_zip(tmp_path, "a")  # built once: a rebuilt zip may carry other file times
    a, _ = fd.add_upload(archive_a, "a.zip")
    size = upload_store.total_bytes()  # one upload and its cache
    assert size > 0 and len(upload_caches()) == 1
    monkeypatch.setenv("HQCNN_UPLOAD_STORE_GB", repr(2.5 * size / 2**30))  # room for two
    b, _ = fd.add_upload(xray_zip(tmp_path, "b", offset=10), "b.zip")
    assert stored() == {a, b}
    age(a, 300)
    age(b, 200)
    fd.load(a)  # using `a` makes `b` the least recently used
    c, _ = fd.add_upload(xray_zip(tmp_path, "c", offset=20), "c.zip")
    assert stored() == {a, c} and [p.name.split("-")[1] for p in upload_caches()] == sorted(
        k.removeprefix("upload:") for k in (a, c)
    )
    assert upload_store.total_bytes() <= upload_store.limit_bytes()
    with pytest.raises(DataError, match="no longer on the server"):
        fd.load(b)

    # Unpacking the same archive again marks it used, too.
    age(a, 500)
    age(c, 400)
    assert fd.extract_zip(archive_a, "a.zip") == a
    assert os.stat(fd.folders_root() / a.removeprefix("upload:")).st_mtime > time.time() - 60
    fd.add_upload(xray_zip(tmp_path, "d", offset=30), "d.zip")
    assert a in stored() and c not in stored()


def test_the_upload_just_added_is_kept_even_alone_over_the_limit(tmp_path, monkeypatch):
    first, _ = fd.add_upload(xray_zip(tmp_path, "a"), "a.zip")
    unpacked = upload_store.total_bytes() - sum(p.stat().st_size for p in upload_caches())
    # Room for the unpacked files of one upload, not for its cache as well.
    monkeypatch.setenv("HQCNN_UPLOAD_STORE_GB", repr(1.5 * unpacked / 2**30))
    second, data = fd.add_upload(xray_zip(tmp_path, "b", offset=10), "b.zip")
    assert stored() == {second} and data.info.n_classes == 2
    assert upload_store.total_bytes() > upload_store.limit_bytes()  # over, but never the one just used
    assert fd.load(second).info.key == second


def test_an_archive_larger_than_the_whole_store_is_refused_before_unpacking(tmp_path, monkeypatch, folder_cache):
    monkeypatch.setenv("HQCNN_UPLOAD_STORE_GB", "0.000001")  # about 1 KB
    with pytest.raises(DataError, match="more than the .* this server keeps for all uploaded images") as caught:
        fd.add_upload(xray_zip(tmp_path), "xrays.zip")
    no_paths(str(caught.value), tmp_path, folder_cache)
    assert not (folder_cache / "folders").exists()


@pytest.mark.parametrize("value", ["lots", "-1", "0", "nan", "inf"])
def test_an_invalid_limit_falls_back_to_the_default_with_a_warning(monkeypatch, caplog, value):
    monkeypatch.setenv("HQCNN_UPLOAD_STORE_GB", value)
    monkeypatch.setattr(upload_store, "_warned", set())
    with caplog.at_level(logging.WARNING, logger=upload_store.__name__):
        assert upload_store.limit_bytes() == 4 * 2**30
    assert "HQCNN_UPLOAD_STORE_GB" in caplog.text and "using 4 GB" in caplog.text
    monkeypatch.setenv("HQCNN_UPLOAD_STORE_GB", "0.5")
    assert upload_store.limit_bytes() == 2**29


def test_leftovers_of_a_crash_are_removed_on_first_use(tmp_path, monkeypatch):
    home = fd.folders_root()
    stale, fresh, evicting = (
        home / ".unpack-0123456789abcdef-dead",
        home / ".unpack-1123456789abcdef-busy",
        home / ".evict-x",
    )
    for folder in (stale, fresh, evicting):
        (folder / "set" / "a").mkdir(parents=True)
        (folder / "set" / "a" / "x.png").write_bytes(b"x" * 1000)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    monkeypatch.setattr(upload_store, "_started", set())  # a new process
    key, _ = fd.add_upload(xray_zip(tmp_path), "xrays.zip")
    assert not stale.exists() and not evicting.exists()
    assert fresh.exists()  # may be another process's unpack in progress
    assert stored() == {key}
    # Only once per process: a staging folder that becomes stale later waits for the next start.
    os.utime(fresh, (old, old))
    upload_store.start()
    assert fresh.exists()


def test_the_store_lock_holds_across_processes():
    probe = (
        "import fcntl, sys\n"
        "handle = open(sys.argv[1], 'a')\n"
        "try:\n"
        "    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n"
        "    print('locked')\n"
        "else:\n"
        "    print('free')\n"
    )
    lock = fd.folders_root() / ".lock"

    def other_process() -> str:
        return subprocess.run([sys.executable, "-c", probe, str(lock)], capture_output=True, text=True).stdout.strip()

    with upload_store._locked():
        with upload_store._locked():  # re-entrant within one thread
            assert other_process() == "locked"
    assert other_process() == "free"


def test_sessions_uploading_at_once_keep_the_store_consistent(tmp_path, monkeypatch):
    blobs = [xray_zip(tmp_path, f"s{i}", offset=5 * i) for i in range(4)]
    first, _ = fd.add_upload(blobs[0], "s0.zip")
    monkeypatch.setenv("HQCNN_UPLOAD_STORE_GB", repr(2.5 * upload_store.total_bytes() / 2**30))
    fd.discard_upload(first)
    keys, errors = [], []

    def session(blob: bytes) -> None:
        try:
            keys.append(fd.add_upload(blob, "same.zip")[0])
        except Exception as err:  # noqa: BLE001 — reported below
            errors.append(err)

    threads = [threading.Thread(target=session, args=(blob,)) for blob in blobs + blobs[:2]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(keys)) == 4
    left = stored()
    assert 1 <= len(left) <= 3 and left <= set(keys)
    assert not [p for p in fd.folders_root().iterdir() if p.name.startswith((".unpack-", ".evict-"))]
    fd.clear_memory()
    for key in left:  # every upload still stored is complete
        assert fd.load(key).info.n_classes == 2
    assert {p.name.split("-")[1] for p in upload_caches()} <= {k.removeprefix("upload:") for k in left}


# --- validated caches ------------------------------------------------------------------------------


def _bad_cache(arrays: dict[str, np.ndarray], meta: dict, change: str) -> tuple[dict, dict]:
    arrays, meta = dict(arrays), dict(meta)
    if change == "zero_size":
        arrays = {k: (np.zeros((len(v), 0, 0), np.uint8) if k.endswith("images") else v) for k, v in arrays.items()}
    elif change == "not_square":
        arrays = {k: (v[:, :, :-3] if k.endswith("images") else v) for k, v in arrays.items()}
    elif change == "float_images":
        arrays["train_images"] = arrays["train_images"].astype(np.float32)
    elif change == "two_channels":
        arrays["val_images"] = np.stack([arrays["val_images"]] * 2, axis=-1)
    elif change == "splits_differ":
        arrays["test_images"] = np.stack([arrays["test_images"]] * 3, axis=-1)
    elif change == "wrong_stored_size":
        meta["stored_size"] = 64
    elif change == "too_large":
        arrays = {k: (np.zeros((len(v), 200, 200), np.uint8) if k.endswith("images") else v) for k, v in arrays.items()}
        meta["stored_size"] = 200
    elif change == "labels_2d":
        arrays["train_labels"] = arrays["train_labels"].reshape(-1, 1)
    elif change == "float_labels":
        arrays["val_labels"] = arrays["val_labels"].astype(np.float64)
    elif change == "label_count":
        arrays["test_labels"] = arrays["test_labels"][:-1]
    elif change == "label_names":
        meta["label_names"] = [1, 2]
    elif change == "missing_split":
        del arrays["val_images"]
    return arrays, meta


@pytest.mark.parametrize(
    "change",
    [
        "zero_size",
        "not_square",
        "float_images",
        "two_channels",
        "splits_differ",
        "wrong_stored_size",
        "too_large",
        "labels_2d",
        "float_labels",
        "label_count",
        "label_names",
        "missing_split",
    ],
)
def test_a_cache_with_wrong_arrays_is_deleted_and_rebuilt(tmp_path, change):
    folder = make_folder(tmp_path / "set", {"a": 5, "b": 5})
    expected = fd.load(str(folder))
    (cached,) = (fd.folders_root() / "cache").glob("*.npz")
    with np.load(cached) as good:
        arrays = {k: good[k] for k in good.files if k != "meta"}
        meta = json.loads(str(good["meta"]))
    arrays, meta = _bad_cache(arrays, meta, change)
    np.savez(cached, meta=np.array(json.dumps(meta)), **arrays)
    fd.clear_memory()
    assert fd.store._load_cache(cached) is None and not cached.exists()  # a bad cache is deleted
    np.savez(cached, meta=np.array(json.dumps(meta)), **arrays)
    fd.clear_memory()
    again = fd.load(str(folder))  # rebuilt from the images
    for split in ("train", "val", "test"):
        assert np.array_equal(again.arrays[split][0], expected.arrays[split][0])
        assert np.array_equal(again.arrays[split][1], expected.arrays[split][1])
    assert fd.store._load_cache(cached) is not None  # and the rewritten cache is good


# --- python -m hqcnn datasets ----------------------------------------------------------------------------


def test_datasets_lists_the_cache_and_clear_cache_empties_it(tmp_path, folder_cache, capsys):
    from hqcnn.__main__ import main

    key, _ = fd.add_upload(xray_zip(tmp_path), "xrays.zip")
    own = make_folder(tmp_path / "own", {"a": 3, "b": 3})
    fd.load(str(own))  # a command-line folder: its cache is cleared, the folder never
    (folder_cache / "bloodmnist_64.npz").write_bytes(b"x" * 5000)  # a "downloaded" file
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "bloodmnist_64.npz" in out and key in out and "xrays" in out and "last used" in out
    assert "of 4.00 GB" in out and "HQCNN_UPLOAD_STORE_GB" in out and "caches of your own folders: 1 file(s)" in out

    assert main(["datasets", "--clear-cache"]) == 0
    out = capsys.readouterr().out
    assert f"removed upload {key} (xrays)" in out and "removed MedMNIST file bloodmnist_64.npz" in out
    assert "freed" in out
    assert not stored() and not (fd.folders_root() / "cache").exists()
    assert not (folder_cache / "bloodmnist_64.npz").exists()
    assert own.is_dir() and len(list(own.rglob("*.png"))) == 6  # the user's own folder is untouched
    assert (ROOT / "assets" / "medmnist" / "breastmnist.npz").is_file()  # bundled files stay
    with pytest.raises(DataError, match="no longer on the server"):
        fd.load(key)
    assert main(["datasets", "--clear-cache"]) == 0
    assert "already empty" in capsys.readouterr().out
