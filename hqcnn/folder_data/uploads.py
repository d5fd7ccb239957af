"""An upload as the app handles it: unpack, read, keep nothing of an archive that is no dataset, and
remove it when the sessions that uploaded it have ended.

A session that uploads a dataset claims it (`claim_upload`, with the app's test of whether a session
is still connected); a watcher thread removes an upload once every session that claimed it has been
disconnected for OWNER_GRACE_S (a reload or a closed tab: nothing else can reach it, since only the
session that uploaded a dataset may use it). Claims live in this process's memory: after a restart,
or for an upload made on the command line, the store's time limit (upload_store) is what removes it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from hqcnn.datasets_base import Progress
from hqcnn.errors import DataError
from hqcnn.folder_data import upload_store
from hqcnn.folder_data.dataset import FolderData, _forget, load
from hqcnn.folder_data.paths import UPLOAD_PREFIX, _upload_place, is_upload_key
from hqcnn.folder_data.privacy import FILTERED
from hqcnn.folder_data.zips import _digest, _extract

OWNER_GRACE_S = 60.0  # a session disconnected this long has ended (a network blip reconnects sooner)
WATCH_S = 10.0  # how often the watcher looks

_claims: dict[str, set[str]] = {}  # upload key -> ids of the sessions that uploaded it
_gone_since: dict[str, float] = {}  # session id -> when it was first seen disconnected (time.monotonic)
_connected: Callable[[str], bool] | None = None
_claims_lock = threading.Lock()
_watcher: threading.Thread | None = None


def add_upload(
    data: bytes, name: str = "images.zip", progress: Progress | None = None, naming: str = FILTERED
) -> tuple[str, FolderData]:
    """Unpack an uploaded .zip (see `extract_zip`, which also takes `naming`) and read its images
    (see `load`); returns the key "upload:<digest>" and the dataset, whose `info.key` is that key.
    `progress(done, total)` is called while the archive's images are decoded, then while the stored
    pictures are read.

    On any DataError (a hostile archive, no class folders, one class, too few images, …) nothing of
    it stays on disk or in memory, so a rejected upload takes no room. If the read is interrupted
    otherwise (the session ends), an archive unpacked by this very call is removed too; one that was
    stored before (it may be in use by another session) stays.
    """
    data, digest = _digest(data, naming)
    with upload_store.pinned(digest):  # another session's upload must not remove it before it is read
        key, created = _extract(data, digest, name, naming, progress)
        try:
            found = load(key, progress)
        except DataError:
            discard_upload(key)  # the same bytes are no dataset for anyone
            raise
        except BaseException:
            if created:
                discard_upload(key)
            raise
    upload_store.make_room(keep=digest)  # uploads pinned by other reads meanwhile may now go
    return key, found


def discard_upload(key: str) -> int:
    """Remove an uploaded dataset (its stored pictures, caches and what memory holds of it); returns the
    bytes freed. Anything but an upload key is left alone (0): a user's own folder is never deleted."""
    if not is_upload_key(key):
        return 0
    try:
        _forget(_upload_place(key).root)
    except DataError:
        pass  # already gone, or unreadable: removed below all the same
    return upload_store.remove(key[len(UPLOAD_PREFIX) :])


def claim_upload(key: str, session: str, connected: Callable[[str], bool]) -> None:
    """Record that the session `session` uploaded `key`: the upload is removed once every session
    that claimed it has been disconnected (`connected(session)` False) for OWNER_GRACE_S. The
    watcher thread that checks this starts with the first claim and ends with the last."""
    global _connected, _watcher
    if not is_upload_key(key):
        return
    with _claims_lock:
        _claims.setdefault(key, set()).add(session)
        _connected = connected
        if _watcher is None or not _watcher.is_alive():
            _watcher = threading.Thread(target=_watch, name="hqcnn-upload-watcher", daemon=True)
            _watcher.start()


def release_ended_sessions(now: float | None = None) -> list[str]:
    """Remove the uploads whose every claiming session has been disconnected for OWNER_GRACE_S
    (`now`: a time.monotonic() value, for tests); returns their keys. An upload being read stays
    until the next look."""
    now = time.monotonic() if now is None else now
    with _claims_lock:
        connected = _connected
        claims = {key: set(sessions) for key, sessions in _claims.items()}
    if connected is None:
        return []
    ended: set[str] = set()
    for session in {s for sessions in claims.values() for s in sessions}:
        if connected(session):
            _gone_since.pop(session, None)
        elif now - _gone_since.setdefault(session, now) >= OWNER_GRACE_S:
            ended.add(session)
    removed = []
    for key, sessions in claims.items():
        if sessions <= ended and not upload_store.is_pinned(key[len(UPLOAD_PREFIX) :]):
            discard_upload(key)
            removed.append(key)
    with _claims_lock:
        for key in removed:
            _claims.pop(key, None)
        live = {s for sessions in _claims.values() for s in sessions}
        for session in ended - live:
            _gone_since.pop(session, None)
    return removed


def _watch() -> None:
    """Every WATCH_S, remove the uploads of ended sessions; stop once no upload is claimed."""
    global _watcher
    while True:
        time.sleep(WATCH_S)
        try:
            release_ended_sessions()
        except Exception:  # noqa: BLE001 — a failed removal is retried; the time limit is the backstop
            upload_store.log.exception("could not remove the uploads of ended sessions")
        with _claims_lock:
            if not _claims:
                _watcher = None
                return
