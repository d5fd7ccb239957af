"""Training recipes that work on each dataset's size: small sets need smaller batches and more epochs.

The numbers were tuned on the bundled datasets with `python benchmarks/recipe.py` (see README).
"""

from __future__ import annotations

import math

from hqcnn.config import TrainConfig

TARGET_STEPS = 600  # optimiser steps that reach a plateau on the bundled sets
SMALL_SET = 2000  # below this many training images, batches of 32 give enough steps per epoch


def recommended_train_config(n_train: int, seed: int = 0, **overrides) -> TrainConfig:
    """Batch size and epochs for a training set of `n_train` images (about TARGET_STEPS steps)."""
    batch = 128 if n_train >= SMALL_SET else 32
    steps_per_epoch = math.ceil(n_train / batch)
    epochs = min(60, max(10, round(TARGET_STEPS / steps_per_epoch)))
    return TrainConfig(**{"epochs": epochs, "batch_size": batch, "seed": seed, **overrides})
