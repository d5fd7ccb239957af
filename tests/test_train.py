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


class WeightRecorder(Recorder):
    """A Recorder that also copies the model's parameters at the end of every epoch."""

    def __init__(self, model, stop_after_step: int | None = None, stop: threading.Event | None = None) -> None:
        super().__init__(stop_after_step, stop)
        self.model = model
        self.params: dict[int, dict[str, torch.Tensor]] = {}

    def on_epoch_end(self, epoch: int, metrics: dict) -> None:
        super().on_epoch_end(epoch, metrics)
        self.params[epoch] = {n: p.detach().clone() for n, p in self.model.named_parameters()}


def _train_recording(data, cfg, stop=None, stop_after_step=None):
    from hqcnn.model import build_model
    from hqcnn.train import seed_everything, train_model

    seed_everything(cfg.train.seed)
    model = build_model(cfg.model, data.in_channels, data.n_classes)
    recorder = WeightRecorder(model, stop_after_step, stop)
    return train_model(model, data, cfg.train, recorder, stop), recorder


def test_averaging_keeps_the_mean_of_the_last_epochs_weights(small_pneumonia):
    from hqcnn.train import batch_bounds

    cfg = quick_config(epochs=4, average_last=0.5)
    result, recorder = _train_recording(small_pneumonia, cfg)
    assert result.averaged_epochs == (3, 4) and result.kept == "the average of epochs 3–4"
    for name, param in result.model.named_parameters():
        expected = (recorder.params[3][name].double() + recorder.params[4][name].double()) / 2
        torch.testing.assert_close(param.detach().double(), expected, rtol=1e-6, atol=1e-7)
    # Batch-norm statistics belong to the averaged weights: bn1's running mean is the mean, over the
    # training batches (cumulative average, no augmentation), of the averaged conv1's batch means.
    backbone = result.model.backbone
    x = small_pneumonia.x_train
    with torch.no_grad():
        batch_means = torch.stack([backbone.conv1(x[a:b]).mean((0, 2, 3)) for a, b in batch_bounds(len(x), 32)])
    torch.testing.assert_close(backbone.bn1.running_mean, batch_means.mean(0), rtol=1e-4, atol=1e-5)
    assert result.val and 0 <= result.val["accuracy"] <= 1


def test_averaging_fraction_picks_the_epochs(small_pneumonia):
    from hqcnn.config import TrainConfig
    from hqcnn.train import averaging_start

    assert averaging_start(TrainConfig(epochs=10)) is None
    assert averaging_start(TrainConfig(epochs=10, average_last=0.5)) == 6
    assert averaging_start(TrainConfig(epochs=33, average_last=0.5)) == 18  # 16 of 33 (round half to even)
    assert averaging_start(TrainConfig(epochs=1, average_last=0.1)) == 1  # at least the last epoch
    with pytest.raises(Exception, match="average_last"):
        TrainConfig(average_last=1.0)


def test_stop_before_averaging_keeps_the_best_epoch_and_during_it_the_average(small_pneumonia):
    stop = threading.Event()
    early, _ = _train_recording(small_pneumonia, quick_config(epochs=4, average_last=0.5), stop, stop_after_step=4)
    assert early.averaged_epochs is None and "best on validation AUC" in early.stop_reason

    stop = threading.Event()
    late, rec = _train_recording(small_pneumonia, quick_config(epochs=4, average_last=0.5), stop, stop_after_step=10)
    # 3 steps per epoch: epoch 3 completes (step 9), the flag stops epoch 4 after its first step
    assert late.averaged_epochs == (3, 3) and "epoch 3, the only epoch averaged" in late.stop_reason
    for name, param in late.model.named_parameters():
        torch.testing.assert_close(param.detach(), rec.params[3][name])


def test_averaged_runs_are_deterministic(small_pneumonia):
    a = run(quick_config(epochs=3, average_last=0.5), data=small_pneumonia)
    b = run(quick_config(epochs=3, average_last=0.5), data=small_pneumonia)
    assert a.test == b.test and a.result.averaged_epochs == (2, 3)
    assert a.metrics_json()["kept"] == "the average of epochs 2–3"


def test_a_last_batch_of_one_image_joins_the_previous_batch(small_pneumonia):
    from hqcnn.train import batch_bounds

    assert batch_bounds(65, 32) == [(0, 32), (32, 65)]
    assert batch_bounds(64, 32) == [(0, 32), (32, 64)]
    assert batch_bounds(1, 32) == [(0, 1)]
    odd = small_pneumonia.__class__(**{**small_pneumonia.__dict__})
    odd.x_train, odd.y_train = small_pneumonia.x_train[:65], small_pneumonia.y_train[:65]
    rec = Recorder()
    outcome = run(quick_config(epochs=1), data=odd, callback=rec)  # batch norm would fail on a batch of one
    assert rec.total == (2, 2) and outcome.result.history[0]["partial"] is False


def test_a_stop_before_the_first_epoch_ends_says_that_no_epoch_was_validated(small_pneumonia):
    stop = threading.Event()
    rec = Recorder(stop_after_step=1, stop=stop)
    outcome = run(quick_config(epochs=5), data=small_pneumonia, callback=rec, stop=stop)
    result = outcome.result
    assert result.full_epochs == 0 and result.history[0]["partial"] is True
    assert result.kept == "the weights reached when it stopped, before any epoch had finished"
    assert "No epoch was completed and validated" in result.stop_reason
    assert "best on validation AUC" not in result.stop_reason


def test_the_recipe_gives_a_tiny_set_several_steps_per_epoch():
    from hqcnn.recipes import BATCH_SIZES, recommended_train_config

    for n_train in (10, 32, 40, 100, 127, 546, 1080, 4708):
        recipe = recommended_train_config(n_train)
        assert recipe.batch_size in BATCH_SIZES
        assert n_train < 4 * BATCH_SIZES[0] or math.ceil(n_train / recipe.batch_size) >= 4, n_train
    assert recommended_train_config(546).batch_size == 32 and recommended_train_config(4708).batch_size == 128
