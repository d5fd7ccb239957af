"""Accuracy of the default recipe on the bundled datasets, mean of several seeds, beside ResNet-18.

    python benchmarks/recipe.py                      # 3 seeds × 3 datasets, hybrid model
    python benchmarks/recipe.py --models hybrid classical --json results.json
    python benchmarks/recipe.py --first-seed 10 --seeds 8 --set average_last=0 --set lr=0.003   # a variant
    python benchmarks/recipe.py --datasets breastmnist --model-set "channels=[32,64]"          # a wider backbone

The recipe was chosen on seeds 10–17 (variants compared with --set); the README reports seeds 0–2.

Prints a Markdown table: test ACC and AUC (mean ± sd over seeds), the kept model's validation AUC,
parameters, training seconds.
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

from hqcnn.config import DataConfig, ModelConfig, RunConfig, to_dict  # noqa: E402
from hqcnn.data import get_info  # noqa: E402
from hqcnn.recipes import recommended_train_config  # noqa: E402
from hqcnn.references import resnet18  # noqa: E402
from hqcnn.train import run  # noqa: E402

DATASETS = ("pneumoniamnist", "breastmnist", "retinamnist")


def _parse_override(text: str) -> tuple[str, object]:
    """ "lr=0.003" → ("lr", 0.003); values are read as JSON (numbers, true/false), else kept as text."""
    name, _, value = text.partition("=")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=["hybrid"], choices=["hybrid", "classical", "backbone"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds used: FIRST, FIRST+1, ...")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a TrainConfig field of the recipe, e.g. average_last=0 (repeatable)",
    )
    parser.add_argument(
        "--model-set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a ModelConfig field, e.g. channels=[32,64] (repeatable)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the machine has 2 cores)")
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = dict(_parse_override(text) for text in args.set)
    model_overrides = dict(_parse_override(text) for text in args.model_set)

    rows = []
    print("| dataset | model | params | test ACC | test AUC | val AUC | train s | ResNet-18 ACC / AUC |")
    print("|---|---|---|---|---|---|---|---|")
    for dataset in args.datasets:
        for kind in args.models:
            accs, aucs, val_aucs, secs = [], [], [], []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                config = RunConfig(
                    data=DataConfig(dataset=dataset, seed=seed),
                    model=ModelConfig(kind=kind, **model_overrides),
                    train=recommended_train_config(get_info(dataset).n_samples["train"], seed=seed, **overrides),
                )
                started = time.perf_counter()
                outcome = run(config)
                secs.append(time.perf_counter() - started)
                accs.append(outcome.test["accuracy"])
                aucs.append(outcome.test["auc"])
                val_aucs.append(outcome.result.val["auc"])  # of the kept model: optimistic when it was picked on it
                params = outcome.params.total
            ref = resnet18(dataset)
            row = {
                "dataset": dataset,
                "model": kind,
                "params": params,
                "accuracy": accs,
                "auc": aucs,
                "val_auc": val_aucs,
                "seconds": secs,
                "epochs": config.train.epochs,
                "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
                "train_config": to_dict(config.train),
            }
            rows.append(row)
            sd = statistics.stdev if args.seeds > 1 else (lambda _: 0.0)
            print(
                f"| {dataset} | {kind} | {params:,} | {statistics.mean(accs):.3f} ± {sd(accs):.3f} | "
                f"{statistics.mean(aucs):.3f} ± {sd(aucs):.3f} | {statistics.mean(val_aucs):.3f} | "
                f"{statistics.mean(secs):.0f} | "
                f"{ref.accuracy:.3f} / {ref.auc:.3f} |",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
