"""A shared server under attack, in a real browser: crafted model archives, reload-and-train loops,
Markdown in links and in names of uploaded folders.

They use the one `streamlit run app.py` server of the e2e session (see conftest.py). Every request
the browser makes to the attacker's host is recorded (and answered with nothing): there must be none.
"""

from __future__ import annotations

import io
import re
import time
import urllib.parse
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hqcnn import checkpoint
from hqcnn.config import DataConfig, ModelConfig, RunConfig
from hqcnn.markdown import WORD_JOINER
from hqcnn.model import build_model
from tests.e2e.conftest import LOAD_TIMEOUT_MS
from tests.e2e.test_browser import (
    ERROR,
    INFO,
    TRAIN_DEADLINE_MS,
    WARNING,
    assert_healthy,
    button,
    heading,
    open_page,
    texts,
    wait_idle,
)

EVIL = "evil.example"
SECRET_CLASS = "secretclass"  # a class folder name on the server that no page may ever show
# The owner watchdog ends a gone session's job within seconds; a busy machine may take far longer
# to end the worker processes, and the test waits for that, polling, not for a fixed time.
WORKERS_GONE_S = 120

# Records, from the moment it is installed, whether the page ever said that its job waits for a
# slot: a job that starts at once may never show it, one held up by a slot still taken always does.
WATCH_QUEUE = """() => {
    window.__queued = false;
    const check = () => {
        if (document.body.innerText.includes("Waiting for a free slot")) window.__queued = true;
    };
    new MutationObserver(check).observe(document.body, {childList: true, subtree: true, characterData: true});
    check();
}"""


def record_evil_requests(page) -> list[str]:
    """Answer every request to the attacker's host with an empty 204 and remember its URL."""
    seen: list[str] = []

    def handle(route) -> None:
        seen.append(route.request.url)
        route.fulfill(status=204, body="")

    page.context.route(re.compile(rf"https?://([^/]*\.)?{re.escape(EVIL)}(/.*)?$"), handle)
    return seen


def assert_no_evil_markup(page) -> None:
    """No link, image or frame anywhere in the page points at the attacker's host."""
    for selector in (f"a[href*='{EVIL}']", f"img[src*='{EVIL}']", f"iframe[src*='{EVIL}']", "img[src='x']"):
        assert page.locator(selector).count() == 0, selector


def new_page(browser, app_url: str):
    """A page in a context of its own (a browser of its own), as the `page` fixture makes one."""
    context = browser.new_context(base_url=app_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(LOAD_TIMEOUT_MS)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    return context, page


def server_folder(root: Path) -> Path:
    """A folder of class images on the server that belongs to nobody using the app."""
    rng = np.random.default_rng(0)
    for cls in (SECRET_CLASS, "other"):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8), "L").save(root / cls / f"{i}.png")
    return root


def model_archive(dataset: str, labels: tuple[str, ...] = ("normal", "pneumonia")) -> bytes:
    """A valid model archive (real weights) whose config names `dataset`."""
    config = RunConfig(data=DataConfig(dataset=dataset), model=ModelConfig(n_qubits=2, depth=1, n_features=2))
    model = build_model(config.model, 1, len(labels))
    meta = checkpoint.ModelMeta(dataset, labels, 1, 28, (0.5,), (0.25,))
    return checkpoint.to_zip(model, config, meta)


def test_a_model_that_names_a_server_folder_is_refused(page, tmp_path: Path) -> None:
    folder = server_folder(tmp_path / "other-class" / "xrays")
    open_page(page, "/Train", "Train")
    page.get_by_text("Load a model saved earlier").click()
    uploader = page.locator(".st-key-upload_model input[type='file']")
    for i, dataset in enumerate([str(folder), "/etc", "../../", "upload:0123456789abcdef"]):
        archive = tmp_path / f"model{i}.zip"
        archive.write_bytes(model_archive(dataset))
        uploader.set_input_files(str(archive))
        page.locator(ERROR).filter(has_text="not available to this session").wait_for()
        wait_idle(page)
        shown = " ".join(texts(page, ERROR))
        assert str(folder) not in shown and "/etc" not in shown and "other-class" not in shown, shown
        assert_healthy(page)

    # No page shows the folder's images or its class names: the session has no model at all.
    page.locator("[data-testid='stSidebarNavLink']").filter(has_text=re.compile(r"Explain$")).click()
    heading(page, "Explain a prediction").wait_for()
    wait_idle(page)
    assert any("There is no model yet" in text for text in texts(page, INFO))
    for path, title in (("/Data", "Data"), ("/Explain", "Explain a prediction")):
        open_page(page, path, title)
        assert SECRET_CLASS not in page.locator("body").inner_text()
        assert_healthy(page)


def test_reload_and_train_leaves_no_orphans(browser, app_url: str, server_workers) -> None:
    long_run = "/Train?epochs=100"  # minutes of training on PneumoniaMNIST: only a reload ends it
    context, page = new_page(browser, app_url)
    for _ in range(4):
        open_page(page, long_run, "Train")
        button(page, "train_button").click()
        page.locator("[data-testid='stProgress']").first.wait_for()
    assert server_workers() >= 1
    context.close()  # the last session goes too

    deadline = time.monotonic() + WORKERS_GONE_S
    while server_workers() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert server_workers() == 0, "jobs of sessions that have gone are still running"

    # A new session trains at once: no slot is held by the sessions that left, so its job never
    # waits in the queue (a slot still held would show the queue message until it is freed).
    context, page = new_page(browser, app_url)
    try:
        open_page(page, "/Train?train_per_class=20&epochs=1&batch_size=32", "Train")
        page.evaluate(WATCH_QUEUE)
        button(page, "train_button").click()
        page.get_by_text(re.compile(r"hybrid: step \d+ of")).first.wait_for()
        assert not page.evaluate("() => window.__queued"), "the new session's training waited for a slot"
        page.locator("[data-testid='stMetricLabel']").filter(has_text=re.compile(r"^Accuracy$")).wait_for(
            timeout=TRAIN_DEADLINE_MS
        )
        assert_healthy(page)
    finally:
        context.close()


PAYLOADS = [
    "**Session expired** [log in](https://evil.example/login)",
    "![t](https://evil.example/t.png)",
    "<img src=x onerror=alert(1)> https://evil.example/auto www.evil.example",
    ":red[alert] $x^2$ <a href='https://evil.example'>x</a>",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markdown_in_a_link_is_shown_as_text(page, payload: str) -> None:
    seen = record_evil_requests(page)
    open_page(page, "/Data?dataset=" + urllib.parse.quote(payload), "Data")
    warnings = texts(page, WARNING)
    assert any("Unknown dataset" in w for w in warnings), warnings
    assert_no_evil_markup(page)
    assert not seen, seen
    assert_healthy(page)


def _zip_with_markdown_names() -> bytes:
    """A dataset zip whose class folders and file names are Markdown and HTML."""
    rng = np.random.default_rng(1)
    buffer = io.BytesIO()
    classes = ["[log in](https:evil.example)", "![t](https:evil.example)"]
    with zipfile.ZipFile(buffer, "w") as archive:
        for cls in classes:
            for i in range(6):
                png = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8), "L").save(png, format="PNG")
                archive.writestr(f"<b>set</b>/{cls}/{i}.png", png.getvalue())
        archive.writestr(f"<b>set</b>/{classes[0]}/<img src=x onerror=alert(1)>.txt", b"not an image")
    return buffer.getvalue()


def test_markdown_in_uploaded_names_is_shown_as_text(page, tmp_path: Path) -> None:
    seen = record_evil_requests(page)
    archive = tmp_path / "**bold** [x](https:evil.example).zip"
    archive.write_bytes(_zip_with_markdown_names())
    open_page(page, "/Data", "Data")
    page.get_by_text("Use your own images").click()
    page.locator(".st-key-upload_folder_zip input[type='file']").set_input_files(str(archive))
    page.get_by_text("1 file was skipped").first.wait_for()
    wait_idle(page)
    for key in ("samples", "balance"):
        page.locator(f".st-key-{key} .js-plotly-plot").wait_for(state="visible")
    body = page.locator("body").inner_text().replace(WORD_JOINER, "")
    # Names with markup look like no class name: replaced by "class N", never shown, not even escaped.
    assert "class 1" in body and "[log in]" not in body and "<b>set</b>" not in body
    assert_no_evil_markup(page)
    assert not seen, seen
    assert texts(page, ERROR) == []
    assert_healthy(page)
