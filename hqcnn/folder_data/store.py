"""Reading every image once into stored arrays, and the .npz cache keyed by the folder's fingerprint."""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import os
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hqcnn.errors import DataError, ImageError
from hqcnn.folder_data.limits import (
    _DICOM_SUFFIXES,
    _FORMAT,
    _GRAY_TOLERANCE,
    _SPLITS,
    MAX_FILE_BYTES,
    MAX_TOTAL_PIXELS,
    MIN_PER_CLASS,
    SPLIT_SEED,
    STORE_SIZE,
    TEST_FRACTION,
    VAL_FRACTION,
    Progress,
    _mb,
)
from hqcnn.folder_data.paths import _make_dir, folders_root
from hqcnn.folder_data.scan import FolderReport, Skipped, _File, _Scan
from hqcnn.folder_data.split import _split

# --- the fingerprint -----------------------------------------------------------------------------


def _fingerprint(root: Path, scan: _Scan) -> str:
    digest = hashlib.sha256()
    header = [_FORMAT, STORE_SIZE, SPLIT_SEED, VAL_FRACTION, TEST_FRACTION, _GRAY_TOLERANCE, str(root)]
    digest.update(json.dumps(header).encode())
    for f in scan.files:
        digest.update(f"\0{f.rel}\0{f.size}\0{f.mtime_ns}".encode())
    for s in scan.skipped:
        digest.update(f"\1{s.path}\0{s.reason}".encode())
    return digest.hexdigest()


# --- reading -------------------------------------------------------------------------------------


@dataclass
class _Decoded:
    image: np.ndarray | None = None  # uint8 (s, s, 3), s <= STORE_SIZE
    gray: bool = True
    pixels: int = 0  # width × height of the file
    reason: str | None = None  # why it was skipped


def _shrink(rgb: np.ndarray, side: int) -> np.ndarray:
    if rgb.shape[0] == side:
        return rgb
    img = Image.fromarray(rgb, "RGB").resize((side, side), Image.Resampling.BILINEAR)  # antialiased
    return np.asarray(img, dtype=np.uint8)


def _decode(path: Path, size: int) -> _Decoded:
    from hqcnn.imageio import read_image

    if path.suffix.lower() in _DICOM_SUFFIXES:
        return _Decoded(reason="DICOM is not supported yet; export it to PNG")
    if size > MAX_FILE_BYTES:
        return _Decoded(reason=f"larger than the {_mb(MAX_FILE_BYTES)} limit per image")
    try:
        data = path.read_bytes()
    except OSError as err:
        return _Decoded(reason=f"cannot be read ({err.strerror or err})")
    pixels = 0
    try:
        with Image.open(io.BytesIO(data)) as header:  # reads the header only
            pixels = header.size[0] * header.size[1]
    except Exception:  # noqa: BLE001 — read_image below gives the reason
        pass
    try:
        rgb = read_image(data, 3)
    except ImageError as err:
        reason = str(err).rstrip(".")
        reason = reason[len("The file is ") :] if reason.startswith("The file is ") else reason
        return _Decoded(reason=reason, pixels=pixels)
    rgb = _shrink(rgb, min(rgb.shape[0], STORE_SIZE))
    spread = rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)
    return _Decoded(image=rgb, gray=bool(spread.max() <= _GRAY_TOLERANCE), pixels=pixels or rgb.shape[0] ** 2)


def _decode_all(root: Path, files: list[_File], progress: Progress | None) -> list[_Decoded]:
    workers = max(1, min(4, os.cpu_count() or 1))  # PIL decodes without holding the GIL
    out: list[_Decoded] = []
    total_pixels = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hqcnn-read") as pool:
        try:
            for decoded in pool.map(lambda f: _decode(root / f.rel, f.size), files):
                out.append(decoded)
                total_pixels += decoded.pixels
                if total_pixels > MAX_TOTAL_PIXELS:
                    raise DataError(
                        f"The images in {root} hold more than {MAX_TOTAL_PIXELS / 1e9:g} billion pixels in all "
                        "(the limit). Use fewer or smaller images."
                    )
                if progress is not None:
                    progress(len(out), len(files))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return out


# --- building the arrays -------------------------------------------------------------------------


def _build(root: Path, scan: _Scan, progress: Progress | None) -> tuple[dict[str, np.ndarray], dict]:
    """Decode, split and stack; returns the arrays to store and the metadata."""
    if not scan.files:
        note = f" ({len(scan.skipped)} other file(s) were skipped)" if scan.skipped else ""
        raise DataError(
            f"The class folders in {root} hold no images{note}. Put PNG or JPEG images in one sub-folder per class."
        )
    decoded = _decode_all(root, scan.files, progress)
    skipped = list(scan.skipped)
    files, images, grays = [], [], []
    for f, d in zip(scan.files, decoded, strict=True):
        if d.image is None:
            skipped.append(Skipped(f.rel, d.reason or "unreadable"))
        else:
            files.append(f)
            images.append(d.image)
            grays.append(d.gray)
    skipped.sort(key=lambda s: s.path)
    if not files:
        raise DataError(
            f"None of the {len(scan.files)} files in the class folders of {root} is a readable PNG or JPEG image. "
            + (FolderReport(str(root), "", 0, 0, tuple(skipped)).skipped_message() or "")
        )
    labels = sorted({f.label for f in files})
    empty = sorted(scan.class_folders - set(labels))
    if len(labels) < 2:
        where = f"'{labels[0]}'"
        raise DataError(
            f"{root} has only one class with images ({where}); a classifier needs at least two class folders. "
            "If that folder holds your class folders, choose it instead."
        )
    if empty:
        raise DataError(
            f"Class folder '{empty[0]}' holds no readable images; each class needs at least {MIN_PER_CLASS}. "
            "Add images or remove the folder."
        )
    indices, rule = _split(files, labels, scan.split_folders)
    side = min(STORE_SIZE, max(img.shape[0] for img in images))
    gray = all(grays)
    label_of = {name: i for i, name in enumerate(labels)}
    arrays: dict[str, np.ndarray] = {}
    for split in _SPLITS:
        chosen = indices[split]
        stack = np.zeros((len(chosen), side, side, 3), dtype=np.uint8)
        for row, i in enumerate(chosen):
            stack[row] = _shrink(images[i], side)
        if gray:
            luma = stack.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            stack = np.clip(np.round(luma), 0, 255).astype(np.uint8)
        arrays[f"{split}_images"] = stack
        arrays[f"{split}_labels"] = np.array([label_of[files[i].label] for i in chosen], dtype=np.int64)
    meta = {
        "label_names": labels,
        "split_rule": rule,
        "stored_size": side,
        "n_files": len(scan.files),
        "skipped": [[s.path, s.reason] for s in skipped],
    }
    return arrays, meta


# --- the .npz cache ------------------------------------------------------------------------------


def _cache_file(root: Path, fingerprint: str) -> Path:
    place = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return folders_root() / "cache" / f"{place}-{fingerprint[:16]}.npz"


def _save_cache(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    _make_dir(path.parent)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp.npz")
    try:
        np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return  # a cache that cannot be written only costs time
    for old in path.parent.glob(f"{path.name.split('-')[0]}-*.npz"):  # older versions of this folder
        if old != path:
            old.unlink(missing_ok=True)


def _load_cache(path: Path) -> tuple[dict[str, np.ndarray], dict] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {k: stored[k] for k in stored.files if k != "meta"}
            meta = json.loads(str(stored["meta"]))
        n = len(meta["label_names"])
        for split in _SPLITS:
            images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
            if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) != len(labels):
                return None
            if labels.size and not 0 <= labels.min() <= labels.max() < n:
                return None
        return arrays, meta
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile, zlib.error):
        return None  # damaged: read the images again
