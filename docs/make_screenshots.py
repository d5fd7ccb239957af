"""Refresh the README's screenshots from a real run of the app.

    python docs/make_screenshots.py

Starts `streamlit run app.py`, trains the default model with its classical twin on the full
PneumoniaMNIST training set with the recommended recipe (about half a minute on 2 cores), and saves the Home, Train and Explain
pages to docs/screenshots/ (1280×900). Needs /usr/bin/chromium (apt-get install -y chromium).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.bench_app import DONE, served_app  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with served_app() as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.wait_for_selector(DONE)
            page.screenshot(path=str(OUT / "home.png"))

            page.goto(f"{url}/Train?twin=True")  # the defaults: the recipe for the dataset
            page.wait_for_selector(DONE)
            page.get_by_role("button", name="Train", exact=True).click()
            page.locator("[data-testid='stMetricLabel']").filter(has_text=re.compile(r"^Accuracy$")).wait_for(
                timeout=300_000
            )
            page.wait_for_selector(DONE, timeout=60_000)
            page.locator(".st-key-live_curves").scroll_into_view_if_needed()
            page.mouse.move(1270, 890)
            page.screenshot(path=str(OUT / "train.png"))
            page.locator(".st-key-comparison").scroll_into_view_if_needed()
            page.screenshot(path=str(OUT / "results.png"))

            page.locator("[data-testid='stSidebarNavLink']").filter(has_text=re.compile(r"Explain$")).click()
            page.locator(".st-key-saliency .js-plotly-plot").wait_for(timeout=120_000)
            page.wait_for_selector(DONE, timeout=60_000)
            page.locator(".st-key-saliency").scroll_into_view_if_needed()
            page.screenshot(path=str(OUT / "explain.png"))
            browser.close()
    print(f"saved to {OUT}")


if __name__ == "__main__":
    main()
