"""Training recipes that work on each dataset's size: small sets need smaller batches and more epochs.

The numbers were chosen with seeds other than the reported ones (10–17) on the bundled datasets,
then measured with `python benchmarks/recipe.py` on seeds 0–2 (README, "Results").
"""

from __future__ import annotations

import math

from hqcnn.config import TrainConfig

TARGET_STEPS = 600  # optimiser steps that reach a plateau on the bundled sets
SMALL_SET = 2000  # below this many training images, batches of 32 give enough steps per epoch
STEPS_PER_EPOCH_MIN = 4  # a tiny set (a user's own zip) still gets a few steps per epoch
BATCH_SIZES = (8, 16, 32, 64, 128, 256)  # the batch sizes the app offers
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)  # the learning rates the app offers
LEARNING_RATE = 1e-2  # with the averaging below, higher than TrainConfig's 3e-3 single-model default
AVERAGE_LAST = 0.5  # average the weights of the second half of training (see hqcnn.train)


def recommended_train_config(n_train: int, seed: int = 0, **overrides) -> TrainConfig:
    """Batch size, epochs (about TARGET_STEPS steps), learning rate and averaging for `n_train` images."""
    batch = 128 if n_train >= SMALL_SET else 32
    if n_train < STEPS_PER_EPOCH_MIN * batch:  # e.g. 32 images: batches of 8, not one batch of 32
        batch = max([b for b in BATCH_SIZES if b * STEPS_PER_EPOCH_MIN <= n_train] or [BATCH_SIZES[0]])
    steps_per_epoch = math.ceil(n_train / batch)
    epochs = min(60, max(10, round(TARGET_STEPS / steps_per_epoch)))
    recipe = {"epochs": epochs, "batch_size": batch, "lr": LEARNING_RATE, "average_last": AVERAGE_LAST, "seed": seed}
    return TrainConfig(**{**recipe, **overrides})
