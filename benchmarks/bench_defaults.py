"""What a user gets by pressing Train without changing anything, on each bundled dataset.

    python benchmarks/bench_defaults.py [--seeds 3] [--datasets pneumoniamnist breastmnist retinamnist] [--json]

Starts `streamlit run app.py`, drives Debian's Chromium with Playwright, opens the Train page of
each dataset (the seed is the only value set, through the link: `?dataset=…&seed=…`), reads the
page's own time estimate, presses Train and reads the test results the page shows: accuracy,
ROC-AUC, the majority-class baseline beside them, any warning, and the seconds from the click to
the results. Goals (mean over seeds, every seed above the majority class): test AUC ≥ 0.95 on
PneumoniaMNIST, 0.83 on BreastMNIST, 0.70 on RetinaMNIST.
Needs /usr/bin/chromium (apt-get install -y chromium).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.bench_app import DONE, served_app  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

AUC_GOALS = {"pneumoniamnist": 0.95, "breastmnist": 0.83, "retinamnist": 0.70}


def _metric(page, label: str) -> float:
    box = page.locator("[data-testid='stMetric']").filter(has_text=re.compile(f"^{re.escape(label)}"))
    return float(box.first.locator("[data-testid='stMetricValue']").inner_text())


def one_run(browser, url: str, dataset: str, seed: int) -> dict:
    """Train with the page's defaults and read what the page reports."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{url}/Train?dataset={dataset}&seed={seed}")
    page.get_by_role("heading", level=1, name="Train").wait_for(timeout=120_000)
    page.wait_for_selector(DONE, timeout=120_000)
    estimate = page.get_by_text(re.compile(r"^Training will take")).first.inner_text(timeout=60_000)
    clicked = time.perf_counter()
    page.get_by_role("button", name="Train", exact=True).click()
    page.locator("[data-testid='stMetric']").first.wait_for(timeout=600_000)
    page.wait_for_selector(DONE, timeout=60_000)
    seconds = time.perf_counter() - clicked
    baseline = page.get_by_text(re.compile(r"^Majority-class baseline accuracy")).first.inner_text()
    warnings = page.locator("[data-testid='stAlertContentWarning']").all_inner_texts()
    row = {
        "dataset": dataset,
        "seed": seed,
        "accuracy": _metric(page, "Accuracy"),
        "auc": _metric(page, "ROC-AUC"),
        "majority": float(re.search(r"baseline accuracy: ([0-9]+\.[0-9]+)", baseline).group(1)),
        "estimate": re.search(r"about (\d+) (s|min)", estimate).group(0),
        "click_to_results_s": round(seconds, 1),
        "warnings": warnings,
    }
    page.close()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", default=list(AUC_GOALS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with served_app() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        rows = [one_run(browser, url, d, seed) for d in args.datasets for seed in range(args.seeds)]
        browser.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| dataset | seed | test ACC | majority | test AUC | estimate before Train | click to results |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['seed']} | {r['accuracy']:.3f} | {r['majority']:.3f} | {r['auc']:.3f} | "
              f"{r['estimate']} | {r['click_to_results_s']:.0f} s |")  # fmt: skip
    print()
    for dataset in args.datasets:
        mine = [r for r in rows if r["dataset"] == dataset]
        mean_auc = statistics.mean(r["auc"] for r in mine)
        above = all(r["accuracy"] > r["majority"] for r in mine)
        goal = AUC_GOALS.get(dataset)
        verdict = "met" if above and (goal is None or mean_auc >= goal) else "NOT met"
        print(f"{dataset}: mean AUC {mean_auc:.3f} (goal {goal}), every seed above the majority class: {above}: "
              f"{verdict}")  # fmt: skip
        for r in mine:
            for warning in r["warnings"]:
                print(f"  seed {r['seed']} warning: {warning[:200]}")


if __name__ == "__main__":
    main()
