"""How fast the app answers a person, in a real browser.

    python benchmarks/bench_app.py [--runs 3] [--json]            # start-up
    python benchmarks/bench_app.py --pages [--runs 3] [--cold-browser] [--json]    # the speed budget

Start-up: starts `streamlit run app.py` on 127.0.0.1 (a fresh server per run), drives Debian's
Chromium with Playwright and reports, per run: seconds from the server answering its health check
to the home page's title being rendered (script finished), and seconds from the click on Train to
the first live progress bar: for the server's first training (its worker fork server may still be
importing torch) and for the next one.

--pages: one server, warmed up by an earlier browser session that renders every page once (and
trains a model and explains it); then, --runs times, a fresh browser page (a new session) for each
measurement, and the median of the runs beside its goal. The pages of a run share the browser's
cache, as a person's tabs do (--cold-browser: each has its own, so each loads the app's scripts
anew, as on a first visit). Measured:
  - each page's first render, from navigation to the end of its script run (Explain: from the
    click on its link, in a session that has just trained a 1-epoch model on the Train page);
  - each widget change on the Circuit page (sidebar qubits and depth, entangler, encoding) and on
    the Data page (image size, grayscale on RetinaMNIST, training images per class, noise), from
    the action (its last button release) to the end of the rerun it starts;
  - switching the image on the Explain page (test image index, class, misclassified image), in
    the session that trained the model.
The first run meets its settings for the first time on this server (filling its caches): the worst
run is shown too. Times are read off the browser's clock: every change of the app root's
`data-test-script-state` is recorded as it happens, so a run that is over between two polls still
counts, and a measurement ends only after a run that started after the action has ended.
Needs /usr/bin/chromium (apt-get install -y chromium).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, _free_port  # noqa: E402

DONE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def _wait_healthy(url: str, deadline_s: float = 120) -> None:
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the server did not start")


@contextmanager
def served_app() -> Iterator[str]:
    """A fresh `streamlit run app.py` on a free loopback port; yields its URL once it answers."""
    url = f"http://127.0.0.1:{_free_port()}"
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.address",
         "127.0.0.1", "--server.port", url.rsplit(":", 1)[1], "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_healthy(url)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def one_run(browser) -> dict:
    """Start a fresh server and time the two user-visible moments."""
    with served_app() as url:
        ready = time.perf_counter()
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.get_by_role("heading", name="HQCNN Explorer").wait_for(timeout=60_000)
        page.wait_for_selector(DONE, timeout=60_000)
        home_s = time.perf_counter() - ready

        first_progress_s = _first_progress(page, url)  # right after start: the workers may still be warming up
        page.get_by_text(re.compile(r"^Accuracy$")).first.wait_for(timeout=120_000)
        warm_progress_s = _first_progress(page, url)  # the next training, workers warm
        page.close()
        return {
            "home_after_ready_s": home_s,
            "first_progress_after_click_s": first_progress_s,
            "warm_progress_after_click_s": warm_progress_s,
        }


def _first_progress(page, url: str) -> float:
    """Seconds from a click on Train to the first live progress bar."""
    page.goto(f"{url}/Train?train_per_class=20&epochs=2&batch_size=32")
    page.get_by_role("heading", level=1, name="Train").wait_for(timeout=120_000)
    page.wait_for_selector(DONE, timeout=120_000)
    clicked = time.perf_counter()
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text(re.compile(r"hybrid: step \d+ of")).first.wait_for(timeout=60_000)
    return time.perf_counter() - clicked


# --- --pages: the speed budget of every page ---------------------------------------------------------

FIRST_RENDER_S, WIDGET_S, IMAGE_SWITCH_S = 2.0, 1.0, 1.0  # the goals
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 120_000
TRAINING = "/Train?train_per_class=20&epochs=1&batch_size=32"  # a model for Explain in seconds
PAGES = {  # name: (path, title)
    "Home": ("/", "HQCNN Explorer"),
    "Data": ("/Data", "Data"),
    "Circuit": ("/Circuit", "Quantum circuit"),
    "Train": ("/Train", "Train"),
    "Explain": ("/Explain", "Explain a prediction"),
    "Experiments": ("/Experiments", "Experiments"),
}
# Installed before the app's own scripts in every page: each change of the app root's script
# state, with the browser's time of it (ms since navigation) and the state before and after; and
# the time of every release of a mouse button or key, the moment an action is complete.
RECORD_STATES = """
window.__states = [];
window.__inputs = [];
for (const type of ["pointerup", "keyup"]) addEventListener(type, () => window.__inputs.push(performance.now()), true);
new MutationObserver((records) => records.forEach((record, i) => window.__states.push([
    performance.now(),
    record.oldValue,
    i + 1 < records.length ? records[i + 1].oldValue : record.target.getAttribute("data-test-script-state"),
]))).observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                         attributeFilter: ["data-test-script-state"]});
"""
# True once a run that started at or after `since` (ms) is over and nothing runs any more.
RUN_OVER = """(since) => {
    const after = window.__states.filter(([t]) => t >= since);
    return after.some(([, , state]) => state === "running") && after.length > 0
        && after[after.length - 1][2] === "notRunning";
}"""


def new_context(browser, url: str):
    """A browser context (its own cache and cookies) whose pages record the app's run states."""
    context = browser.new_context(viewport=VIEWPORT, base_url=url, reduced_motion="reduce")
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(RECORD_STATES)
    return context


def _run_over_at(page, since_ms: float) -> float:
    """Wait until a run started at or after `since_ms` is over; the browser time (ms) it ended."""
    page.wait_for_function(RUN_OVER, arg=since_ms, timeout=TIMEOUT_MS)
    return page.evaluate("() => window.__states[window.__states.length - 1][0]")


def time_action(page, action) -> float:
    """Seconds from the end of `action()` (its last button or key release; Playwright's own waits
    for the element to be ready do not count) to the end of the script run it starts.

    The action waits until no run is going on: a change made during a run extends that run, which
    never enters the "running" state anew.
    """
    page.wait_for_selector(DONE)
    before = page.evaluate("() => performance.now()")
    action()
    ended = _run_over_at(page, before)
    released = page.evaluate("(t) => window.__inputs.filter((at) => at >= t).pop() ?? t", before)
    return (ended - released) / 1000


def open_page(page, name: str, query: str = "") -> float:
    """Load page `name` (a new session); seconds from navigation to the end of its first run."""
    path, title = PAGES[name]
    page.goto(path + query)
    page.get_by_role("heading", level=1, name=title, exact=True).wait_for()
    return _run_over_at(page, 0.0) / 1000  # the browser's clock starts at navigation


def settle(page) -> None:
    """A moment's look before the next action, as a person takes: a rerun still in flight would
    otherwise close a menu under the pointer."""
    page.wait_for_timeout(300)
    page.wait_for_selector(DONE)


def slider_step(page, key: str) -> float:
    """Drag slider `key`'s thumb one step to the right (one to the left at the end), as a person would.

    Not with the arrow keys: Streamlit's slider now and then keeps a key's new value on screen
    without sending it, and the run a measurement waits for never comes.
    """
    value = page.locator(f".st-key-{key} input[type='range']")
    thumb = value.locator("xpath=../..")  # the input sits, hidden, in the thumb
    track = thumb.locator("xpath=..")
    thumb.scroll_into_view_if_needed()
    low, high, step = (float(value.get_attribute(name)) for name in ("min", "max", "step"))
    move = step if float(value.input_value()) + step <= high else -step
    box, width = thumb.bounding_box(), track.bounding_box()["width"]
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def drag() -> None:
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + width * move / (high - low), y, steps=4)
        page.mouse.up()

    return time_action(page, drag)


def choose(page, key: str, option: str) -> float:
    """Pick `option` in select box `key`; timed from the click on the option.

    On a busy machine the menu now and then drops a click while it opens: then the box still shows
    its old value, and the pick is made again (the time counts from the click that took).
    """
    box = page.locator(f".st-key-{key} [role='combobox']")

    def pick() -> None:
        for _ in range(3):
            try:
                box.click()
                page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
                expect(box).to_have_value(option, timeout=3_000)
                return
            except (AssertionError, PlaywrightError):
                page.keyboard.press("Escape")  # a menu left open

    return time_action(page, pick)


def tick(page, key: str) -> float:
    """Tick check box `key`."""
    return time_action(page, page.locator(f".st-key-{key} label").first.click)


def circuit_qubits(page) -> float:
    return slider_step(page, "w_n_qubits")


def circuit_depth(page) -> float:
    return slider_step(page, "w_depth")


def circuit_entangler(page) -> float:
    return choose(page, "w_entangler", "chain")


def circuit_encoding(page) -> float:
    return choose(page, "w_encoding", "ry")


def data_image_size(page) -> float:
    return choose(page, "w_image_size", "64")


def data_grayscale(page) -> float:
    return tick(page, "w_grayscale")


def data_per_class(page) -> float:
    return slider_step(page, "w_train_per_class")


def data_noise(page) -> float:
    return slider_step(page, "w_noise_std")


def explain_index(page) -> float:
    return time_action(page, page.locator(".st-key-explain_index [data-testid='stNumberInputStepUp']").click)


def _pick_from(page, mode: str, widget_key: str) -> None:
    """Switch Explain's image source to `mode` (not timed) and wait for its widget `widget_key`."""
    time_action(page, page.locator(".st-key-explain_mode").get_by_text(mode, exact=True).click)
    page.locator(f".st-key-{widget_key}").first.wait_for()
    settle(page)


def explain_class(page) -> float:
    _pick_from(page, "test image by class", "explain_class")
    return choose(page, "explain_class", "pneumonia")


def explain_misclassified(page) -> float | None:
    """The next misclassified test image (None if the model misclassifies fewer than two)."""
    _pick_from(page, "misclassified test images", "explain_mode")
    if page.locator(".st-key-explain_wrong input[type='range']").count() == 0:
        return None
    return slider_step(page, "explain_wrong")


def attempt(name: str, measure, page) -> float | None:
    """`measure(page)`, or None with a note on stderr if the page did not respond as expected."""
    try:
        return measure(page)
    except PlaywrightError as err:
        print(f"{name}: failed ({str(err).splitlines()[0]})", file=sys.stderr, flush=True)
        return None


# name: (page, query string, measurement)
WIDGETS = {
    "Circuit: qubits (sidebar)": ("Circuit", "", circuit_qubits),
    "Circuit: depth (sidebar)": ("Circuit", "", circuit_depth),
    "Circuit: entangler": ("Circuit", "", circuit_entangler),
    "Circuit: encoding": ("Circuit", "", circuit_encoding),
    "Data: image size": ("Data", "", data_image_size),
    "Data: grayscale (RetinaMNIST)": ("Data", "?dataset=retinamnist", data_grayscale),
    "Data: training images per class": ("Data", "", data_per_class),
    "Data: noise": ("Data", "", data_noise),
}
IMAGE_SWITCHES = {
    "Explain: test image index": explain_index,
    "Explain: class": explain_class,
    "Explain: misclassified image": explain_misclassified,
}


def train_then_explain(page) -> float:
    """Train a 1-epoch model on the Train page, then open Explain through its link (same session:
    a URL load would start a new one); seconds from the click to the end of Explain's first run."""
    page.goto(TRAINING)
    page.get_by_role("heading", level=1, name="Train", exact=True).wait_for()
    _run_over_at(page, 0.0)
    page.locator(".st-key-train_button button >> visible=true").click()
    page.locator("[data-testid='stMetricLabel']").filter(has_text=re.compile(r"^Accuracy$")).wait_for()
    page.wait_for_selector(DONE)
    page.wait_for_timeout(500)  # the live view's last rerun, which shows the results, is over
    link = page.locator(f"[data-testid='stSidebarNavLink'][href$='{PAGES['Explain'][0]}']")
    seconds = time_action(page, link.click)
    page.get_by_role("heading", level=1, name=PAGES["Explain"][1], exact=True).wait_for()
    return seconds


def warm_up(browser, url: str) -> None:
    """One earlier session renders every page once, and Explain with a trained model."""
    context = new_context(browser, url)
    page = context.new_page()
    for name in PAGES:
        open_page(page, name)
    train_then_explain(page)
    context.close()


def script_started(page) -> float:
    """Seconds from navigation to the start of the page's first script run: the browser's share."""
    return page.evaluate("() => window.__states.find(([, , state]) => state === 'running')[0]") / 1000


def measure_run(browser, url: str, cold: bool) -> dict[str, dict[str, float | None]]:
    """One run of every measurement, each in a fresh browser page, so a new session (Explain's in
    the page that trained). The pages share one browser context, and so its cache of the app's
    scripts, as a person's tabs do; with `cold`, each page has a context of its own."""
    shared = None if cold else new_context(browser, url)

    def fresh_page():
        return (new_context(browser, url) if cold else shared).new_page()

    def close(page) -> None:
        if cold:
            page.context.close()
        else:
            page.close()

    row: dict[str, float | None] = {}
    started: dict[str, float] = {}
    for name in PAGES:
        if name == "Explain":
            continue
        page = fresh_page()
        row[f"first render: {name}"] = open_page(page, name)
        started[f"first render: {name}"] = script_started(page)
        close(page)
    page = fresh_page()
    row["first render: Explain (after training)"] = train_then_explain(page)
    for name, measure in IMAGE_SWITCHES.items():
        row[name] = attempt(name, measure, page)
    close(page)
    for name, (page_name, query, measure) in WIDGETS.items():
        page = fresh_page()
        open_page(page, page_name, query)
        settle(page)
        row[name] = attempt(name, measure, page)
        close(page)
    if shared is not None:
        shared.close()
    return {"seconds": row, "script_started_s": started}


def goal(name: str) -> float:
    """The budget of measurement `name`, in seconds."""
    if name.startswith("first render"):
        return FIRST_RENDER_S
    return IMAGE_SWITCH_S if name in IMAGE_SWITCHES else WIDGET_S


def pages_report(runs: int, cold: bool) -> dict:
    """Warm a fresh server up, then measure every page `runs` times (see `measure_run`)."""
    with served_app() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        warm_up(browser, url)
        rows = [measure_run(browser, url, cold) for _ in range(runs)]
        browser.close()
    summary = {}
    for name in rows[0]["seconds"]:
        values = [row["seconds"][name] for row in rows if row["seconds"][name] is not None]
        summary[name] = {
            "median_s": statistics.median(values) if values else None,
            "worst_s": max(values) if values else None,
            "goal_s": goal(name),
        }
        if name in rows[0]["script_started_s"]:
            summary[name]["script_started_median_s"] = statistics.median(r["script_started_s"][name] for r in rows)
    return {"warm_server": True, "cold_browser": cold, "runs": rows, "summary": summary}


def print_pages(report: dict) -> None:
    """The budget table: median and worst run beside each goal."""
    n, cache = len(report["runs"]), "no browser cache" if report["cold_browser"] else "the browser's cache shared"
    print(f"Warm server: every page was rendered once, and a model trained and explained, in an earlier "
          f"browser session. A fresh browser page (a new session) per measurement, {cache}; median of {n} "
          "run(s); Explain's image switches in the page that trained its 1-epoch model.")  # fmt: skip
    width = max(len(name) for name in report["summary"])
    print(f"{'measurement':<{width}}  median   worst    goal")
    for name, row in report["summary"].items():
        if row["median_s"] is None:
            print(f"{name:<{width}}     n/a     n/a  ≤ {row['goal_s']:.0f} s  (no such image, or failed: see above)")
            continue
        verdict = "ok" if row["median_s"] <= row["goal_s"] else "MISSED"
        note = (
            f"  (script started at {row['script_started_median_s']:.2f} s)" if "script_started_median_s" in row else ""
        )
        print(
            f"{name:<{width}}  {row['median_s']:5.2f} s {row['worst_s']:5.2f} s  ≤ {row['goal_s']:.0f} s  {verdict}{note}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pages", action="store_true", help="measure every page against its speed budget")
    parser.add_argument(
        "--cold-browser", action="store_true", help="with --pages: no browser cache shared between measurements"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.pages:
        report = pages_report(args.runs, args.cold_browser)
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print_pages(report)
        return
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        rows = [one_run(browser) for _ in range(args.runs)]
        browser.close()
    summary = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    if args.json:
        print(json.dumps({"runs": rows, "median": summary}, indent=2))
        return
    for i, row in enumerate(rows, 1):
        print(f"run {i}: home {row['home_after_ready_s']:.2f} s after ready; first progress "
              f"{row['first_progress_after_click_s']:.2f} s after the first click, "
              f"{row['warm_progress_after_click_s']:.2f} s after the next")  # fmt: skip
    print(
        f"median: home {summary['home_after_ready_s']:.2f} s; first progress {summary['first_progress_after_click_s']:.2f} s"
    )


if __name__ == "__main__":
    main()
