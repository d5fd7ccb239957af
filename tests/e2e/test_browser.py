"""End-to-end tests: the real app in a real (headless) browser.

They start `streamlit run app.py` once (see conftest.py), open every page, train a small model
through the UI and explain it, and open a link with bad settings. Screenshots of every page go
to tests/artifacts/ (gitignored); the Home and Train ones also go to docs/screenshots/ for the
README (only when missing, or with HQCNN_UPDATE_SCREENSHOTS=1). Run them with
`python -m pytest -q tests/e2e`.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import LOAD_TIMEOUT_MS

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
EXCEPTION = "[data-testid='stException']"
ERROR = "[data-testid='stAlertContentError']"
WARNING = "[data-testid='stAlertContentWarning']"
INFO = "[data-testid='stAlertContentInfo']"
# A small training run through the UI: about 15 s on an idle 2-core machine, several times that on a busy one.
TRAIN_DEADLINE_MS = 300_000
VIEWPORT_CORNER = (1270, 890)  # where the mouse rests for screenshots: empty main-area margin


def chart(key: str) -> str:
    """Selector of a drawn Plotly chart created with `st.plotly_chart(..., key=key)`."""
    return f".st-key-{key} .js-plotly-plot"


def button(page, key: str):
    """The button created with `key` (one with `help=` is drawn twice, once hidden: take the visible one)."""
    return page.locator(f".st-key-{key}").get_by_role("button")


def wait_idle(page, timeout: float = LOAD_TIMEOUT_MS) -> None:
    """Wait until the script run is over (Streamlit sets this attribute on the app root)."""
    page.wait_for_selector(IDLE, timeout=timeout)


def next_frames(page) -> None:
    """Wait until the browser has drawn two more frames: layout and Plotly's redraw after a resize are done."""
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def open_page(page, path: str, title: str) -> None:
    """Load `path` (a new session) and wait until its title is shown and its script has finished."""
    page.goto(path)
    heading(page, title).wait_for()
    wait_idle(page)


def heading(page, title: str):
    return page.get_by_role("heading", level=1, name=title, exact=True)


def assert_healthy(page) -> None:
    """No Python exception box, no uncaught JavaScript error."""
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()
    assert not page.js_errors, page.js_errors


def texts(page, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def screenshot(page, path: Path) -> Path:
    """A full-page screenshot.

    Streamlit scrolls its main area (`stMain`), not the document, so Playwright's full_page
    option would capture only the viewport: the viewport is stretched to the content's height
    for the shot, then restored.
    """
    height = page.evaluate(
        """() => {
            const main = document.querySelector("[data-testid='stMain']");
            return Math.max(main ? main.scrollHeight : 0, document.documentElement.scrollHeight);
        }"""
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    page.mouse.move(VIEWPORT_CORNER[0], VIEWPORT_CORNER[1])  # no hover highlights in the picture
    viewport = page.viewport_size
    page.set_viewport_size({"width": viewport["width"], "height": max(int(height), viewport["height"])})
    try:
        wait_idle(page)
        next_frames(page)
        page.screenshot(path=str(path), animations="disabled")
    finally:
        page.set_viewport_size(viewport)
    return path


def docs_screenshot(page, path: Path, anchor: str | None = None) -> None:
    """A viewport-sized (1280×900) screenshot for the README: the top of the page, or from `anchor` down.

    Written when missing or when HQCNN_UPDATE_SCREENSHOTS=1, so that ordinary test runs do not
    rewrite committed pictures (timings on the page differ from run to run).
    """
    if path.exists() and os.environ.get("HQCNN_UPDATE_SCREENSHOTS") != "1":
        return
    page.mouse.move(VIEWPORT_CORNER[0], VIEWPORT_CORNER[1])  # no hover highlight on the last-clicked button
    page.evaluate(
        """(anchor) => {
            const main = document.querySelector("[data-testid='stMain']");
            const target = anchor && document.querySelector(anchor);
            if (!main) return;
            const header = document.querySelector("[data-testid='stHeader']");
            const offset = header ? header.getBoundingClientRect().height : 0;
            main.scrollTo(0, target ? target.getBoundingClientRect().top + main.scrollTop - offset : 0);
        }""",
        anchor,
    )
    next_frames(page)
    page.screenshot(path=str(path), animations="disabled")


PAGES = [
    # path, title, selectors that must appear, warnings expected
    ("/", "HQCNN Explorer", ["[data-testid='stImage'] img", "text=A guided path"], 1),
    ("/Data", "Data", [chart("samples"), chart("balance"), chart("preview")], 0),
    ("/Circuit", "Quantum circuit", ["[data-testid='stImage'] img", chart("param_counts")], 0),
    (
        "/Train",
        "Train",
        [".st-key-train_button button >> visible=true", ".st-key-stop_button button >> visible=true"],
        0,
    ),
    ("/Explain", "Explain a prediction", [INFO], 0),
]


@pytest.mark.parametrize(("path", "title", "content", "n_warnings"), PAGES, ids=[p[1] for p in PAGES])
def test_every_page_opens(
    page, artifacts: Path, docs_screenshots: Path, path: str, title: str, content: list[str], n_warnings: int
) -> None:
    open_page(page, path, title)
    for selector in content:
        page.locator(selector).first.wait_for(state="visible")
    assert_healthy(page)
    assert texts(page, ERROR) == []
    warnings = texts(page, WARNING)
    assert len(warnings) == n_warnings, warnings
    if path == "/":
        assert "Not a medical device" in warnings[0]
    if path == "/Explain":
        assert any("There is no model yet" in text for text in texts(page, INFO))
    if path == "/Train":
        assert button(page, "train_button").is_enabled()
        assert button(page, "stop_button").is_disabled()
    name = "home" if path == "/" else path.strip("/").lower()
    screenshot(page, artifacts / f"{name}.png")
    if path == "/":
        docs_screenshot(page, docs_screenshots / "home.png")


# Records, from the moment it is installed, whether the live progress bar and the live training
# chart were ever in the page: training a tiny model can be over within one or two polls.
WATCH_LIVE = """() => {
    window.__live = {progress: false, chart: false};
    const check = () => {
        for (const bar of document.querySelectorAll("[data-testid='stProgress']")) {
            if (/hybrid: step \\d+ of/.test(bar.innerText)) window.__live.progress = true;
        }
        if (document.querySelector(".st-key-live_curves .js-plotly-plot, .st-key-live_curves [data-testid='stPlotlyChart']"))
            window.__live.chart = true;
    };
    new MutationObserver(check).observe(document.body, {childList: true, subtree: true, characterData: true});
    check();
}"""


WATCH_TIME_LEFT = """() => {
    window.__timeLeft = false;
    new MutationObserver(() => {
        if (/^Time left: about \\d+ (s|min)/m.test(document.body.innerText)) window.__timeLeft = true;
    }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def test_train_with_the_defaults_learns_and_says_how_long(page, artifacts: Path) -> None:
    # Nothing set but the dataset: what a teacher gets by pressing Train.
    open_page(page, "/Train?dataset=breastmnist", "Train")
    assert page.locator(".st-key-w_recipe input[type='checkbox']").is_checked()
    estimate = page.get_by_text(re.compile(r"^Training will take about \d+ (s|min) on this server"))
    estimate.wait_for(timeout=TRAIN_DEADLINE_MS)
    page.evaluate(WATCH_TIME_LEFT)
    button(page, "train_button").click()
    labels = page.locator("[data-testid='stMetricLabel']")
    labels.filter(has_text=re.compile(r"^Accuracy$")).wait_for(timeout=2 * TRAIN_DEADLINE_MS)
    wait_idle(page, timeout=TRAIN_DEADLINE_MS)
    assert page.evaluate("() => window.__timeLeft"), "the time left was never shown while training"
    metrics = dict(
        zip(texts(page, "[data-testid='stMetricLabel']"), texts(page, "[data-testid='stMetricValue']"), strict=True)
    )
    baseline = page.get_by_text(re.compile(r"^Majority-class baseline accuracy")).first.inner_text()
    majority = float(re.search(r"accuracy: ([0-9]+\.[0-9]+)", baseline).group(1))
    assert float(metrics["Accuracy"]) > majority, (metrics, majority)
    assert texts(page, WARNING) == []  # no one-class model, no run that cannot teach
    assert_healthy(page)
    screenshot(page, artifacts / "train_defaults.png")


def test_train_then_explain(page, artifacts: Path, docs_screenshots: Path) -> None:
    open_page(page, "/Train?train_per_class=20&epochs=2&batch_size=32", "Train")
    assert texts(page, WARNING) == []  # the link's values are all valid
    assert page.locator(".st-key-w_epochs input[type='range']").input_value() == "2"  # the link set it
    page.evaluate(WATCH_LIVE)

    started = time.monotonic()
    button(page, "train_button").click()
    metric_labels = page.locator("[data-testid='stMetricLabel']")
    metric_labels.filter(has_text=re.compile(r"^Accuracy$")).wait_for(timeout=TRAIN_DEADLINE_MS)
    metric_labels.filter(has_text="ROC-AUC").wait_for()
    wait_idle(page, timeout=TRAIN_DEADLINE_MS)
    seconds = time.monotonic() - started

    live = page.evaluate("() => window.__live")
    assert live["progress"], "the live progress bar ('hybrid: step … of …') never appeared"
    assert live["chart"], "the live training chart never appeared"
    assert_healthy(page)
    assert texts(page, ERROR) == []
    metrics = dict(
        zip(
            texts(page, "[data-testid='stMetricLabel']"),
            texts(page, "[data-testid='stMetricValue']"),
            strict=True,
        )
    )
    assert 0.0 <= float(metrics["Accuracy"]) <= 1.0, metrics
    assert 0.0 <= float(metrics["ROC-AUC"]) <= 1.0, metrics
    for key in ("comparison", "confusion", "roc"):
        page.locator(chart(key)).wait_for(state="visible")
    assert button(page, "train_button").is_enabled()
    assert button(page, "stop_button").is_disabled()
    screenshot(page, artifacts / "train_after.png")
    docs_screenshot(page, docs_screenshots / "train.png", anchor=".st-key-live_curves")
    print(f"training through the UI took {seconds:.1f} s; metrics {metrics}")

    # Same page, same session: a URL load would start a new session without the model.
    page.locator("[data-testid='stSidebarNavLink']").filter(has_text=re.compile(r"Explain$")).click()
    heading(page, "Explain a prediction").wait_for()
    page.get_by_text(re.compile(r"^Predicted: ")).wait_for(timeout=TRAIN_DEADLINE_MS)
    page.locator(".st-key-explain_bloch summary").click()  # the Bloch spheres are drawn only when asked for
    for key in ("probabilities", "saliency", "qubit_bars", "qubit_distributions", "bloch"):
        page.locator(chart(key)).wait_for(state="visible", timeout=TRAIN_DEADLINE_MS)
    wait_idle(page)
    assert not any("There is no model yet" in text for text in texts(page, INFO))
    assert_healthy(page)
    assert texts(page, ERROR) == []
    screenshot(page, artifacts / "explain_after.png")


def test_bad_link_values_warn_once_and_the_controls_show_what_is_used(page, artifacts: Path) -> None:
    open_page(page, "/Train?n_qubits=99&depth=abc&lr=7", "Train")
    button(page, "train_button").wait_for(state="visible")
    warnings = texts(page, WARNING)
    assert len(warnings) == 1, warnings  # one box, the controls stay above the fold
    assert "Some settings in the link could not be used" in warnings[0], warnings
    for quoted, used in (("n_qubits=99", "using 8"), ("depth=abc", "using 2"), ("lr=7", "using 0.03")):
        assert quoted in warnings[0] and used in warnings[0], warnings
    # The learning-rate control shows the value the run will use, the one the link now carries.
    assert page.locator(".st-key-w_lr [data-testid='stSliderThumbValue']").inner_text() == "0.03"
    assert_healthy(page)
    assert texts(page, ERROR) == []
    assert "n_qubits=8" in page.url and "lr=0.03" in page.url and "depth" not in page.url, page.url
    screenshot(page, artifacts / "train_bad_link.png")


def _bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Bad uploads made here, each with the message the page must show."""
    import io
    import pickle
    import zlib

    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    good = io.BytesIO()
    Image.new("L", (64, 64), 128).save(good, format="PNG")
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, format="PNG", optimize=True)
    files = {
        "notes.png": (b"these are my notes, not an image\n" * 20, "not a PNG, JPEG or DICOM"),
        "truncated.png": (good.getvalue()[: len(good.getvalue()) // 2], "damaged or incomplete"),
        "bomb.png": (bomb.getvalue(), "too many pixels"),
        "model.zip": (pickle.dumps({"weights": zlib.compress(b"x")}), "not a zip archive"),
    }
    out = {}
    for name, (blob, message) in files.items():
        (folder / name).write_bytes(blob)
        out[name] = (folder / name, message)
    return out


def test_bad_uploads_show_messages_and_keep_the_model(page, tmp_path: Path) -> None:
    files = _bad_files(tmp_path)
    open_page(page, "/Train?train_per_class=20&epochs=1&batch_size=32", "Train")
    button(page, "train_button").click()
    page.locator("[data-testid='stMetricLabel']").filter(has_text=re.compile(r"^Accuracy$")).wait_for(
        timeout=TRAIN_DEADLINE_MS
    )
    wait_idle(page, timeout=TRAIN_DEADLINE_MS)
    accuracy = texts(page, "[data-testid='stMetricValue']")[0]

    # A pickle renamed .zip as a model: a message, and the trained model's results stay.
    page.get_by_text("Load a model saved earlier").click()
    page.locator(".st-key-upload_model input[type='file']").set_input_files(str(files["model.zip"][0]))
    page.locator(ERROR).filter(has_text=files["model.zip"][1]).wait_for()
    wait_idle(page)
    assert texts(page, "[data-testid='stMetricValue']")[0] == accuracy
    assert_healthy(page)

    page.locator("[data-testid='stSidebarNavLink']").filter(has_text=re.compile(r"Explain$")).click()
    heading(page, "Explain a prediction").wait_for()
    wait_idle(page, timeout=TRAIN_DEADLINE_MS)
    page.locator(".st-key-explain_mode").get_by_text("upload my own image").click()
    wait_idle(page)
    uploader = page.locator(".st-key-explain_upload input[type='file']")
    for name in ("notes.png", "truncated.png", "bomb.png"):
        path, message = files[name]
        uploader.set_input_files(str(path))
        page.locator(ERROR).filter(has_text=message).wait_for()
        wait_idle(page)
        assert_healthy(page)
    # The model survived every bad file: a test image is still classified.
    page.locator(".st-key-explain_mode").get_by_text("test image by index").click()
    page.get_by_text(re.compile(r"^Predicted: ")).wait_for()
    wait_idle(page)
    assert texts(page, ERROR) == []
    assert_healthy(page)
