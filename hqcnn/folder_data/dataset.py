"""A folder dataset as the rest of the app sees it: load (from memory, the cache or the images),
is_cached and clear_memory."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hqcnn.datasets_base import SPLITS, DatasetInfo, Progress
from hqcnn.errors import DataError
from hqcnn.folder_data import upload_store
from hqcnn.folder_data.paths import GONE, _Place, _resolve, _upload_dir, manifest
from hqcnn.folder_data.paths import _manifest_title as _upload_title
from hqcnn.folder_data.paths import is_upload_key as _is_upload
from hqcnn.folder_data.scan import FolderReport, Skipped, _Scan, _scan
from hqcnn.folder_data.store import _build, _cache_file, _fingerprint, _load_cache, _save_cache


@dataclass(frozen=True)
class FolderData:
    """A folder dataset: catalogue entry, read-only arrays of the three splits, and the report."""

    info: DatasetInfo
    arrays: dict[str, tuple[np.ndarray, np.ndarray]]
    report: FolderReport


def _pair_of_text(item: object) -> bool:
    return isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)


def _make(key: str, place: _Place, arrays: dict[str, np.ndarray], meta: dict) -> FolderData:
    out = {}
    for split in SPLITS:
        images = np.ascontiguousarray(arrays[f"{split}_images"])
        labels = np.ascontiguousarray(arrays[f"{split}_labels"]).astype(np.int64, copy=False)
        images.setflags(write=False)
        labels.setflags(write=False)
        out[split] = (images, labels)
    labels = tuple(meta["label_names"])
    skipped = [Skipped(p, r) for p, r in meta["skipped"]]
    n_files, title = int(meta["n_files"]), place.root.name or place.shown
    if place.digest is not None:  # the upload's record: what unpacking skipped, and its title
        record = manifest(place.digest)
        kept = record.get("skipped")
        if isinstance(kept, list):
            skipped = [Skipped(x[0], x[1]) for x in kept if _pair_of_text(x)] + skipped
        if type(record.get("n_files")) is int:
            n_files = record["n_files"]
        title = _upload_title(place.digest)
    report = FolderReport(
        folder=place.shown,
        split_rule=meta["split_rule"],
        stored_size=int(meta["stored_size"]),
        n_files=n_files,
        skipped=tuple(skipped),
    )
    n_channels = 1 if out["train"][0].ndim == 3 else 3
    used = sum(len(out[s][1]) for s in SPLITS)
    source = "uploaded as a .zip" if _is_upload(key) else f"from the folder {place.shown}"
    description = (
        f"Your own images {source}: {used:,} images in {len(labels)} classes (named after the "
        f"sub-folders), {'gray' if n_channels == 1 else 'colour'}, centre-cropped to squares and stored at "
        f"{report.stored_size}×{report.stored_size} pixels. {report.split_rule}."
    )
    if report.skipped:
        description += f" {len(report.skipped)} file(s) skipped (not readable PNG, JPEG or DICOM images)."
    info = DatasetInfo(
        key=key,
        title=title,
        task="binary-class" if len(labels) == 2 else "multi-class",
        label_names=labels,
        n_channels=n_channels,
        n_samples={s: len(out[s][1]) for s in SPLITS},
        description=description,
        license="user-provided",
    )
    return FolderData(info=info, arrays=out, report=report)


_MEMO: OrderedDict[tuple[str, str, bool], FolderData] = OrderedDict()  # (folder, fingerprint, upload?)
_MEMO_SIZE = 4
_LOCK = threading.Lock()  # one folder read at a time (in the app, sessions share the result)
_UNPACKED_SCANS: dict[str, tuple[_Scan, str]] = {}  # unpacked uploads never change: scanned once


def _shown(key: str, place: _Place) -> str | None:
    """How messages name the folder: None (its path) for a folder the user gave, else `place.shown`."""
    return place.shown if _is_upload(key) else None


def _scan_and_fingerprint(key: str, place: _Place) -> tuple[_Scan, str]:
    """The folder's files and fingerprint. A user's folder is listed anew on every call (it may have
    changed); an unpacked upload (content-addressed, never edited) only once per process."""
    root = place.root
    if place.digest is not None:
        found = _UNPACKED_SCANS.get(str(root))
        if found is None:
            scan = _scan(root, _shown(key, place))
            found = _UNPACKED_SCANS.setdefault(str(root), (scan, _fingerprint(root, scan)))
        return found
    scan = _scan(root)
    return scan, _fingerprint(root, scan)


def _gone_if_removed(place: _Place, err: DataError) -> DataError:
    """The 'no longer on the server' error if the upload was removed while it was read, else `err`."""
    if place.digest is not None and not _upload_dir(place.digest).is_dir():
        return DataError(GONE)
    return err


def load(key: str, progress: Progress | None = None) -> FolderData:
    """The folder dataset named by `key` (a folder path, or an upload key from `extract_zip`): read
    and cached on first use. Loading an upload marks it used (see upload_store).

    `progress(done, total)` is called while images are decoded (not when the cache is used).
    Raises DataError with a message for the user when the folder cannot be used; for an upload the
    message names it by its title, never by its path on the server.
    """
    place = _resolve(key)
    if place.digest is None:
        return _load(key, place, progress)
    upload_store.touch(place.digest)  # after the sweep that comes with it: gone if it had expired
    with upload_store.pinned(place.digest):  # not removed to make room while it is read
        if not _upload_dir(place.digest).is_dir():
            _forget(place.root)
            raise DataError(GONE)
        return _load(key, place, progress)


def _load(key: str, place: _Place, progress: Progress | None) -> FolderData:
    try:
        scan, fingerprint = _scan_and_fingerprint(key, place)
    except DataError as err:
        raise _gone_if_removed(place, err) from None
    memo_key = (str(place.root), fingerprint, _is_upload(key))
    with _LOCK:
        found = _MEMO.get(memo_key)
        if found is None:
            cache = _cache_file(place.root, fingerprint, place.digest)
            stored = _load_cache(cache)
            if stored is None:
                try:
                    stored = _build(place.root, scan, progress, _shown(key, place))
                except DataError as err:
                    raise _gone_if_removed(place, err) from None
                if _save_cache(cache, *stored) and place.digest is not None:
                    upload_store.make_room(keep=place.digest)  # the cache counts against the limit
            found = _make(key, place, *stored)
            _MEMO[memo_key] = found
            while len(_MEMO) > _MEMO_SIZE:
                _MEMO.popitem(last=False)
        else:
            _MEMO.move_to_end(memo_key)
    return dataclasses.replace(found, info=dataclasses.replace(found.info, key=key))


def is_cached(key: str) -> bool:
    """True if `load(key)` would not decode images (held in memory or in the .npz cache)."""
    try:
        place = _resolve(key)
        fingerprint = _scan_and_fingerprint(key, place)[1]
    except DataError:
        return True  # nothing to decode: load raises at once
    memo_key = (str(place.root), fingerprint, _is_upload(key))
    return memo_key in _MEMO or _cache_file(place.root, fingerprint, place.digest).is_file()


def _forget(root: Path) -> None:
    """Drop what memory holds of the dataset folder `root` (an upload that was removed)."""
    with _LOCK:
        for memo_key in [k for k in _MEMO if k[0] == str(root)]:
            del _MEMO[memo_key]
        _UNPACKED_SCANS.pop(str(root), None)


def clear_memory() -> None:
    """Forget the datasets held in memory (the .npz cache stays)."""
    with _LOCK:
        _MEMO.clear()
        _UNPACKED_SCANS.clear()
