"""Finding the class folders (and split folders) of a dataset, and the report of skipped files."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from hqcnn.errors import DataError
from hqcnn.folder_data.limits import _IGNORED, _SPLIT_NAMES, MAX_CLASSES, MAX_IMAGES, SHOWN_SKIPPED


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.lower() in _IGNORED


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

    path: str  # relative to the dataset folder; for an upload only its kind, "*.txt" (or "*": no extension)
    reason: str

    def shown(self, count: int = 1) -> str:
        """How the skipped file (or `count` alike) is named in a message: its path, or for an upload
        "a file ending in .txt" / "3 files without an extension"."""
        if not self.path.startswith("*"):
            return self.path if count == 1 else f"{self.path} ({count}×)"
        ending = f"ending in {self.path[1:]}" if len(self.path) > 1 else "without an extension"
        return f"a file {ending}" if count == 1 else f"{count} files {ending}"


@dataclass
class _Scan:
    files: list[_File]
    skipped: list[Skipped]
    split_folders: dict[str, str]  # canonical split -> folder name as found
    class_folders: set[str]


def _listdir(folder: Path, shown: str | None = None) -> list[os.DirEntry]:
    """The visible entries of `folder`, sorted; DataError naming it as `shown` (default: its path)."""
    try:
        with os.scandir(folder) as it:
            return sorted((e for e in it if not _hidden(e.name)), key=lambda e: e.name)
    except OSError as err:
        if shown is not None:  # an upload: the server's path stays out of the message
            raise DataError(f"Cannot read a folder of {shown} ({err.strerror or type(err).__name__}).") from err
        raise DataError(f"Cannot read the folder {folder}: {err.strerror or err}.") from err


def _cap(text: str) -> str:
    """`text` with a capital first letter, for a message that starts with a dataset's name."""
    return text[:1].upper() + text[1:]


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows a link to a folder given at the top levels
    except OSError:
        return False


def _walk_class(root: Path, folder: Path, split: str | None, label: str, scan: _Scan, shown: str | None) -> None:
    """Every visible file below a class folder (sub-folders included; links to folders not followed).
    `shown` names an upload in messages (None: a user's folder, named by its path)."""
    stack = [folder]
    while stack:
        current = stack.pop()
        for entry in _listdir(current, shown):
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
                    f"{_cap(shown or str(root))} holds more than {MAX_IMAGES:,} files in its class folders; "
                    f"the limit is {MAX_IMAGES:,} images. Use a smaller selection."
                )


def _scan(root: Path, shown: str | None = None) -> _Scan:
    """The class (and split) folders and files of the dataset folder `root`; messages name it as
    `shown` (an upload; default: its path)."""
    name = _cap(shown or str(root))
    scan = _Scan(files=[], skipped=[], split_folders={}, class_folders=set())
    entries = _listdir(root, shown)
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
            raise DataError(f"{name} has two folders for the same split ({', '.join(doubled[0])}); keep one.")
        if "train" not in splits:
            raise DataError(
                f"{name} has {' and '.join(n[0] + '/' for n in splits.values())} but no train/ folder. "
                "Add train/ (with one sub-folder per class), or drop the split folders and let the app split."
            )
        others = [d.name for d in dirs if d.name.lower() not in _SPLIT_NAMES]
        if others:
            raise DataError(
                f"{name} mixes split folders ({', '.join(n[0] for n in splits.values())}) with other folders "
                f"({', '.join(others[:5])}). Put every class folder inside train/, val/ and test/, or remove the "
                "split folders."
            )
        scan.split_folders = {split: names[0] for split, names in splits.items()}
        for split, folder_name in scan.split_folders.items():
            for entry in _listdir(root / folder_name, shown):
                if _is_dir(entry):
                    scan.class_folders.add(entry.name)
                    _walk_class(root, Path(entry.path), split, entry.name, scan, shown)
                else:
                    scan.skipped.append(Skipped(f"{folder_name}/{entry.name}", "not inside a class folder"))
    else:
        for d in dirs:
            scan.class_folders.add(d.name)
            _walk_class(root, Path(d.path), None, d.name, scan, shown)
    if not scan.class_folders:
        raise DataError(
            f"{name} holds no class folders. Put the images of each class in a sub-folder named after the "
            f"class, e.g. {root.name}/normal/… and {root.name}/pneumonia/…."
        )
    if len(scan.class_folders) > MAX_CLASSES:
        raise DataError(f"{name} has {len(scan.class_folders)} class folders; the limit is {MAX_CLASSES}.")
    scan.files.sort(key=lambda f: f.rel)
    return scan


@dataclass(frozen=True)
class FolderReport:
    """What the Data page tells the user besides the DatasetInfo."""

    folder: str  # the folder's path, or for an upload how it is named ("your upload 'xrays'")
    split_rule: str
    stored_size: int
    n_files: int  # files found in class folders
    skipped: tuple[Skipped, ...]

    def skipped_message(self) -> str | None:
        """'N files skipped: a (why), b (why), … and M more', or None when none was. An upload's files
        are named only by their extension ("2 files ending in .txt (not a PNG, JPEG or DICOM image)")."""
        if not self.skipped:
            return None
        alike: dict[Skipped, int] = {}  # an upload's files are known by kind: alike ones are counted together
        for s in self.skipped:
            alike[s] = alike.get(s, 0) + 1
        groups = list(alike.items())
        shown = "; ".join(f"{s.shown(n)} ({s.reason})" for s, n in groups[:SHOWN_SKIPPED])
        more = sum(n for _, n in groups[SHOWN_SKIPPED:])
        tail = f"; and {more} more" if more > 0 else ""
        noun = "file was" if len(self.skipped) == 1 else "files were"
        return f"{len(self.skipped)} {noun} skipped (only readable PNG, JPEG and DICOM images are used): {shown}{tail}."
