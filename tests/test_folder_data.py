"""Your own images: class folders and zips built here from the bundled MedMNIST images.

Covers reading and caching, the stratified fixed-seed split, split folders, every bad case with its
message (empty, one class, too few, skipped files, limits, hostile zips), training end to end and
the command line.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hqcnn import checkpoint
from hqcnn import folder_data as fd
from hqcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from hqcnn.data import dataset_status, get_info, load_arrays, prepare, prepare_split
from hqcnn.datasets_base import ModelMeta
from hqcnn.errors import DataError
from hqcnn.example_folder import export_example

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def cache(folder_cache: Path) -> Path:
    """Every test here gets a private cache folder (see conftest.folder_cache)."""
    return folder_cache


def medmnist_images(key: str = "breastmnist", n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_arrays(key, 28)["train"]
    return images[:n], labels[:n]


def png(array: np.ndarray, mode: str | None = None, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    img = Image.fromarray(array)
    if mode:
        img = img.convert(mode)
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def make_folder(root: Path, counts: dict[str, int], offset: int = 0) -> Path:
    """Class folders of gray 28 px PNGs taken from BreastMNIST, `counts[class]` images each."""
    images, _ = medmnist_images(n=sum(counts.values()) + offset)
    i = offset
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for j in range(n):
            (root / name / f"img_{j:03d}.png").write_bytes(png(images[i]))
            i += 1
    return root


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, blob in members.items():
            archive.writestr(name, blob)
    return buffer.getvalue()


def zip_of(folder: Path, prefix: str = "") -> dict[str, bytes]:
    return {prefix + p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def per_class(labels: np.ndarray, n_classes: int) -> list[int]:
    return np.bincount(labels, minlength=n_classes).tolist()


# --- reading, caching, splitting ---------------------------------------------------------------


def test_exported_example_loads_like_a_medmnist_set(tmp_path):
    folder = export_example("breastmnist", 30, tmp_path / "breast_folder")
    assert sorted(p.name for p in folder.iterdir()) == ["malignant", "normal, benign"]
    assert all(len(list(p.iterdir())) == 30 for p in folder.iterdir())
    key = str(folder)
    info = get_info(key)
    assert info.key == key and info.title == "breast_folder" and info.license == "user-provided"
    assert info.task == "binary-class" and info.label_names == ("malignant", "normal, benign")
    assert info.n_channels == 1 and info.n_samples == {"train": 48, "val": 6, "test": 6}
    assert key in info.description and "80% training" in info.description
    assert dataset_status(key) == "folder"
    arrays = load_arrays(key, 224)  # the size is ignored for folders: they are stored at one size
    images = np.concatenate([arrays[s][0] for s in ("train", "val", "test")])
    assert images.dtype == np.uint8 and images.shape == (60, 28, 28)
    assert not any(a.flags.writeable for pair in arrays.values() for a in pair)
    # 28 px gray PNGs are stored exactly as they were (no resizing, no colour round trip).
    original, _ = load_arrays("breastmnist", 28)["train"]
    originals = {img.tobytes() for img in original}
    assert all(img.tobytes() in originals for img in images)


def test_split_is_stratified_fixed_and_independent_of_the_training_seed(tmp_path):
    folder = make_folder(tmp_path / "set", {"a": 10, "b": 23, "c": 3})
    first = fd.load(str(folder))
    counts = {s: per_class(first.arrays[s][1], 3) for s in ("train", "val", "test")}
    assert counts == {"train": [8, 19, 1], "val": [1, 2, 1], "test": [1, 2, 1]}
    assert "fixed split seed 0" in first.report.split_rule

    # Read again from scratch (memory and disk cache gone): the very same split.
    fd.clear_memory()
    for cached in (fd.folders_root() / "cache").glob("*.npz"):
        cached.unlink()
    again = fd.load(str(folder))
    for split in ("train", "val", "test"):
        assert np.array_equal(first.arrays[split][0], again.arrays[split][0])
        assert np.array_equal(first.arrays[split][1], again.arrays[split][1])

    # The training seed changes the low-data subset and noise, never which images are test images.
    y0 = prepare(DataConfig(dataset=str(folder), seed=0)).y_test
    y7 = prepare(DataConfig(dataset=str(folder), seed=7, train_per_class=2)).y_test
    assert torch.equal(y0, y7)

    # Adding a class leaves the split of the others alone.
    make_folder(folder, {"d": 5}, offset=40)
    fd.clear_memory()
    grown = fd.load(str(folder))
    old_test = first.arrays["test"][0][first.arrays["test"][1] == 0]
    new_test = grown.arrays["test"][0][grown.arrays["test"][1] == 0]
    assert np.array_equal(old_test, new_test)


def test_second_load_uses_the_cache_and_a_changed_folder_is_read_again(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "set", {"a": 5, "b": 5})
    assert not fd.is_cached(str(folder))
    fd.load(str(folder))
    assert fd.is_cached(str(folder))
    files = list((fd.folders_root() / "cache").glob("*.npz"))
    assert len(files) == 1
    fd.clear_memory()

    def no_decoding(*args, **kwargs):
        raise AssertionError("images were decoded again")

    decode_all = fd.store._decode_all
    monkeypatch.setattr(fd.store, "_decode_all", no_decoding)
    assert fd.load(str(folder)).info.n_samples == {"train": 6, "val": 2, "test": 2}  # from the .npz alone
    monkeypatch.setattr(fd.store, "_decode_all", decode_all)

    make_folder(folder, {"c": 4}, offset=20)
    assert not fd.is_cached(str(folder))
    assert fd.load(str(folder)).info.n_classes == 3
    assert [p.name != files[0].name for p in (fd.folders_root() / "cache").glob("*.npz")] == [True]


def test_a_damaged_cache_file_is_read_again(tmp_path):
    folder = make_folder(tmp_path / "set", {"a": 4, "b": 4})
    expected = fd.load(str(folder)).arrays["test"][1]
    fd.clear_memory()
    (cached,) = (fd.folders_root() / "cache").glob("*.npz")
    cached.write_bytes(b"PK\x03\x04 not really a zip")
    assert np.array_equal(fd.load(str(folder)).arrays["test"][1], expected)


def test_split_folders_are_used_and_a_missing_val_is_taken_from_train(tmp_path):
    root = tmp_path / "kaggle"
    make_folder(root / "Training", {"glioma": 12, "notumor": 10})
    make_folder(root / "Testing", {"glioma": 3, "notumor": 2}, offset=30)
    data = fd.load(str(root))
    assert data.info.label_names == ("glioma", "notumor")
    counts = {s: per_class(data.arrays[s][1], 2) for s in ("train", "val", "test")}
    assert counts == {"train": [11, 9], "val": [1, 1], "test": [3, 2]}
    assert (
        "Training/" in data.report.split_rule and "validation images taken out of Training/" in data.report.split_rule
    )

    full = tmp_path / "full"
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        make_folder(full / split, {"x": n, "y": n})
    counts = {s: len(a[1]) for s, a in fd.load(str(full)).arrays.items()}
    assert counts == {"train": 8, "val": 4, "test": 6}


def test_mixed_sizes_and_modes_are_handled(tmp_path):
    images, _ = medmnist_images(n=12)
    big = np.kron(images[0], np.ones((7, 5), dtype=np.uint8))  # 196 × 140, not square
    rgba = np.dstack([images[1]] * 3 + [np.full_like(images[1], 255)])
    files = {
        "a/big.png": png(big),
        "a/rgba.png": png(rgba),
        "a/palette.png": png(images[2], mode="P"),
        "a/sixteen.png": png(images[3].astype(np.uint16) * 257),
        "a/gray_as_rgb.jpg": png(np.dstack([images[4]] * 3), fmt="JPEG", quality=95),
        "b/one_bit.png": png(images[5], mode="1"),
        "b/small.jpeg": png(images[6][:20, :20], fmt="JPEG"),
        "b/wide.png": png(np.hstack([images[7], images[8]])),
        "b/UPPER.PNG": png(images[9]),
    }
    for name, blob in files.items():
        (tmp_path / "set" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "set" / name).write_bytes(blob)
    data = fd.load(str(tmp_path / "set"))
    assert data.info.n_channels == 1  # every image is gray, the RGB(A) ones included
    assert data.report.stored_size == 128 and not data.report.skipped  # the largest is 140 px wide
    assert all(a[0].shape[1:] == (128, 128) for a in data.arrays.values())

    # One colour image makes the set RGB; the grayscale option converts it back.
    colour = np.dstack([images[10], np.zeros_like(images[10]), 255 - images[10]])
    (tmp_path / "set" / "b" / "colour.png").write_bytes(png(colour))
    data = fd.load(str(tmp_path / "set"))
    assert data.info.n_channels == 3 and data.arrays["train"][0].shape[1:] == (128, 128, 3)
    prepared = prepare(DataConfig(dataset=str(tmp_path / "set"), image_size=32, grayscale=True))
    assert prepared.x_train.shape[1:] == (1, 32, 32)


def test_non_images_are_skipped_and_listed_hidden_files_ignored(tmp_path):
    folder = make_folder(tmp_path / "set", {"normal": 4, "pneumonia": 4})
    (folder / "normal" / "notes.txt").write_text("not an image")
    (folder / "normal" / "fake.png").write_bytes(b"GIF89a fake")
    (folder / "pneumonia" / "scan.dcm").write_bytes(b"\0" * 200)
    good = (folder / "pneumonia" / "img_000.png").read_bytes()
    (folder / "pneumonia" / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "README.md").write_text("top-level file")
    (folder / ".DS_Store").write_bytes(b"\0\0")
    (folder / "normal" / "._img_000.png").write_bytes(b"apple double")
    (folder / "__MACOSX" / "normal").mkdir(parents=True)
    (folder / "__MACOSX" / "normal" / "x.png").write_bytes(b"junk")
    data = fd.load(str(folder))
    assert sum(data.info.n_samples.values()) == 8
    assert {s.path for s in data.report.skipped} == {
        "README.md",
        "normal/notes.txt",
        "normal/fake.png",
        "pneumonia/scan.dcm",
        "pneumonia/truncated.png",
    }
    message = data.report.skipped_message()
    assert message.startswith("5 files were skipped") and "normal/notes.txt (not a PNG, JPEG or DICOM image)" in message
    assert "DICOM" in message and "damaged or incomplete" in message
    assert "5 file(s) skipped" in data.info.description

    for i in range(12):
        (folder / "normal" / f"junk_{i:02d}.txt").write_text("x")
    message = fd.load(str(folder)).report.skipped_message()
    assert message.startswith("17 files were skipped") and message.endswith("; and 7 more.")


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({}, "holds no class folders"),
        ({"normal": 0, "pneumonia": 0}, "hold no images"),
        ({"normal": 5}, "only one class with images ('normal')"),
        ({"normal": 5, "pneumonia": 2}, "Class 'pneumonia' has 2 readable image(s); each class needs at least 3"),
        ({"normal": 5, "pneumonia": 5, "empty": 0}, "Class folder 'empty' holds no readable images"),
    ],
)
def test_bad_folders_have_clear_messages(tmp_path, layout, message):
    folder = tmp_path / "set"
    folder.mkdir()
    for name, n in layout.items():
        (folder / name).mkdir()
        make_folder(folder, {name: n})
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        get_info(str(folder))


def test_folders_of_only_unreadable_files_and_missing_paths(tmp_path):
    folder = tmp_path / "set"
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        (folder / name / "x.txt").write_text("text")
    with pytest.raises(DataError, match=r"None of the 2 files .* readable PNG, JPEG or DICOM.*a/x.txt"):
        get_info(str(folder))
    with pytest.raises(DataError, match="does not exist"):
        get_info(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="is a file, not a folder"):
        get_info(str(folder / "a" / "x.txt"))
    with pytest.raises(DataError, match="Unknown dataset 'nosuchmnist'.*folder of your own images"):
        get_info("nosuchmnist")


def test_file_labels_of_dataset_keys_hold_no_path():
    assert fd.file_label("breastmnist") == "breastmnist"
    assert fd.file_label("/home/ann/My X-rays (2024)") == "My_X-rays_2024"
    assert fd.file_label("../..") == "images" and "/" not in fd.file_label("C:\\data\\mri")


def test_split_folder_mistakes(tmp_path):
    only_test = make_folder(tmp_path / "t" / "test", {"a": 3, "b": 3}).parent
    with pytest.raises(DataError, match="no train/ folder"):
        get_info(str(only_test))
    mixed = make_folder(tmp_path / "m" / "train", {"a": 3, "b": 3}).parent
    make_folder(mixed, {"extra": 3})
    with pytest.raises(DataError, match=r"mixes split folders .* \(extra\)"):
        get_info(str(mixed))
    missing = make_folder(tmp_path / "v" / "train", {"a": 5, "b": 5}).parent
    make_folder(missing / "val", {"a": 2})
    with pytest.raises(DataError, match="Class 'b' has no readable images in val/"):
        get_info(str(missing))


def test_limits_on_images_pixels_and_classes(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "set", {"a": 4, "b": 4})
    monkeypatch.setattr(fd.scan, "MAX_IMAGES", 7)
    with pytest.raises(DataError, match="more than 7 files.*limit is 7 images"):
        get_info(str(folder))
    monkeypatch.setattr(fd.scan, "MAX_IMAGES", 20_000)
    monkeypatch.setattr(fd.store, "MAX_TOTAL_PIXELS", 28 * 28 * 3)
    with pytest.raises(DataError, match=r"hold more than .* billion pixels in all \(the limit\)"):
        get_info(str(folder))
    monkeypatch.setattr(fd.store, "MAX_TOTAL_PIXELS", 2_000_000_000)
    monkeypatch.setattr(fd.scan, "MAX_CLASSES", 1)
    with pytest.raises(DataError, match="2 class folders; the limit is 1"):
        get_info(str(folder))
    assert "20,000 images" in fd.LIMITS and "200 MB" in fd.LIMITS and "1 GB" in fd.LIMITS


# --- zip archives --------------------------------------------------------------------------------


def test_a_zip_of_a_folder_is_unpacked_once_and_maps_to_one_key(tmp_path):
    folder = make_folder(tmp_path / "xrays", {"normal": 4, "pneumonia": 4})
    members = zip_of(folder, "xrays/")
    members["__MACOSX/xrays/._normal"] = b"resource fork"
    members["xrays/.DS_Store"] = b"\0"
    blob = zip_bytes(members)
    key = fd.extract_zip(blob, "My X-rays.zip")
    assert key == "upload:" + hashlib.sha256(blob).hexdigest()[:16] and fd.is_upload_key(key)
    stored = fd.folders_root() / key.removeprefix("upload:") / "images"  # the pictures, re-encoded
    assert sorted(p.relative_to(stored).as_posix() for p in stored.rglob("*.png"))[:2] == [
        "normal/00001.png",
        "normal/00002.png",
    ]
    assert not list(fd.folders_root().rglob("__MACOSX")) and not list(fd.folders_root().rglob(".DS_Store"))
    assert fd.extract_zip(blob, "renamed.zip") == key  # same content, same dataset
    assert get_info(key).label_names == ("normal", "pneumonia") and get_info(key).title == "xrays"
    assert get_info(key).key == key and fd.title(key) == "xrays" and fd.file_label(key) == "xrays"

    flat = fd.extract_zip(zip_bytes(zip_of(folder)), "flat set.zip")  # class folders at the top
    assert fd.title(flat) == "flat set" and get_info(flat).n_classes == 2


def assert_nothing_unpacked(cache: Path) -> None:
    root = cache / "folders"  # the upload store's lock file may be there
    assert not root.exists() or not [p for p in root.rglob("*") if p.is_file() and p != root / ".lock"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../evil.png", "climbs out of its folder"),
        ("set/a/../../../evil.png", "climbs out of its folder"),
        ("..\\evil.png", "climbs out of its folder"),
        ("/etc/evil.png", "absolute path"),
        ("C:/Windows/evil.png", "absolute path"),
    ],
)
def test_zip_paths_that_leave_the_folder_are_refused(tmp_path, cache, name, message):
    members = zip_of(make_folder(tmp_path / "set", {"a": 3, "b": 3}))
    members[name] = b"payload"
    with pytest.raises(DataError, match=message):
        fd.extract_zip(zip_bytes(members))
    assert_nothing_unpacked(cache)
    assert not (tmp_path / "evil.png").exists() and not (cache / "evil.png").exists()


def test_zip_symlinks_and_passwords_are_refused(tmp_path, cache):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a/x.png", b"x")
        link = zipfile.ZipInfo("a/link.png")
        link.create_system = 3
        link.external_attr = (0o120777 << 16) | 0x20
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(DataError, match="symbolic link"):
        fd.extract_zip(buffer.getvalue())

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a/x.png", b"x")
    raw = bytearray(buffer.getvalue())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the 'encrypted' flag
        at = raw.find(signature)
        raw[at + offset] |= 0x1
    with pytest.raises(DataError, match="password-protected"):
        fd.extract_zip(bytes(raw))
    assert_nothing_unpacked(cache)


def test_zip_bombs_and_size_limits_are_refused_before_unpacking(tmp_path, cache, monkeypatch):
    bomb = zip_bytes({"a/zeros.png": bytes(50 * 2**20), "b/x.png": b"x"})
    assert len(bomb) < 2**20
    with pytest.raises(DataError, match=r"zip bomb.*more than 100× its packed size"):
        fd.extract_zip(bomb)
    assert_nothing_unpacked(cache)

    many_small = zip_bytes({f"a/{i}.txt": bytes(100_000) for i in range(30)})  # each too small to judge
    with pytest.raises(DataError, match=r"zip bomb.*more than 100× its size"):
        fd.extract_zip(many_small)

    members = zip_bytes(zip_of(make_folder(tmp_path / "set", {"a": 3, "b": 3})), zipfile.ZIP_STORED)
    monkeypatch.setattr(fd.zips, "MAX_UNCOMPRESSED", 1000)
    with pytest.raises(DataError, match="unpack to 0.0 GB; the limit is"):
        fd.extract_zip(members)
    monkeypatch.setattr(fd.zips, "MAX_UNCOMPRESSED", 2**30)
    monkeypatch.setattr(fd.zips, "MAX_ZIP_ENTRIES", 5)
    with pytest.raises(DataError, match="lists 6 files and folders; the limit is 5"):
        fd.extract_zip(members)
    monkeypatch.setattr(fd.zips, "MAX_ZIP_ENTRIES", 40_000)
    monkeypatch.setattr(fd.zips, "MAX_ZIP_BYTES", 100)
    with pytest.raises(DataError, match=r"MB; the limit is 0 MB"):
        fd.extract_zip(members)
    assert_nothing_unpacked(cache)


def test_damaged_and_foreign_archives(tmp_path, cache):
    with pytest.raises(DataError, match="not a readable .zip"):
        fd.extract_zip(b"this is not a zip at all")
    with pytest.raises(DataError, match="empty"):
        fd.extract_zip(b"")
    with pytest.raises(DataError, match="holds no files"):
        fd.extract_zip(zip_bytes({"__MACOSX/x": b"1", ".hidden": b"2"}))
    stored = bytearray(zip_bytes({"a/x.png": b"A" * 1000, "b/y.png": b"B" * 1000}, zipfile.ZIP_STORED))
    at = stored.find(b"A" * 1000)
    stored[at + 500] = ord("Z")  # the CRC no longer matches
    with pytest.raises(DataError, match="could not be unpacked.*damaged"):
        fd.extract_zip(bytes(stored))
    assert_nothing_unpacked(cache)


# --- training, checkpoints, command line -----------------------------------------------------------


def test_training_end_to_end_on_a_folder(tmp_path):
    from hqcnn.train import run

    torch.set_num_threads(1)
    folder = make_folder(tmp_path / "set", {"benign": 20, "malignant": 20})
    config = RunConfig(
        data=DataConfig(dataset=str(folder), image_size=32),
        model=ModelConfig(n_qubits=2, depth=1, n_features=4),
        train=TrainConfig(epochs=2, batch_size=16, device="cpu"),
    )
    outcome = run(config)
    assert outcome.test["n"] == 4 and 0 <= outcome.test["accuracy"] <= 1
    meta = ModelMeta.from_data(outcome.data)
    assert meta.dataset == str(folder) and meta.label_names == ("benign", "malignant") and meta.in_channels == 1
    saved = checkpoint.from_zip(checkpoint.to_zip(outcome.result.model, config, meta, outcome.metrics_json()))
    x_test, y_test = prepare_split(saved.config.data, "test", saved.meta.mean, saved.meta.std)
    assert torch.equal(x_test, outcome.data.x_test) and torch.equal(y_test, outcome.data.y_test)


@pytest.mark.slow
def test_cli_exports_an_example_and_trains_on_a_relative_folder(tmp_path, cache):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HQCNN_DATA_DIR": str(cache)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "hqcnn", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    done = cli("export-example", "--dataset", "breastmnist", "--per-class", "12", "--out", "example")
    assert done.returncode == 0, done.stderr
    assert "train on it with" in done.stdout
    with pytest.raises(DataError, match="not an empty folder"):
        export_example("breastmnist", 5, tmp_path / "example")

    out = tmp_path / "run"
    args = ["--qubits", "2", "--depth", "1", "--epochs", "1", "--batch-size", "8", "--out", str(out), "--quiet"]
    trained = cli("train", "--dataset", "example", *args)
    assert trained.returncode == 0, trained.stderr
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"]["data"]["dataset"] == str((tmp_path / "example").resolve())
    assert saved["meta"]["label_names"] == ["malignant", "normal, benign"]
