"""The bounded store of uploaded datasets: at most HQCNN_UPLOAD_STORE_GB (default 4 GB) of unpacked
uploads (folders_root()/<digest>/) and their .npz caches (folders_root()/cache/upload-<digest>-*.npz).

Using an upload (unpacking the same archive again, loading it) sets its folder's modification time,
so the folder times order the uploads by last use. After an upload is stored and after its cache is
written, the least recently used other uploads are removed until the total is under the limit; the
one just used is never removed (nor one this process is adding or reading), and an archive that alone would unpack to more than the limit is
refused before unpacking. Every change happens under one lock (a thread lock and an flock on
folders_root()/.lock, so server processes that share the folder agree). A removed upload is first
renamed to .evict-*, so it disappears at once, and then deleted outside the lock. Staging folders
left by a crashed unpack (.unpack-* older than STALE_SECONDS) and unfinished removals are deleted
on the first use of the store in each process.

Besides the size limit, an upload lives at most $HQCNN_UPLOAD_HOURS (default 8) hours after its
last use: every time the store is used (its lock taken: an upload stored, loaded, listed), uploads
unused for longer are removed first, and so is any upload folder without its record (.upload.json),
such as the unpacked raw files an older version kept. Everything in the store is the server user's
alone: folders 0700, files 0600.

Sizes are the files' sizes in bytes; an upload's unpacked size is counted once per process (an
unpacked upload never changes). Several unpacks running at once may pass the limit for a moment by
their staging folders: they are counted once stored.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hqcnn.errors import DataError
from hqcnn.folder_data.paths import MANIFEST, UPLOAD_PREFIX, _upload_dir, folders_root, make_dir, title

try:
    import fcntl
except ImportError:  # Windows: one process per data folder, the thread lock alone
    fcntl = None

log = logging.getLogger(__name__)

ENV_LIMIT = "HQCNN_UPLOAD_STORE_GB"
DEFAULT_LIMIT_GB = 4.0
ENV_HOURS = "HQCNN_UPLOAD_HOURS"
DEFAULT_HOURS = 8.0  # a school day: a session that left its upload unused this long has ended
STALE_SECONDS = 600  # a staging folder this old belongs to an unpack that died
STORE_NAME = "the storage for uploaded images"  # how messages name folders_root()

_DIGEST = re.compile(r"^[0-9a-f]{16}$")
_THREAD_LOCK = threading.RLock()
_held = 0  # how deeply this process holds the lock (the flock is taken once)
_started: set[str] = set()  # stores cleaned up in this process
_sizes: dict[tuple[str, str], int] = {}  # (store, digest) -> unpacked bytes
_warned: set[object] = set()
_pins: dict[str, int] = {}  # digest -> readers in this process (added or being read): not removed


def _positive_setting(name: str, default: float, unit: str, short: str) -> float:
    """The positive number in environment variable `name`, else `default`; an invalid value is logged
    once as a warning (in `unit`s, the default written with `short`) and the default used."""
    raw = os.environ.get(name, "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value > 0:
            return value
        if (name, raw) not in _warned:
            _warned.add((name, raw))
            log.warning("%s=%r is not a positive number of %s; using %g %s.", name, raw, unit, default, short)
    return default


def limit_bytes() -> int:
    """The store's limit in bytes: $HQCNN_UPLOAD_STORE_GB gigabytes (2**30 bytes; a positive number,
    e.g. "0.5"), or DEFAULT_LIMIT_GB."""
    return max(1, int(_positive_setting(ENV_LIMIT, DEFAULT_LIMIT_GB, "gigabytes", "GB") * 2**30))


def lifetime_seconds() -> float:
    """How long an unused upload is kept: $HQCNN_UPLOAD_HOURS hours (a positive number, e.g. "0.5"),
    or DEFAULT_HOURS."""
    return _positive_setting(ENV_HOURS, DEFAULT_HOURS, "hours", "hours") * 3600.0


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 / 10 else f"{n / 2**20:,.1f} MB"


# --- the lock ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked() -> Iterator[Path]:
    """Hold the store's lock (re-entrant in one thread); yields folders_root(), created. The first time
    in a process it also removes what a crashed unpack or removal left behind."""
    global _held
    with _THREAD_LOCK:
        home = make_dir(folders_root(), STORE_NAME)
        if _held:
            _held += 1
            try:
                yield home
            finally:
                _held -= 1
            return
        try:
            handle = os.fdopen(os.open(home / ".lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a")
        except OSError as err:
            raise DataError(f"Cannot use {STORE_NAME} on this server ({err.strerror or type(err).__name__}).") from err
        doomed: list[Path] = []
        with handle:  # closing it releases the flock
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            _held = 1
            try:
                if str(home) not in _started:
                    _started.add(str(home))
                    _clean_leftovers(home)
                doomed = _sweep(home)
                yield home
            finally:
                _held = 0
        _delete(doomed)


def _clean_leftovers(home: Path) -> None:
    """Delete stale staging folders (.unpack-*), unfinished removals (.evict-*) and stale temporary
    cache files. Fresh staging folders are left alone: another process may be unpacking into them."""
    now = time.time()
    places = [home, home / "cache"]
    for place in places:
        try:
            entries = list(os.scandir(place))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            if name.startswith(".evict-") or (name.startswith(".unpack-") and age > STALE_SECONDS):
                shutil.rmtree(entry.path, ignore_errors=True)
                log.info("removed the leftover folder %s", entry.path)
            elif place != home and name.endswith(".tmp.npz") and age > STALE_SECONDS:
                Path(entry.path).unlink(missing_ok=True)


def _sweep(home: Path) -> list[Path]:
    """Under the lock: take out the uploads unused for longer than `lifetime_seconds()` and those
    without their record (not unpacked by this version: they may hold the raw files); returns the
    folders to delete once the lock is released. Uploads this process is adding or reading stay."""
    oldest = time.time() - lifetime_seconds()
    doomed = []
    for used, digest in _digests(home):
        if digest in _pins:
            continue
        expired = used < oldest
        if expired or not (home / digest / MANIFEST).is_file():
            log.info("removing the upload %s (%s)", digest, "unused too long" if expired else "an old format")
            if (path := _take_out(home, digest)) is not None:
                doomed.append(path)
    return doomed


def start() -> None:
    """Create the store, remove expired uploads (see `_sweep`) and, once per process, clean up what a
    crash left (see `_clean_leftovers`)."""
    with _locked():
        pass


# --- what the store holds ------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """One stored upload, as `python -m hqcnn datasets` lists it."""

    key: str  # "upload:<digest>"
    title: str
    bytes: int  # unpacked files and caches
    last_used: float  # seconds since the epoch


def _tree_bytes(folder: Path) -> int:
    total = 0
    stack = [folder]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    else:
                        total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue  # being removed: counts what is left
    return total


def _cache_files(home: Path, digest: str) -> list[Path]:
    return list((home / "cache").glob(f"upload-{digest}-*.npz"))


def _upload_bytes(home: Path, digest: str) -> int:
    unpacked = _sizes.get((str(home), digest))
    if unpacked is None:
        unpacked = _sizes.setdefault((str(home), digest), _tree_bytes(home / digest))
    cached = 0
    for path in _cache_files(home, digest):
        with contextlib.suppress(OSError):
            cached += path.stat().st_size
    return unpacked + cached


def _digests(home: Path) -> list[tuple[float, str]]:
    """(last use, digest) of every stored upload, least recently used first."""
    found = []
    try:
        entries = list(os.scandir(home))
    except OSError:
        return []
    for entry in entries:
        if _DIGEST.match(entry.name):
            try:
                if entry.is_dir(follow_symlinks=False):
                    found.append((entry.stat(follow_symlinks=False).st_mtime, entry.name))
            except OSError:
                continue
    return sorted(found)


def uploads() -> list[Upload]:
    """Every stored upload, least recently used first."""
    with _locked() as home:
        return [
            Upload(f"{UPLOAD_PREFIX}{digest}", title(f"{UPLOAD_PREFIX}{digest}"), _upload_bytes(home, digest), used)
            for used, digest in _digests(home)
        ]


def total_bytes() -> int:
    """Bytes the stored uploads and their caches take, against `limit_bytes()`."""
    with _locked() as home:
        return sum(_upload_bytes(home, digest) for _, digest in _digests(home))


# --- changing it -----------------------------------------------------------------------------------


def touch(digest: str) -> None:
    """Mark an upload as used now (its folder's time orders the least recently used)."""
    if not _DIGEST.match(digest):
        return
    with _locked():
        with contextlib.suppress(OSError):  # gone: loading it says so
            os.utime(_upload_dir(digest))


@contextlib.contextmanager
def pinned(digest: str) -> Iterator[None]:
    """While held, this process is adding or reading the upload: it is not removed to make room
    (the store may pass its limit meanwhile; the next upload or cache written brings it back)."""
    with _THREAD_LOCK:
        _pins[digest] = _pins.get(digest, 0) + 1
    try:
        yield
    finally:
        with _THREAD_LOCK:
            if _pins[digest] <= 1:
                del _pins[digest]
            else:
                _pins[digest] -= 1


def is_pinned(digest: str) -> bool:
    """True while this process is adding or reading the upload (see `pinned`)."""
    with _THREAD_LOCK:
        return digest in _pins


def check_fits(unpacked: int) -> None:
    """DataError if an archive that unpacks to `unpacked` bytes is larger than the whole store."""
    limit = limit_bytes()
    if unpacked > limit:
        raise DataError(
            f"The zip would unpack to {_gb(unpacked)}, more than the {_gb(limit)} this server keeps for all "
            "uploaded images together. Upload a smaller selection. Nothing was unpacked."
        )


def _take_out(home: Path, digest: str) -> Path | None:
    """Under the lock: make an upload disappear (renamed to .evict-*) and delete its caches; returns
    the renamed folder to delete after the lock is released."""
    for path in _cache_files(home, digest):
        path.unlink(missing_ok=True)
    _sizes.pop((str(home), digest), None)
    doomed = home / f".evict-{digest}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(home / digest, doomed)
    except FileNotFoundError:
        return None
    except OSError:
        shutil.rmtree(home / digest, ignore_errors=True)
        return None
    return doomed


def store(staging: Path, digest: str) -> bool:
    """Move an unpacked archive from `staging` to its folder (atomically) and make room for it;
    True if it was stored, False if the folder was there already (`staging` is then deleted)."""
    doomed: list[Path] = []
    with _locked() as home:
        target = home / digest
        try:
            os.rename(staging, target)
            stored = True
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another session unpacked the same archive first
            if not target.is_dir():
                raise DataError("Cannot store the unpacked images on this server; try again later.") from None
            stored = False
        with contextlib.suppress(OSError):
            os.utime(target)  # used now: the last to be removed
        doomed = _evict(home, keep=digest)
    _delete(doomed)
    return stored


def make_room(keep: str | None = None) -> list[str]:
    """Remove the least recently used uploads (never `keep`) until the store is under its limit;
    returns their keys. Caches whose upload is gone are removed too."""
    with _locked() as home:
        doomed = _evict(home, keep)
    _delete(doomed)
    return [f"{UPLOAD_PREFIX}{p.name.split('-')[1]}" for p in doomed]


def _evict(home: Path, keep: str | None) -> list[Path]:
    stored = _digests(home)
    present = {digest for _, digest in stored}
    for path in (home / "cache").glob("upload-*-*.npz"):
        if path.name.split("-")[1] not in present:  # its upload was removed while it was written
            path.unlink(missing_ok=True)
    limit = limit_bytes()
    sizes = {digest: _upload_bytes(home, digest) for digest in present}
    total = sum(sizes.values())
    doomed = []
    for _, digest in stored:
        if total <= limit:
            break
        if digest == keep or digest in _pins:
            continue
        log.info("removing the upload %s (%s) to keep uploads under %s", digest, _gb(sizes[digest]), _gb(limit))
        total -= sizes[digest]
        if (path := _take_out(home, digest)) is not None:
            doomed.append(path)
    return doomed


def _delete(doomed: list[Path]) -> None:
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)


def remove(digest: str) -> int:
    """Delete one upload and its caches; returns the bytes freed (0 if it was not there)."""
    if not _DIGEST.match(digest):
        return 0
    with _locked() as home:
        freed = _upload_bytes(home, digest) if (home / digest).is_dir() else 0
        doomed = _take_out(home, digest)
    _delete([doomed] if doomed else [])
    return freed


def clear() -> list[tuple[str, int]]:
    """Delete every upload, every folder cache (uploads' and the command line's folders') and every
    leftover staging folder; returns (what, bytes) for each thing removed."""
    removed = []
    with _locked() as home:
        for _, digest in _digests(home):
            name = f"upload {UPLOAD_PREFIX}{digest} ({title(UPLOAD_PREFIX + digest)})"
            removed.append((name, _tree_bytes(home / digest)))
            shutil.rmtree(home / digest, ignore_errors=True)
            _sizes.pop((str(home), digest), None)
        cache = home / "cache"
        if cache.is_dir():
            removed.append((f"folder caches ({cache})", _tree_bytes(cache)))
            shutil.rmtree(cache, ignore_errors=True)
        for entry in list(os.scandir(home)):
            if entry.name.startswith((".unpack-", ".evict-")):
                removed.append((f"unfinished unpack {entry.name}", _tree_bytes(Path(entry.path))))
                shutil.rmtree(entry.path, ignore_errors=True)
    return removed
