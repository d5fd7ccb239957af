"""The training loop: determinism, callbacks, stop flag, NaN handling, best-epoch choice."""

from __future__ import annotations

import math
import threading

import pytest
import torch

from hqcnn.train import Callback, run
from tests.conftest import quick_config


class Recorder(Callback):
    def __init__(self, stop_after_step: int | None = None, stop: threading.Event | None = None) -> None:
        self.steps: list[tuple[int, float, float]] = []
        self.epochs: list[dict] = []
        self.total = None
        self.stop_after_step, self.stop = stop_after_step, stop

    def on_train_start(self, total_steps: int, steps_per_epoch: int) -> None:
        self.total = (total_steps, steps_per_epoch)

    def on_batch_end(self, step: int, loss: float, accuracy: float) -> None:
        self.steps.append((step, loss, accuracy))
        if self.stop_after_step is not None and step >= self.stop_after_step:
            self.stop.set()

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        self.epochs.append(metrics)


@pytest.mark.parametrize("kind", ["hybrid", "classical"])
def test_same_config_and_seed_give_identical_metrics(kind, small_pneumonia):
    a = run(quick_config(kind=kind), data=small_pneumonia)
    b = run(quick_config(kind=kind), data=small_pneumonia)
    assert a.test == b.test
    assert [r["train_loss"] for r in a.result.history] == [r["train_loss"] for r in b.result.history]
    c = run(quick_config(kind=kind, seed=1), data=small_pneumonia)
    assert c.result.history[0]["train_loss"] != a.result.history[0]["train_loss"]


def test_callbacks_report_every_step_and_epoch(small_pneumonia):
    rec = Recorder()
    outcome = run(quick_config(epochs=3), data=small_pneumonia, callback=rec)
    steps_per_epoch = math.ceil(80 / 32)
    assert rec.total == (3 * steps_per_epoch, steps_per_epoch)
    assert [s for s, _, _ in rec.steps] == list(range(1, 3 * steps_per_epoch + 1))
    assert all(math.isfinite(loss) and 0 <= acc <= 1 for _, loss, acc in rec.steps)
    assert [m["epoch"] for m in rec.epochs] == [1, 2, 3]
    best = max(rec.epochs, key=lambda m: (m["val_auc"], m["val_accuracy"]))
    assert outcome.result.best_epoch == best["epoch"]
    assert outcome.result.seconds_per_epoch > 0
    assert 0 <= outcome.test["accuracy"] <= 1 and outcome.test["majority_accuracy"] == pytest.approx(390 / 624)


def test_stop_flag_ends_training_with_a_usable_model(small_pneumonia):
    stop = threading.Event()
    rec = Recorder(stop_after_step=4, stop=stop)
    outcome = run(quick_config(epochs=5), data=small_pneumonia, callback=rec, stop=stop)
    assert outcome.result.stopped and "Stopped" in outcome.result.stop_reason
    assert len(rec.steps) == 4  # checked between batches: no step after the flag
    assert outcome.result.best_epoch == 2  # epoch 2 was cut short but still validated
    assert outcome.result.history[-1]["partial"] is True
    assert 0 <= outcome.test["accuracy"] <= 1


def test_nan_loss_stops_and_keeps_the_best_model(small_pneumonia):
    outcome = run(quick_config(epochs=3, lr=1.0), data=small_pneumonia)  # a safe run first
    assert all(math.isfinite(r["train_loss"]) for r in outcome.result.history)

    poisoned = small_pneumonia.__class__(**{**small_pneumonia.__dict__})
    x = small_pneumonia.x_train.clone()
    x[::2] = float("nan")
    poisoned.x_train = x
    bad = run(quick_config(epochs=3), data=poisoned)
    assert "not a number" in bad.result.stop_reason
    for p in bad.result.model.parameters():
        assert torch.isfinite(p).all()


def test_multiclass_rgb_training(small_retina):
    outcome = run(quick_config(dataset="retinamnist"), data=small_retina)
    assert len(outcome.test["confusion"]) == 5
    assert outcome.params.quantum == 16 and outcome.result.model.in_channels == 3


def test_class_weights_and_constant_schedule(small_pneumonia):
    outcome = run(quick_config(class_weights=True, schedule="constant", augment=False), data=small_pneumonia)
    assert outcome.result.history
