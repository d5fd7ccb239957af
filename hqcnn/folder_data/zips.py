"""Unpacking an uploaded .zip of class folders safely, within the zip limits."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import stat
import uuid
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from hqcnn.errors import DataError
from hqcnn.folder_data import upload_store
from hqcnn.folder_data.limits import (
    MAX_IMAGES,
    MAX_RATIO,
    MAX_UNCOMPRESSED,
    MAX_ZIP_BYTES,
    MAX_ZIP_ENTRIES,
    RATIO_FLOOR,
    _mb,
)
from hqcnn.folder_data.paths import UPLOAD_PREFIX, folders_root
from hqcnn.folder_data.scan import _hidden


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


def _digest(data: bytes) -> tuple[bytes, str]:
    """The archive's bytes and the first 16 hex digits of their SHA-256; DataError if they cannot be a zip."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DataError(f"Expected the bytes of a .zip file, got {type(data).__name__}.")
    data = bytes(data)
    if len(data) > MAX_ZIP_BYTES:
        raise DataError(f"The zip is {len(data) / 2**20:,.1f} MB; the limit is {_mb(MAX_ZIP_BYTES)}.")
    if not data:
        raise DataError("The zip file is empty.")
    return data, hashlib.sha256(data).hexdigest()[:16]


def _extract(data: bytes, digest: str, name: str) -> tuple[str, bool]:
    """`extract_zip` of bytes checked by `_digest`, also saying whether the archive was unpacked now
    (True) or was stored already (False)."""
    key = f"{UPLOAD_PREFIX}{digest}"
    home = folders_root()
    if (home / digest).is_dir():
        upload_store.touch(digest)
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
        inner = staging / _safe_stem(name)
        try:
            inner.mkdir(parents=True)
            _unpack(archive, members, inner)
        except DataError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, RuntimeError) as err:
            shutil.rmtree(staging, ignore_errors=True)
            # An OSError's text holds the server path it failed on: only its reason is shown.
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise DataError(
                f"The zip could not be unpacked ({type(err).__name__}: {reason}); it may be damaged or use an "
                "unsupported compression. Make it again with your system's 'Compress' command."
            ) from err
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    created = upload_store.store(staging, digest)  # atomic: the folder is always complete
    return key, created


def extract_zip(data: bytes, name: str = "images.zip") -> str:
    """Unpack an uploaded .zip of class folders safely; returns its dataset key "upload:<digest>".

    The archive goes to folders_root()/<digest>/<zip name>/, where <digest> is the first 16 hex
    digits of its SHA-256, so the same archive gives the same key (and is unpacked once; unpacking
    it again marks it used). Every member is checked before anything is written: no absolute paths,
    no '..', no symbolic links, no encryption, at most MAX_ZIP_ENTRIES entries, at most
    MAX_UNCOMPRESSED bytes unpacked (and no more than the whole upload store, see upload_store) and
    a compression ratio of at most MAX_RATIO. Hidden files and __MACOSX are left out. Storing it
    removes the least recently used other uploads if the store is over its limit. Raises DataError
    with the reason; no message names a path of the server.

    This only unpacks: `add_upload` also reads the images and removes an archive that is no dataset.
    """
    data, digest = _digest(data)
    return _extract(data, digest, name)[0]
