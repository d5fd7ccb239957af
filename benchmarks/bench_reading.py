"""How far the answers of a model trained with the defaults can be taken: calibration before and
after temperature scaling, and the unusual-image check's false alarms and detections.

For each bundled dataset, one hybrid trained with the app's defaults (the recipe) and
`posthoc=True`, then: the temperature; the test ECE as trained and scaled; the share of its own
test images flagged as unusual (the false-alarm rate, meant to be about 5%); the share flagged of
the other bundled datasets' test images (converted to the model's channels), of random-noise
images and of a drawn ellipse; and how long testing and the post-training fit took.

    python benchmarks/bench_reading.py [--seeds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hqcnn import posthoc
from hqcnn.config import DataConfig, ModelConfig, RunConfig
from hqcnn.data import load_arrays, prepare
from hqcnn.recipes import recommended_train_config
from hqcnn.train import run

DATASETS = ("pneumoniamnist", "breastmnist", "retinamnist")


def foreign_images(key: str, channels: int, n: int = 300) -> np.ndarray:
    """(n, C, 28, 28) test images of `key` in 0..1, gray or RGB as the model wants."""
    images = load_arrays(key, 28)["test"][0][:n].astype(np.float32) / 255
    if images.ndim == 3:
        images = images[:, None]
    else:
        images = images.transpose(0, 3, 1, 2)
    if images.shape[1] != channels:
        images = images.mean(1, keepdims=True) if channels == 1 else np.repeat(images, channels, axis=1)
    return images


def flagged(outcome, images: np.ndarray) -> float:
    data = outcome.data
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    x = (torch.as_tensor(images) - mean) / std
    return float(posthoc.answer(outcome.result.model, outcome.posthoc, x.float()).unusual.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    yy, xx = np.mgrid[:28, :28]
    ellipse = (((xx - 14) / 9) ** 2 + ((yy - 14) / 6) ** 2 < 1).astype(np.float32)
    print("dataset | seed | T | ECE as trained → scaled | own test flagged | " + " | ".join(DATASETS) + " | noise | ellipse | test + fit s")
    for key in DATASETS:
        data = prepare(DataConfig(dataset=key))
        for seed in range(args.seeds):
            config = RunConfig(data.config, ModelConfig(), recommended_train_config(len(data.y_train), seed=seed))
            started = time.perf_counter()
            outcome = run(config, data=data, posthoc=True)
            fit_s = time.perf_counter() - started - outcome.seconds  # testing and the post-training fit
            c = outcome.data.in_channels
            own = float(posthoc.answer(outcome.result.model, outcome.posthoc, data.x_test).unusual.mean())
            others = [flagged(outcome, foreign_images(k, c)) if k != key else float("nan") for k in DATASETS]
            noise = flagged(outcome, np.random.default_rng(seed).random((100, c, 28, 28)).astype(np.float32))
            drawn = flagged(outcome, np.repeat(ellipse[None, None], c, axis=1))
            cal = outcome.calibration
            print(
                f"{key} | {seed} | {outcome.posthoc.temperature:.2f} | {cal['as_trained']['ece']:.3f} → "
                f"{cal['scaled']['ece']:.3f} | {own:.3f} | " + " | ".join("—" if np.isnan(v) else f"{v:.2f}" for v in others)
                + f" | {noise:.2f} | {drawn:.0f} | {fit_s:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
