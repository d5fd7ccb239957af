"""Many sessions on one server: training time per session, and how fast another user's page answers.

    python benchmarks/bench_concurrency.py [--sessions 1 2 4] [--epochs 3] [--busy 0 2 4] [--repeats 5]

Part 1, training: N jobs submitted at once to the app's scheduler (ui/jobs.py: worker processes,
one slot per core, a queue), each training the default hybrid on PneumoniaMNIST 28×28 with its own
seed, exactly as N browser sessions of one server would. Reports the median seconds per epoch
while training, the median wait for a slot and the wall time until the last one finished.

Part 2, responsiveness, in a real browser: starts `streamlit run app.py`, lets N browser sessions
press Train (N = --busy), then a further session measures, --repeats times each, the seconds from
opening the Circuit page to its script finishing (page render) and from moving the sidebar's depth
slider to the rerun finishing (widget response). Reports medians and the ratio to N = 0, measured
in the same run. The N training sessions' pages are frozen once their training runs (Chromium's
page lifecycle "frozen", as for a tab in the background): drawing N live charts in N browsers on
this 2-core machine would otherwise measure the browsers, not the server. A frozen page also asks
for no live-view reruns, so this measures what the training jobs themselves cost other users. Needs /usr/bin/chromium (apt-get install -y chromium).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_app import DONE, served_app  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

LONG_TRAINING = "/Train?epochs=100"  # far longer than a measurement: the sessions stay busy
# Records every change of the app's script state with a timestamp, so that a rerun that starts
# and ends between two polls is still seen.
WATCH_STATE = """() => {
    window.__states = [];
    const app = document.querySelector("[data-testid='stApp']");
    new MutationObserver(() => window.__states.push([performance.now(), app.dataset.testScriptState]))
        .observe(app, {attributes: true, attributeFilter: ["data-test-script-state"]});
}"""


# --- part 1: training time ------------------------------------------------------------------------


def measure_training(n_sessions: int, epochs: int) -> dict:
    """Submit `n_sessions` trainings together and wait for all of them."""
    from hqcnn.config import RunConfig, TrainConfig
    from ui.jobs import SCHEDULER, Owner
    from ui.training import HYBRID, TrainingJob

    jobs = [
        TrainingJob(
            RunConfig(train=TrainConfig(epochs=epochs, seed=seed)), with_twin=False, owner=Owner(str(seed), None)
        )
        for seed in range(n_sessions)
    ]
    started = time.perf_counter()
    for job in jobs:
        SCHEDULER.submit(job)
    for job in jobs:
        job.wait()
    wall = time.perf_counter() - started
    assert all(HYBRID in job.models and job.error is None for job in jobs), [job.error for job in jobs]
    return {
        "sessions": n_sessions,
        "epoch_s_median": statistics.median(job.models[HYBRID].metrics["seconds_per_epoch"] for job in jobs),
        "wait_s_median": statistics.median(job.started_at - job.submitted_at for job in jobs),
        "wall_s": wall,
    }


# --- part 2: another user's pages while N sessions train ------------------------------------------


def _timed_render(page, url: str) -> float:
    started = time.perf_counter()
    page.goto(url + "/Circuit")
    page.get_by_role("heading", level=1, name="Quantum circuit").wait_for(timeout=120_000)
    page.wait_for_selector(DONE, timeout=120_000)
    return time.perf_counter() - started


def _timed_widget(page) -> float:
    """Move the depth slider one step and time the rerun until it has finished."""
    page.evaluate(WATCH_STATE)
    thumb = page.locator(".st-key-w_depth input[type='range']")
    key = "ArrowLeft" if thumb.input_value() == thumb.get_attribute("max") else "ArrowRight"
    started_ms = page.evaluate("() => performance.now()")
    thumb.press(key)
    page.wait_for_function(
        """(t) => { const s = window.__states.filter(([at]) => at >= t);
                    return s.some(([, v]) => v === 'running') && s.length && s[s.length - 1][1] === 'notRunning'; }""",
        arg=started_ms,
        timeout=120_000,
    )
    ended_ms = page.evaluate("() => window.__states[window.__states.length - 1][0]")
    return (ended_ms - started_ms) / 1000


def measure_pages(browser, url: str, busy: int, repeats: int) -> dict:
    """Median page render and widget response of one session while `busy` others train."""
    trainers = []
    for _ in range(busy):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(120_000)
        page = context.new_page()
        page.goto(url + LONG_TRAINING)
        page.get_by_role("heading", level=1, name="Train").wait_for(timeout=120_000)
        page.wait_for_selector(DONE, timeout=120_000)
        page.locator(".st-key-train_button button >> visible=true").click()
        page.get_by_text(re.compile(r"hybrid: step \d+ of|Waiting for a free slot")).first.wait_for(timeout=60_000)
        # A tab in the background: its browser draws nothing (and asks for no live-view reruns).
        context.new_cdp_session(page).send("Page.setWebLifecycleState", {"state": "frozen"})
        trainers.append(context)
    time.sleep(3)  # every worker is past its start-up
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(120_000)
    page = context.new_page()
    _timed_render(page, url)  # warm: the first visit of a page imports its modules
    renders, widgets = [], []
    for _ in range(repeats):
        renders.append(_timed_render(page, url))
        widgets.append(_timed_widget(page))
    context.close()
    for trainer in trainers:
        trainer.close()  # their sessions end, and with them their trainings
    time.sleep(6)
    row = {"busy": busy, "render_s_median": statistics.median(renders), "widget_s_median": statistics.median(widgets)}
    print(f"measured with {busy} session(s) training: {row}", file=sys.stderr, flush=True)
    return row


def responsiveness(busy_counts: list[int], repeats: int) -> list[dict]:
    """Part 2 on a fresh server."""
    from playwright.sync_api import sync_playwright

    with served_app() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        rows = [measure_pages(browser, url, busy, repeats) for busy in busy_counts]
        browser.close()
    return rows


def print_training(training: list[dict], epochs: int) -> None:
    """The training table, in Markdown."""
    from ui.jobs import SLOTS

    base = training[0]["epoch_s_median"]
    print(f"{SLOTS} job slot(s); {epochs} epochs per session on PneumoniaMNIST 28×28")
    print("| sessions | s per epoch while training | × one session | median wait for a slot, s | wall s |")
    print("|---|---|---|---|---|")
    for row in training:
        print(f"| {row['sessions']} | {row['epoch_s_median']:.2f} | {row['epoch_s_median'] / base:.2f} | "
              f"{row['wait_s_median']:.1f} | {row['wall_s']:.1f} |")  # fmt: skip
    print(flush=True)


def print_pages(pages: list[dict], repeats: int) -> None:
    """The responsiveness table, in Markdown."""
    first = pages[0]
    print(f"Another session's Circuit page while N sessions train (medians of {repeats}):")
    print("| sessions training | page render, s | × idle | depth slider → rerun done, s | × idle |")
    print("|---|---|---|---|---|")
    for row in pages:
        print(f"| {row['busy']} | {row['render_s_median']:.2f} | {row['render_s_median'] / first['render_s_median']:.2f} | "
              f"{row['widget_s_median']:.2f} | {row['widget_s_median'] / first['widget_s_median']:.2f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 2, 4])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from ui.jobs import SLOTS

    training = [measure_training(n, args.epochs) for n in args.sessions]
    if not args.json:
        print_training(training, args.epochs)
    pages = responsiveness(args.busy, args.repeats)
    if args.json:
        print(json.dumps({"slots": SLOTS, "training": training, "pages": pages}, indent=2))
        return
    print_pages(pages, args.repeats)


if __name__ == "__main__":
    main()
