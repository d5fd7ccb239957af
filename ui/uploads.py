"""File uploads with limits the server enforces, not only the browser.

`st.file_uploader(max_upload_size=…)` is checked by the page in the browser; Streamlit's upload
handler (PUT /_stcore/upload_file/<session>/<file>) knows nothing of the widget a file is for
and enforces only the server-wide server.maxUploadSize. A file sent to that address directly
reaches the page whatever its uploader allows. So every uploader of the app is `file_uploader`
here: after Streamlit returns the file, its size is checked against that uploader's own limit
before anything reads it, and a file over it is refused with a plain message and dropped from
the server's memory.

Streamlit keeps uploaded files per session (its UploadedFileManager) and frees them only when a
session is shut down. A session whose browser went away is kept for reconnection
(server.disconnectedSessionTTL) and then forgotten *without* being shut down, which leaves its
files in memory for as long as the server runs. `guard_store` therefore watches the sessions that
stored files and frees the files of each one that has been disconnected for longer than that TTL
(it can no longer reconnect), and it bounds what one session stores at once to
server.maxUploadSize: no page of the app needs more than one file at a time, and files sent
directly to the upload address would otherwise pile up without limit.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import streamlit as st

from hqcnn.markdown import md

log = logging.getLogger(__name__)

MB = 2**20
JANITOR_S = 2.0  # how often disconnected sessions are looked at

_guard_lock = threading.Lock()
_guarded: set[int] = set()  # id() of the upload managers already guarded (a test may start several runtimes)


def file_uploader(label: str, *, key: str, max_mb: int, **kwargs: Any) -> Any:
    """st.file_uploader limited to `max_mb` MB by the server as well as by the browser.

    Returns Streamlit's UploadedFile, or None when there is none or it was over the limit (then
    the page shows why, and the file is dropped from the server's memory).
    """
    guard_store()
    upload = st.file_uploader(label, key=key, max_upload_size=max_mb, **kwargs)
    if upload is None or upload.size <= max_mb * MB:
        return upload
    _drop(upload.file_id)
    st.error(
        f"The file '{md(upload.name, limit=80)}' is {upload.size / MB:.1f} MB; this box accepts files of at most "
        f"{max_mb} MB. It was not read. Choose a smaller file.",
        icon="🚫",
    )
    return None


def _upload_manager() -> Any:
    """The running server's UploadedFileManager, or None outside a server (AppTest, scripts)."""
    from streamlit import runtime

    return runtime.get_instance().uploaded_file_mgr if runtime.exists() else None


def _drop(file_id: str) -> None:
    """Remove one file of the calling session from the server's memory."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    manager, ctx = _upload_manager(), get_script_run_ctx(suppress_warning=True)
    if manager is not None and ctx is not None:
        manager.remove_file(ctx.session_id, file_id)


def session_budget_bytes() -> int:
    """The most bytes one session may hold in uploaded files at once: server.maxUploadSize."""
    return int(st.get_option("server.maxUploadSize")) * MB


def guard_store() -> None:
    """Bound what each session stores in the server's UploadedFileManager, and free the files of
    sessions that are gone; once per server (every call after the first returns at once)."""
    manager = _upload_manager()
    if manager is None or not hasattr(manager, "file_storage"):
        return
    with _guard_lock:
        if id(manager) in _guarded:
            return
        _guarded.add(id(manager))
    sessions: dict[str, float | None] = {}  # session id → when it was first seen disconnected
    sessions_lock = threading.Lock()
    add_file = manager.add_file

    def bounded_add_file(session_id: str, file: Any) -> None:
        add_file(session_id=session_id, file=file)
        with sessions_lock:
            sessions.setdefault(session_id, None)
        _trim(manager, session_id, file.file_id)

    manager.add_file = bounded_add_file  # the upload handler calls the manager it was given, this object
    threading.Thread(
        target=_janitor, args=(manager, sessions, sessions_lock), name="hqcnn-upload-janitor", daemon=True
    ).start()


def _trim(manager: Any, session_id: str, newest: str) -> None:
    """Drop a session's older files until what it holds fits its budget (the newest file always stays)."""
    stored = manager.file_storage.get(session_id)
    if stored is None:
        return
    files = list(stored.copy().items())  # insertion order: oldest first; a copy, other threads add and remove
    held = sum(len(rec.data) for _, rec in files)
    for file_id, rec in files:
        if held <= session_budget_bytes():
            break
        if file_id != newest:
            manager.remove_file(session_id, file_id)
            held -= len(rec.data)


def _janitor(manager: Any, sessions: dict[str, float | None], lock: threading.Lock) -> None:
    """Free the files of every session disconnected for longer than server.disconnectedSessionTTL."""
    from streamlit import runtime

    while True:
        time.sleep(JANITOR_S)
        if not runtime.exists():
            return
        ttl = float(st.get_option("server.disconnectedSessionTTL"))
        now = time.monotonic()
        with lock:
            known = list(sessions.items())
        for session_id, gone_since in known:
            if runtime.get_instance().is_active_session(session_id):
                with lock:
                    sessions[session_id] = None
            elif gone_since is None:
                with lock:
                    sessions[session_id] = now
            elif now - gone_since >= ttl:
                manager.remove_session_files(session_id)
                with lock:
                    sessions.pop(session_id, None)
                log.info("freed the uploaded files of a session gone for %.0f s", now - gone_since)
