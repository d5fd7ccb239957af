"""Unpacking an uploaded .zip of class folders safely, within the zip limits, keeping nothing of
the patient.

Nothing of an archive is written as it came. Its layout (the dataset folder, split and class
folders) is read from the member names alone, every image member is decoded once in memory
(`store._decode_bytes`: a DICOM file by hqcnn.dicom, which parses only the pixel module) and only
its picture is stored, as a PNG of at most STORE_SIZE pixels a side with no metadata:

    folders_root()/<digest>/images/[train|val|test/]<class>/<00001>.png    (files 0600, folders 0700)
    folders_root()/<digest>/.upload.json    title, naming, files found, skipped files, DICOM facts

So no DICOM header (patient name, ID, birth date, private tags), no EXIF or PNG text (GPS, names)
and no file name reaches the disk; class folders are stored under the names `privacy.class_names`
gives them, and the dataset's title is `privacy.safe_title` of its folder and zip names. Skipped
files are recorded by extension and reason only. Later reads (`load`) read these PNGs like any
folder, and give exactly the arrays the original files would.
"""

from __future__ import annotations

import concurrent.futures
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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from hqcnn.datasets_base import Progress
from hqcnn.errors import DataError
from hqcnn.folder_data import upload_store
from hqcnn.folder_data.limits import (
    _SPLIT_NAMES,
    MAX_CLASSES,
    MAX_FILE_BYTES,
    MAX_IMAGES,
    MAX_RATIO,
    MAX_TOTAL_PIXELS,
    MAX_UNCOMPRESSED,
    MAX_ZIP_BYTES,
    MAX_ZIP_ENTRIES,
    RATIO_FLOOR,
    _mb,
)
from hqcnn.folder_data.paths import MANIFEST, UPLOAD_PREFIX, folders_root, private_dir, write_private
from hqcnn.folder_data.privacy import FILTERED, NAMINGS, class_names, file_kind, safe_title
from hqcnn.folder_data.scan import FolderReport, Skipped, _hidden
from hqcnn.folder_data.store import _decode_bytes, _Decoded, _without_extension
from hqcnn.imageio import SNIFF_BYTES, sniff_image

DATASET_FOLDER = "images"  # the one folder in <digest>/: the stored dataset
_SHOWN = "your upload"  # how messages about an archive's layout name it (none of its names)


def _safe_stem(name: str) -> str:
    stem = PurePosixPath(name.replace("\\", "/")).name
    stem = stem[:-4] if stem.lower().endswith(".zip") else stem
    stem = re.sub(r"[^A-Za-z0-9 _.,()+-]", "_", stem).strip(" .")[:60]
    return stem or "images"


def _member_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The path parts of a member, or DataError if its name could write outside the folder. Messages
    quote no name from the archive (names of patients' folders)."""
    name = info.filename
    if "\0" in name:
        raise DataError("The zip holds a file with an invalid name (a NUL character); nothing was unpacked.")
    unified = name.replace("\\", "/")
    if unified.startswith("/") or re.match(r"^[A-Za-z]:", unified):
        raise DataError(
            "The zip holds a file with an absolute path (starting with '/' or a drive letter); only paths inside "
            "the archive's own folder are allowed, so nothing was unpacked."
        )
    parts = tuple(p for p in unified.split("/") if p not in ("", "."))
    if ".." in parts:
        raise DataError(
            "The zip holds a path that climbs out of its folder (with '..'); nothing was unpacked. "
            "Make the archive again from the folder itself."
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):  # a symbolic link (Unix permission bits in the high half)
        raise DataError("The zip holds a symbolic link; links are not allowed, so nothing was unpacked.")
    if info.flag_bits & 0x1:
        raise DataError("The zip is password-protected; upload an archive without a password.")
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
                f"The zip looks like a zip bomb: a file would unpack from {info.compress_size:,} bytes to "
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


# --- the layout, from the member names ---------------------------------------------------------

_Tree = dict  # name -> _Tree (a folder) or zipfile.ZipInfo (a file)


def _tree(members: list[tuple[zipfile.ZipInfo, tuple]]) -> _Tree:
    """The checked members as nested folders; DataError if a name is both a file and a folder, or twice a file."""
    root: _Tree = {}
    clash = DataError("The zip lists the same name twice (or as both a file and a folder); nothing was unpacked.")
    for info, parts in members:
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise clash
        last = parts[-1]
        if info.is_dir():
            if not isinstance(node.setdefault(last, {}), dict):
                raise clash
        elif last in node:
            raise clash
        else:
            node[last] = info
    return root


def _files_below(folder: _Tree) -> list[zipfile.ZipInfo]:
    found, stack = [], [folder]
    while stack:
        for entry in stack.pop().values():
            if isinstance(entry, dict):
                stack.append(entry)
            else:
                found.append(entry)
    return found


@dataclass
class _Layout:
    """What `scan._scan` and `paths._dataset_folder` would find in the unpacked archive."""

    titles: list[str]  # the dataset folder's name, then the zip's: candidates for its title
    files: list[tuple[str | None, str, zipfile.ZipInfo]] = field(default_factory=list)  # (split, class, member)
    classes: set[str] = field(default_factory=set)
    skipped: list[Skipped] = field(default_factory=list)  # by kind ("*.txt") and reason


def _layout(tree: _Tree, stem: str) -> _Layout:
    """The dataset folder (a lone top folder is stepped into, as `paths._dataset_folder` does), its
    split and class folders and their files, by the rules of `scan._scan`. Messages name no folder
    of the archive but the split folders (whose names are fixed words)."""
    node, titles = tree, [stem]
    for _ in range(8):
        entries = list(node.items())
        if len(entries) == 1 and isinstance(entries[0][1], dict) and entries[0][0].lower() not in _SPLIT_NAMES:
            name, inner = entries[0]
            if inner and all(isinstance(v, dict) for v in inner.values()):
                node, titles = inner, [name, *titles]
                continue
        break
    layout = _Layout(titles=titles)
    folders = {name: v for name, v in sorted(node.items()) if isinstance(v, dict)}
    for name, v in sorted(node.items()):
        if not isinstance(v, dict):
            layout.skipped.append(Skipped(file_kind(name), "not inside a class folder"))
    splits: dict[str, list[str]] = {}
    for name in folders:
        if canonical := _SPLIT_NAMES.get(name.lower()):
            splits.setdefault(canonical, []).append(name)
    if splits:
        doubled = [names for names in splits.values() if len(names) > 1]
        if doubled:
            raise DataError(f"Your upload has two folders for the same split ({', '.join(doubled[0])}); keep one.")
        if "train" not in splits:
            raise DataError(
                f"Your upload has {' and '.join(n[0] + '/' for n in splits.values())} but no train/ folder. "
                "Add train/ (with one sub-folder per class), or drop the split folders and let the app split."
            )
        others = [name for name in folders if name.lower() not in _SPLIT_NAMES]
        if others:
            raise DataError(
                f"Your upload mixes split folders ({', '.join(n[0] for n in splits.values())}) with "
                f"{len(others)} other folder(s). Put every class folder inside train/, val/ and test/, or remove "
                "the split folders."
            )
        for split, (name,) in splits.items():
            for class_name, v in sorted(folders[name].items()):
                if isinstance(v, dict):
                    layout.classes.add(class_name)
                    layout.files += [(split, class_name, info) for info in _files_below(v)]
                else:
                    layout.skipped.append(Skipped(file_kind(class_name), "not inside a class folder"))
    else:
        for class_name, v in folders.items():
            layout.classes.add(class_name)
            layout.files += [(None, class_name, info) for info in _files_below(v)]
    if not layout.classes:
        raise DataError(
            "Your upload holds no class folders. Put the images of each class in a sub-folder named after the "
            "class, e.g. xrays/normal/… and xrays/pneumonia/…, and zip the folder that holds them."
        )
    if len(layout.classes) > MAX_CLASSES:
        raise DataError(f"Your upload has {len(layout.classes)} class folders; the limit is {MAX_CLASSES}.")
    layout.files.sort(key=lambda f: (f[0] or "", f[1], f[2].filename))
    return layout


# --- reading and storing the pictures ------------------------------------------------------------


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, lock: threading.Lock) -> bytes | None:
    """The member's bytes, or None for a file without an extension whose first bytes say it is no
    image (a DICOM folder's DICOMDIR, LOCKFILE, …: never read further); DataError if it unpacks to
    more than it declares."""
    with lock, archive.open(info) as source:  # one member at a time: the archive shares one file
        head = source.read(SNIFF_BYTES)
        if _without_extension(PurePosixPath(info.filename)) and not sniff_image(head):
            return None
        data = head + source.read(info.file_size - len(head) + 1)
    if len(data) > info.file_size:
        raise DataError(
            f"A file in the zip unpacks to more than the {info.file_size:,} bytes it declares (a damaged archive or "
            "a zip bomb); nothing was kept."
        )
    return data


def _png(rgb: np.ndarray) -> bytes:
    """A picture as a PNG with no metadata: gray ("L") if its three channels are equal, else RGB;
    `read_image(png, 3)` gives `rgb` back exactly."""
    gray = bool((rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 0] == rgb[:, :, 2]).all())
    buffer = io.BytesIO()
    Image.fromarray(rgb[:, :, 0] if gray else rgb, "L" if gray else "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def _store_one(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, lock: threading.Lock) -> _Decoded:
    """Decode one member and write its picture to `dest`; the result without its pixels (they are on disk)."""
    if info.file_size > MAX_FILE_BYTES:
        return _Decoded(reason=f"larger than the {_mb(MAX_FILE_BYTES)} limit per image")
    data = _read_member(archive, info, lock)
    if data is None:
        return _Decoded(reason="not a PNG, JPEG or DICOM image")
    decoded = _decode_bytes(data)
    del data
    if decoded.image is not None:
        write_private(dest, _png(decoded.image))
        decoded.image = None
    return decoded


def _store_pictures(
    archive: zipfile.ZipFile, layout: _Layout, names: dict[str, str], folder: Path, progress: Progress | None
) -> tuple[dict[str, dict], list[Skipped]]:
    """Decode every file of the layout in a few threads and write the pictures under `folder` (the
    stored dataset folder); returns the DICOM facts by stored file and the files skipped."""
    jobs: list[tuple[zipfile.ZipInfo, Path, str]] = []
    counters: dict[tuple[str | None, str], int] = {}
    for split, label, _ in layout.files:
        counters.setdefault((split, label), 0)
    for split, label in counters:
        base = folder if split is None else folder / split
        if not base.is_dir():
            private_dir(base)
        private_dir(base / names[label])
    for split, label, info in layout.files:
        counters[(split, label)] += 1
        rel = "/".join([*(s for s in [split] if s), names[label], f"{counters[(split, label)]:05d}.png"])
        jobs.append((info, folder / rel, rel))
    for split, label in {(s, c) for s in {f[0] for f in layout.files} for c in layout.classes} - set(counters):
        private_dir((folder if split is None else folder / split) / names[label])  # an empty class: load says so
    facts: dict[str, dict] = {}
    skipped: list[Skipped] = []
    lock = threading.Lock()
    total_pixels = 0
    workers = max(1, min(4, os.cpu_count() or 1))  # PIL and pydicom's decoders release the GIL
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hqcnn-unpack") as pool:
        try:
            results = pool.map(lambda job: _store_one(archive, job[0], job[1], lock), jobs)
            for done, ((info, _, rel), decoded) in enumerate(zip(jobs, results, strict=True), start=1):
                total_pixels += decoded.pixels
                if total_pixels > MAX_TOTAL_PIXELS:
                    raise DataError(
                        f"The images in your upload hold more than {MAX_TOTAL_PIXELS / 1e9:g} billion pixels in all "
                        "(the limit). Use fewer or smaller images."
                    )
                if decoded.reason is not None:
                    skipped.append(Skipped(file_kind(info.filename), decoded.reason))
                elif decoded.facts is not None:
                    facts[rel] = decoded.facts
                if progress is not None:
                    progress(done, len(jobs))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return facts, skipped


def _unpack(
    archive: zipfile.ZipFile,
    members: list[tuple[zipfile.ZipInfo, tuple]],
    staging: Path,
    stem: str,
    naming: str,
    progress: Progress | None,
) -> None:
    """Store the pictures of the checked members and the upload's record under `staging` (created here)."""
    layout = _layout(_tree(members), stem)
    names = class_names(sorted(layout.classes), naming)
    private_dir(staging)
    folder = private_dir(staging / DATASET_FOLDER)
    if not layout.files:
        raise DataError("The class folders in your upload hold no files. Put PNG, JPEG or DICOM images in them.")
    facts, skipped = _store_pictures(archive, layout, names, folder, progress)
    skipped = sorted(layout.skipped + skipped, key=lambda s: (s.path, s.reason))
    if len(skipped) - len(layout.skipped) == len(layout.files):
        report = FolderReport(_SHOWN, "", 0, len(layout.files), tuple(skipped))
        raise DataError(
            f"None of the {len(layout.files)} files in the class folders of your upload is a readable PNG, JPEG or "
            "DICOM image. " + (report.skipped_message() or "")
        )
    record = {
        "title": safe_title(layout.titles),
        "naming": naming,
        "n_files": len(layout.files),
        "skipped": [[s.path, s.reason] for s in skipped],
        "images": facts,
    }
    write_private(staging / MANIFEST, json.dumps(record).encode())


def _digest(data: bytes, naming: str = FILTERED) -> tuple[bytes, str]:
    """The archive's bytes and its digest: the first 16 hex digits of their SHA-256 (of the bytes and
    the naming, for any naming but the default); DataError if they cannot be a zip."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DataError(f"Expected the bytes of a .zip file, got {type(data).__name__}.")
    if naming not in NAMINGS:
        raise DataError(f"Class names can be {' or '.join(NAMINGS)}, not {naming!r}.")
    data = bytes(data)
    if len(data) > MAX_ZIP_BYTES:
        raise DataError(f"The zip is {len(data) / 2**20:,.1f} MB; the limit is {_mb(MAX_ZIP_BYTES)}.")
    if not data:
        raise DataError("The zip file is empty.")
    hashed = hashlib.sha256(data)
    if naming != FILTERED:  # the same archive under another naming is another stored dataset
        hashed.update(f"\0naming={naming}".encode())
    return data, hashed.hexdigest()[:16]


def _extract(
    data: bytes, digest: str, name: str, naming: str = FILTERED, progress: Progress | None = None
) -> tuple[str, bool]:
    """`extract_zip` of bytes checked by `_digest`, also saying whether the archive was unpacked now
    (True) or was stored already (False)."""
    key = f"{UPLOAD_PREFIX}{digest}"
    home = folders_root()
    if (home / digest).is_dir():
        upload_store.touch(digest)
        if (home / digest).is_dir():  # not swept away as expired by that very touch
            return key, False
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as err:
        raise DataError("The file is not a readable .zip archive.") from err
    with archive:
        members = _check_members(archive.infolist(), len(data))
        if not any(not info.is_dir() for info, _ in members):
            raise DataError("The zip holds no files (hidden files and __MACOSX are ignored).")
        upload_store.check_fits(sum(info.file_size for info, _ in members))
        upload_store.start()  # creates the store; the first time in a process, removes what a crash left
        staging = home / f".unpack-{digest}-{uuid.uuid4().hex[:8]}"
        try:
            _unpack(archive, members, staging, _safe_stem(name), naming, progress)
        except DataError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, RuntimeError) as err:
            shutil.rmtree(staging, ignore_errors=True)
            # An OSError's text holds the server path it failed on, zipfile's the member's name: neither is shown.
            reason = f": {err.strerror}" if isinstance(err, OSError) and err.strerror else ""
            raise DataError(
                f"The zip could not be unpacked ({type(err).__name__}{reason}); it may be damaged or use an "
                "unsupported compression. Make it again with your system's 'Compress' command."
            ) from err
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    created = upload_store.store(staging, digest)  # atomic: the folder is always complete
    return key, created


def extract_zip(data: bytes, name: str = "images.zip", naming: str = FILTERED) -> str:
    """Unpack an uploaded .zip of class folders safely; returns its dataset key "upload:<digest>".

    Only the pictures are stored (see the module's note): folders_root()/<digest>/images/…, where
    <digest> is the first 16 hex digits of the archive's SHA-256 (with the naming mixed in unless it
    is the default), so the same archive gives the same key (and is unpacked once; unpacking it
    again marks it used). `naming` is privacy.FILTERED (class names that do not look like personal
    data are kept, the others numbered) or privacy.NUMBERED (every class numbered). Every member is
    checked before anything is written: no absolute paths, no '..', no symbolic links, no
    encryption, at most MAX_ZIP_ENTRIES entries, at most MAX_UNCOMPRESSED bytes unpacked (and no
    more than the whole upload store, see upload_store) and a compression ratio of at most
    MAX_RATIO. Hidden files and __MACOSX are left out. Storing it removes expired and least
    recently used other uploads. Raises DataError with the reason; no message names a path of the
    server or a name from the archive.

    This only unpacks: `add_upload` also reads the images and removes an archive that is no dataset.
    """
    data, digest = _digest(data, naming)
    return _extract(data, digest, name, naming)[0]
