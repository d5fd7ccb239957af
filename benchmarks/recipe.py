"""Accuracy of the default recipe on the bundled datasets, mean of several seeds, beside ResNet-18.

    python benchmarks/recipe.py                      # 3 seeds × 3 datasets, hybrid model
    python benchmarks/recipe.py --models hybrid classical --json results.json

Prints a Markdown table: test ACC and AUC (mean ± sd over seeds), parameters, training seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from hqcnn.config import DataConfig, ModelConfig, RunConfig  # noqa: E402
from hqcnn.data import get_info  # noqa: E402
from hqcnn.recipes import recommended_train_config  # noqa: E402
from hqcnn.references import resnet18  # noqa: E402
from hqcnn.train import run  # noqa: E402

DATASETS = ("pneumoniamnist", "breastmnist", "retinamnist")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=["hybrid"], choices=["hybrid", "classical", "backbone"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the machine has 2 cores)")
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    print("| dataset | model | params | test ACC | test AUC | train s | ResNet-18 ACC / AUC |")
    print("|---|---|---|---|---|---|---|")
    for dataset in args.datasets:
        for kind in args.models:
            accs, aucs, secs = [], [], []
            for seed in range(args.seeds):
                config = RunConfig(
                    data=DataConfig(dataset=dataset, seed=seed),
                    model=ModelConfig(kind=kind),
                    train=recommended_train_config(get_info(dataset).n_samples["train"], seed=seed),
                )
                started = time.perf_counter()
                outcome = run(config)
                secs.append(time.perf_counter() - started)
                accs.append(outcome.test["accuracy"])
                aucs.append(outcome.test["auc"])
                params = outcome.params.total
            ref = resnet18(dataset)
            row = {
                "dataset": dataset,
                "model": kind,
                "params": params,
                "accuracy": accs,
                "auc": aucs,
                "seconds": secs,
                "epochs": config.train.epochs,
            }
            rows.append(row)
            sd = statistics.stdev if args.seeds > 1 else (lambda _: 0.0)
            print(
                f"| {dataset} | {kind} | {params:,} | {statistics.mean(accs):.3f} ± {sd(accs):.3f} | "
                f"{statistics.mean(aucs):.3f} ± {sd(aucs):.3f} | {statistics.mean(secs):.0f} | "
                f"{ref.accuracy:.3f} / {ref.auc:.3f} |",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
