"""hqcnn.data against the real bundled files, a temporary cache folder and local servers."""

from __future__ import annotations

import functools
import hashlib
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import medmnist
import numpy as np
import pytest
import torch

from hqcnn import data, folder_data
from hqcnn.config import DataConfig
from hqcnn.errors import DataError, DownloadError

ASSETS = data.ROOT / "assets" / "medmnist"
BREAST = ASSETS / "breastmnist.npz"


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def flipped_copy(source: Path, target: Path) -> None:
    """A copy of `source` of the same size with a few bytes inverted in the middle."""
    raw = bytearray(source.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 8] = bytes(b ^ 0xFF for b in raw[middle : middle + 8])
    target.write_bytes(bytes(raw))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("HQCNN_DATA_DIR", str(folder))
    return folder


def serve_remote(monkeypatch: pytest.MonkeyPatch, url: str, checksum: str) -> None:
    """Point every dataset at `url` with MD5 `checksum`."""
    monkeypatch.setattr(data, "_remote", lambda key, size: (url, checksum))


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path):
    """A folder served over HTTP on 127.0.0.1; yields (folder, base URL)."""
    folder = tmp_path / "www"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_url():
    """A server that accepts connections and never answers."""
    # The kernel completes the handshake for connections in the listen backlog, so the client is
    # connected and waits for a reply without this socket ever calling accept().
    listener = socket.create_server(("127.0.0.1", 0), backlog=4)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/breastmnist_64.npz"
    listener.close()


@pytest.fixture
def closed_url():
    """A local port where nothing listens: connections are refused."""
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}/breastmnist_64.npz"


# --- catalogue -------------------------------------------------------------------------------


def test_catalogue_has_the_single_label_2d_sets():
    expected = {k for k in medmnist.INFO if not k.endswith("3d") and k != "chestmnist"}
    assert set(data.DATASETS) == expected
    assert set(data.BUNDLED) <= set(data.DATASETS)
    breast = data.get_info("breastmnist")
    assert breast.title == "BreastMNIST"
    assert breast.task == "binary-class"
    assert breast.label_names == ("malignant", "normal, benign")
    assert breast.n_classes == 2
    assert breast.training_images() == breast.training_images(None) == 546
    assert breast.training_images(20) == 40 and breast.training_images(1000) == 546
    assert data.get_info("retinamnist").n_channels == 3


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(DataError, match=r"Unknown dataset 'nope'.*pneumoniamnist.*breastmnist"):
        data.get_info("nope")
    with pytest.raises(DataError, match="Unknown dataset"):
        data.dataset_status("chestmnist")


def test_each_kind_of_key_has_one_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "breastmnist").mkdir()  # a folder that bears a MedMNIST name does not hide the set
    assert data.source_of("breastmnist") is data.MEDMNIST_SOURCE
    assert data.source_of(str(tmp_path)) is data.source_of("upload:0123456789abcdef") is folder_data.SOURCE
    assert data.SOURCES == (data.MEDMNIST_SOURCE, folder_data.SOURCE)
    for key in ("nope", "upload:../x", None, ["breastmnist"]):
        with pytest.raises(DataError, match="Unknown dataset"):
            data.source_of(key)
    with pytest.raises(DataError, match="folder of your own images"):
        data.dataset_file(str(tmp_path))


def test_folder_data_needs_nothing_of_hqcnn_data():
    # A fresh interpreter: in this one, hqcnn.data is imported already.
    code = "import sys, hqcnn.folder_data; print('hqcnn.data' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=data.ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_unpublished_size_is_refused():
    with pytest.raises(DataError, match="28, 64, 128, 224"):
        data.dataset_file("breastmnist", 32)


# --- files: bundled, cached, downloaded --------------------------------------------------------


@pytest.mark.parametrize("key", data.BUNDLED)
def test_bundled_sets_load_through_the_real_path(key: str):
    info = data.get_info(key)
    assert data.dataset_status(key) == "bundled"
    path = data.dataset_file(key)
    assert path == ASSETS / f"{key}.npz"
    assert md5(path) == medmnist.INFO[key]["MD5"]

    arrays = data.load_arrays(key)
    assert set(arrays) == {"train", "val", "test"}
    for split, (images, labels) in arrays.items():
        n = info.n_samples[split]
        assert images.shape == ((n, 28, 28) if info.n_channels == 1 else (n, 28, 28, 3))
        assert images.dtype == np.uint8
        assert labels.shape == (n,)
        assert labels.dtype == np.int64
        assert labels.min() >= 0 and labels.max() < info.n_classes
        with pytest.raises(ValueError):
            images[0, 0, 0] = 1
    assert set(np.unique(arrays["train"][1])) == set(range(info.n_classes))


def test_status_cached_and_downloadable(cache: Path, monkeypatch: pytest.MonkeyPatch, closed_url: str):
    assert data.dataset_status("dermamnist") == "downloadable"
    assert data.dataset_status("breastmnist", 64) == "downloadable"

    # Stand-in for a downloaded 64 px file: the bundled bytes under the cache name, with their MD5.
    serve_remote(monkeypatch, closed_url, md5(BREAST))
    cache.mkdir()
    shutil.copy(BREAST, cache / "breastmnist_64.npz")
    assert data.dataset_status("breastmnist", 64) == "cached"
    assert data.dataset_file("breastmnist", 64) == cache / "breastmnist_64.npz"  # no network needed


def test_corrupt_cached_file_is_removed_and_reported(cache: Path, monkeypatch: pytest.MonkeyPatch, closed_url: str):
    serve_remote(monkeypatch, closed_url, md5(BREAST))
    cache.mkdir()
    target = cache / "breastmnist_64.npz"
    flipped_copy(BREAST, target)
    assert data.dataset_status("breastmnist", 64) == "downloadable"
    with pytest.raises(DownloadError, match="was corrupt and has been removed"):
        data.dataset_file("breastmnist", 64, timeout=2)
    assert not target.exists()


def test_corrupt_cached_file_is_fetched_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch, http_root: tuple[Path, str]
):
    folder, base = http_root
    shutil.copy(BREAST, folder / "breastmnist_64.npz")
    serve_remote(monkeypatch, f"{base}/breastmnist_64.npz", md5(BREAST))
    cache.mkdir()
    flipped_copy(BREAST, cache / "breastmnist_64.npz")
    path = data.dataset_file("breastmnist", 64, timeout=2)
    assert md5(path) == md5(BREAST)


def test_corrupt_bundled_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    flipped_copy(BREAST, tmp_path / "breastmnist.npz")
    monkeypatch.setattr(data, "_ASSETS", tmp_path)
    with pytest.raises(DataError, match="bundled file breastmnist.npz is damaged") as raised:
        data.load_arrays("breastmnist")
    assert str(tmp_path) not in str(raised.value)  # no server path in a message the app shows


def _truncated(path: Path) -> None:
    path.write_bytes(BREAST.read_bytes()[:5000])


def _missing_keys(path: Path) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, train_images=np.zeros((2, 64, 64), np.uint8))


def _pickled_objects(path: Path) -> None:
    with open(path, "wb") as handle:
        objects = np.array([{"not": "an image"}], dtype=object)
        np.savez(handle, **{f"{split}_{part}": objects for split in data.SPLITS for part in ("images", "labels")})


def _wrong_resolution(path: Path) -> None:
    shutil.copy(BREAST, path)  # 28 px images where 64 px are expected


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (_truncated, "not a readable BreastMNIST file"),
        (_missing_keys, "not a complete BreastMNIST file: it lacks train_labels, val_images"),
        (_pickled_objects, "not a readable BreastMNIST file"),
        (_wrong_resolution, r"does not look like BreastMNIST: its train split has images of shape \(28, 28\)"),
    ],
)
def test_unreadable_file_gives_a_plain_data_error(
    cache: Path, monkeypatch: pytest.MonkeyPatch, closed_url: str, write, message: str
):
    cache.mkdir()
    target = cache / "breastmnist_64.npz"
    write(target)
    serve_remote(monkeypatch, closed_url, md5(target))  # the checksum passes; the contents do not
    with pytest.raises(DataError, match=message):
        data.load_arrays("breastmnist", 64)


@pytest.mark.parametrize("server", ["silent_url", "closed_url"])
def test_offline_download_fails_fast_and_says_where_to_put_the_file(
    cache: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, server: str
):
    url = request.getfixturevalue(server)
    serve_remote(monkeypatch, url, md5(BREAST))
    start = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        data.dataset_file("breastmnist", 64, timeout=2)
    assert time.monotonic() - start < 10
    message = str(caught.value)
    assert "BreastMNIST" in message
    assert url in message
    # Where to put the file, by name and folder setting: never the server's absolute path, which
    # the app would show to every user of a shared server.
    assert "breastmnist_64.npz in the data folder ($HQCNN_DATA_DIR" in message
    assert str(cache) not in message
    assert list(cache.iterdir()) == []  # neither the final name nor a temporary file


def test_download_verifies_and_reports_progress(
    cache: Path, monkeypatch: pytest.MonkeyPatch, http_root: tuple[Path, str]
):
    folder, base = http_root
    shutil.copy(BREAST, folder / "breastmnist_64.npz")
    serve_remote(monkeypatch, f"{base}/breastmnist_64.npz", md5(BREAST))
    calls: list[tuple[int, int]] = []
    path = data.dataset_file("breastmnist", 64, progress=lambda done, total: calls.append((done, total)))
    assert path == cache / "breastmnist_64.npz"
    assert md5(path) == md5(BREAST)
    size = BREAST.stat().st_size
    assert calls[-1] == (size, size)
    assert all(0 <= done <= total == size for done, total in calls)
    assert data.dataset_status("breastmnist", 64) == "cached"


def test_download_with_wrong_bytes_is_discarded(
    cache: Path, monkeypatch: pytest.MonkeyPatch, http_root: tuple[Path, str]
):
    folder, base = http_root
    flipped_copy(BREAST, folder / "breastmnist_64.npz")
    serve_remote(monkeypatch, f"{base}/breastmnist_64.npz", md5(BREAST))
    with pytest.raises(DownloadError, match="checksum"):
        data.dataset_file("breastmnist", 64, timeout=2)
    assert list(cache.iterdir()) == []


# --- preparation -------------------------------------------------------------------------------


def test_prepare_shapes_types_and_normalisation():
    prepared = data.prepare(DataConfig(dataset="pneumoniamnist"))
    info = prepared.info
    for x, y, split in [
        (prepared.x_train, prepared.y_train, "train"),
        (prepared.x_val, prepared.y_val, "val"),
        (prepared.x_test, prepared.y_test, "test"),
    ]:
        assert x.shape == (info.n_samples[split], 1, 28, 28)
        assert x.dtype == torch.float32
        assert y.shape == (info.n_samples[split],)
        assert y.dtype == torch.int64
    assert prepared.x_train.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert prepared.x_train.std().item() == pytest.approx(1.0, abs=1e-3)
    assert (prepared.n_classes, prepared.in_channels, prepared.image_size) == (2, 1, 28)
    assert np.array_equal(prepared.train_indices, np.arange(info.n_samples["train"]))


@pytest.mark.parametrize("size", [32, 64])
def test_prepare_resizes(size: int):
    prepared = data.prepare(DataConfig(dataset="breastmnist", image_size=size))
    assert prepared.x_test.shape == (156, 1, size, size)
    assert prepared.image_size == size


def test_prepare_rgb_and_grayscale():
    rgb = data.prepare(DataConfig(dataset="retinamnist"))
    assert rgb.in_channels == 3 and len(rgb.mean) == 3
    per_channel = rgb.x_train.mean(dim=(0, 2, 3))
    assert torch.allclose(per_channel, torch.zeros(3), atol=1e-4)
    gray = data.prepare(DataConfig(dataset="retinamnist", grayscale=True))
    assert gray.in_channels == 1 and gray.x_val.shape == (120, 1, 28, 28)


def test_low_data_subset_is_stratified_and_seeded():
    full_labels = data.load_arrays("breastmnist")["train"][1]
    first = data.prepare(DataConfig(dataset="breastmnist", train_per_class=20, seed=0))
    again = data.prepare(DataConfig(dataset="breastmnist", train_per_class=20, seed=0))
    other = data.prepare(DataConfig(dataset="breastmnist", train_per_class=20, seed=1))
    assert first.y_train.bincount().tolist() == [20, 20]
    assert np.all(np.diff(first.train_indices) > 0)
    assert np.array_equal(first.y_train.numpy(), full_labels[first.train_indices])
    assert np.array_equal(first.train_indices, again.train_indices)
    assert torch.equal(first.x_train, again.x_train)
    assert not np.array_equal(first.train_indices, other.train_indices)
    assert first.x_val.shape == (78, 1, 28, 28)  # only training is subsampled

    few = np.array([0, 0, 0, 1, 1, 2])
    picked = data.low_data_indices(few, per_class=2, seed=0)
    assert np.bincount(few[picked]).tolist() == [2, 2, 1]  # a class with fewer images gives all it has
    assert np.array_equal(picked, np.sort(picked))


def test_noise_is_deterministic_and_leaves_statistics_alone():
    clean = data.prepare(DataConfig(dataset="breastmnist"))
    noisy = data.prepare(DataConfig(dataset="breastmnist", noise_std=0.1, seed=3))
    same = data.prepare(DataConfig(dataset="breastmnist", noise_std=0.1, seed=3))
    other = data.prepare(DataConfig(dataset="breastmnist", noise_std=0.1, seed=4))
    assert torch.equal(noisy.x_test, same.x_test)
    assert not torch.equal(noisy.x_test, other.x_test)
    for split in ("x_train", "x_val", "x_test"):
        assert not torch.allclose(getattr(noisy, split), getattr(clean, split))
    assert noisy.mean == clean.mean and noisy.std == clean.std
    display = noisy.to_display(noisy.x_val)
    assert display.min() >= 0.0 and display.max() <= 1.0


def test_to_display_inverts_normalisation_and_matches_preprocess():
    cfg = DataConfig(dataset="retinamnist")
    prepared = data.prepare(cfg)
    raw = data.load_arrays("retinamnist")["test"][0]
    shown = prepared.to_display(prepared.x_test[:5])
    assert shown.shape == (5, 28, 28, 3)
    assert np.allclose(shown, raw[:5] / 255.0, atol=1e-5)
    # The path used for uploaded images gives exactly what the model saw in training.
    again = data.preprocess(raw[:5], cfg, prepared.mean, prepared.std)
    assert torch.allclose(again, prepared.x_test[:5], atol=1e-6)


def test_noise_functions():
    x = torch.full((4, 3, 16, 16), 0.5)
    gauss = data.add_gaussian_noise(x, 0.2, seed=0)
    assert torch.equal(gauss, data.add_gaussian_noise(x, 0.2, seed=0))
    assert not torch.equal(gauss, data.add_gaussian_noise(x, 0.2, seed=1))
    assert gauss.min() >= 0 and gauss.max() <= 1 and gauss.std() > 0.1

    salted = data.add_salt_pepper(x, 0.3, seed=0)
    assert torch.equal(salted, data.add_salt_pepper(x, 0.3, seed=0))
    changed = (salted != 0.5).any(dim=1)  # a pixel changes in all channels at once
    assert ((salted == 0) | (salted == 1) | (salted == 0.5)).all()
    assert torch.equal((salted != 0.5).all(dim=1), changed)
    assert changed.float().mean().item() == pytest.approx(0.3, abs=0.05)
    assert torch.equal(x, torch.full((4, 3, 16, 16), 0.5))  # inputs untouched


def test_retinamnist_classes_are_named_by_retinopathy_grade():
    names = data.get_info("retinamnist").label_names
    assert len(names) == len(medmnist.INFO["retinamnist"]["label"]) == 5
    assert names[0] == "grade 0: no retinopathy" and names[4] == "grade 4: proliferative"
    assert data.get_info("pneumoniamnist").label_names == ("normal", "pneumonia")  # MedMNIST's own names
