"""The determinism contract measured: which settings change a training's weights, and what pinning costs.

Each training runs in a fresh process (kernel variables count only before torch's first kernel):
BreastMNIST with the recipe (the app's and `train --recipe`'s defaults), seed 0. Two parts:

1. Which settings change the model: the weights' SHA-256 under the pinned kernels and under the
   native ones, with one or two threads, and with each library's code path forced the way another
   CPU would choose it (ATen's `default` kernels, MKL limited to AVX2 or SSE4.2 instructions,
   oneDNN limited to AVX2). Under the pinned kernels every row but the thread count must give the
   same hash; under the native ones they differ.
2. What the pinned kernels cost: the wall time of the whole training (recipe epochs) under
   pinned and native kernels, one thread each, interleaved, medians of `--repeats` runs, and
   their ratio.

    python benchmarks/bench_determinism.py [--repeats 3] [--epochs 4] [--dataset breastmnist]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# One training in a fresh interpreter; prints the weights' hash, the seconds and the test metrics.
CHILD = """
import hashlib, json, sys, time, dataclasses
import hqcnn
from hqcnn import determinism
from hqcnn.config import DataConfig, RunConfig
from hqcnn.data import get_info, prepare
from hqcnn.recipes import recommended_train_config
from hqcnn.train import run

dataset, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
determinism.apply_torch(threads)
train = recommended_train_config(get_info(dataset).training_images(None), seed=0)
if epochs:
    train = dataclasses.replace(train, epochs=epochs)
config = RunConfig(data=DataConfig(dataset=dataset), train=train)
data = prepare(config.data)
started = time.perf_counter()
out = run(config, data)
seconds = time.perf_counter() - started
digest = hashlib.sha256()
for name, value in sorted(out.result.model.state_dict().items()):
    digest.update(name.encode())
    digest.update(value.detach().contiguous().numpy().tobytes())
print(json.dumps({"hash": digest.hexdigest()[:16], "seconds": seconds, "epochs": train.epochs,
                  "accuracy": out.test["accuracy"], "auc": out.test["auc"], "compute": out.compute}))
"""

VARIANTS = [  # (label, extra environment, threads)
    ("as is", {}, 1),
    ("2 threads", {}, 2),
    ("ATen default kernels", {"ATEN_CPU_CAPABILITY": "default"}, 1),
    ("ATen AVX-512 kernels", {"ATEN_CPU_CAPABILITY": "avx512"}, 1),
    ("MKL limited to AVX2", {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}, 1),
    ("MKL limited to SSE4.2", {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}, 1),
    ("oneDNN limited to AVX2", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, 1),
]


def train(dataset: str, epochs: int, threads: int, env: dict[str, str]) -> dict:
    """One training in a fresh process under `env` (on top of this one's, minus the kernel variables)."""
    base = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, dataset, str(epochs), str(threads)],
        cwd=ROOT,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="breastmnist")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of the hash runs (0: the recipe's)")
    parser.add_argument("--repeats", type=int, default=3, help="timed trainings per mode (whole recipe)")
    parser.add_argument("--cost-only", action="store_true", help="skip the first part (which settings change the weights)")
    args = parser.parse_args()
    compute = {}
    if not args.cost_only:
        compute = hashes(args.dataset, args.epochs)
    cost(args.dataset, args.repeats, compute)


def hashes(dataset: str, epochs: int) -> dict:
    """Print the weights' hash under each setting, pinned and native; return the pinned run's record."""

    print(f"## Which settings change the weights ({dataset}, seed 0, {epochs or 'recipe'} epochs)\n")
    print("| setting | pinned kernels: hash | native kernels: hash |")
    print("|---|---|---|")
    compute = {}
    for label, env, threads in VARIANTS:
        pinned = train(dataset, epochs, threads, {"HQCNN_KERNELS": "pinned", **env})
        native = train(dataset, epochs, threads, {"HQCNN_KERNELS": "native", **env})
        compute = compute or pinned["compute"]
        print(f"| {label} | `{pinned['hash']}` | `{native['hash']}` |")
    return compute


def cost(dataset: str, repeats: int, compute: dict) -> None:
    """Print the whole recipe's training time under pinned and native kernels, interleaved, and the ratio."""
    print(f"\n## What pinning costs ({dataset}, the whole recipe, 1 thread, medians of {repeats})\n")
    seconds: dict[str, list[float]] = {"pinned": [], "native": []}
    last: dict[str, dict] = {}
    for _ in range(repeats):
        for mode in seconds:  # interleaved: both modes see the same machine load
            last[mode] = train(dataset, 0, 1, {"HQCNN_KERNELS": mode})
            seconds[mode].append(last[mode]["seconds"])
    median = {mode: statistics.median(values) for mode, values in seconds.items()}
    print("| kernels | training s (median) | × native | test accuracy | test AUC |")
    print("|---|---|---|---|---|")
    for mode in seconds:
        print(
            f"| {mode} | {median[mode]:.2f} | {median[mode] / median['native']:.2f} | "
            f"{last[mode]['accuracy']:.3f} | {last[mode]['auc']:.3f} |"
        )
    print(f"\n{last['pinned']['epochs']} epochs; pinned run's record: {json.dumps(compute or last['pinned']['compute'])}")


if __name__ == "__main__":
    main()
