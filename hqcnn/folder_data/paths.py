"""Where folder datasets live, telling a folder key from a MedMNIST name, and resolving a key.

A key is either a folder path (the command line: the user owns the machine) or an upload key
"upload:<16 hex digits>" (the app): the digest names the folder the .zip was unpacked into, so a
session, a link or a saved model never carries a path of the server.

Everything stored of an upload (and every cache) is private to the server's user: folders 0700,
files 0600 (`private_dir`, `write_private`), whatever the umask.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from hqcnn.datasets_base import data_dir
from hqcnn.errors import DataError
from hqcnn.folder_data.limits import _SPLIT_NAMES
from hqcnn.folder_data.privacy import UPLOADED_TITLE
from hqcnn.folder_data.scan import _is_dir, _listdir

UPLOAD_PREFIX = "upload:"
_UPLOAD_KEY = re.compile(r"^upload:[0-9a-f]{16}$")
_DIGEST = re.compile(r"^[0-9a-f]{16}$")
UPLOADED = UPLOADED_TITLE  # how an upload is named when no name from it may be shown (or it is gone)
MANIFEST = ".upload.json"  # in an upload's folder: its title, skipped files and image facts (hidden: never scanned)
GONE = (
    "This uploaded dataset is no longer on the server (storage is limited and old uploads are removed); "
    "upload the .zip again."
)

# --- where things live ---------------------------------------------------------------------------


def folders_root() -> Path:
    """$HQCNN_DATA_DIR/folders (or ~/.cache/hqcnn/medmnist/folders): unpacked uploads and the cache."""
    return data_dir() / "folders"


def make_dir(path: Path, shown: str | None = None) -> Path:
    """Create `path` (and missing parents) readable by this user alone (0700); DataError naming it as
    `shown` (when given, the path stays out of the message). An existing folder is made 0700 too."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)  # mkdir's mode is cut by the umask, and the folder may be older
    except OSError as err:
        if shown is not None:
            raise DataError(f"Cannot create {shown} on this server ({err.strerror or type(err).__name__}).") from err
        raise DataError(f"Cannot create the folder {path}: {err.strerror or err}.") from err
    return path


def private_dir(path: Path) -> Path:
    """Create the folder `path` (its parent exists) with mode 0700; OSError if it cannot."""
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)
    return path


@contextlib.contextmanager
def private_file(path: Path) -> Iterator[BinaryIO]:
    """A new file `path` opened for writing with mode 0600 from its creation (never readable by others,
    not even for a moment); OSError if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    if hasattr(os, "fchmod"):  # exactly 0600, whatever the umask took away
        os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as handle:
        yield handle


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to the new file `path` with mode 0600 (see `private_file`)."""
    with private_file(path) as handle:
        handle.write(data)


def _upload_dir(digest: str) -> Path:
    """The folder an upload was unpacked into: folders_root()/<digest>/<zip name>/…"""
    return folders_root() / digest


def manifest(digest: str) -> dict[str, Any]:
    """What an upload's folder records of it (`MANIFEST`): "title", "n_files", "skipped" ([kind,
    reason] pairs) and "images" (facts by stored file); {} if it has none or it cannot be read."""
    try:
        found = json.loads((_upload_dir(digest) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _manifest_title(digest: str) -> str:
    title = manifest(digest).get("title")
    return title if isinstance(title, str) and title else UPLOADED


def _digest_of(root: Path) -> str | None:
    """The upload digest if `root` lies inside an unpacked upload, else None (a user's own folder)."""
    try:
        rel = root.relative_to(folders_root().resolve())
    except ValueError:
        return None
    return rel.parts[0] if rel.parts and _DIGEST.match(rel.parts[0]) else None


# --- recognising a folder dataset ----------------------------------------------------------------


def is_upload_key(key: object) -> bool:
    """True for the key of an uploaded .zip: exactly "upload:" and 16 lowercase hex digits."""
    return isinstance(key, str) and _UPLOAD_KEY.match(key) is not None


def is_folder_key(key: object) -> bool:
    """True if `key` names a folder rather than a MedMNIST set: an upload key, or a string that
    contains a path separator, starts with '.', '~' or a drive letter, or is an existing folder.
    (It need not exist: `load` says so.) A string that starts like an upload key but is not one
    ("upload:../x") is neither: it is an unknown dataset name."""
    if not isinstance(key, str) or not key:
        return False
    if key.startswith(UPLOAD_PREFIX):
        return is_upload_key(key)
    if "/" in key or "\\" in key or key.startswith((".", "~")) or re.match(r"^[A-Za-z]:", key):
        return True
    try:
        return Path(key).is_dir()
    except OSError:
        return False


# --- resolving a key -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    """A folder dataset on disk, and how messages name it."""

    root: Path  # the dataset folder (the one that holds the class or split folders), resolved
    shown: str  # the path the user gave, or "your upload 'xrays'": never a server path for an upload
    digest: str | None = None  # for an upload, the digest of its archive


def _dataset_folder(extracted: Path) -> Path:
    """The folder that holds the classes: a lone top folder (as zipping a folder makes) is stepped into."""
    folder = extracted
    for _ in range(8):
        entries = _listdir(folder, UPLOADED)
        if len(entries) == 1 and _is_dir(entries[0]) and entries[0].name.lower() not in _SPLIT_NAMES:
            inner = _listdir(Path(entries[0].path), UPLOADED)
            # Step in unless the lone folder is itself a class (its contents are files).
            if inner and all(_is_dir(e) for e in inner):
                folder = Path(entries[0].path)
                continue
        break
    return folder


def _unpacked_folder(target: Path) -> Path:
    """The dataset folder inside an unpacked archive's folder <digest>/<zip name>/."""
    entries = _listdir(target, UPLOADED)
    start = Path(entries[0].path) if len(entries) == 1 and _is_dir(entries[0]) else target
    return _dataset_folder(start)


def _upload_place(key: str) -> _Place:
    digest = key[len(UPLOAD_PREFIX) :]
    target = _upload_dir(digest)
    if not target.is_dir():
        raise DataError(GONE)
    try:
        root = _unpacked_folder(target).resolve()
    except DataError:
        if not target.is_dir():  # removed while we looked
            raise DataError(GONE) from None
        raise
    name = _manifest_title(digest)
    return _Place(root=root, shown=UPLOADED if name == UPLOADED else f"your upload '{name}'", digest=digest)


def _resolve(key: str) -> _Place:
    """The folder a dataset key names; DataError if there is none."""
    if is_upload_key(key):
        return _upload_place(key)
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
    return _Place(root=resolved, shown=str(resolved), digest=_digest_of(resolved))


def _root(key: str) -> Path:
    """The dataset folder a key names (see `_resolve`)."""
    return _resolve(key).root


def title(key: str) -> str:
    """A short name for a folder dataset: its folder's name; for an upload, the title chosen when it
    was unpacked (the folder in the zip or the zip's name, if it does not look like personal data,
    see privacy.safe_title), "your uploaded images" otherwise and once the upload is gone. Never raises."""
    if is_upload_key(key):
        return _manifest_title(key[len(UPLOAD_PREFIX) :])
    path = Path(os.path.expanduser(key))
    return path.name or str(path)


def file_label(key: str) -> str:
    """A dataset key as a safe part of a file or folder name: a MedMNIST name as it is, a folder
    dataset as its folder's name (letters, digits, '_', '-', '.'; no path separators)."""
    label = title(key) if is_folder_key(key) else key
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "images"
