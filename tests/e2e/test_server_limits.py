"""Server-side limits of the real app over HTTP, in a real browser: a file over its uploader's limit
sent to the upload address directly (the page's own check bypassed), the uploaded files of a
session whose browser has gone, and one job per client across the tabs of one browser.

These tests start their own `streamlit run app.py` (a short server.disconnectedSessionTTL, no
shipped results set so that the Experiments page shows its uploader) and read what the server
holds from Streamlit's /_stcore/metrics (the UploadedFileManager's bytes).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import LOAD_TIMEOUT_MS, ROOT, SERVER_START_S, VIEWPORT, _free_port, _healthy
from tests.e2e.test_browser import ERROR, assert_healthy, button, open_page, texts, wait_idle

TTL_S = 4  # server.disconnectedSessionTTL of this server
MB = 2**20
UPLOADS_METRIC = re.compile(r"cache_memory_bytes\{[^}]*UploadedFileManager[^}]*\}\s+(\d+)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server of this module's own, with a short disconnected-session TTL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("streamlit-limits") / "server.log"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "HQCNN_SHIPPED_DIR": str(tmp_path_factory.mktemp("no-shipped-set") / "none"),
    }
    env.pop("HQCNN_JOBS_PER_CLIENT", None)
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(port), "--server.fileWatcherType", "none",
               "--server.disconnectedSessionTTL", str(TTL_S)]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not _healthy(f"{base}/_stcore/health"):
            assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def new_page(browser, base: str):
    context = browser.new_context(viewport=VIEWPORT, base_url=base, reduced_motion="reduce")
    context.set_default_timeout(LOAD_TIMEOUT_MS)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    return page


def uploaded_bytes(base: str) -> int:
    """What the server holds in uploaded files, all sessions together (Streamlit's own metric)."""
    with urllib.request.urlopen(f"{base}/_stcore/metrics", timeout=30) as response:
        text = response.read().decode()
    return sum(int(n) for n in UPLOADS_METRIC.findall(text))


def wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def open_experiments_uploader(page) -> None:
    open_page(page, "/Experiments", "Experiments")
    page.locator(".st-key-exp_upload input[type='file']").wait_for(state="attached")


def test_a_file_over_the_uploaders_limit_sent_directly_is_refused_and_dropped(browser, server, tmp_path):
    """The browser selects a small file (its check passes); the request that reaches the server
    carries 30 MB instead, as a script calling the upload address would."""
    page = new_page(browser, server)
    try:
        open_experiments_uploader(page)
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="results.json"\r\n'
                "Content-Type: application/json\r\n\r\n"
            ).encode()
            + b"{"
            + b" " * (30 * MB)
            + b"}"
            + f"\r\n--{boundary}--\r\n".encode()
        )

        def enlarge(route) -> None:
            if route.request.method != "PUT":
                route.continue_()
                return
            headers = {**route.request.headers, "content-type": f"multipart/form-data; boundary={boundary}"}
            headers.pop("content-length", None)
            route.continue_(post_data=body, headers=headers)

        page.route("**/_stcore/upload_file/**", enlarge)
        small = tmp_path / "results.json"
        small.write_text("{}")
        page.locator(".st-key-exp_upload input[type='file']").set_input_files(str(small))
        page.get_by_text(re.compile(r"accepts files of at most \d+ MB")).wait_for()
        wait_idle(page)
        assert any("30.0 MB" in t for t in texts(page, ERROR)), texts(page, ERROR)
        assert uploaded_bytes(server) == 0  # dropped from the server's memory, not only ignored
        assert_healthy(page)
    finally:
        page.context.close()


def test_the_files_of_a_session_whose_browser_has_gone_are_freed(browser, server, tmp_path):
    page = new_page(browser, server)
    try:
        open_experiments_uploader(page)
        kept = tmp_path / "not-results.json"
        kept.write_bytes(b"[" + b"0," * (MB // 2) + b"0]")  # within the limit: the page reads it (and says why not)
        page.locator(".st-key-exp_upload input[type='file']").set_input_files(str(kept))
        wait_for(lambda: uploaded_bytes(server) >= MB, 60)
    finally:
        page.context.close()  # the browser goes: the session waits TTL_S for a reconnection, then is forgotten
    wait_for(lambda: uploaded_bytes(server) == 0, TTL_S + 60)


def test_one_job_per_client_across_the_tabs_of_one_browser(browser, server):
    first, second = new_page(browser, server), new_page(browser, server)  # two tabs: two sessions, one address
    try:
        open_page(first, "/Train", "Train")
        button(first, "train_button").click()
        wait_idle(first)
        assert texts(first, ERROR) == []
        open_page(second, "/Train", "Train")
        button(second, "train_button").click()
        second.get_by_text(re.compile(r"Another tab or window of this browser")).wait_for()
        assert_healthy(second)
    finally:
        first.context.close()  # its training ends with its session
        second.context.close()
