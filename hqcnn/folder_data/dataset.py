"""A folder dataset as the rest of the app sees it: load (from memory, the cache or the images),
is_cached and clear_memory."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hqcnn.errors import DataError
from hqcnn.folder_data.limits import _SPLITS, Progress
from hqcnn.folder_data.paths import _root, folders_root, title
from hqcnn.folder_data.scan import FolderReport, Skipped, _Scan, _scan
from hqcnn.folder_data.store import _build, _cache_file, _fingerprint, _load_cache, _save_cache


@dataclass(frozen=True)
class FolderData:
    """A folder dataset: catalogue entry, read-only arrays of the three splits, and the report."""

    info: object  # hqcnn.data.DatasetInfo
    arrays: dict[str, tuple[np.ndarray, np.ndarray]]
    report: FolderReport


def _make(key: str, root: Path, arrays: dict[str, np.ndarray], meta: dict) -> FolderData:
    from hqcnn.data import DatasetInfo

    out = {}
    for split in _SPLITS:
        images = np.ascontiguousarray(arrays[f"{split}_images"])
        labels = np.ascontiguousarray(arrays[f"{split}_labels"]).astype(np.int64, copy=False)
        images.setflags(write=False)
        labels.setflags(write=False)
        out[split] = (images, labels)
    labels = tuple(meta["label_names"])
    report = FolderReport(
        folder=str(root),
        split_rule=meta["split_rule"],
        stored_size=int(meta["stored_size"]),
        n_files=int(meta["n_files"]),
        skipped=tuple(Skipped(p, r) for p, r in meta["skipped"]),
    )
    n_channels = 1 if out["train"][0].ndim == 3 else 3
    used = sum(len(out[s][1]) for s in _SPLITS)
    description = (
        f"Your own images from the folder {root}: {used:,} images in {len(labels)} classes (named after the "
        f"sub-folders), {'gray' if n_channels == 1 else 'colour'}, centre-cropped to squares and stored at "
        f"{report.stored_size}×{report.stored_size} pixels. {report.split_rule}."
    )
    if report.skipped:
        description += f" {len(report.skipped)} file(s) skipped (not readable PNG or JPEG images)."
    info = DatasetInfo(
        key=key,
        title=title(str(root)),
        task="binary-class" if len(labels) == 2 else "multi-class",
        label_names=labels,
        n_channels=n_channels,
        n_samples={s: len(out[s][1]) for s in _SPLITS},
        description=description,
        license="user-provided",
    )
    return FolderData(info=info, arrays=out, report=report)


_MEMO: OrderedDict[tuple[str, str], FolderData] = OrderedDict()
_MEMO_SIZE = 4
_LOCK = threading.Lock()  # one folder read at a time (in the app, sessions share the result)
_UNPACKED_SCANS: dict[str, tuple[_Scan, str]] = {}  # unpacked uploads never change: scanned once


def _scan_and_fingerprint(root: Path) -> tuple[_Scan, str]:
    """The folder's files and fingerprint. A user's folder is listed anew on every call (it may have
    changed); an unpacked upload (content-addressed, never edited) only once per process."""
    unpacked = folders_root().resolve()
    if unpacked in root.parents and (unpacked / "cache") not in (root, *root.parents):
        found = _UNPACKED_SCANS.get(str(root))
        if found is None:
            scan = _scan(root)
            found = _UNPACKED_SCANS.setdefault(str(root), (scan, _fingerprint(root, scan)))
        return found
    scan = _scan(root)
    return scan, _fingerprint(root, scan)


def load(key: str, progress: Progress | None = None) -> FolderData:
    """The folder dataset named by `key` (a folder path): read and cached on first use.

    `progress(done, total)` is called while images are decoded (not when the cache is used).
    Raises DataError with a message for the user when the folder cannot be used.
    """
    root = _root(key)
    scan, fingerprint = _scan_and_fingerprint(root)
    memo_key = (str(root), fingerprint)
    with _LOCK:
        found = _MEMO.get(memo_key)
        if found is None:
            cache = _cache_file(root, fingerprint)
            stored = _load_cache(cache)
            if stored is None:
                stored = _build(root, scan, progress)
                _save_cache(cache, *stored)
            found = _make(str(root), root, *stored)
            _MEMO[memo_key] = found
            while len(_MEMO) > _MEMO_SIZE:
                _MEMO.popitem(last=False)
        else:
            _MEMO.move_to_end(memo_key)
    return dataclasses.replace(found, info=dataclasses.replace(found.info, key=key))


def is_cached(key: str) -> bool:
    """True if `load(key)` would not decode images (held in memory or in the .npz cache)."""
    try:
        root = _root(key)
        fingerprint = _scan_and_fingerprint(root)[1]
    except DataError:
        return True  # nothing to decode: load raises at once
    return (str(root), fingerprint) in _MEMO or _cache_file(root, fingerprint).is_file()


def clear_memory() -> None:
    """Forget the datasets held in memory (the .npz cache stays)."""
    with _LOCK:
        _MEMO.clear()
        _UNPACKED_SCANS.clear()
