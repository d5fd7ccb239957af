"""What the data cache folder holds, and emptying it (`python -m hqcnn datasets [--clear-cache]`).

The cache folder (data.cache_dir: $HQCNN_DATA_DIR or ~/.cache/hqcnn/medmnist) holds downloaded
MedMNIST files, uploaded datasets (bounded: folder_data.upload_store) and the .npz caches of folder
datasets. The bundled files in assets/ and a user's own folders given on the command line are not
in it, and `clear` never touches them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from hqcnn.config import SOURCE_SIZES
from hqcnn.data import _ASSETS, DATASETS, _file_name
from hqcnn.datasets_base import data_dir
from hqcnn.folder_data import folders_root, upload_store


@dataclass(frozen=True)
class CachedFile:
    """A downloaded MedMNIST file."""

    name: str  # e.g. "bloodmnist_64.npz"
    path: Path
    bytes: int


@dataclass(frozen=True)
class CacheReport:
    """Everything in the cache folder, as `python -m hqcnn datasets` prints it."""

    folder: Path
    downloads: list[CachedFile]
    uploads: list[upload_store.Upload]  # least recently used first
    upload_bytes: int  # uploads and their caches, against upload_limit
    upload_limit: int
    folder_cache_files: int  # caches of folders given on the command line
    folder_cache_bytes: int


@dataclass(frozen=True)
class Removed:
    """One thing `clear` deleted."""

    what: str
    bytes: int


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _downloads() -> list[CachedFile]:
    """The MedMNIST files in the cache folder (never the bundled copies, should the cache point there)."""
    assets = _ASSETS.resolve()
    found = []
    for key in DATASETS:
        for size in SOURCE_SIZES:
            path = data_dir() / _file_name(key, size)
            if path.is_file() and assets not in path.resolve().parents:
                found.append(CachedFile(path.name, path, _size(path)))
    return found


def report() -> CacheReport:
    """What the cache holds now."""
    uploads = upload_store.uploads() if folders_root().is_dir() else []
    others = [p for p in (folders_root() / "cache").glob("*.npz") if not p.name.startswith(("upload-", "."))]
    return CacheReport(
        folder=data_dir(),
        downloads=_downloads(),
        uploads=uploads,
        upload_bytes=sum(u.bytes for u in uploads),
        upload_limit=upload_store.limit_bytes(),
        folder_cache_files=len(others),
        folder_cache_bytes=sum(_size(p) for p in others),
    )


def clear() -> list[Removed]:
    """Delete the uploaded datasets, every folder cache and the downloaded MedMNIST files; returns
    what was removed. Bundled files and the user's own folders are not in the cache and stay."""
    removed = []
    if folders_root().is_dir():
        removed += [Removed(what, n) for what, n in upload_store.clear()]
    for file in _downloads():
        with contextlib.suppress(FileNotFoundError):
            file.path.unlink()
            removed.append(Removed(f"MedMNIST file {file.name}", file.bytes))
    from hqcnn import folder_data

    folder_data.clear_memory()
    return removed
