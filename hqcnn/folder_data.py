"""Your own images: a folder (or an uploaded .zip) with one sub-folder per class, used like a MedMNIST set.

Layout (class names are the folder names, sorted; any sizes and modes of PNG or JPEG)::

    my_xrays/                      my_xrays/
      normal/     a.png b.jpg …      train/  normal/ … pneumonia/ …
      pneumonia/  c.png …            val/    normal/ … pneumonia/ …     (optional)
                                     test/   normal/ … pneumonia/ …     (optional)

Without split folders, each class is split on its own (stratified) into 80 % training, 10 %
validation and 10 % test images, with at least one image of every class in each split. The split
is drawn with the fixed seed SPLIT_SEED, not with the training seed, so it never changes between
runs and test images stay test images. With split folders (train/, val/, test/; "training",
"valid", "validation", "testing" and any capitalisation also count) they are used as given; a
missing val/ or test/ is taken out of train/ the same way (10 % of each class).

Every image is read once with `imageio.read_image` (so the same checks and limits as an uploaded
image apply), turned upright, centre-cropped to a square and shrunk to at most STORE_SIZE pixels.
All images of a dataset are then stored at one common side: STORE_SIZE (128), or the largest
image's side if every image is smaller, so that small images are not blown up and shrunk again.
`data.preprocess` resizes them to `DataConfig.image_size` as for MedMNIST. A folder has one stored
resolution, so `DataConfig.source_size` (the MedMNIST file to read) is ignored for folders.
The set is gray (1 channel) if every image is gray, an RGB file whose three channels agree
included (many X-ray JPEGs are saved that way); a single colour image makes it RGB (3 channels),
and the "grayscale" option converts it back.

The decoded arrays are cached as an .npz file (read with pickle refused) under
$HQCNN_DATA_DIR/folders/cache/ (default ~/.cache/hqcnn/medmnist/folders/cache/), keyed by the
folder's path and a fingerprint of its file names, sizes and modification times, so the second
run loads at once and an edited folder is read anew. Files that are not readable PNG or JPEG
images are skipped and counted, with their names; hidden files (.DS_Store, __MACOSX, …) are
ignored silently.

A .zip is unpacked by `extract_zip` into $HQCNN_DATA_DIR/folders/<first 16 hex digits of its
SHA-256>/, so the same archive is the same dataset. Every member name is checked (no absolute
paths, no "..", no links, no encryption) and the sizes are checked against the limits below
before anything is written; nothing is unpacked with extractall.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import stat
import threading
import uuid
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from hqcnn.errors import DataError, ImageError

# --- limits (stated in the README and in every message that enforces them) -------------------
MAX_IMAGES = 20_000  # image files in one dataset (files found in the class folders)
MAX_TOTAL_PIXELS = 2_000_000_000  # width × height summed over all images, as stored in the files
MAX_FILE_BYTES = 10 * 2**20  # one image file (the limit of imageio.read_image)
MAX_CLASSES = 100
MAX_ZIP_BYTES = 200 * 2**20  # an uploaded .zip
MAX_UNCOMPRESSED = 2**30  # everything inside the .zip, unpacked
MAX_RATIO = 100  # unpacked / packed size, per member over RATIO_FLOOR and for the whole archive
RATIO_FLOOR = 2**20  # members smaller than this cannot hurt, whatever their ratio
MAX_ZIP_ENTRIES = 2 * MAX_IMAGES  # files and folders listed in the archive

STORE_SIZE = 128  # largest side kept in the cache
SPLIT_SEED = 0  # the split never depends on the training seed
VAL_FRACTION = TEST_FRACTION = 0.1
MIN_PER_CLASS = 3  # one image each for training, validation and test
SHOWN_SKIPPED = 10  # file names listed in the warning about skipped files
_FORMAT = 1  # bump when the cache layout or the reading changes

_SPLITS = ("train", "val", "test")
_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
_IGNORED = {"__macosx", "thumbs.db", "desktop.ini", "__pycache__", "$recycle.bin"}
_DICOM_SUFFIXES = {".dcm", ".dicom"}
_GRAY_TOLERANCE = 8  # largest channel difference (0..255) of a pixel in an image counted as gray

Progress = Callable[[int, int], None]


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


LIMITS = (
    f"at most {MAX_IMAGES:,} images and {MAX_TOTAL_PIXELS / 1e9:g} billion pixels in all, "
    f"{_mb(MAX_FILE_BYTES)} per image file, {MAX_CLASSES} classes; "
    f"a .zip of at most {_mb(MAX_ZIP_BYTES)} that unpacks to at most {MAX_UNCOMPRESSED / 2**30:g} GB"
)


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.lower() in _IGNORED


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


# --- scanning ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _File:
    split: str | None  # from a split folder, or None
    label: str  # class folder name
    rel: str  # path relative to the dataset folder, with '/'
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    """A file that was not used, and why."""

    path: str  # relative to the dataset folder
    reason: str


@dataclass
class _Scan:
    files: list[_File]
    skipped: list[Skipped]
    split_folders: dict[str, str]  # canonical split -> folder name as found
    class_folders: set[str]


def _listdir(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return sorted((e for e in it if not _hidden(e.name)), key=lambda e: e.name)
    except OSError as err:
        raise DataError(f"Cannot read the folder {folder}: {err.strerror or err}.") from err


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows a link to a folder given at the top levels
    except OSError:
        return False


def _walk_class(root: Path, folder: Path, split: str | None, label: str, scan: _Scan) -> None:
    """Every visible file below a class folder (sub-folders included; links to folders not followed)."""
    stack = [folder]
    while stack:
        current = stack.pop()
        for entry in _listdir(current):
            rel = Path(entry.path).relative_to(root).as_posix()
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                    continue
                info = entry.stat()  # follows a link to a file
            except OSError as err:
                scan.skipped.append(Skipped(rel, f"cannot be read ({err.strerror or err})"))
                continue
            if entry.is_symlink() and stat.S_ISDIR(info.st_mode):
                scan.skipped.append(Skipped(rel, "a link to a folder (not followed)"))
                continue
            if not stat.S_ISREG(info.st_mode):
                scan.skipped.append(Skipped(rel, "not a regular file"))
                continue
            scan.files.append(_File(split, label, rel, info.st_size, info.st_mtime_ns))
            if len(scan.files) > MAX_IMAGES:
                raise DataError(
                    f"{root} holds more than {MAX_IMAGES:,} files in its class folders; "
                    f"the limit is {MAX_IMAGES:,} images. Use a smaller selection."
                )


def _scan(root: Path) -> _Scan:
    scan = _Scan(files=[], skipped=[], split_folders={}, class_folders=set())
    entries = _listdir(root)
    dirs = [e for e in entries if _is_dir(e)]
    for e in entries:
        if not _is_dir(e):
            scan.skipped.append(Skipped(e.name, "not inside a class folder"))
    splits: dict[str, list[str]] = {}
    for d in dirs:
        canonical = _SPLIT_NAMES.get(d.name.lower())
        if canonical:
            splits.setdefault(canonical, []).append(d.name)
    if splits:
        doubled = [names for names in splits.values() if len(names) > 1]
        if doubled:
            raise DataError(f"{root} has two folders for the same split ({', '.join(doubled[0])}); keep one.")
        if "train" not in splits:
            raise DataError(
                f"{root} has {' and '.join(n[0] + '/' for n in splits.values())} but no train/ folder. "
                "Add train/ (with one sub-folder per class), or drop the split folders and let the app split."
            )
        others = [d.name for d in dirs if d.name.lower() not in _SPLIT_NAMES]
        if others:
            raise DataError(
                f"{root} mixes split folders ({', '.join(n[0] for n in splits.values())}) with other folders "
                f"({', '.join(others[:5])}). Put every class folder inside train/, val/ and test/, or remove the "
                "split folders."
            )
        scan.split_folders = {split: names[0] for split, names in splits.items()}
        for split, name in scan.split_folders.items():
            for entry in _listdir(root / name):
                if _is_dir(entry):
                    scan.class_folders.add(entry.name)
                    _walk_class(root, Path(entry.path), split, entry.name, scan)
                else:
                    scan.skipped.append(Skipped(f"{name}/{entry.name}", "not inside a class folder"))
    else:
        for d in dirs:
            scan.class_folders.add(d.name)
            _walk_class(root, Path(d.path), None, d.name, scan)
    if not scan.class_folders:
        raise DataError(
            f"{root} holds no class folders. Put the images of each class in a sub-folder named after the "
            f"class, e.g. {root.name}/normal/… and {root.name}/pneumonia/…."
        )
    if len(scan.class_folders) > MAX_CLASSES:
        raise DataError(f"{root} has {len(scan.class_folders)} class folders; the limit is {MAX_CLASSES}.")
    scan.files.sort(key=lambda f: f.rel)
    return scan


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


# --- splitting -----------------------------------------------------------------------------------


def _class_rng(label: str, purpose: str) -> np.random.Generator:
    """A generator fixed by SPLIT_SEED and the class name, so adding a class reshuffles no other."""
    seed = hashlib.sha256(f"{SPLIT_SEED}\0{purpose}\0{label}".encode()).digest()[:8]
    return np.random.default_rng(int.from_bytes(seed, "little"))


def _share(fraction: float, n: int) -> int:
    """How many of `n` images make `fraction` of them: at least one."""
    return max(1, round(fraction * n))


def _carve(members: list[int], n_take: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """(kept, taken): `n_take` of `members`, chosen by `rng`."""
    order = rng.permutation(len(members))
    taken = sorted(members[i] for i in order[:n_take])
    kept = sorted(members[i] for i in order[n_take:])
    return kept, taken


def _split(files: list[_File], labels: list[str], explicit: dict[str, str]) -> tuple[dict[str, list[int]], str]:
    """Indices into `files` per split, and a sentence saying how they were made."""
    by_class: dict[tuple[str | None, str], list[int]] = {}
    for i, f in enumerate(files):
        by_class.setdefault((f.split, f.label), []).append(i)
    out: dict[str, list[int]] = {s: [] for s in _SPLITS}
    if not explicit:
        for label in labels:
            members = by_class.get((None, label), [])
            if len(members) < MIN_PER_CLASS:
                raise DataError(
                    f"Class '{label}' has {len(members)} readable image(s); each class needs at least "
                    f"{MIN_PER_CLASS} (one each for training, validation and test). Add images or remove the folder."
                )
            rng = _class_rng(label, "split")
            rest, test = _carve(members, _share(TEST_FRACTION, len(members)), rng)
            train, val = _carve(rest, _share(VAL_FRACTION, len(members)), rng)
            out["train"] += train
            out["val"] += val
            out["test"] += test
        rule = (
            f"Split per class (stratified) into {1 - VAL_FRACTION - TEST_FRACTION:.0%} training, "
            f"{VAL_FRACTION:.0%} validation and {TEST_FRACTION:.0%} test images with the fixed split seed "
            f"{SPLIT_SEED} (the same every run, whatever the training seed)"
        )
        return {s: sorted(v) for s, v in out.items()}, rule
    carved = [s for s in ("val", "test") if s not in explicit]
    for label in labels:
        train = list(by_class.get(("train", label), []))
        if not train:
            raise DataError(
                f"Class '{label}' has no readable images in {explicit['train']}/. Every class needs training images."
            )
        n_given = len(train)
        for split in carved:
            if len(train) < 2:
                raise DataError(
                    f"Class '{label}' has {len(train)} readable image(s) left in {explicit['train']}/, too few to set "
                    f"some aside for {'validation' if split == 'val' else 'test'} (each class needs at least "
                    f"{MIN_PER_CLASS}). Add images, or add a {split}/ folder."
                )
            fraction = VAL_FRACTION if split == "val" else TEST_FRACTION
            train, taken = _carve(train, _share(fraction, n_given), _class_rng(label, split))
            out[split] += taken
        out["train"] += train
        for split in ("val", "test"):
            if split in explicit:
                members = by_class.get((split, label), [])
                if not members:
                    raise DataError(
                        f"Class '{label}' has no readable images in {explicit[split]}/. Every class needs images "
                        "in every split folder."
                    )
                out[split] += members
    given = ", ".join(f"{name}/" for name in explicit.values())
    rule = f"Split as given by the folders {given}"
    if carved:
        words = " and ".join("validation" if s == "val" else "test" for s in carved)
        rule += (
            f"; {words} images taken out of {explicit['train']}/ ({VAL_FRACTION:.0%} of each class each, "
            f"fixed split seed {SPLIT_SEED})"
        )
    return {s: sorted(v) for s, v in out.items()}, rule


# --- the dataset ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderReport:
    """What the Data page tells the user besides the DatasetInfo."""

    folder: str
    split_rule: str
    stored_size: int
    n_files: int  # files found in class folders
    skipped: tuple[Skipped, ...]

    def skipped_message(self) -> str | None:
        """'N files skipped: a (why), b (why), … and M more', or None when none was."""
        if not self.skipped:
            return None
        shown = "; ".join(f"{s.path} ({s.reason})" for s in self.skipped[:SHOWN_SKIPPED])
        more = len(self.skipped) - SHOWN_SKIPPED
        tail = f"; and {more} more" if more > 0 else ""
        noun = "file was" if len(self.skipped) == 1 else "files were"
        return f"{len(self.skipped)} {noun} skipped (only readable PNG and JPEG images are used): {shown}{tail}."


@dataclass(frozen=True)
class FolderData:
    """A folder dataset: catalogue entry, read-only arrays of the three splits, and the report."""

    info: object  # hqcnn.data.DatasetInfo
    arrays: dict[str, tuple[np.ndarray, np.ndarray]]
    report: FolderReport


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


# --- zip archives --------------------------------------------------------------------------------


def _safe_stem(name: str) -> str:
    stem = PurePosixPath(name.replace("\\", "/")).name
    stem = stem[:-4] if stem.lower().endswith(".zip") else stem
    stem = re.sub(r"[^A-Za-z0-9 _.,()+-]", "_", stem).strip(" .")[:60]
    return stem or "images"


def _member_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The path parts of a member, or DataError if its name could write outside the folder."""
    name = info.filename
    shown = name if len(name) <= 80 else name[:77] + "…"
    if "\0" in name:
        raise DataError(f"The zip holds a file with an invalid name ({shown!r}); nothing was unpacked.")
    unified = name.replace("\\", "/")
    if unified.startswith("/") or re.match(r"^[A-Za-z]:", unified):
        raise DataError(
            f"The zip holds a file with an absolute path ({shown}); only paths inside the archive's own "
            "folder are allowed, so nothing was unpacked."
        )
    parts = tuple(p for p in unified.split("/") if p not in ("", "."))
    if ".." in parts:
        raise DataError(
            f"The zip holds a path that climbs out of its folder ({shown}, with '..'); nothing was unpacked. "
            "Make the archive again from the folder itself."
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):  # a symbolic link (Unix permission bits in the high half)
        raise DataError(f"The zip holds a symbolic link ({shown}); links are not allowed, so nothing was unpacked.")
    if info.flag_bits & 0x1:
        raise DataError(f"The zip is password-protected ({shown}); upload an archive without a password.")
    return parts


def _check_members(infos: Iterable[zipfile.ZipInfo], packed_bytes: int) -> list[tuple[zipfile.ZipInfo, tuple]]:
    """The members to unpack, after checking every name and size; DataError before anything is written."""
    infos = list(infos)
    if len(infos) > MAX_ZIP_ENTRIES:
        raise DataError(
            f"The zip lists {len(infos):,} files and folders; the limit is {MAX_ZIP_ENTRIES:,} "
            f"({MAX_IMAGES:,} images). Nothing was unpacked."
        )
    chosen, total = [], 0
    for info in infos:
        parts = _member_parts(info)  # every member, hidden ones too
        if not parts or any(_hidden(p) for p in parts):
            continue
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise DataError(
                f"The zip looks like a zip bomb: {info.filename} would unpack from {info.compress_size:,} bytes to "
                f"{info.file_size:,} (more than {MAX_RATIO}× its packed size, the limit). Nothing was unpacked."
            )
        total += info.file_size
        chosen.append((info, parts))
    if total > MAX_UNCOMPRESSED:
        raise DataError(
            f"The zip would unpack to {total / 2**30:.1f} GB; the limit is {MAX_UNCOMPRESSED / 2**30:g} GB. "
            "Nothing was unpacked."
        )
    if total > RATIO_FLOOR and total > MAX_RATIO * max(packed_bytes, 1):
        raise DataError(
            f"The zip looks like a zip bomb: {packed_bytes:,} bytes would unpack to {total:,} (more than "
            f"{MAX_RATIO}× its size, the limit). Nothing was unpacked."
        )
    files = sum(1 for info, _ in chosen if not info.is_dir())
    if files > MAX_IMAGES:
        raise DataError(f"The zip holds {files:,} files; the limit is {MAX_IMAGES:,} images. Nothing was unpacked.")
    return chosen


def _unpack(archive: zipfile.ZipFile, members: list[tuple[zipfile.ZipInfo, tuple]], target: Path) -> None:
    """Write the checked members under `target`, stopping if one unpacks to more than it declared."""
    base = target.resolve()
    for info, parts in members:
        dest = base.joinpath(*parts)
        if base not in dest.resolve().parents:  # belt and braces after the name checks
            raise DataError(f"The zip member {info.filename} would be written outside its folder; nothing was kept.")
        if info.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with archive.open(info) as source, open(dest, "xb") as sink:
            while block := source.read(1 << 20):
                written += len(block)
                if written > info.file_size:
                    raise DataError(
                        f"The zip member {info.filename} unpacks to more than the {info.file_size:,} bytes it declares "
                        "(a damaged archive or a zip bomb); nothing was kept."
                    )
                sink.write(block)


def _dataset_folder(extracted: Path) -> Path:
    """The folder that holds the classes: a lone top folder (as zipping a folder makes) is stepped into."""
    folder = extracted
    for _ in range(8):
        entries = _listdir(folder)
        if len(entries) == 1 and _is_dir(entries[0]) and entries[0].name.lower() not in _SPLIT_NAMES:
            inner = _listdir(Path(entries[0].path))
            # Step in unless the lone folder is itself a class (its contents are files).
            if inner and all(_is_dir(e) for e in inner):
                folder = Path(entries[0].path)
                continue
        break
    return folder


def _dataset_key(target: Path) -> str:
    """The dataset folder inside an unpacked archive's folder <hash>/<zip name>/."""
    entries = _listdir(target)
    start = Path(entries[0].path) if len(entries) == 1 and _is_dir(entries[0]) else target
    return str(_dataset_folder(start))


def extract_zip(data: bytes, name: str = "images.zip") -> str:
    """Unpack an uploaded .zip of class folders safely; returns the dataset key (a folder path).

    The archive goes to folders_root()/<sha256[:16]>/<zip name>/, so the same archive gives the same
    key (and is unpacked once). Every member is checked before anything is written: no absolute
    paths, no '..', no symbolic links, no encryption, at most MAX_ZIP_ENTRIES entries, at most
    MAX_UNCOMPRESSED bytes unpacked and a compression ratio of at most MAX_RATIO. Hidden files and
    __MACOSX are left out. Raises DataError with the reason.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DataError(f"Expected the bytes of a .zip file, got {type(data).__name__}.")
    data = bytes(data)
    if len(data) > MAX_ZIP_BYTES:
        raise DataError(f"The zip is {len(data) / 2**20:,.1f} MB; the limit is {_mb(MAX_ZIP_BYTES)}.")
    if not data:
        raise DataError("The zip file is empty.")
    digest = hashlib.sha256(data).hexdigest()[:16]
    home = _make_dir(folders_root())
    target = home / digest
    if target.is_dir():
        return _dataset_key(target)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as err:
        raise DataError("The file is not a readable .zip archive.") from err
    with archive:
        members = _check_members(archive.infolist(), len(data))
        if not any(not info.is_dir() for info, _ in members):
            raise DataError("The zip holds no files (hidden files and __MACOSX are ignored).")
        staging = home / f".unpack-{digest}-{uuid.uuid4().hex[:8]}"
        inner = staging / _safe_stem(name)
        try:
            inner.mkdir(parents=True)
            _unpack(archive, members, inner)
        except DataError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, RuntimeError) as err:
            shutil.rmtree(staging, ignore_errors=True)
            raise DataError(
                f"The zip could not be unpacked ({type(err).__name__}: {err}); it may be damaged or use an "
                "unsupported compression. Make it again with your system's 'Compress' command."
            ) from err
    try:
        os.rename(staging, target)  # atomic: `target` is always complete
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another session unpacked the same archive first
        if not target.is_dir():
            raise DataError(f"Cannot store the unpacked images in {target}.") from None
    return _dataset_key(target)


# --- a small example -----------------------------------------------------------------------------


def export_example(dataset: str, per_class: int, out: str | Path, seed: int = 0) -> Path:
    """Write `per_class` images of every class of a MedMNIST set as PNG files in class folders.

    The images come from the training split (28 px; bundled sets work offline). Returns the
    folder, which can then be given as `--dataset` or zipped and uploaded in the app.
    """
    from hqcnn.data import get_info, load_arrays, low_data_indices

    if isinstance(per_class, bool) or not isinstance(per_class, int) or not 1 <= per_class <= 1000:
        raise DataError(f"Images per class must be a whole number from 1 to 1000, got {per_class!r}.")
    if is_folder_key(dataset):
        raise DataError("Give a MedMNIST dataset name to export from, not a folder.")
    info = get_info(dataset)
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} already exists and is not an empty folder; choose a new folder.")
    images, labels = load_arrays(dataset, 28)["train"]
    chosen = low_data_indices(labels, per_class, seed)
    names = [
        re.sub(r"[^A-Za-z0-9 _.,()+-]", "_", n).strip(" .") or f"class_{i}" for i, n in enumerate(info.label_names)
    ]
    for i, name in enumerate(names):
        _make_dir(out / f"{i}_{name}" if names.count(name) > 1 else out / name)
    for index in chosen:
        label = int(labels[index])
        folder = out / (f"{label}_{names[label]}" if names.count(names[label]) > 1 else names[label])
        image = images[index]
        Image.fromarray(image, "L" if image.ndim == 2 else "RGB").save(folder / f"{dataset}_{index:05d}.png")
    return out
