"""An upload as the app handles it: unpack, read, and keep nothing of an archive that is no dataset."""

from __future__ import annotations

from hqcnn.datasets_base import Progress
from hqcnn.errors import DataError
from hqcnn.folder_data import upload_store
from hqcnn.folder_data.dataset import FolderData, _forget, load
from hqcnn.folder_data.paths import UPLOAD_PREFIX, _upload_place, is_upload_key
from hqcnn.folder_data.zips import _digest, _extract


def add_upload(data: bytes, name: str = "images.zip", progress: Progress | None = None) -> tuple[str, FolderData]:
    """Unpack an uploaded .zip (see `extract_zip`) and read its images (see `load`); returns the key
    "upload:<digest>" and the dataset, whose `info.key` is that key.

    On any DataError (a hostile archive, no class folders, one class, too few images, …) nothing of
    it stays on disk or in memory, so a rejected upload takes no room. If the read is interrupted
    otherwise (the session ends), an archive unpacked by this very call is removed too; one that was
    stored before (it may be in use by another session) stays.
    """
    data, digest = _digest(data)
    with upload_store.pinned(digest):  # another session's upload must not remove it before it is read
        key, created = _extract(data, digest, name)
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
    """Remove an uploaded dataset (its unpacked files, caches and what memory holds of it); returns the
    bytes freed. Anything but an upload key is left alone (0): a user's own folder is never deleted."""
    if not is_upload_key(key):
        return 0
    try:
        _forget(_upload_place(key).root)
    except DataError:
        pass  # already gone, or unreadable: removed below all the same
    return upload_store.remove(key[len(UPLOAD_PREFIX) :])
