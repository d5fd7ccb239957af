"""Where folder datasets live, and telling a folder key from a MedMNIST name."""

from __future__ import annotations

import os
import re
from pathlib import Path

from hqcnn.errors import DataError

# --- where things live ---------------------------------------------------------------------------


def folders_root() -> Path:
    """$HQCNN_DATA_DIR/folders (or ~/.cache/hqcnn/medmnist/folders): unpacked uploads and the cache."""
    from hqcnn.data import _data_dir

    return _data_dir() / "folders"


def _make_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"Cannot create the folder {path}: {err.strerror or err}.") from err
    return path


# --- recognising a folder dataset ----------------------------------------------------------------


def is_folder_key(key: object) -> bool:
    """True if `key` names a folder rather than a MedMNIST set: it contains a path separator,
    starts with '.', '~' or a drive letter, or is an existing folder. (It need not exist: `load`
    says so.)"""
    if not isinstance(key, str) or not key:
        return False
    if "/" in key or "\\" in key or key.startswith((".", "~")) or re.match(r"^[A-Za-z]:", key):
        return True
    try:
        return Path(key).is_dir()
    except OSError:
        return False


def title(key: str) -> str:
    """A short name for a folder dataset: its folder's name (for an upload, the zip's name)."""
    path = Path(os.path.expanduser(key))
    return path.name or str(path)


def file_label(key: str) -> str:
    """A dataset key as a safe part of a file or folder name: a MedMNIST name as it is, a folder
    dataset as its folder's name (letters, digits, '_', '-', '.'; no path separators)."""
    label = title(key) if is_folder_key(key) else key
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "images"


def _root(key: str) -> Path:
    path = Path(os.path.expanduser(key))
    try:
        resolved = path.resolve()
        is_dir = resolved.is_dir()
    except (OSError, RuntimeError) as err:
        raise DataError(f"Cannot open the folder {key}: {err}.") from err
    if not is_dir:
        if resolved.exists():
            raise DataError(f"{key} is a file, not a folder. Give the folder that holds one sub-folder per class.")
        raise DataError(f"The folder {key} does not exist (or is not on this computer).")
    return resolved
