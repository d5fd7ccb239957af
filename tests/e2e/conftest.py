"""Fixtures for the browser tests: a real `streamlit run app.py` server and a headless Chromium.

The browser is Debian's Chromium (/usr/bin/chromium), driven by Playwright; no browser is
downloaded. Without it the tests are skipped on a developer's machine and fail on CI (where the
CI script installs it). Run with `python -m pytest -q tests/e2e`.

Every test here is marked `e2e`. The tests wait for the app's own signals (the script state on
the app root, a named element) with limits generous enough for a 2-core machine that something
else keeps busy, and never sleep a fixed time.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"  # gitignored: full-page screenshots of every run
SCREENSHOTS = ROOT / "docs" / "screenshots"  # committed: the README's pictures
CHROMIUM = Path(os.environ.get("HQCNN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1280, "height": 900}
SERVER_START_S = 180  # cold start: imports, first script run on a shared 2-core machine
# How long any wait for the page may take (a script run, an element, a navigation): a page that
# opens in 3 s on an idle machine has taken over 30 s while other processes kept both cores busy.
LOAD_TIMEOUT_MS = 180_000
LOG_TAIL_LINES = 60

_server_log: Path | None = None
_server_pid: int | None = None


def _log_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if path is None or not path.exists():
        return "(no server log)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:]) or "(server log is empty)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this folder `e2e`, so that `-m "not e2e"` leaves out the browser."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the Streamlit server's log tail to every failing e2e test's report."""
    report = yield
    if report.failed and _server_log is not None and item.get_closest_marker("e2e"):
        report.sections.append(("streamlit server log (tail)", _log_tail(_server_log)))
    return report


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a `streamlit run app.py` server started for this test session."""
    global _server_log, _server_pid
    port = _free_port()
    log_path = tmp_path_factory.mktemp("streamlit") / "server.log"
    _server_log = log_path
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",  # others edit the tree while tests run: no reloads mid-test
    ]
    # Every browser of these tests connects from 127.0.0.1, one computer to the server, whose limit of
    # jobs per computer would refuse the reload loop's sessions; that limit has its own server in
    # test_server_limits.py.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HQCNN_JOBS_PER_CLIENT": "8"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    _server_pid = process.pid
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not _healthy(f"{base}/_stcore/health"):
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with code {process.returncode}:\n{_log_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer on {base} within {SERVER_START_S} s:\n{_log_tail(log_path)}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for task in tasks for c in (task / "children").read_text().split()]
    except OSError:  # the process has ended (or this is not Linux)
        return []


@pytest.fixture(scope="session")
def server_workers(app_url: str):
    """A function counting the server's job workers: its descendant processes, less the fork server.

    The app's jobs run in processes forked from one fork server (a child of the server), so the
    workers are the server's grandchildren.
    """

    def count() -> int:
        assert _server_pid is not None
        return sum(len(_children(child)) for child in _children(_server_pid))

    return count


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Chromium (Debian's), or a skip/failure if it is not installed."""
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        message = f"Chromium not found at {CHROMIUM} (install it with `apt-get install chromium`)."
        if os.environ.get("CI"):
            pytest.fail(message + " CI must install it for the browser tests.")
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=LOAD_TIMEOUT_MS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def page(browser, app_url: str) -> Iterator[object]:
    """A fresh browser page (own context, so its own Streamlit session) at 1280×900.

    Uncaught JavaScript errors are collected in `page.js_errors`; the tests assert there are none.
    """
    context = browser.new_context(viewport=VIEWPORT, base_url=app_url, reduced_motion="reduce")
    context.set_default_timeout(LOAD_TIMEOUT_MS)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for this run's screenshots (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def docs_screenshots() -> Path:
    """Folder of the README's screenshots (committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
