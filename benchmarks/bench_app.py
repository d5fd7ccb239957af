"""How fast the app answers a person: home page after server start, first progress after Train.

    python benchmarks/bench_app.py [--runs 3]

Starts `streamlit run app.py` on 127.0.0.1, drives Debian's Chromium with Playwright and reports,
per run: seconds from the server answering its health check to the home page's title being
rendered (script finished), and seconds from the click on Train to the first live progress bar:
for the server's first training (its worker fork server may still be importing torch) and for the
next one.
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

from playwright.sync_api import sync_playwright

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
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
