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

from hqcnn.datasets_base import SPLITS, Progress
from hqcnn.errors import DataError, ImageError
from hqcnn.folder_data.limits import (
    _FORMAT,
    _GRAY_TOLERANCE,
    MAX_FILE_BYTES,
    MAX_TOTAL_PIXELS,
    MIN_PER_CLASS,
    SPLIT_SEED,
    STORE_SIZE,
    TEST_FRACTION,
    VAL_FRACTION,
    _mb,
)
from hqcnn.folder_data.paths import folders_root, make_dir, private_file
from hqcnn.folder_data.scan import FolderReport, Skipped, _cap, _File, _Scan
from hqcnn.folder_data.split import _split
from hqcnn.imageio import SNIFF_BYTES, read_upload, sniff_image

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
    facts: dict | None = None  # a DICOM file's technical facts (hqcnn.dicom.DicomImage.facts), else None


def _shrink(rgb: np.ndarray, side: int) -> np.ndarray:
    if rgb.shape[0] == side:
        return rgb
    img = Image.fromarray(rgb, "RGB").resize((side, side), Image.Resampling.BILINEAR)  # antialiased
    return np.asarray(img, dtype=np.uint8)


def _without_extension(path: Path) -> bool:
    """True for a file named without an extension, as DICOM exports name them ("IM00001", or a UID
    such as "1.2.840.113619.2.55.3.604688119": its last part is digits, not an extension)."""
    return not path.suffix or path.suffix[1:].isdigit()


def _reason(err: ImageError) -> str:
    """An ImageError's message as the reason of a skipped file: "not a PNG, JPEG or DICOM image",
    "the DICOM file is damaged or incomplete and cannot be read"."""
    reason = str(err).rstrip(".")
    if reason.startswith("The file is "):
        return reason[len("The file is ") :]
    return reason[:1].lower() + reason[1:]


def _header_pixels(data: bytes) -> int:
    """Width × height of a PNG or JPEG file from its header; 0 if unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as header:  # reads the header only
            return header.size[0] * header.size[1]
    except Exception:  # noqa: BLE001 — it was decoded already; 0 counts the stored square instead
        return 0


def _decode_bytes(data: bytes) -> _Decoded:
    """One image file's bytes → its picture at most STORE_SIZE square, parsed and decoded once
    (`read_upload`: the picture and a DICOM file's facts together)."""
    if len(data) > MAX_FILE_BYTES:
        return _Decoded(reason=f"larger than the {_mb(MAX_FILE_BYTES)} limit per image")
    try:
        rgb, facts = read_upload(data, 3)
    except ImageError as err:
        return _Decoded(reason=_reason(err))
    # Width × height as stored in the file: a DICOM file's from its facts, a PNG's or JPEG's from
    # its header (only the header is read again, not the pixels).
    pixels = facts["rows"] * facts["columns"] if facts else _header_pixels(data)
    rgb = _shrink(rgb, min(rgb.shape[0], STORE_SIZE))
    spread = rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)
    gray = bool(spread.max() <= _GRAY_TOLERANCE)
    return _Decoded(image=rgb, gray=gray, pixels=pixels or rgb.shape[0] ** 2, facts=facts)


def _decode(path: Path, size: int) -> _Decoded:
    if size > MAX_FILE_BYTES:
        return _Decoded(reason=f"larger than the {_mb(MAX_FILE_BYTES)} limit per image")
    try:
        if _without_extension(path):
            # Only its first bytes tell whether such a file is an image (a DICOM folder also holds
            # DICOMDIR, LOCKFILE, VERSION, …): the rest is read only if they say PNG, JPEG or DICOM.
            with open(path, "rb") as file:
                if not sniff_image(file.read(SNIFF_BYTES)):
                    return _Decoded(reason="not a PNG, JPEG or DICOM image")
        data = path.read_bytes()
    except OSError as err:
        return _Decoded(reason=f"cannot be read ({err.strerror or err})")
    return _decode_bytes(data)


def _decode_all(root: Path, files: list[_File], progress: Progress | None, shown: str | None = None) -> list[_Decoded]:
    """Decode `files` (relative to `root`) in a few threads; messages name the folder as `shown`
    (an upload) or by its path."""
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
                        f"The images in {shown or root} hold more than {MAX_TOTAL_PIXELS / 1e9:g} billion pixels in all "
                        "(the limit). Use fewer or smaller images."
                    )
                if progress is not None:
                    progress(len(out), len(files))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return out


# --- building the arrays -------------------------------------------------------------------------


def _build(
    root: Path, scan: _Scan, progress: Progress | None, shown: str | None = None
) -> tuple[dict[str, np.ndarray], dict]:
    """Decode, split and stack; returns the arrays to store and the metadata. Messages name the
    folder as `shown` (an upload: never its server path) or by its path."""
    name = shown or str(root)
    if not scan.files:
        note = f" ({len(scan.skipped)} other file(s) were skipped)" if scan.skipped else ""
        raise DataError(
            f"The class folders in {name} hold no images{note}. Put PNG, JPEG or DICOM images in one sub-folder "
            "per class."
        )
    decoded = _decode_all(root, scan.files, progress, shown)
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
            f"None of the {len(scan.files)} files in the class folders of {name} is a readable PNG, JPEG or DICOM image. "
            + (FolderReport(name, "", 0, 0, tuple(skipped)).skipped_message() or "")
        )
    labels = sorted({f.label for f in files})
    empty = sorted(scan.class_folders - set(labels))
    if len(labels) < 2:
        where = f"'{labels[0]}'"
        raise DataError(
            f"{_cap(name)} has only one class with images ({where}); a classifier needs at least two class folders. "
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
    for split in SPLITS:
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

_ARRAY_NAMES = frozenset(f"{split}_{part}" for split in SPLITS for part in ("images", "labels"))


def _cache_file(root: Path, fingerprint: str, digest: str | None = None) -> Path:
    """The cache of a folder: cache/upload-<digest>-….npz for an upload (so the upload store can
    count and remove it with its folder), cache/<hash of the path>-….npz for a user's folder."""
    place = f"upload-{digest}" if digest else hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return folders_root() / "cache" / f"{place}-{fingerprint[:16]}.npz"


def _save_cache(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> bool:
    """Write the cache atomically; False if it cannot be written (that only costs time next run)."""
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp.npz")
    try:
        make_dir(path.parent)
        with private_file(tmp) as handle:  # 0600: the pixels of someone's images
            np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)
    except (OSError, DataError):
        tmp.unlink(missing_ok=True)
        return False
    place = path.name.rsplit("-", 1)[0]
    for old in path.parent.glob(f"{place}-*.npz"):  # older versions of this folder
        if old != path:
            old.unlink(missing_ok=True)
    return True


def _valid_meta(meta: object) -> bool:
    if not isinstance(meta, dict):
        return False
    names, side = meta.get("label_names"), meta.get("stored_size")
    skipped = meta.get("skipped")
    return (
        isinstance(names, list)
        and len(names) >= 2
        and all(isinstance(n, str) for n in names)
        and type(side) is int
        and 1 <= side <= STORE_SIZE
        and isinstance(meta.get("split_rule"), str)
        and type(meta.get("n_files")) is int
        and isinstance(skipped, list)
        and all(isinstance(x, list) and len(x) == 2 and all(isinstance(y, str) for y in x) for x in skipped)
    )


def _valid_arrays(arrays: dict[str, np.ndarray], meta: dict) -> bool:
    """True if the arrays are what `_build` writes: uint8 square images of side meta["stored_size"],
    gray (N, s, s) or colour (N, s, s, 3) alike in every split, and 1-D integer labels in range."""
    if set(arrays) != _ARRAY_NAMES:
        return False
    side, n_classes = meta["stored_size"], len(meta["label_names"])
    shapes = set()
    for split in SPLITS:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.dtype != np.uint8 or images.ndim not in (3, 4) or images.shape[1:3] != (side, side):
            return False
        if images.ndim == 4 and images.shape[3] != 3:
            return False
        shapes.add(images.shape[1:])
        if not np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_ or labels.ndim != 1:
            return False
        if len(labels) != len(images) or not len(labels):  # _build puts images of every class in each split
            return False
        if not 0 <= labels.min() <= labels.max() < n_classes:
            return False
    return len(shapes) == 1


def _load_cache(path: Path) -> tuple[dict[str, np.ndarray], dict] | None:
    """The cached arrays and metadata, or None if there is no cache. A cache that is damaged or holds
    anything `_build` would not have written is deleted (and then rebuilt from the images)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {k: stored[k] for k in stored.files if k != "meta"}
            meta = json.loads(str(stored["meta"]))
        if _valid_meta(meta) and _valid_arrays(arrays, meta):
            return arrays, meta
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile, zlib.error):
        pass  # damaged: read the images again
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # overwritten by the rebuilt cache anyway
    return None
