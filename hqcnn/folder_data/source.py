"""Folder datasets as an entry of the table of dataset sources (hqcnn.data.SOURCES)."""

from __future__ import annotations

from pathlib import Path

from hqcnn.datasets_base import Arrays, DatasetInfo, DataSource, Progress
from hqcnn.errors import DataError
from hqcnn.folder_data.dataset import load
from hqcnn.folder_data.paths import is_folder_key


def _info(key: str) -> DatasetInfo:
    return load(key).info


def _status(key: str, size: int) -> str:
    return "folder"  # told by the key alone: no image is read to answer


def _no_file(key: str, size: int, progress: Progress | None, timeout: float) -> Path:
    raise DataError(f"{key} is a folder of your own images, not a MedMNIST file to download.")


def _arrays(key: str, size: int, progress: Progress | None) -> Arrays:
    # A folder is stored at one size, so `size` does not apply; progress counts images read, not bytes.
    return load(key, progress).arrays


SOURCE = DataSource(claims=is_folder_key, info=_info, status=_status, file=_no_file, arrays=_arrays)
