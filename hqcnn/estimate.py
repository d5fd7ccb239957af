"""How long a training run will take on this computer, from a few steps timed on it.

A constant per step would be wrong by a factor of ten between 2 and 8 qubits, 28 and 128 px, or
an idle and a busy server, so the estimate times the real work: a few optimiser steps of the
configured model on random images of the configured shape (augmentation included), and one
evaluation pass, in the calling process with its thread settings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hqcnn.config import ModelConfig, TrainConfig
from hqcnn.model import build_model
from hqcnn.train import augment, averaging_start, batch_bounds

TIMED_STEPS = 3  # after one untimed step (the first call allocates and warms up)
EVAL_BATCH = 256


@dataclass(frozen=True)
class StepTimes:
    """Measured seconds of one optimiser step (a whole batch) and of evaluating one image."""

    train_step_s: float
    eval_image_s: float


def measure(model: ModelConfig, in_channels: int, n_classes: int, image_size: int, batch_size: int) -> StepTimes:
    """Time TIMED_STEPS training steps of a fresh `model` on random inputs, and one evaluation batch."""
    torch.manual_seed(0)
    net = build_model(model, in_channels, n_classes)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(max(batch_size, 2), in_channels, image_size, image_size)
    y = torch.randint(0, n_classes, (len(x),))

    def step() -> None:
        loss = F.cross_entropy(net(augment(x, generator)), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    net.train()
    step()
    started = time.perf_counter()
    for _ in range(TIMED_STEPS):
        step()
    train_step_s = (time.perf_counter() - started) / TIMED_STEPS

    net.eval()
    batch = torch.randn(EVAL_BATCH, in_channels, image_size, image_size)
    with torch.no_grad():
        net(batch[:8])
        started = time.perf_counter()
        net(batch)
    return StepTimes(train_step_s, (time.perf_counter() - started) / EVAL_BATCH)


def run_seconds(train: TrainConfig, n_train: int, n_val: int, n_test: int, times: StepTimes) -> float:
    """Seconds a run of `train` takes: its steps, a validation pass per epoch, the final test.

    Averaging adds a pass over the training images (batch-norm statistics) and one validation.
    """
    steps = len(batch_bounds(n_train, train.batch_size)) * train.epochs
    evaluated = train.epochs * n_val + n_test
    if averaging_start(train) is not None:
        evaluated += n_train + n_val
    return steps * times.train_step_s + evaluated * times.eval_image_s


def describe_seconds(seconds: float) -> str:
    """ "about 40 s", "about 3 min": a rounded duration for people."""
    if seconds < 10:
        return f"about {max(1, round(seconds))} s"
    if seconds < 90:
        return f"about {round(seconds / 5) * 5:.0f} s"
    return f"about {round(seconds / 60):.0f} min"
