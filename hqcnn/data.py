"""Datasets: the MedMNIST catalogue and its verified files, one lookup for every kind of dataset key,
and the prepared tensors the models see.

Three small sets ship with the project (assets/medmnist/); every other 2D MedMNIST set and size is
downloaded on demand into a cache folder and checked against the MD5 that medmnist publishes.
Arrays are read through medmnist's own dataset classes, never with pickle allowed.

A dataset key that is a folder path or an upload key ("upload:<16 hex digits>", an uploaded .zip)
instead of a MedMNIST name is the user's own images, one sub-folder per class (see
hqcnn.folder_data): `get_info`, `dataset_status`, `load_arrays`, `prepare` and `prepare_split`
accept it alike. Each kind of key has its entry in SOURCES, and `source_of` finds a key's entry.
A folder has one stored resolution, so the size / `DataConfig.source_size` argument is ignored for
it; `preprocess` (hqcnn.preprocessing) resizes to `image_size` as usual.
"""

from __future__ import annotations

import functools
import hashlib
import socket
import threading
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import medmnist
import numpy as np
import pooch
import requests
import torch
from medmnist.dataset import MedMNIST2D

from hqcnn import folder_data
from hqcnn.config import SOURCE_SIZES, DataConfig
from hqcnn.datasets_base import DATA_DIR_NAME, SPLITS, Arrays, DatasetInfo, DataSource, Progress, data_dir
from hqcnn.errors import ConfigError, DataError, DownloadError
from hqcnn.preprocessing import (
    add_gaussian_noise,
    add_salt_pepper,
    noise_and_normalise,
    preprocess,
    split_seed,
    to_unit_range,
)

# The public API. The preprocessing and the shared types live in hqcnn.preprocessing and
# hqcnn.datasets_base; they are named here too, so that callers need only this module.
__all__ = [
    "BUNDLED",
    "CLASS_NAMES",
    "DATASETS",
    "DATA_DIR_NAME",
    "MEDMNIST_SOURCE",
    "ROOT",
    "SOURCES",
    "SPLITS",
    "Arrays",
    "DataSource",
    "DatasetInfo",
    "PreparedData",
    "Progress",
    "add_gaussian_noise",
    "add_salt_pepper",
    "cache_dir",
    "dataset_file",
    "dataset_status",
    "get_info",
    "load_arrays",
    "low_data_indices",
    "prepare",
    "prepare_split",
    "preprocess",
    "source_of",
    "split_seed",
    "to_unit_range",
]

ROOT = Path(__file__).resolve().parent.parent
_ASSETS = ROOT / "assets" / "medmnist"
BUNDLED = ("pneumoniamnist", "breastmnist", "retinamnist")  # 28 px files shipped in assets/medmnist/
_DOWNLOAD_TIMEOUT = 10.0  # seconds for the name lookup, the connection and every read


# MedMNIST names RetinaMNIST's classes by number only; they are the five grades of diabetic
# retinopathy on the international clinical scale (DeepDRiD, the source of RetinaMNIST).
CLASS_NAMES = {
    "retinamnist": (
        "grade 0: no retinopathy",
        "grade 1: mild",
        "grade 2: moderate",
        "grade 3: severe",
        "grade 4: proliferative",
    ),
}


def _catalogue() -> dict[str, DatasetInfo]:
    sets = {}
    for key, entry in medmnist.INFO.items():
        # The classifier predicts one label per image and takes 2D input, so the 3D volumes and the
        # multi-label ChestMNIST (several findings per X-ray) are left out.
        if not issubclass(getattr(medmnist, entry["python_class"]), MedMNIST2D):
            continue
        if entry["task"].startswith("multi-label"):
            continue
        labels = sorted(entry["label"].items(), key=lambda item: int(item[0]))
        sets[key] = DatasetInfo(
            key=key,
            title=entry["python_class"],
            task=entry["task"],
            label_names=CLASS_NAMES.get(key, tuple(name for _, name in labels)),
            n_channels=int(entry["n_channels"]),
            n_samples={split: int(entry["n_samples"][split]) for split in SPLITS},
            description=entry["description"],
            license=entry["license"],
        )
    return sets


DATASETS: dict[str, DatasetInfo] = _catalogue()


def _check_size(info: DatasetInfo, size: int) -> None:
    if size not in SOURCE_SIZES:
        sizes = ", ".join(str(s) for s in SOURCE_SIZES)
        raise DataError(f"{info.title} is published at {sizes} pixels, not at {size!r}.")


def _file_name(key: str, size: int) -> str:
    # medmnist's dataset classes look for exactly this name inside their root folder.
    return f"{key}.npz" if size == 28 else f"{key}_{size}.npz"


def _remote(key: str, size: int) -> tuple[str, str]:
    """URL and MD5 of a dataset file, as published in medmnist.INFO."""
    suffix = "" if size == 28 else f"_{size}"
    entry = medmnist.INFO[key]
    return entry[f"url{suffix}"], entry[f"MD5{suffix}"]


def _where(path: str | Path) -> str:
    """A data file as messages name it: by its name and folder, never by the server's absolute path
    (the app shows these messages to every user of a shared server)."""
    path = Path(path)
    if path.parent == _ASSETS:
        return f"the bundled file {path.name}"
    if path.parent == data_dir():
        return f"{path.name} in {DATA_DIR_NAME}"
    return path.name


def cache_dir() -> Path:
    """Folder of downloaded datasets: $HQCNN_DATA_DIR if set, else ~/.cache/hqcnn/medmnist (created)."""
    path = data_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"Cannot create {DATA_DIR_NAME}: {err.strerror or type(err).__name__}.") from err
    return path


def _bundled_file(key: str, size: int) -> Path | None:
    if key not in BUNDLED or size != 28:
        return None
    path = _ASSETS / _file_name(key, size)
    return path if path.is_file() else None


@functools.lru_cache(maxsize=64)
def _md5_of(path: str, stamp: tuple[int, int, int]) -> str:
    """MD5 of a file. `stamp` (inode, size, mtime) is only a cache key: an edited file is hashed anew."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _md5_matches(path: Path, md5: str) -> bool:
    # Re-hashing large files on every app rerun would be slow, hence the in-process cache.
    stat = path.stat()
    return _md5_of(str(path), (stat.st_ino, stat.st_size, stat.st_mtime_ns)) == md5.lower()


def _medmnist_status(key: str, size: int) -> str:
    """Where a MedMNIST file would come from (see `dataset_status`)."""
    _check_size(DATASETS[key], size)
    if _bundled_file(key, size) is not None:
        return "bundled"
    cached = data_dir() / _file_name(key, size)
    if cached.is_file() and _md5_matches(cached, _remote(key, size)[1]):
        return "cached"
    return "downloadable"


class _ProgressAdapter:
    """Stands in for the tqdm bar pooch's HTTPDownloader drives, forwarding bytes to a callback."""

    def __init__(self, callback: Progress) -> None:
        self.callback = callback
        self.total = 0  # set by pooch from Content-Length; stays 0 when the server does not say
        self.done = 0

    def update(self, n: int) -> None:
        # pooch counts whole chunks, so the last one can overshoot the real size.
        self.done += n
        self.callback(min(self.done, self.total) if self.total else self.done, self.total)

    def reset(self) -> None:
        self.done = 0

    def close(self) -> None:
        """Nothing to release; pooch calls it on a real bar."""


def _wait_for_dns(url: str, timeout: float) -> None:
    """Raise TimeoutError if the server's name cannot be looked up within `timeout` seconds.

    requests bounds connecting and reading but not the DNS lookup, which on a dead network can
    stall far longer. Behind a proxy the proxy resolves the name, so nothing is checked.
    """
    host = urlsplit(url).hostname
    if not host or requests.utils.get_environ_proxies(url):
        return

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, None)
        except OSError:
            pass  # requests meets the same failure and reports it

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"looking up {host} took more than {timeout:g} s")


def _fetch(url: str, md5: str, target: Path, progress: Progress | None, timeout: float) -> Path:
    """Download `url` to `target` with pooch; returns the path or raises the underlying error.

    pooch streams into a temporary file in the same folder and moves it to `target` only once the
    MD5 matches (deleting it otherwise), so a partial or wrong download never sits under `target`.
    """
    _wait_for_dns(url, timeout)
    downloader = pooch.HTTPDownloader(
        timeout=(timeout, timeout),  # connect, then each read
        progressbar=_ProgressAdapter(progress) if progress else False,
    )
    fetched = pooch.retrieve(url, known_hash=f"md5:{md5}", fname=target.name, path=target.parent, downloader=downloader)
    return Path(fetched)


def _download_failure(err: Exception, timeout: float) -> str:
    if isinstance(err, (requests.Timeout, TimeoutError)):
        return f"the server did not answer within {timeout:g} seconds (are you offline?)"
    if isinstance(err, requests.HTTPError) and err.response is not None:
        return f"the server answered with HTTP error {err.response.status_code}"
    if isinstance(err, requests.ConnectionError):
        return "could not connect to the server (are you offline?)"
    if isinstance(err, requests.RequestException):
        return f"the download failed ({type(err).__name__})"
    if isinstance(err, ValueError):
        return "the downloaded file did not match its expected MD5 checksum, so it was discarded"
    return f"the file could not be saved ({err})"


def _medmnist_file(key: str, size: int, progress: Progress | None, timeout: float) -> Path:
    """The verified file of a MedMNIST set (see `dataset_file`)."""
    info = DATASETS[key]
    _check_size(info, size)
    url, md5 = _remote(key, size)

    bundled = _bundled_file(key, size)
    if bundled is not None:
        if not _md5_matches(bundled, md5):
            raise DataError(
                f"{_where(bundled).capitalize()} is damaged (its MD5 checksum does not match). "
                "Restore it from a fresh copy of HQCNN Explorer."
            )
        return bundled

    target = cache_dir() / _file_name(key, size)
    corrupt_note = ""
    if target.is_file():
        if _md5_matches(target, md5):
            return target
        target.unlink()
        corrupt_note = f" The cached copy, {_where(target)}, was corrupt and has been removed."

    try:
        return _fetch(url, md5, target, progress, timeout)
    except (requests.RequestException, TimeoutError, ValueError, OSError) as err:
        raise DownloadError(
            f"Could not download {info.title} ({size} px) from {url}: "
            f"{_download_failure(err, timeout)}.{corrupt_note} "
            f"To install it by hand, download that file and save it as {_where(target)} (MD5 {md5})."
        ) from err


# Everything a damaged or foreign .npz can raise while numpy (or zlib inside it) parses it.
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)


def _unreadable(info: DatasetInfo, path: str, err: Exception) -> DataError:
    return DataError(
        f"{_where(path)} is not a readable {info.title} file ({type(err).__name__}). "
        "Delete it and load the dataset again to fetch a fresh copy."
    )


def _check_archive(info: DatasetInfo, path: str) -> None:
    """DataError unless `path` is a zip holding every split.

    Checked here first because numpy leaves the file open when it fails on a broken archive.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile) as err:
        raise _unreadable(info, path, err) from err
    missing = [f"{split}_{part}" for split in SPLITS for part in ("images", "labels")]
    missing = [name for name in missing if f"{name}.npy" not in names]
    if missing:
        raise DataError(f"{_where(path)} is not a complete {info.title} file: it lacks {', '.join(missing)}.")


@functools.lru_cache(maxsize=4)
def _read_arrays(key: str, size: int, path: str, md5: str) -> Arrays:
    """Arrays of a verified file; `md5` is part of the cache key because it fixes the contents."""
    info = DATASETS[key]
    _check_archive(info, path)
    dataset_class = getattr(medmnist, info.title)
    out = {}
    for split in SPLITS:
        try:
            # medmnist calls np.load without allow_pickle, i.e. with pickle refused.
            dataset = dataset_class(split=split, download=False, root=str(Path(path).parent), size=size)
        except _UNREADABLE as err:
            raise _unreadable(info, path, err) from err
        out[split] = _checked_split(info, size, path, split, dataset.imgs, dataset.labels)
    return out


def _checked_split(
    info: DatasetInfo, size: int, path: str, split: str, images: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Read-only uint8 images and int64 labels, or DataError if the file holds something else."""
    image_shape = (size, size) if info.n_channels == 1 else (size, size, 3)
    problem = None
    if images.dtype != np.uint8 or images.shape[1:] != image_shape:
        problem = f"images of shape {images.shape[1:]} and type {images.dtype}, expected {image_shape} uint8"
    elif labels.size != len(images) or not np.issubdtype(labels.dtype, np.integer):
        problem = f"{labels.size} labels of type {labels.dtype} for {len(images)} images"
    elif labels.size and not 0 <= labels.min() <= labels.max() < info.n_classes:
        problem = f"labels outside 0..{info.n_classes - 1}"
    if problem:
        raise DataError(f"{_where(path)} does not look like {info.title}: its {split} split has {problem}.")
    images = np.ascontiguousarray(images)
    labels = labels.reshape(-1).astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _medmnist_arrays(key: str, size: int, progress: Progress | None) -> Arrays:
    """The arrays of a MedMNIST set, fetching its file first if needed (see `dataset_file`)."""
    path = _medmnist_file(key, size, progress, _DOWNLOAD_TIMEOUT)
    return _read_arrays(key, size, str(path), _remote(key, size)[1])


MEDMNIST_SOURCE = DataSource(
    claims=lambda key: isinstance(key, str) and key in DATASETS,
    info=lambda key: DATASETS[key],
    status=_medmnist_status,
    file=_medmnist_file,
    arrays=_medmnist_arrays,
)

# MedMNIST is asked first, so that a folder that happens to bear a MedMNIST name never hides the set.
SOURCES: tuple[DataSource, ...] = (MEDMNIST_SOURCE, folder_data.SOURCE)


def source_of(key: object) -> DataSource:
    """The entry of SOURCES that reads `key`; DataError naming the valid keys if none does."""
    for source in SOURCES:
        if source.claims(key):
            return source
    raise DataError(
        f"Unknown dataset {key!r}. Choose one of: {', '.join(DATASETS)}, or give the path of a folder "
        "of your own images (one sub-folder per class)."
    )


def get_info(key: str) -> DatasetInfo:
    """The catalogue entry of a dataset; DataError naming the valid keys for an unknown one.

    For a folder of the user's own images the entry is built from the folder (read on first use).
    """
    return source_of(key).info(key)


def dataset_status(key: str, size: int = 28) -> str:
    """Where a dataset file would come from: "bundled", "cached" (present and verified) or "downloadable".

    A bundled file is reported without hashing it; its checksum is checked when it is loaded.
    A folder of the user's own images is "folder" (its images are not read here).
    """
    return source_of(key).status(key, size)


def dataset_file(
    key: str, size: int = 28, progress: Progress | None = None, timeout: float = _DOWNLOAD_TIMEOUT
) -> Path:
    """Path of a verified MedMNIST .npz file: bundled, cached, or downloaded now.

    `progress(done_bytes, total_bytes)` is called while downloading (total is 0 if unknown).
    `timeout` bounds the name lookup, the connection and every read, so being offline gives a
    DownloadError within about `timeout` seconds. A cached file with a wrong checksum is removed
    and fetched once more. A damaged bundled file raises DataError, and so does a folder dataset
    (it has no such file).
    """
    return source_of(key).file(key, size, progress, timeout)


def load_arrays(key: str, size: int = 28) -> Arrays:
    """{'train'|'val'|'test': (uint8 images (N,H,W) or (N,H,W,3), int64 labels (N,))}, read-only.

    Fetches the file if needed (see `dataset_file`); repeated calls reuse arrays held in memory.
    For a folder dataset `size` is ignored: the arrays are at the folder's stored size.
    """
    return dict(source_of(key).arrays(key, size, None))


def low_data_indices(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded, stratified subset: min(per_class, count) images of every class."""
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ConfigError(f"Images per class must be a whole number of at least 1, got {per_class!r}.")
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(members, size=min(per_class, len(members)), replace=False)
        for members in (np.flatnonzero(labels == c) for c in np.unique(labels))
    ]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


@dataclass
class PreparedData:
    """Model-ready tensors of the three splits, with what is needed to undo the normalisation."""

    info: DatasetInfo
    config: DataConfig
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: tuple[float, ...]  # per channel, training split, 0..1 units, before noise
    std: tuple[float, ...]
    train_indices: np.ndarray  # rows of the full training split that were kept

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return self.info.n_classes

    @property
    def in_channels(self) -> int:
        """Channels of the model input."""
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        """Side of the (square) model input."""
        return self.config.image_size

    def to_display(self, x: torch.Tensor) -> np.ndarray:
        """Undo the normalisation: (N,C,H,W) tensor -> (N,H,W,C) float array clipped to [0, 1]."""
        x = x.detach().to("cpu", torch.float32)
        if self.config.normalize:
            x = x * torch.tensor(self.std).view(1, -1, 1, 1) + torch.tensor(self.mean).view(1, -1, 1, 1)
        return x.clamp(0.0, 1.0).permute(0, 2, 3, 1).numpy()


def prepare(cfg: DataConfig, progress: Progress | None = None) -> PreparedData:
    """Load `cfg.dataset` (downloading it if needed, reporting to `progress`) and prepare all splits.

    The low-data subset, the statistics and the noise are all determined by `cfg`, so the same
    config always gives the same tensors. Statistics come from the kept training images after
    resizing/graying and before noise; each split gets noise from its own derived seed.
    """
    source = source_of(cfg.dataset)
    info = source.info(cfg.dataset)
    arrays = source.arrays(cfg.dataset, cfg.source_size, progress)

    train_images, train_labels = arrays["train"]
    if cfg.train_per_class is None:
        keep = np.arange(len(train_labels))
    else:
        keep = low_data_indices(train_labels, cfg.train_per_class, cfg.seed)

    unit = {split: to_unit_range(arrays[split][0], cfg.grayscale, cfg.image_size) for split in ("val", "test")}
    unit["train"] = to_unit_range(train_images[keep], cfg.grayscale, cfg.image_size)
    std_t, mean_t = torch.std_mean(unit["train"], dim=(0, 2, 3), correction=0)
    mean = tuple(mean_t.tolist())
    std = tuple(std_t.clamp(min=1e-6).tolist())

    x = {split: noise_and_normalise(unit[split], cfg, mean, std, split_seed(cfg.seed, split)) for split in SPLITS}
    labels = {split: torch.from_numpy(arrays[split][1].copy()) for split in ("val", "test")}
    labels["train"] = torch.from_numpy(train_labels[keep])  # fancy indexing already copied
    return PreparedData(
        info=info,
        config=cfg,
        x_train=x["train"],
        y_train=labels["train"],
        x_val=x["val"],
        y_val=labels["val"],
        x_test=x["test"],
        y_test=labels["test"],
        mean=mean,
        std=std,
        train_indices=keep,
    )


def prepare_split(
    cfg: DataConfig, split: str, mean: Sequence[float], std: Sequence[float], progress: Progress | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One split prepared with given statistics, e.g. those saved with a model, as `prepare` would."""
    if split not in SPLITS:
        raise DataError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    images, labels = source_of(cfg.dataset).arrays(cfg.dataset, cfg.source_size, progress)[split]
    x01 = to_unit_range(images, cfg.grayscale, cfg.image_size)
    x = noise_and_normalise(x01, cfg, mean, std, split_seed(cfg.seed, split))
    return x, torch.from_numpy(labels.copy())
